//! Python filter components for tests: built from a folder of the repository by
//! scripts/build-python-guest.sh (componentize-py against wit/0.2) and kept in
//! target/python-guests (see [`super::guest_build`]).

use std::path::PathBuf;
use std::process::Command;

use super::guest_build::{Recipe, built};

/// The Python truck filter, the example of the SDK.
pub const TRUCK_FILTER: &str = "guest-sdk/python/examples/truck-filter";
/// A test guest that raises in odd seconds and loops at second 7.
pub const FAULTY: &str = "guest-sdk/python/tests/guests/faulty";
/// A test frame filter that reports bright frames.
pub const BRIGHT: &str = "guest-sdk/python/tests/guests/bright";

/// The output of `componentize-py --version`, which goes into the cache key.
fn componentize_py_version() -> String {
    let out = Command::new("componentize-py")
        .arg("--version")
        .output()
        .expect("componentize-py runs (scripts/setup.sh installs it: pip install componentize-py)");
    assert!(out.status.success(), "componentize-py --version failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The component built from the Python filter in `src` (a folder of the repository), built
/// once per content: the SDK, the sources, the WIT, the script and componentize-py's version.
pub fn python_guest(src: &str) -> PathBuf {
    let recipe = Recipe {
        script: "scripts/build-python-guest.sh",
        inputs: &["guest-sdk/python/vigil_filter.py"],
        extensions: &["py"],
        cache: "python-guests",
    };
    built(&recipe, componentize_py_version(), src)
}
