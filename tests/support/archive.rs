#![allow(dead_code)]
//! Helpers of the archive tests: a minute of test video, HTTP GETs, `vigil serve`, and the
//! S3-compatible server s3s-fs (SigV4 checked) on a local folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::peers::{Peer, wait_for_port};
use super::{clips, repo};

/// Access key of the test store.
pub const ACCESS_KEY: &str = "AKIATEST";
/// Secret of the test store.
pub const SECRET_KEY: &str = "secrettest";

/// A minute of the test clip (three loops of 20 s).
pub fn minute_clip(dir: &Path) -> PathBuf {
    let minute = dir.join("minute.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-stream_loop", "2", "-i"])
        .arg(clips().join("camera-h264.mp4"))
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(&minute)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    minute
}

/// GET `url` with curl: (status, body).
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[split + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(split);
    (status, body)
}

/// GET `url`, expecting 200 and JSON.
pub fn get_json(url: &str) -> Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// `vigil serve` of `archive` on `port`.
pub fn serve(archive: &Path, port: u16) -> Peer {
    serve_with_store(archive, port, &[], &[])
}

/// `vigil serve` of `archive` on `port` with extra arguments (`--store …`) and environment.
pub fn serve_with_store(
    archive: &Path,
    port: u16,
    extra: &[&str],
    env: &[(String, String)],
) -> Peer {
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--archive"])
        .arg(archive)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil serve starts");
    wait_for_port(port);
    Peer { child }
}

/// s3s-fs serving `dir` on `port`, with the bucket `vigil` (a folder of `dir`) in it.
pub fn s3_server(dir: &Path, port: u16) -> Peer {
    std::fs::create_dir_all(dir.join("vigil")).expect("store dir and bucket");
    let binary = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("s3s-fs"));
    let child = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs starts (scripts/setup-s3.sh installs it)");
    wait_for_port(port);
    Peer { child }
}

/// Environment of a `vigil` talking to the test store on `port` with `secret`.
pub fn store_env(port: u16, secret: &str) -> Vec<(String, String)> {
    vec![
        (
            "AWS_ENDPOINT_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}
