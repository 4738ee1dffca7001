//! Helpers for the tests that drive the web page in headless Chromium (tests/web/*.mjs).
#![allow(dead_code)]

use std::io::{BufReader, Lines};
use std::path::Path;
use std::process::ChildStdout;

use serde_json::Value;

/// The next phase line (`{"phase": …}`) the script prints; panics, with the script's stderr, on
/// another phase or at its end.
pub fn next_phase(lines: &mut Lines<BufReader<ChildStdout>>, want: &str, stderr: &Path) -> Value {
    for line in lines.by_ref() {
        let line = line.expect("read the script's output");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        assert_eq!(
            v["phase"],
            want,
            "{line}\n{}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
        return v;
    }
    panic!(
        "the script ended before phase {want}: {}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
}
