#![allow(dead_code)]
//! The gRPC extension stand-in (scripts/peers/grpc-infer-server.py): a real gRPC server built
//! from our own proto files with Debian's python3-grpcio, speaking AVA's ProcessMediaStream
//! protocol, finding the red box of the test clips, keeping every message it received, and
//! injecting faults on demand.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::peers::{Peer, http_post};
use super::repo;

/// A running stand-in.
pub struct GrpcServer {
    /// The process.
    pub peer: Peer,
    /// Its gRPC port.
    pub port: u16,
    /// Its HTTP control port.
    pub control_port: u16,
}

impl GrpcServer {
    /// Starts the stand-in with `extra` arguments (`--require-auth`, `--tls-cert`, ...); its
    /// log goes to `log`.
    pub fn start(log: &Path, extra: &[&str]) -> Self {
        let log = std::fs::File::create(log).expect("log");
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo().join("scripts/peers/grpc-infer-server.py"))
            .args(["--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("grpc-infer-server.py starts (python3-grpcio, python3-grpc-tools)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("ready line");
        // Keep reading (nothing else comes) so the server never writes into a closed pipe.
        std::thread::spawn(move || {
            let _ = reader.read_to_end(&mut Vec::new());
        });
        let ports: Vec<u16> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(
            ports.len(),
            2,
            "expected 'ready PORT CONTROL_PORT', got {line:?}"
        );
        Self {
            peer: Peer { child },
            port: ports[0],
            control_port: ports[1],
        }
    }

    /// The endpoint URL Vigil is given.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Sets the fault switches (`{}` clears them).
    pub fn control(&self, faults: &str) {
        let status = http_post(
            &format!("http://127.0.0.1:{}/control", self.control_port),
            faults,
        );
        assert_eq!(status, 200, "control accepted: {faults}");
    }

    /// Every call and message the server received (`/requests`).
    pub fn requests(&self) -> Value {
        let (status, body) =
            super::archive::get(&format!("http://127.0.0.1:{}/requests", self.control_port));
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("JSON")
    }

    /// The samples the server received, in order.
    pub fn samples(&self) -> Vec<Value> {
        self.requests()["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["payload"] == "media_sample")
            .cloned()
            .collect()
    }
}
