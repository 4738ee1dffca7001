//! The cluster tests' peers and members: NATS servers, `vigil serve --cluster` nodes in folders
//! of their own, the continuous-recording pipelines they run, and what their archives hold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::peers::{Peer, free_port, wait_for_port};
use super::repo;
use super::service::{call, serve_with_env};

/// The lease time the tests run with: 4 s keeps the suite short; `VIGIL_TEST_LEASE_TTL=10`
/// measures the default (the README's figures).
pub fn ttl_s() -> u64 {
    std::env::var("VIGIL_TEST_LEASE_TTL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}
pub const PIPELINES: usize = 6;
/// Pipeline names the members' events are searched for (one more is added late in a test).
pub const NAMES: usize = PIPELINES + 1;

pub fn nats_server(dir: &Path, port: u16) -> Peer {
    nats_server_with(dir, port, &[])
}

/// `nats-server` with JetStream on `port`, storing in `dir`, with `extra` arguments.
pub fn nats_server_with(dir: &Path, port: u16, extra: &[String]) -> Peer {
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts (scripts/setup.sh installs it)");
    wait_for_port(port);
    Peer { child }
}

/// One cluster member: its folder (log, event log, archive) and its HTTP port.
pub struct Member {
    pub dir: PathBuf,
    pub port: u16,
    pub node: String,
    /// Lines of the event log written before the current process started (ignored).
    earlier: std::cell::Cell<usize>,
}

impl Member {
    /// `count` members `n0`, `n1`… with their folders under `dir` and free HTTP ports.
    pub fn in_folders(dir: &Path, count: usize) -> Vec<Member> {
        (0..count)
            .map(|i| {
                let folder = dir.join(format!("n{i}"));
                std::fs::create_dir_all(&folder).expect("node folder");
                Member {
                    dir: folder,
                    port: free_port(),
                    node: format!("n{i}"),
                    earlier: Default::default(),
                }
            })
            .collect()
    }

    pub fn start(&self, nats_port: u16) -> Peer {
        let ttl = ttl_s().to_string();
        self.start_with(
            &format!("nats://127.0.0.1:{nats_port}"),
            &["--lease-ttl", &ttl],
        )
    }

    /// `vigil serve --cluster URL` with `extra` arguments.
    pub fn start_with(&self, url: &str, extra: &[&str]) -> Peer {
        self.start_with_env(url, extra, &[])
    }

    /// The same with `env` (an object store's credentials).
    pub fn start_with_env(&self, url: &str, extra: &[&str], env: &[(String, String)]) -> Peer {
        self.earlier.set(self.events().len());
        let archive = self.dir.join("archive");
        let mut args = vec![
            "--cluster",
            url,
            "--node-id",
            &self.node,
            "--archive",
            archive.to_str().unwrap_or("archive"),
        ];
        args.extend_from_slice(extra);
        serve_with_env(&self.dir, self.port, &args, env)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// The events of this node's current process.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `eventType`s (last part) of `pipeline`'s events in this node's current process.
    pub fn kinds_of(&self, pipeline: &str) -> Vec<String> {
        let subject = format!("/livePipelines/{pipeline}");
        self.events()
            .into_iter()
            .skip(self.earlier.get())
            .filter(|e| e["properties"]["subject"] == subject.as_str())
            .filter_map(|e| {
                let kind = e["properties"]["eventType"].as_str()?.rsplit('.').next()?;
                Some(kind.to_string())
            })
            .collect()
    }

    /// The pipelines this node records now: those whose last lease event in its current
    /// process is `LeaseAcquired`.
    pub fn holds(&self) -> Vec<String> {
        (0..NAMES)
            .map(|i| format!("p{i}"))
            .filter(|name| {
                self.kinds_of(name)
                    .into_iter()
                    .rfind(|k| k.starts_with("Lease"))
                    .is_some_and(|k| k == "LeaseAcquired")
            })
            .collect()
    }
}

/// Sets `tests/topologies/cluster/cvr-to-video.json` (continuous recording into an archive)
/// through the member on `port`.
pub fn set_cvr_topology(port: u16) {
    let text = std::fs::read_to_string(repo().join("tests/topologies/cluster/cvr-to-video.json"))
        .expect("topology");
    let topology: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(call(port, "pipelineTopologySet", &topology).0, 201);
}

/// Live pipeline `p<i>` of that topology, recording the camera on `cam_port` into video `v<i>`.
pub fn cvr_pipeline(i: usize, cam_port: u16) -> Value {
    json!({"name": format!("p{i}"), "properties": {"topologyName": "CvrToVideo", "parameters": [
        {"name": "rtspUrl", "value": format!("rtsp://127.0.0.1:{cam_port}/camera")},
        {"name": "videoName", "value": format!("v{i}")}]}})
}

/// The media ranges (ms since the epoch) of `video` that the archive served on `port` holds
/// (none when it never recorded that video).
pub fn ranges(port: u16, video: &str) -> Vec<(i64, i64)> {
    let now = jiff::Timestamp::now();
    let url = format!(
        "http://127.0.0.1:{port}/api/videos/{video}/availableMedia?precision=full&startTime={}&endTime={}",
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_mins(1)
    );
    let (status, body) = super::archive::get(&url);
    if status == 400 && String::from_utf8_lossy(&body).contains("no video") {
        return Vec::new(); // this node never recorded it
    }
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    let ms = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond())
            .unwrap_or(0)
    };
    body["timeRanges"]
        .as_array()
        .map(|r| r.iter().map(|r| (ms(&r["start"]), ms(&r["end"]))).collect())
        .unwrap_or_default()
}

/// Seconds of media in `ranges`.
pub fn seconds(ranges: &[(i64, i64)]) -> f64 {
    ranges.iter().map(|(s, e)| (e - s) as f64 / 1000.0).sum()
}
