//! GrpcExtension against a real gRPC extension server (scripts/peers/grpc-infer-server.py, built
//! from our proto files with Debian's python3-grpcio), through `vigil replay` so every frame time
//! is exact: AVA's published gRPC topologies unchanged, what the server receives message by
//! message (descriptor, sequence numbers, acks, timestamps, shared-memory references,
//! credentials), shared memory against embedded, and faults (a server that closes the stream,
//! answers garbage, aborts, is slow, never acknowledges, refuses the login, or is not there).

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::grpc::GrpcServer;
use support::peers::free_port;
use support::{clips, read_events, temp_dir, vigil};

/// UTC of the replayed file's first frame, in seconds since the epoch.
const START: &str = "2026-01-01T00:00:00Z";
const START_SECS: f64 = 1_767_225_600.0;

/// The test clip's frames (20 s at 30 frames/s).
const FRAMES: usize = 600;

/// AVA's published topology `name` (from ../shared/ava-topologies/live), or `None` (a skip)
/// where the corpus is absent.
fn ava(name: &str) -> Option<PathBuf> {
    let path = support::repo()
        .join("../shared/ava-topologies/live")
        .join(name)
        .join("topology.json");
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: ../shared/ava-topologies not found");
        None
    }
}

/// A copy of `topology` in `dir` (as `name`) with `edit` applied to its GrpcExtension nodes.
fn edited(dir: &Path, topology: &Path, name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(topology).expect("topology")).expect("JSON");
    for p in doc["properties"]["processors"]
        .as_array_mut()
        .expect("processors")
    {
        if p["@type"] == "#Microsoft.VideoAnalyzer.GrpcExtension" {
            edit(p);
        }
    }
    let out = dir.join(name);
    std::fs::write(&out, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
    out
}

/// What a replay logged.
struct Replay {
    events: Vec<(String, Value, Option<String>)>,
    log: String,
}

impl Replay {
    /// Media times (s from the clip's start) of the inference events.
    fn inference_times(&self) -> Vec<f64> {
        self.of("Inference")
            .iter()
            .map(|b| b["timestamp"].as_f64().expect("timestamp") / 90_000.0 - START_SECS)
            .map(|t| (t * 1000.0).round() / 1000.0)
            .collect()
    }

    /// The bodies of the events of type `kind`.
    fn of(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, b, _)| b)
            .collect()
    }

    /// Event times (s from the clip's start) of the events of type `kind`.
    fn times_of(&self, kind: &str) -> Vec<f64> {
        self.log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["properties"]["eventType"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(&format!(".{kind}")))
            })
            .map(|v| {
                let t: jiff::Timestamp = v["properties"]["eventTime"]
                    .as_str()
                    .expect("eventTime")
                    .parse()
                    .expect("time");
                ((t.as_millisecond() as f64) / 1000.0 - START_SECS) * 1000.0
            })
            .map(|ms| ms.round() / 1000.0)
            .collect()
    }
}

/// Replays the test clip through `topology` with the extension at `url`.
fn replay(dir: &Path, topology: &Path, url: &str, extra: &[&str]) -> Replay {
    let log = dir.join("events.jsonl");
    let archive = dir.join("archive");
    let (topology, clip, log_arg, archive) = (
        topology.to_string_lossy().to_string(),
        clips()
            .join("camera-h264.mp4")
            .to_string_lossy()
            .to_string(),
        log.to_string_lossy().to_string(),
        archive.to_string_lossy().to_string(),
    );
    let address = format!("grpcExtensionAddress={url}");
    let mut args = vec![
        "replay",
        topology.as_str(),
        "--input",
        clip.as_str(),
        "--start-time",
        START,
        "--event-log",
        log_arg.as_str(),
        "--archive",
        archive.as_str(),
        "--set",
        "rtspUrl=rtsp://unused/",
        "--set",
        address.as_str(),
    ];
    if std::fs::read_to_string(&topology).is_ok_and(|t| t.contains("\"inferencingUrl\"")) {
        args.extend(["--set", "inferencingUrl=http://unused/"]);
    }
    args.extend_from_slice(extra);
    let result = vigil(&args);
    assert!(
        result.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    Replay {
        events: read_events(&log),
        log: std::fs::read_to_string(&log).unwrap_or_default(),
    }
}

/// The red box crosses the road while 8 < t < 12 s: the frames the detector finds it in.
fn assert_found_the_box(times: &[f64], first: f64) {
    assert!(
        times.len() >= 100,
        "the box in most frames of 8–12 s: {times:?}"
    );
    assert!(
        times.iter().all(|t| (8.0..12.0).contains(t)),
        "only while the box is on screen: {times:?}"
    );
    assert_eq!(times.first(), Some(&first), "first seen at {first} s");
}

/// Reads `x-ms-authentication: Basic …` as `user:password`.
fn basic_login(message: &Value) -> String {
    use base64::Engine as _;
    let header = message["metadata"]["x-ms-authentication"]
        .as_str()
        .expect("x-ms-authentication");
    let token = header.strip_prefix("Basic ").expect("Basic");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("base64"),
    )
    .expect("UTF-8")
}

