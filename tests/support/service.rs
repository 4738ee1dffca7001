//! Helpers for the service tests: `vigil serve`, AVA method calls over HTTP.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::peers::{Peer, wait_for_port};
use super::repo;

/// `vigil serve --data-dir DIR/data --http 127.0.0.1:PORT --event-log DIR/events.jsonl` plus
/// `extra`; its log goes to `DIR/serve.log` (appended, so restarts keep theirs).
pub fn serve(dir: &Path, http_port: u16, extra: &[&str]) -> Peer {
    let data = dir.join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap_or("data")];
    args.extend_from_slice(extra);
    serve_with(dir, http_port, &args)
}

/// `vigil serve ARGS --http 127.0.0.1:PORT --event-log DIR/events.jsonl` (no `--http` when
/// ARGS give one); its log goes to `DIR/serve.log` (appended).
pub fn serve_with(dir: &Path, http_port: u16, args: &[&str]) -> Peer {
    serve_with_env(dir, http_port, args, &[])
}

/// The same with `env` added to its environment.
pub fn serve_with_env(dir: &Path, http_port: u16, args: &[&str], env: &[(String, String)]) -> Peer {
    let listen = format!("127.0.0.1:{http_port}");
    let http: &[&str] = if args.contains(&"--http") {
        &[]
    } else {
        &["--http", &listen]
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("serve")
        .args(args)
        .args(http)
        .arg("--event-log")
        .arg(dir.join("events.jsonl"))
        .current_dir(repo())
        // VIGIL_TEST_LOG=debug (any RUST_LOG filter) for a closer look at a failing test.
        .env(
            "RUST_LOG",
            std::env::var("VIGIL_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("vigil serve starts");
    wait_for_port(http_port);
    Peer { child }
}

/// Calls AVA method `method` over HTTP: (AVA status, payload).
pub fn call(port: u16, method: &str, payload: &Value) -> (u16, Value) {
    call_with_token(port, None, method, payload)
}

/// Calls AVA method `method` over HTTP, with `token` as a Bearer token if given.
pub fn call_with_token(
    port: u16,
    token: Option<&str>,
    method: &str,
    payload: &Value,
) -> (u16, Value) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-X", "POST", "-H", "content-type: application/json"]);
    if let Some(token) = token {
        curl.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    let out = curl
        .arg("--data-binary")
        .arg(payload.to_string())
        .arg(format!("http://127.0.0.1:{port}/api/methods/{method}"))
        .output()
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{method}: not JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let status = answer["status"].as_u64().unwrap_or(0) as u16;
    (status, answer["payload"].clone())
}

/// `pipelineTopologySet` of a topology file, expecting 200 or 201.
pub fn set_topology(port: u16, file: &str) {
    let text = std::fs::read_to_string(repo().join(file)).expect("topology file");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let (status, payload) = call(port, "pipelineTopologySet", &doc);
    assert!(status == 200 || status == 201, "{file}: {status} {payload}");
}

/// `livePipelineSet` of `name` on `topology` with `parameters`; returns the answer.
pub fn set_pipeline(
    port: u16,
    name: &str,
    topology: &str,
    parameters: &[(&str, String)],
) -> (u16, Value) {
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    call(
        port,
        "livePipelineSet",
        &json!({"@apiVersion": "1.1", "name": name, "properties": {"topologyName": topology, "parameters": parameters}}),
    )
}

/// `livePipelineActivate`, expecting 200.
pub fn activate(port: u16, name: &str) {
    let (status, payload) = call(
        port,
        "livePipelineActivate",
        &json!({"@apiVersion": "1.1", "name": name}),
    );
    assert_eq!(status, 200, "activate {name}: {payload}");
}

/// The states of every live pipeline, by name.
pub fn states(port: u16) -> Vec<(String, String)> {
    let (status, payload) = call(port, "livePipelineList", &json!({"@apiVersion": "1.1"}));
    assert_eq!(status, 200, "{payload}");
    payload["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["properties"]["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The events of a JSON-lines log whose subject starts with `/livePipelines/<pipeline>/`.
pub fn events_of(log: &Path, pipeline: &str) -> Vec<Value> {
    let prefix = format!("/livePipelines/{pipeline}/");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["properties"]["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with(&prefix) || s == prefix.trim_end_matches('/'))
        })
        .collect()
}

/// Counts events of type suffix `kind` of `pipeline`.
pub fn count_of(log: &Path, pipeline: &str, kind: &str) -> usize {
    events_of(log, pipeline)
        .iter()
        .filter(|e| {
            e["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(".{kind}")))
        })
        .count()
}

/// Waits until `done` holds, polling every 200 ms; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
