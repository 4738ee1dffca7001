//! JavaScript filter components for tests: built from a folder of the repository by
//! scripts/build-js-guest.sh (esbuild + ComponentizeJS against wit/0.2) and kept in
//! target/js-guests (see [`super::guest_build`]).

use std::path::PathBuf;
use std::process::Command;

use super::guest_build::{Recipe, built};
use super::repo;

/// The JavaScript truck filter, the example of the SDK.
pub const TRUCK_FILTER: &str = "guest-sdk/js/examples/truck-filter";
/// A test guest that throws in odd seconds and loops at second 7.
pub const FAULTY: &str = "guest-sdk/js/tests/guests/faulty";
/// A test frame filter that reports bright frames.
pub const BRIGHT: &str = "guest-sdk/js/tests/guests/bright";

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

/// The component built from the JavaScript filter in `src` (a folder of the repository), built
/// once per content: the SDK, its build driver, the sources, the WIT, the script and the tools'
/// versions.
pub fn js_guest(src: &str) -> PathBuf {
    let recipe = Recipe {
        script: "scripts/build-js-guest.sh",
        inputs: &[
            "guest-sdk/js/vigil_filter.js",
            "guest-sdk/js/tools/componentize.mjs",
        ],
        extensions: &["js", "mjs"],
        cache: "js-guests",
    };
    built(&recipe, tool_versions(), src)
}
