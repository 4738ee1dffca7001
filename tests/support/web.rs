//! Helpers for the tests that drive the web page in headless Chromium (tests/web/*.mjs).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

use super::peers::Peer;
use super::repo;

/// A browser script under way: the process, its stdin (to let it go on) and its output lines.
pub struct Script {
    /// The node process (killed on drop).
    pub peer: Peer,
    /// Its standard input.
    pub stdin: ChildStdin,
    /// Its standard output, line by line.
    pub lines: Lines<BufReader<ChildStdout>>,
}

/// Starts `node tests/web/<name>` with `args` and `env`, its stderr going to `stderr`.
pub fn start_script<S: AsRef<OsStr>>(
    name: &str,
    args: &[S],
    env: &[(&str, &str)],
    stderr: &Path,
) -> Script {
    let child = Command::new("node")
        .arg(repo().join("tests/web").join(name))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).expect("log"))
        .spawn()
        .expect("node runs (scripts/setup-web.sh installs it)");
    let mut peer = Peer { child };
    let stdout = peer.child.stdout.take().expect("stdout");
    let stdin = peer.child.stdin.take().expect("stdin");
    Script {
        peer,
        stdin,
        lines: BufReader::new(stdout).lines(),
    }
}

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
