//! Python filter components for tests: built from a folder of the repository by
//! scripts/build-python-guest.sh (componentize-py against wit/0.2) and kept in
//! target/python-guests, keyed by the hash of everything that goes into them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::repo;
use vigil::wasm::module::content_hash;

/// The Python truck filter, the example of the SDK.
pub const TRUCK_FILTER: &str = "guest-sdk/python/examples/truck-filter";
/// A test guest that raises in odd seconds and loops at second 7.
pub const FAULTY: &str = "guest-sdk/python/tests/guests/faulty";
/// A test frame filter that reports bright frames.
pub const BRIGHT: &str = "guest-sdk/python/tests/guests/bright";

static BUILDS: Mutex<()> = Mutex::new(());

/// The output of `componentize-py --version`, which goes into the cache key.
fn componentize_py_version() -> String {
    let out = Command::new("componentize-py")
        .arg("--version")
        .output()
        .expect("componentize-py runs (scripts/setup.sh installs it: pip install componentize-py)");
    assert!(out.status.success(), "componentize-py --version failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `.py` files of `dir` (not its subfolders), sorted.
fn python_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files
}

/// The component built from the Python filter in `src` (a folder of the repository), built
/// once per content: the SDK, the sources, the WIT, the script and componentize-py's version.
pub fn python_guest(src: &str) -> PathBuf {
    let src = repo().join(src);
    let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut key = componentize_py_version().into_bytes();
    let mut inputs = vec![
        repo().join("scripts/build-python-guest.sh"),
        repo().join("guest-sdk/python/vigil_filter.py"),
        repo().join("wit/0.2/filter.wit"),
    ];
    inputs.extend(python_files(&src));
    for file in inputs {
        key.extend(file.to_string_lossy().as_bytes());
        key.extend(std::fs::read(&file).expect("build input"));
    }
    let name = src.file_name().expect("name").to_string_lossy().to_string();
    let cache = repo().join("target/python-guests");
    let built = cache.join(format!("{name}-{}.wasm", &content_hash(&key)[..16]));
    if built.exists() {
        return built;
    }
    std::fs::create_dir_all(&cache).expect("cache dir");
    let partial = cache.join(format!("{name}.{}.partial.wasm", std::process::id()));
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-python-guest.sh"))
        .arg(&src)
        .arg(&partial)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "build-python-guest.sh {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &built).expect("keep the build");
    built
}
