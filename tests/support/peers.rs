#![allow(dead_code)]
//! Real peers for the live tests: the GStreamer RTSP camera, a Mosquitto broker, `vigil run`.
//! Each is a child process killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{read_events, repo};

/// A free TCP port on loopback, outside the kernel's ephemeral range (32768–60999).
///
/// A port the kernel handed out for `bind(0)` can be taken again, before the peer binds it, as
/// the local port of any outgoing connection (the camera's, the store's); CI saw a `vigil run`
/// fail to listen that way. Ports below the range are never handed out implicitly: each test
/// process walks its own slice of 20000–32767 (from its pid) and takes the next one that binds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let base = (std::process::id().wrapping_mul(997)) % SPAN;
    for _ in 0..SPAN {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (base + step) % SPAN) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port)).is_ok();
        if tcp && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// A child process, killed on drop.
pub struct Peer {
    /// The process.
    pub child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// Sends SIGINT (a clean stop) and waits up to 10 s.
    pub fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGKILL.
    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The looping RTSP camera serving `clip` on `port` at `/camera`, with Digest credentials.
pub fn camera(clip: &Path, port: u16, user: &str, password: &str) -> Peer {
    camera_with(clip, port, user, password, &[])
}

/// The camera with extra rtsp-camera.py options (`--auth basic`, `--protocols udp`). A start
/// that does not report ready (the port not yet free after a camera was killed on it) is tried
/// again, three times in all.
pub fn camera_with(clip: &Path, port: u16, user: &str, password: &str, extra: &[&str]) -> Peer {
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            eprintln!("camera on {port} did not start ({last:?}); trying again");
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo().join("scripts/peers/rtsp-camera.py"))
            .arg(clip)
            .args([
                "--port",
                &port.to_string(),
                "--mount",
                "/camera",
                "--user",
                user,
                "--password",
                password,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the RTSP camera starts (scripts/setup-media.sh installs GStreamer)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        if line.starts_with("ready:") {
            // The rest ("loop N", ...) is read and dropped: the camera must not write into a
            // closed pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Peer { child };
        }
        let _ = child.kill();
        let _ = child.wait();
        last = line;
    }
    panic!("camera did not start: {last:?}");
}

/// A Mosquitto broker on `port`.
pub fn broker(port: u16) -> Peer {
    let child = Command::new("mosquitto")
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts (scripts/setup-media.sh installs it)");
    wait_for_port(port);
    Peer { child }
}

/// Waits until something listens on `port` (up to 30 s: a Python peer importing numpy on a
/// loaded 2-core machine can take 10).
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vigil run` arguments for the door sensor: `topologies/door-sensor-to-files.json` as
/// `pipeline` on the camera at `cam_port`, files in `<dir>/out`, events in `<dir>`'s event log,
/// HTTP on `http_port`; a test adds its own (`--set minActivation=…`, `--mqtt …`).
pub fn door_run_args(dir: &Path, pipeline: &str, cam_port: u16, http_port: u16) -> Vec<String> {
    vec![
        "topologies/door-sensor-to-files.json".into(),
        "--pipeline-name".into(),
        pipeline.into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        format!("outputDirectory={}", dir.join("out").display()),
        "--event-log".into(),
        event_log(dir).display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ]
}

/// `vigil run` with `args`; its log goes to `<dir>/vigil.log`.
pub fn vigil_run(dir: &Path, args: &[String]) -> Peer {
    vigil_run_with_env(dir, args, &[])
}

/// `vigil run` with `args` and extra environment variables.
pub fn vigil_run_with_env(dir: &Path, args: &[String], env: &[(String, String)]) -> Peer {
    let log = std::fs::File::create(dir.join("vigil.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("run")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("vigil starts");
    Peer { child }
}

/// Polls the event log until an event of `kind` has appeared `count` times; returns all events.
pub fn wait_for_event(
    log: &Path,
    kind: &str,
    count: usize,
    timeout: Duration,
) -> Vec<(String, serde_json::Value, Option<String>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = read_events(log);
        if events.iter().filter(|(k, _, _)| k == kind).count() >= count {
            return events;
        }
        if Instant::now() > deadline {
            let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
            panic!("no {count}× {kind} within {timeout:?}; events so far: {kinds:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Publishes `payload` on `topic` with mosquitto_pub.
pub fn mqtt_publish(port: u16, topic: &str, payload: &str) {
    mqtt_publish_with(port, topic, payload, &[]);
}

/// Publishes `payload` on `topic` (QoS 1) with mosquitto_pub and `extra` options (`--cafile`,
/// `-h`); panics with mosquitto_pub's error when it fails.
pub fn mqtt_publish_with(port: u16, topic: &str, payload: &str, extra: &[&str]) {
    let out = Command::new("mosquitto_pub")
        .args(extra)
        .args([
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-m",
            payload,
            "-q",
            "1",
        ])
        .output()
        .expect("mosquitto_pub runs");
    assert!(
        out.status.success(),
        "mosquitto_pub to {port} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// POSTs `body` (as JSON) to `url` with curl; returns the HTTP status.
pub fn http_post(url: &str, body: &str) -> u16 {
    http_post_with(url, body, &[])
}

/// POSTs `body` (as JSON) to `url` with curl and `extra` options; returns the HTTP status.
pub fn http_post_with(url: &str, body: &str, extra: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(extra)
        .args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            url,
        ])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// Path of the event log in a test folder.
pub fn event_log(dir: &Path) -> PathBuf {
    dir.join("events.jsonl")
}