/// AVA's `evr-grpcExtension-video-sink`, unchanged: every frame, JPEG 416×416 padded, through
/// 75 MiB of shared memory; the first inference opens the gate and the archive gets one clip,
/// from the key frame at 8 s to the end of the input. The server's view, message by message:
/// our descriptor first (graph identifier, timescale, format, shared memory, login), then one
/// sample per frame numbered 2, 3, … each acknowledging the server's previous answer, with the
/// frame's time as 90 kHz ticks and its bytes in the shared-memory file.
#[test]
fn ava_evr_grpc_topology_runs_unchanged_and_the_server_sees_the_contract() {
    let Some(topology) = ava("evr-grpcExtension-video-sink") else {
        return;
    };
    let dir = temp_dir("grpc-evr");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let run = replay(&dir, &topology, &server.url(), &[]);
    assert_found_the_box(&run.inference_times(), 8.1);
    assert_eq!(run.times_of("RecordingStarted"), vec![8.0]);
    let segments: Vec<PathBuf> =
        std::fs::read_dir(dir.join("archive/videos/sample-grpc-extension-video-sink"))
            .expect("video folder")
            .flatten()
            .map(|e| e.path())
            .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let p = support::probe(&segments[0]);
    assert!(
        (p.duration - 12.0).abs() < 0.01,
        "8 s … 20 s: {}",
        p.duration
    );
    assert!(support::decodes_cleanly(&segments[0]));

    let seen = server.requests();
    assert_eq!(seen["calls"], 1, "one session");
    assert_eq!(
        seen["call_log"][0]["status"], "OK",
        "closed by the client's half-close, not cancelled"
    );
    let messages = seen["messages"].as_array().expect("messages");
    let first = &messages[0];
    assert_eq!(first["payload"], "media_stream_descriptor");
    assert_eq!(
        (&first["sequence_number"], &first["ack_sequence_number"]),
        (&json!(1), &json!(0))
    );
    let d = &first["media_stream_descriptor"];
    assert_eq!(
        d["graph_identifier"],
        json!({"graph_instance_name": "EVRtoVideoSinkByGrpcExtension", "graph_node_name": "grpcExtension"})
    );
    assert_eq!(
        d["media_descriptor"],
        json!({"timescale": 90000, "video_frame_sample_format": {"encoding": "JPG", "dimensions": {"width": 416, "height": 416}}})
    );
    let shm = &d["shared_memory_buffer_transfer_properties"];
    assert_eq!(shm["length_bytes"], "78643200", "SharedMemorySizeMiB 75");
    let handle = shm["handle_name"].as_str().expect("handle name");
    assert!(handle.starts_with("vigil-grpc-"), "{handle}");
    assert!(
        !Path::new("/dev/shm").join(handle).exists(),
        "the shared-memory file goes with the session"
    );
    assert_eq!(basic_login(first), "dummyUserName:dummyPassword");
    let samples: Vec<&Value> = messages[1..].iter().collect();
    assert_eq!(samples.len(), FRAMES, "one sample per frame");
    let mut last_tick = 0u64;
    for (i, s) in samples.iter().enumerate() {
        let seq = i as u64 + 2;
        assert_eq!(s["payload"], "media_sample", "message {seq}");
        assert_eq!(s["sequence_number"], seq, "numbered in order");
        assert_eq!(
            s["ack_sequence_number"],
            seq - 1,
            "acknowledges the server's answer to the previous message"
        );
        let tick = s["timestamp"].as_u64().expect("timestamp");
        let want = (START_SECS * 90_000.0) as u64 + (i as u64 * 90_000) / 30;
        assert!(tick.abs_diff(want) <= 90, "frame {i}: {tick} vs {want}");
        assert!(tick > last_tick);
        last_tick = tick;
        assert_eq!(s["content"], "reference");
        assert_eq!(
            s["address_offset"], 0,
            "one frame in flight: the region is reused"
        );
        let len = s["content_length"].as_u64().expect("length");
        assert!((2_000..200_000).contains(&len), "a JPEG: {len}");
    }
}

