//! Guest components built by one of the repository's build scripts from a folder of the
//! repository, kept in target/<cache>, keyed by the hash of everything that goes into them: the
//! tools' versions, the script, the SDK files, the WIT and the folder's sources.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::repo;
use vigil::wasm::module::content_hash;

static BUILDS: Mutex<()> = Mutex::new(());

/// How one language's components are built.
pub struct Recipe<'a> {
    /// The build script, from the repository's root (`scripts/build-python-guest.sh`).
    pub script: &'a str,
    /// Other files every build reads (the SDK, its drivers), from the repository's root.
    pub inputs: &'a [&'a str],
    /// Extensions of the source folder's files that go into a build (not its subfolders).
    pub extensions: &'a [&'a str],
    /// The cache folder under target/.
    pub cache: &'a str,
}

/// The files of `dir` (not its subfolders) with one of `extensions`, sorted.
fn sources(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
        })
        .collect();
    files.sort();
    files
}

/// The component `recipe` builds from `src` (a folder of the repository), built once per
/// content; `tools` (the tools' versions) goes into the key.
pub fn built(recipe: &Recipe, tools: String, src: &str) -> PathBuf {
    let src = repo().join(src);
    let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut key = tools.into_bytes();
    let mut inputs: Vec<PathBuf> = [recipe.script, "wit/0.2/filter.wit"]
        .iter()
        .chain(recipe.inputs)
        .map(|f| repo().join(f))
        .collect();
    inputs.extend(sources(&src, recipe.extensions));
    for file in inputs {
        key.extend(file.to_string_lossy().as_bytes());
        key.extend(std::fs::read(&file).expect("build input"));
    }
    let name = src.file_name().expect("name").to_string_lossy().to_string();
    let cache = repo().join("target").join(recipe.cache);
    let built = cache.join(format!("{name}-{}.wasm", &content_hash(&key)[..16]));
    if built.exists() {
        return built;
    }
    std::fs::create_dir_all(&cache).expect("cache dir");
    let partial = cache.join(format!("{name}.{}.partial.wasm", std::process::id()));
    let out = Command::new("bash")
        .arg(repo().join(recipe.script))
        .arg(&src)
        .arg(&partial)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{} {} failed: {}",
        recipe.script,
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &built).expect("keep the build");
    built
}
