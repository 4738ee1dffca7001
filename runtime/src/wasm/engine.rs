//! The process's one WebAssembly engine: component model, epoch interruption (a background thread
//! ticks every [`EPOCH_TICK`]), and wasmtime's on-disk cache of compiled code keyed by content
//! hash, so a module is compiled once per machine, not once per start.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Result, anyhow};
use wasmtime::{Cache, CacheConfig, Config, Engine};

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine, created on first use.
pub fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| make_engine().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("cannot create the WebAssembly engine: {e}"))
}

fn make_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // For `perf record`: `VIGIL_WASM_PROFILE=perfmap` names guest functions in
    // /tmp/perf-PID.map; `jitdump` also keeps their code (`perf record -k mono`, `perf inject --jit`).
    match std::env::var("VIGIL_WASM_PROFILE").as_deref() {
        Ok("perfmap") => {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Ok("jitdump") => {
            config.profiler(wasmtime::ProfilingStrategy::JitDump);
        }
        _ => {}
    }
    if let Some(dir) = cache_dir() {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        match Cache::new(cache) {
            Ok(c) => {
                config.cache(Some(c));
            }
            Err(e) => tracing::warn!("compiled-module cache disabled: {e:#}"),
        }
    }
    let engine = Engine::new(&config).map_err(|e| anyhow!("{e:#}"))?;
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        })?;
    Ok(engine)
}

/// `$VIGIL_CACHE_DIR`, else `$XDG_CACHE_HOME/vigil/wasm`, else `~/.cache/vigil/wasm`.
fn cache_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("VIGIL_CACHE_DIR") {
        return Some(std::path::PathBuf::from(dir).join("wasm"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("vigil").join("wasm"))
}