/// AVA's `grpcExtensionOpenVINO`, unchanged (raw bgr24 at the source size, 64 MiB of shared
/// memory, `extensionConfiguration` passed through): the same inferences as the same topology
/// with embedded transfer, which the server receives as bytes in the messages.
#[test]
fn shared_memory_and_embedded_transfer_give_the_same_inferences() {
    let Some(topology) = ava("grpcExtensionOpenVINO") else {
        return;
    };
    let dir = temp_dir("grpc-openvino");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let shared = replay(
        &dir,
        &topology,
        &server.url(),
        &[
            "--set",
            "extensionConfiguration={\"pipeline\": {\"name\": \"truck\"}}",
        ],
    );
    let seen = server.requests();
    let d = &seen["messages"][0]["media_stream_descriptor"];
    assert_eq!(
        d["extension_configuration"],
        "{\"pipeline\": {\"name\": \"truck\"}}"
    );
    assert_eq!(
        d["media_descriptor"]["video_frame_sample_format"],
        json!({"encoding": "RAW", "pixel_format": "BGR24", "dimensions": {"width": 640, "height": 360}, "stride_bytes": 1920})
    );
    assert_eq!(
        d["shared_memory_buffer_transfer_properties"]["length_bytes"],
        "67108864"
    );
    let samples = server.samples();
    assert_eq!(samples.len(), FRAMES);
    assert!(
        samples
            .iter()
            .all(|s| s["content"] == "reference" && s["content_length"] == 640 * 360 * 3)
    );
    // Raw pixels show the box's first columns a frame before JPEG's smoothing does.
    assert_found_the_box(&shared.inference_times(), 8.067);

    let embedded_dir = temp_dir("grpc-openvino-embedded");
    let embedded_server = GrpcServer::start(&embedded_dir.join("server.log"), &[]);
    let embedded_topology = edited(&embedded_dir, &topology, "embedded.json", |p| {
        p["dataTransfer"] = json!({"mode": "embedded"});
    });
    let embedded = replay(
        &embedded_dir,
        &embedded_topology,
        &embedded_server.url(),
        &[],
    );
    let seen = embedded_server.requests();
    assert!(
        seen["messages"][0]["media_stream_descriptor"]
            .get("shared_memory_buffer_transfer_properties")
            .is_none(),
        "no shared memory announced"
    );
    let samples = embedded_server.samples();
    assert_eq!(samples.len(), FRAMES);
    assert!(
        samples
            .iter()
            .all(|s| s["content"] == "bytes" && s["content_length"] == 640 * 360 * 3)
    );
    let bodies = |r: &Replay| -> Vec<Value> { r.of("Inference").into_iter().cloned().collect() };
    assert_eq!(
        bodies(&shared),
        bodies(&embedded),
        "identical inference events"
    );
}

