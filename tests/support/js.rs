//! JavaScript filter components for tests: built from a folder of the repository by
//! scripts/build-js-guest.sh (esbuild + ComponentizeJS against wit/0.2) and kept in
//! target/js-guests, keyed by the hash of everything that goes into them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::repo;
use vigil::wasm::module::content_hash;

/// The JavaScript truck filter, the example of the SDK.
pub const TRUCK_FILTER: &str = "guest-sdk/js/examples/truck-filter";
/// A test guest that throws in odd seconds and loops at second 7.
pub const FAULTY: &str = "guest-sdk/js/tests/guests/faulty";
/// A test frame filter that reports bright frames.
pub const BRIGHT: &str = "guest-sdk/js/tests/guests/bright";

static BUILDS: Mutex<()> = Mutex::new(());

/// Where the build script finds its tools (scripts/setup.sh installs them there).
pub fn tools() -> PathBuf {
    std::env::var_os("VIGIL_JS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/js-tools"))
}

/// Node's version and the versions of the npm packages that build, for the cache key.
fn tool_versions() -> String {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .expect("node runs (scripts/setup.sh installs Node.js)");
    let mut key = String::from_utf8_lossy(&node.stdout).trim().to_string();
    for package in ["@bytecodealliance/componentize-js", "esbuild"] {
        let manifest = tools()
            .join("node_modules")
            .join(package)
            .join("package.json");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|_| {
            panic!(
                "{} missing: run scripts/setup.sh (it installs ComponentizeJS and esbuild into target/js-tools)",
                manifest.display()
            )
        });
        let version: serde_json::Value = serde_json::from_str(&text).expect("package.json");
        key.push_str(&format!(" {package}@{}", version["version"]));
    }
    key
}

/// The `.js` / `.mjs` files of `dir` (not its subfolders), sorted.
fn js_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "mjs"))
        .collect();
    files.sort();
    files
}

/// The component built from the JavaScript filter in `src` (a folder of the repository), built
/// once per content: the SDK, its build driver, the sources, the WIT, the script and the tools'
/// versions.
pub fn js_guest(src: &str) -> PathBuf {
    let src = repo().join(src);
    let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut key = tool_versions().into_bytes();
    let mut inputs = vec![
        repo().join("scripts/build-js-guest.sh"),
        repo().join("guest-sdk/js/vigil_filter.js"),
        repo().join("guest-sdk/js/tools/componentize.mjs"),
        repo().join("wit/0.2/filter.wit"),
    ];
    inputs.extend(js_files(&src));
    for file in inputs {
        key.extend(file.to_string_lossy().as_bytes());
        key.extend(std::fs::read(&file).expect("build input"));
    }
    let name = src.file_name().expect("name").to_string_lossy().to_string();
    let cache = repo().join("target/js-guests");
    let built = cache.join(format!("{name}-{}.wasm", &content_hash(&key)[..16]));
    if built.exists() {
        return built;
    }
    std::fs::create_dir_all(&cache).expect("cache dir");
    let partial = cache.join(format!("{name}.{}.partial.wasm", std::process::id()));
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-js-guest.sh"))
        .arg(&src)
        .arg(&partial)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "build-js-guest.sh {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &built).expect("keep the build");
    built
}
