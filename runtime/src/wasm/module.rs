//! Loading filter components: from a `.wasm` file or a built-in name, with a content hash, the
//! world and contract version it implements (see [`super::worlds`]), and a file watch for hot
//! swap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::Component;

use super::engine::engine;
pub use super::worlds::{Contract, World};
use super::worlds::{Prepared, prepare};

/// A compiled component.
pub struct LoadedModule {
    /// Where it came from: a path, or `builtin:<name>`.
    pub origin: String,
    /// Content hash (hex), reported on every swap.
    pub hash: String,
    /// Its world.
    pub world: World,
    /// The contract version it was built against.
    pub contract: Contract,
    /// The compiled component.
    pub component: Component,
    /// The component checked against its world, imports resolved.
    pub prepared: Prepared,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?} {}, {})",
            self.origin,
            self.world,
            self.contract.version(),
            &self.hash[..12.min(self.hash.len())]
        )
    }
}

/// Components built into the binary, by name.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "motion-detector" => Some(include_bytes!(concat!(
            env!("OUT_DIR"),
            "/guests/motion_detector.wasm"
        ))),
        "object-filter" => Some(include_bytes!(concat!(
            env!("OUT_DIR"),
            "/guests/object_filter.wasm"
        ))),
        _ => None,
    }
}

/// Names of the built-in components.
pub const BUILTINS: &[&str] = &["motion-detector", "object-filter"];

/// Largest module file read: 256 MiB (a Python component, CPython inside, is ~19 MB).
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

/// The bytes of `path`, refused with its size when it is larger than `max` (checked before
/// reading, and while reading: a file that grows, or a device, is cut off at `max + 1`).
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let too_big = |size: u64| {
        anyhow!(
            "module {} is {size} bytes, over the {} MiB a module may be",
            path.display(),
            max >> 20
        )
    };
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read module {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > max {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read module {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Where a module comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleSource {
    /// A built-in component.
    Builtin(String),
    /// A `.wasm` file (watched for hot swap).
    File(PathBuf),
}

impl ModuleSource {
    /// A module reference as written in a topology: a built-in name, else a path.
    pub fn parse(text: &str) -> Self {
        let name = text.strip_prefix("builtin:").unwrap_or(text);
        if builtin(name).is_some() && !Path::new(text).exists() {
            ModuleSource::Builtin(name.to_string())
        } else {
            ModuleSource::File(PathBuf::from(text))
        }
    }

    /// Reads and compiles the module.
    pub fn load(&self) -> Result<Arc<LoadedModule>> {
        let (origin, bytes) = match self {
            ModuleSource::Builtin(name) => (
                format!("builtin:{name}"),
                builtin(name)
                    .ok_or_else(|| {
                        anyhow!(
                            "no built-in module '{name}' (built-ins: {})",
                            BUILTINS.join(", ")
                        )
                    })?
                    .to_vec(),
            ),
            ModuleSource::File(path) => (
                path.display().to_string(),
                read_bounded(path, MAX_MODULE_BYTES)?,
            ),
        };
        load_bytes(&origin, &bytes).map(Arc::new)
    }

    /// The file's modification time, for the watch (none for built-ins).
    pub fn modified(&self) -> Option<SystemTime> {
        match self {
            ModuleSource::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            ModuleSource::Builtin(_) => None,
        }
    }
}

/// Compiles `bytes` (served from the on-disk cache when seen before) and finds its world.
pub fn load_bytes(origin: &str, bytes: &[u8]) -> Result<LoadedModule> {
    let engine = engine()?;
    let hash = content_hash(bytes);
    let component = match compiled(&hash) {
        Some(c) => c,
        None => {
            let c = Component::new(engine, bytes)
                .map_err(|e| anyhow!("{origin}: not a valid component: {e:#}"))?;
            remember(&hash, &c);
            c
        }
    };
    let prepared = prepare(origin, &component)?;
    Ok(LoadedModule {
        origin: origin.to_string(),
        hash,
        world: prepared.world(),
        contract: prepared.contract(),
        component,
        prepared,
    })
}

/// Compiled components by content hash: a module that several nodes or pipelines use is compiled
/// once per process (and once per machine, through the engine's disk cache).
static COMPILED: std::sync::Mutex<Vec<(String, Component)>> = std::sync::Mutex::new(Vec::new());
/// Components kept in [`COMPILED`]; the oldest is forgotten past this (hot swaps add versions).
const COMPILED_KEPT: usize = 32;

fn compiled(hash: &str) -> Option<Component> {
    let kept = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    kept.iter().find(|(h, _)| h == hash).map(|(_, c)| c.clone())
}

fn remember(hash: &str, component: &Component) {
    let mut kept = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= COMPILED_KEPT {
        kept.remove(0);
    }
    kept.push((hash.to_string(), component.clone()));
}

/// FNV-1a 128-bit of the bytes, hex: stable across builds and platforms.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{h:032x}")
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_module_file_over_the_bound_is_refused_without_being_read() {
        let dir = std::env::temp_dir().join(format!("vigil-module-size-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let sparse = dir.join("huge.wasm");
        let file = std::fs::File::create(&sparse).expect("create");
        file.set_len(MAX_MODULE_BYTES + 1).expect("sparse file");
        let why = format!(
            "{:#}",
            read_bounded(&sparse, MAX_MODULE_BYTES).expect_err("refused")
        );
        assert_eq!(
            why,
            format!(
                "module {} is 268435457 bytes, over the 256 MiB a module may be",
                sparse.display()
            )
        );
        // A device that never ends is cut off at the bound.
        let why = format!(
            "{:#}",
            read_bounded(Path::new("/dev/zero"), 1 << 20).expect_err("refused")
        );
        assert_eq!(
            why,
            "module /dev/zero is 1048577 bytes, over the 1 MiB a module may be"
        );
        let small = dir.join("small.wasm");
        std::fs::write(&small, b"12345").expect("write");
        assert_eq!(read_bounded(&small, 5).expect("read"), b"12345");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
