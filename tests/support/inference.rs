#![allow(dead_code)]
//! The inference-service stand-in (scripts/peers/infer-server.py): a real HTTP server that
//! decodes what Vigil sends, finds the red box of the test clips, answers in AVA's schema, keeps
//! every request on disk, and injects faults on demand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::peers::{Peer, wait_for_port};
use super::repo;

/// A running stand-in.
pub struct InferServer {
    /// The process.
    pub peer: Peer,
    /// Its port.
    pub port: u16,
    /// Where it keeps requests.
    pub record: PathBuf,
    /// Whether it serves HTTPS (`start_tls`) rather than plain HTTP.
    pub tls: bool,
}

/// One request the server received.
#[derive(Debug)]
pub struct Received {
    /// Path, headers, time received, answer status.
    pub meta: serde_json::Value,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A request header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.meta["headers"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    /// `x-vigil-frame-time` in seconds since the Unix epoch.
    pub fn frame_time(&self) -> f64 {
        let text = self
            .header("x-vigil-frame-time")
            .expect("frame time header");
        let t: jiff::Timestamp = text.parse().expect("ISO time");
        t.as_nanosecond() as f64 / 1e9
    }
}

impl InferServer {
    /// Starts the stand-in on `port` (blob backend, label `truck`), recording into `record`.
    pub fn start(port: u16, record: &Path) -> Self {
        Self::launch(port, record, None)
    }

    /// Starts the stand-in serving HTTPS on `port` with the PEM certificate `cert` and key
    /// `key` (e.g. from `tls::TestCa::issue`); otherwise like `start`.
    pub fn start_tls(port: u16, record: &Path, cert: &Path, key: &Path) -> Self {
        Self::launch(port, record, Some((cert, key)))
    }

    /// Starts infer-server.py, with `--tls-cert`/`--tls-key` when `tls` is given. The log goes
    /// next to `record` (`<record>.log`).
    fn launch(port: u16, record: &Path, tls: Option<(&Path, &Path)>) -> Self {
        std::fs::create_dir_all(record).expect("record dir");
        let log = std::fs::File::create(record.with_extension("log")).expect("log");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(repo().join("scripts/peers/infer-server.py"))
            .args(["--port", &port.to_string(), "--record"])
            .arg(record);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("infer-server.py starts (python3-pil, python3-numpy)");
        wait_for_port(port);
        Self {
            peer: Peer { child },
            port,
            record: record.to_path_buf(),
            tls: tls.is_some(),
        }
    }

    /// The endpoint URL Vigil is given (plain HTTP).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/score", self.port)
    }

    /// The HTTPS endpoint URL, for a stand-in started with `start_tls`.
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/score", self.port)
    }

    /// Sets the fault mode (`{}` clears it). With TLS the POST goes over HTTPS without
    /// verifying the certificate (`curl --insecure`): it is test plumbing, not the TLS under test.
    pub fn control(&self, faults: &str) {
        let status = if self.tls {
            super::peers::http_post_with(
                &format!("https://127.0.0.1:{}/control", self.port),
                faults,
                &["--insecure"],
            )
        } else {
            super::peers::http_post(&format!("http://127.0.0.1:{}/control", self.port), faults)
        };
        assert_eq!(status, 200, "control accepted");
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        read_requests(&self.record)
    }
}

/// The requests kept in `record`, in order.
pub fn read_requests(record: &Path) -> Vec<Received> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(record)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|meta| {
            let m = serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
            let body = std::fs::read(meta.with_extension("bin")).ok()?;
            Some(Received { meta: m, body })
        })
        .collect()
}
