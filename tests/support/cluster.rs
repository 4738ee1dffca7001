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
pub const PIPELINES: usize = 12;
/// Cameras the pipelines share (pipeline `i` records camera `i % CAMERAS`).
pub const CAMERAS: usize = 4;
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

/// A three-server NATS cluster (JetStream, buckets with three replicas) on another host: a
/// network namespace with one link per member, so that a member can be cut off from all three
/// servers at once by taking its link down. Where namespaces cannot be made (not root), or with
/// `VIGIL_TEST_NO_NETNS` set, the servers run here and member 0 reaches them through relays the
/// test can cut (which reset its connections instead of leaving them hanging); the test prints
/// which.
pub struct NatsCluster {
    /// The servers (dropped before the namespace).
    pub servers: Vec<Option<Peer>>,
    client_ports: Vec<u16>,
    relays: Vec<super::relay::Relay>,
    lan: Option<super::netns::Lan>,
}

impl NatsCluster {
    /// Starts the servers, storing under `dir`, reachable by `members` members.
    pub fn start(dir: &Path, members: usize) -> Self {
        let made = match std::env::var_os("VIGIL_TEST_NO_NETNS") {
            Some(_) => Err("VIGIL_TEST_NO_NETNS is set".to_string()),
            None => super::netns::Lan::create(members),
        };
        let lan = match made {
            Ok(lan) => Some(lan),
            Err(why) => {
                eprintln!("cluster: no network namespace ({why}); member 0 goes through relays");
                None
            }
        };
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let listen = if lan.is_some() {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        let servers = (0..3)
            .map(|i| {
                let mut cmd = match &lan {
                    Some(lan) => lan.command("nats-server"),
                    None => Command::new("nats-server"),
                };
                let child = cmd
                    .args([
                        "-js",
                        "-a",
                        listen,
                        "-p",
                        &client_ports[i].to_string(),
                        "-sd",
                    ])
                    .arg(dir.join(format!("s{i}")))
                    .args(["--server_name", &format!("s{i}"), "--cluster_name", "vigil"])
                    .args(["--cluster", &format!("nats://127.0.0.1:{}", route_ports[i])])
                    .args(["--routes", &routes])
                    // Members know the servers only by the addresses they were given: a server
                    // telling its clients the others' addresses (all its interfaces) would let
                    // a member whose link is cut reconnect over another member's link.
                    .arg("--no_advertise")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("nats-server starts (scripts/setup.sh installs it)");
                Some(Peer { child })
            })
            .collect();
        let relays = match &lan {
            Some(_) => Vec::new(),
            None => client_ports
                .iter()
                .map(|p| super::relay::Relay::start(free_port(), *p))
                .collect(),
        };
        let cluster = Self {
            servers,
            client_ports,
            relays,
            lan,
        };
        for port in &cluster.client_ports {
            let host = match &cluster.lan {
                Some(lan) => lan.there(0),
                None => "127.0.0.1".to_string(),
            };
            wait_for_address(&host, *port);
        }
        cluster
    }

    /// Whether the servers run on another host (a namespace).
    pub fn namespaced(&self) -> bool {
        self.lan.is_some()
    }

    /// `--cluster` for member `i`: the three servers over its own link.
    pub fn url_for(&self, member: usize) -> String {
        let urls: Vec<String> = match (&self.lan, member) {
            (Some(lan), i) => self
                .client_ports
                .iter()
                .map(|p| format!("nats://{}:{p}", lan.there(i)))
                .collect(),
            (None, 0) => self
                .relays
                .iter()
                .map(|r| format!("nats://127.0.0.1:{}", r.port))
                .collect(),
            (None, _) => self
                .client_ports
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect(),
        };
        urls.join(",")
    }

    /// Cuts member `member` off from every server (only member 0 without namespaces).
    pub fn cut(&self, member: usize) {
        match &self.lan {
            Some(lan) => lan.cut(member),
            None => {
                assert_eq!(member, 0, "only member 0 goes through relays");
                self.relays.iter().for_each(|r| r.cut());
            }
        }
    }

    /// Joins member `member` again.
    pub fn restore(&self, member: usize) {
        match &self.lan {
            Some(lan) => lan.restore(member),
            None => self.relays.iter().for_each(|r| r.restore()),
        }
    }

    /// `kill -9` of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.servers[i].take() {
            s.kill9();
        }
    }
}

/// Waits until something listens on `host:port` (up to 30 s).
pub fn wait_for_address(host: &str, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let address = format!("{host}:{port}");
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {address}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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

    /// Member `i` of `nats` (its own link), leases of `ttl` seconds, three replicas.
    pub fn join(&self, nats: &NatsCluster, i: usize, ttl: u64) -> Peer {
        let ttl = ttl.to_string();
        let args = ["--lease-ttl", ttl.as_str(), "--cluster-replicas", "3"];
        self.start_with(&nats.url_for(i), &args)
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

    /// `eventType`s (last part) of the events of `pipeline`'s sink `sink` in this node's
    /// current process.
    pub fn sink_kinds(&self, pipeline: &str, sink: &str) -> Vec<String> {
        self.kinds_at(&format!("/livePipelines/{pipeline}/sinks/{sink}"))
    }

    /// `eventType`s (last part) of `pipeline`'s events in this node's current process.
    pub fn kinds_of(&self, pipeline: &str) -> Vec<String> {
        self.kinds_at(&format!("/livePipelines/{pipeline}"))
    }

    /// `eventType`s (last part) of the cluster's own events (subject `/cluster`) in this node's
    /// current process, watch restarts left out (they depend on timing).
    pub fn cluster_kinds(&self) -> Vec<String> {
        let mut kinds = self.kinds_at("/cluster");
        kinds.retain(|k| k != "ClusterWatchRestarted");
        kinds
    }

    fn kinds_at(&self, subject: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .skip(self.earlier.get())
            .filter(|e| e["properties"]["subject"] == subject)
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

/// Live pipeline `p<i>` of that topology, recording the camera on `cam_port` into video `v<i>`,
/// its triggered clips into `clips`.
pub fn cvr_pipeline(i: usize, cam_port: u16, clips: &Path) -> Value {
    json!({"name": format!("p{i}"), "properties": {"topologyName": "CvrToVideo", "parameters": [
        {"name": "rtspUrl", "value": format!("rtsp://127.0.0.1:{cam_port}/camera")},
        {"name": "videoName", "value": format!("v{i}")},
        {"name": "clipDirectory", "value": clips.display().to_string()}]}})
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

/// Publishes a trigger (`{"seq": n}`) to the `recordingTrigger` input of pipelines `p0` to
/// `p<pipelines - 1>` on NATS every 2 s, until dropped.
pub struct Triggers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Triggers {
    /// Starts publishing through the servers `urls` (comma-separated).
    pub fn start(urls: &str, pipelines: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let servers: Vec<async_nats::ServerAddr> = urls
            .split(',')
            .map(|u| u.parse().expect("a NATS URL"))
            .collect();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let client = async_nats::ConnectOptions::new()
                    .ping_interval(std::time::Duration::from_secs(1))
                    .connect(servers)
                    .await
                    .expect("the trigger client connects");
                let mut seq = 0u64;
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    for i in 0..pipelines {
                        let subject = format!("vigil.pipelines.p{i}.inputs.recordingTrigger");
                        let body = json!({ "seq": seq }).to_string();
                        let _ = client.publish(subject, body.into()).await;
                    }
                    let _ = client.flush().await;
                    seq += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            });
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