/// AVA's `motion-with-grpcExtension`, unchanged: only frames with motion reach the server, each
/// with its motion inferences, and motion opens the gate; `cvr-with-grpcExtension`, unchanged: the archive records all 20 s
/// while every frame goes to the server.
#[test]
fn motion_and_cvr_grpc_topologies_run_unchanged() {
    let (Some(motion), Some(cvr)) = (
        ava("motion-with-grpcExtension"),
        ava("cvr-with-grpcExtension"),
    ) else {
        return;
    };
    let dir = temp_dir("grpc-motion");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let run = replay(&dir, &motion, &server.url(), &[]);
    let times: Vec<f64> = server
        .samples()
        .iter()
        .map(|s| s["timestamp"].as_f64().expect("timestamp") / 90_000.0 - START_SECS)
        .collect();
    assert!(times.len() >= 40, "frames with motion: {}", times.len());
    assert!(
        times.iter().all(|t| (7.5..12.6).contains(t)),
        "only frames with motion: {times:?}"
    );
    assert!(run.inference_times().len() >= 30);
    assert_eq!(run.times_of("RecordingStarted").len(), 1);
    // Each frame carries the motion found in it, its box placed in the padded 416×416 image
    // (the 640×360 frame fills rows 91 to 325).
    for s in server.samples() {
        let motion = s["inferences"].as_array().expect("inferences");
        assert!(!motion.is_empty(), "a frame with motion carries it: {s}");
        for m in motion {
            assert_eq!(m["type"], "MOTION", "{m}");
            let b = &m["motion"]["box"];
            let (t, h) = (
                b["t"].as_f64().unwrap_or(0.0),
                b["h"].as_f64().unwrap_or(0.0),
            );
            assert!(
                t >= 91.0 / 416.0 - 1e-4 && t + h <= 325.0 / 416.0 + 1e-4,
                "inside the frame's rows: {b}"
            );
        }
    }

    let dir = temp_dir("grpc-cvr");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let run = replay(&dir, &cvr, &server.url(), &[]);
    assert_eq!(server.samples().len(), FRAMES);
    assert_found_the_box(&run.inference_times(), 8.1);
    let segments: Vec<PathBuf> =
        std::fs::read_dir(dir.join("archive/videos/sample-grpc-extension"))
            .expect("video folder")
            .flatten()
            .map(|e| e.path())
            .collect();
    let total: f64 = segments.iter().map(|s| support::probe(s).duration).sum();
    assert!((total - 20.0).abs() < 0.01, "the whole input: {total}");
}

/// Two frames a second, for the fault tests (a fault costs whole seconds of media).
fn sampled(dir: &Path) -> Option<PathBuf> {
    let topology = ava("evr-grpcExtension-video-sink")?;
    Some(edited(dir, &topology, "sampled.json", |p| {
        p["samplingOptions"]["maximumSamplesPerSecond"] = json!("2");
    }))
}

/// The server ends the stream (after 6 answers), then answers garbage, then aborts with
/// UNAVAILABLE: each is reported with its cause and the frames it lost, the next due frame (a
/// second of media later) opens a new session, and the box is still found.
#[test]
fn a_server_that_closes_answers_garbage_or_aborts_is_reported_and_a_new_session_follows() {
    let dir = temp_dir("grpc-faults");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    // Closing after an answer loses no frame; garbage and an abort come instead of the answer
    // to the frame in flight.
    for (faults, kind, code, lost) in [
        (r#"{"close_after": 6}"#, "NetworkError", "sessionEnded", 0),
        (r#"{"garbage": true}"#, "ProtocolError", "Internal", 1),
        (
            r#"{"abort": "UNAVAILABLE"}"#,
            "NetworkError",
            "Unavailable",
            1,
        ),
    ] {
        let _ = std::fs::remove_file(dir.join("events.jsonl"));
        let _ = std::fs::remove_dir_all(dir.join("archive"));
        server.control(faults);
        let calls_before = server.requests()["calls"].as_u64().expect("calls");
        let run = replay(&dir, &topology, &server.url(), &[]);
        let errors = run.of(kind);
        assert_eq!(errors.len(), 1, "{faults}: one report: {:?}", run.events);
        assert_eq!(errors[0]["errorCode"], code, "{faults}: {:?}", errors[0]);
        assert_eq!(errors[0]["protocol"], "grpc");
        assert_eq!(errors[0]["framesLost"], lost, "{faults}");
        let sessions = run.of("ExtensionSessionEstablished");
        assert_eq!(sessions.len(), 2, "{faults}: a new session after the fault");
        assert_eq!(sessions[1]["afterFailure"], true);
        let calls = server.requests()["calls"].as_u64().expect("calls") - calls_before;
        assert_eq!(calls, 2, "{faults}");
        let times = run.inference_times();
        assert_eq!(
            times,
            vec![8.5, 9.0, 9.5, 10.0, 10.5, 11.0, 11.5],
            "{faults}"
        );
        assert_eq!(run.times_of("RecordingStarted"), vec![8.0], "{faults}");
    }
}

/// A slow server (300 ms per answer) changes how long a replay takes, never what it records.
#[test]
fn a_slow_server_gives_the_same_replay() {
    let dir = temp_dir("grpc-slow");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let quick = replay(&dir, &topology, &server.url(), &[]);
    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let _ = std::fs::remove_dir_all(dir.join("archive"));
    server.control(r#"{"delay_ms": 300}"#);
    let slow = replay(&dir, &topology, &server.url(), &[]);
    assert_eq!(slow.inference_times(), quick.inference_times());
    assert_eq!(
        slow.of("Inference")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
        quick
            .of("Inference")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(slow.times_of("RecordingStarted"), vec![8.0]);
    assert!(slow.of("NetworkError").is_empty() && slow.of("ProtocolError").is_empty());
}

/// A server that reads frames and never acknowledges them: the session is given up after 10 s
/// without an ack (reported as a timeout with the frame it lost) and a new one opened; once the
/// server answers again the box is found. Nothing waits longer than that.
#[test]
fn a_server_that_never_acknowledges_is_reported_and_left() {
    let dir = temp_dir("grpc-no-ack");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    server.control(r#"{"no_ack": true}"#);
    let control = server.control_port;
    let heal = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(12));
        support::peers::http_post(&format!("http://127.0.0.1:{control}/control"), "{}")
    });
    let started = std::time::Instant::now();
    let run = replay(&dir, &topology, &server.url(), &[]);
    assert_eq!(heal.join().expect("control"), 200);
    assert!(started.elapsed().as_secs() < 40, "no stall");
    let timeouts = run.of("NetworkError");
    assert!(!timeouts.is_empty());
    assert_eq!(timeouts[0]["errorCode"], "timeout");
    assert_eq!(timeouts[0]["framesLost"], 1);
    assert!(
        run.inference_times().contains(&10.0),
        "{:?}",
        run.inference_times()
    );
}

/// A server that refuses the login (UNAUTHENTICATED) is reported as such; with the right
/// credentials it is used. A server that is not there is reported every 10 s, retried every
/// second, and the replay ends as usual.
#[test]
fn a_refused_login_and_a_missing_server_are_reported() {
    let dir = temp_dir("grpc-auth");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let server = GrpcServer::start(&dir.join("server.log"), &["--require-auth", "ava:s3cret"]);
    let refused = replay(&dir, &topology, &server.url(), &[]);
    let errors = refused.of("ProtocolError");
    assert!(!errors.is_empty());
    assert_eq!(errors[0]["errorCode"], "Unauthenticated");
    assert!(refused.of("Inference").is_empty());
    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let accepted = replay(
        &dir,
        &topology,
        &server.url(),
        &[
            "--set",
            "grpcExtensionUserName=ava",
            "--set",
            "grpcExtensionPassword=s3cret",
        ],
    );
    assert_eq!(accepted.inference_times().len(), 7);

    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let nobody = format!("tcp://127.0.0.1:{}", free_port());
    let down = replay(&dir, &topology, &nobody, &[]);
    let errors = down.of("NetworkError");
    assert_eq!(errors.len(), 2, "reported at 0 s and 10 s: {errors:?}");
    assert_eq!(errors[0]["errorCode"], "connectionFailed");
    assert_eq!(errors[0]["retryInSeconds"], 1.0);
    assert_eq!(errors[1]["repeatsNotReported"], 9, "one attempt a second");
    assert!(down.of("Inference").is_empty());
}

/// A TlsEndpoint trusting the server's CA through `trustedCertificates`: the session runs over
/// TLS; without that trust the handshake is refused and reported.
#[test]
fn tls_endpoints_trust_their_certificates() {
    let dir = temp_dir("grpc-tls");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let ca = support::tls::TestCa::new(&dir.join("ca"), "Vigil test CA");
    let cert = ca.issue("server", "127.0.0.1");
    let (cert_path, key_path) = (
        cert.cert.to_string_lossy().to_string(),
        cert.key.to_string_lossy().to_string(),
    );
    let server = GrpcServer::start(
        &dir.join("server.log"),
        &["--tls-cert", &cert_path, "--tls-key", &key_path],
    );
    let pem = std::fs::read_to_string(&ca.ca_cert).expect("CA");
    let trusting = edited(&dir, &topology, "trusting.json", |p| {
        p["endpoint"]["@type"] = json!("#Microsoft.VideoAnalyzer.TlsEndpoint");
        p["endpoint"]["trustedCertificates"] = json!({
            "@type": "#Microsoft.VideoAnalyzer.PemCertificateList",
            "certificates": [pem.clone()],
        });
        p["samplingOptions"]["maximumSamplesPerSecond"] = json!("2");
    });
    let run = replay(&dir, &trusting, &server.url(), &[]);
    assert_eq!(run.inference_times().len(), 7, "{:?}", run.events);

    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let untrusting = edited(&dir, &topology, "untrusting.json", |p| {
        p["endpoint"]["@type"] = json!("#Microsoft.VideoAnalyzer.TlsEndpoint");
        p["samplingOptions"]["maximumSamplesPerSecond"] = json!("2");
    });
    let refused = replay(&dir, &untrusting, &server.url(), &[]);
    let errors = refused.of("NetworkError");
    assert!(!errors.is_empty());
    assert_eq!(errors[0]["errorCode"], "connectionFailed");
    assert!(
        errors[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("certificate")),
        "{:?}",
        errors[0]
    );
}

/// Frames larger than the whole shared memory (a size validation cannot know: it follows the
/// camera) are skipped and reported as such, with what to change; the replay goes on.
#[test]
fn frames_larger_than_the_shared_memory_are_reported() {
    let dir = temp_dir("grpc-too-large");
    let Some(topology) = ava("grpcExtensionOpenVINO") else {
        return;
    };
    let topology = edited(&dir, &topology, "small.json", |p| {
        p["dataTransfer"]["SharedMemorySizeMiB"] = json!("1");
        p["image"]["scale"] = json!({"mode": "preserveAspectRatio", "width": "1280"});
        p["samplingOptions"] = json!({"maximumSamplesPerSecond": "2"});
    });
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let run = replay(&dir, &topology, &server.url(), &[]);
    let dropped = run.of("DataDropped");
    assert_eq!(dropped.len(), 1, "the first skip is reported: {dropped:?}");
    assert_eq!(dropped[0]["reason"], "frameTooLarge");
    assert!(
        dropped[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sharedMemorySizeMiB")),
        "{:?}",
        dropped[0]
    );
    assert!(server.samples().is_empty(), "nothing written, nothing sent");
    assert!(run.of("Inference").is_empty());
}

/// An answer over the reply limit (1 MiB, `--max-reply-kib` of `vigil run`) ends the session (OutOfRange, the frame it answered lost) and
/// the next due frame opens a new one; answers under the limit are used as before.
#[test]
fn an_answer_over_the_reply_limit_is_refused() {
    let dir = temp_dir("grpc-oversized");
    let Some(topology) = sampled(&dir) else {
        return;
    };
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    server.control(r#"{"oversized_kib": 1100}"#);
    let run = replay(&dir, &topology, &server.url(), &[]);
    let errors = run.of("ProtocolError");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["errorCode"], "OutOfRange");
    assert_eq!(errors[0]["framesLost"], 1);
    assert_eq!(run.of("ExtensionSessionEstablished").len(), 2);
    assert_eq!(run.inference_times().len(), 7, "the box found as before");
}
