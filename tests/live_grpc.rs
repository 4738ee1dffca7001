//! A live GrpcExtension (`vigil run`) against real peers: the GStreamer RTSP camera looping the
//! generated clip and the gRPC extension stand-in (scripts/peers/grpc-infer-server.py), frames
//! through shared memory. A slow server gets several frames in flight in separate regions of the
//! shared memory and the frames due beyond them are skipped and reported; a server that dies is
//! reported and used again as soon as it is back; one that stops acknowledging is left after
//! 10 s. Recording never waits for any of it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::grpc::GrpcServer;
use support::peers::{camera, event_log, free_port, vigil_run, wait_for_event};
use support::{clips, decodes_cleanly, mp4_files, probe, read_events, temp_dir};

fn set(name: &str, value: impl std::fmt::Display) -> [String; 2] {
    ["--set".into(), format!("{name}={value}")]
}

/// `vigil run` arguments for `topology` as pipeline `pipeline`: the event log in `dir`, the
/// HTTP listener on `http_port`, the camera on `cam_port`, the extension at `server`'s URL.
fn run_args(
    topology: &str,
    pipeline: &str,
    dir: &Path,
    http_port: u16,
    cam_port: u16,
    server: &GrpcServer,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        topology.into(),
        "--pipeline-name".into(),
        pipeline.into(),
        "--event-log".into(),
        event_log(dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    args.extend(set(
        "rtspUrl",
        format!("rtsp://127.0.0.1:{cam_port}/camera"),
    ));
    args.extend(set("grpcExtensionAddress", server.url()));
    args
}

/// The events of kind `kind` logged so far.
fn logged(dir: &Path, kind: &str) -> Vec<Value> {
    read_events(&event_log(dir))
        .into_iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, b, _)| b)
        .collect()
}

/// The eventTime (s since the epoch) of the first `kind` event with `errorCode` `code` (any,
/// when empty).
fn event_time(dir: &Path, kind: &str, code: &str) -> f64 {
    let log = std::fs::read_to_string(event_log(dir)).expect("log");
    let event = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(".{kind}")))
                && (code.is_empty() || v["body"]["errorCode"] == code)
        })
        .expect("the event");
    let t: jiff::Timestamp = event["properties"]["eventTime"]
        .as_str()
        .expect("eventTime")
        .parse()
        .expect("a time");
    t.as_millisecond() as f64 / 1000.0
}

/// Waits until `check` holds for the event log, or fails after `limit`.
fn wait_until(dir: &Path, limit: Duration, what: &str, check: impl Fn(&Path) -> bool) {
    let deadline = Instant::now() + limit;
    while !check(dir) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_slow_dying_or_silent_grpc_server_never_stalls_the_recording() {
    let dir = temp_dir("live-grpc");
    let (cam_port, http_port, grpc_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let port_arg = grpc_port.to_string();
    let server = GrpcServer::start(&dir.join("server.log"), &["--port", &port_arg]);
    // 10 frames/s asked, 250 ms per answer: the server keeps up with 4 a second.
    server.control(r#"{"delay_ms": 250}"#);
    let pipeline = "grpclive";
    let mut args = run_args(
        "topologies/object-to-files-grpc.json",
        pipeline,
        &dir,
        http_port,
        cam_port,
        &server,
    );
    args.extend(set("samplesPerSecond", 10));
    args.extend(set("minActivation", "PT5S"));
    args.extend(set("maxActivation", "PT10S"));
    args.extend(set("outputDirectory", dir.join("out").display()));
    let mut vigil = vigil_run(&dir, &args);

    // One episode of the red box gives one clip (5 s of pre-roll + the box + 5 s).
    wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        1,
        Duration::from_secs(60),
    );
    let busy: Vec<Value> = logged(&dir, "DataDropped")
        .into_iter()
        .filter(|b| b["reason"] == "busy")
        .collect();
    assert!(
        !busy.is_empty(),
        "frames beyond the 4 in flight are skipped and reported"
    );
    let samples = server.samples();
    let offsets: std::collections::BTreeSet<u64> = samples
        .iter()
        .filter_map(|s| s["address_offset"].as_u64())
        .collect();
    assert!(
        offsets.len() >= 2,
        "frames in flight sit in separate regions: {offsets:?}"
    );
    let frame_bytes = 416 * 416 * 3;
    assert!(
        offsets
            .iter()
            .all(|o| o % frame_bytes == 0 && o + frame_bytes <= 64 << 20),
        "regions one after the other in the 64 MiB file: {offsets:?}"
    );
    // In flight at once, never more than 4: the server saw at most 4 samples beyond the last
    // one it answered (it answers in order, 250 ms each).
    let acks: Vec<u64> = samples
        .iter()
        .filter_map(|s| s["ack_sequence_number"].as_u64())
        .collect();
    let seqs: Vec<u64> = samples
        .iter()
        .filter_map(|s| s["sequence_number"].as_u64())
        .collect();
    assert!(
        seqs.iter().zip(&acks).all(|(s, a)| s - a <= 4),
        "at most 4 frames in flight"
    );

    // The server dies: reported (the connection lost, then refused); back on the same port,
    // used again within a couple of seconds.
    drop(server);
    wait_until(&dir, Duration::from_secs(15), "the outage report", |d| {
        logged(d, "NetworkError")
            .iter()
            .any(|b| b["errorCode"] == "connectionFailed")
    });
    let lost = logged(&dir, "NetworkError");
    assert_eq!(lost[0]["errorCode"], "connectionLost", "{lost:?}");
    assert!(logged(&dir, "ProtocolError").is_empty());
    let restarted = Instant::now();
    let server = GrpcServer::start(&dir.join("server2.log"), &["--port", &port_arg]);
    wait_until(&dir, Duration::from_secs(15), "a new session", |d| {
        logged(d, "ExtensionSessionEstablished")
            .iter()
            .any(|b| b["afterFailure"] == true)
    });
    assert!(
        restarted.elapsed() < Duration::from_secs(4),
        "used again {:?} after it came back",
        restarted.elapsed()
    );

    // It stops acknowledging: the session is left after 10 s, reported as a timeout.
    server.control(r#"{"no_ack": true}"#);
    wait_until(&dir, Duration::from_secs(30), "the timeout", |d| {
        logged(d, "NetworkError")
            .iter()
            .any(|b| b["errorCode"] == "timeout")
    });
    let timeout = logged(&dir, "NetworkError")
        .into_iter()
        .find(|b| b["errorCode"] == "timeout")
        .expect("timeout");
    assert_eq!(timeout["framesLost"], 4, "the 4 frames in flight");
    // Reported when it was found (the pipeline's media clock), not at the last frame sent.
    let last_sent = server
        .samples()
        .iter()
        .filter_map(|s| s["timestamp"].as_u64())
        .max()
        .expect("samples") as f64
        / 90_000.0;
    let reported = event_time(&dir, "NetworkError", "timeout");
    assert!(
        reported - last_sent >= 9.5,
        "reported {:.1} s after the last frame sent",
        reported - last_sent
    );
    vigil.interrupt();

    // Recording never waited: every clip plays and its timeline is its frame count.
    let files = mp4_files(&dir.join("out"));
    assert!(!files.is_empty());
    for f in &files {
        assert!(decodes_cleanly(f), "{f:?}");
        let p = probe(f);
        assert!(
            (p.frames as f64 - p.duration * 30.0).abs() <= 2.0,
            "no frame lost in {f:?}: {p:?}"
        );
    }
    let first = probe(&files[0]);
    assert!(
        first.duration >= 10.0,
        "5 s of pre-roll + the box + 5 s: {first:?}"
    );
    // Nothing of ours is left in /dev/shm.
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with(&format!("vigil-grpc-{}-", vigil.child.id())))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// AVA's `evr-grpcExtension-video-sink`, unchanged, live: the first inference opens the gate and
/// the archive's clip starts at the key frame at or before that frame; the server sees the live
/// pipeline's name in the descriptor and the topology's credentials.
#[test]
fn ava_evr_grpc_topology_records_live_unchanged() {
    let topology = support::repo()
        .join("../shared/ava-topologies/live/evr-grpcExtension-video-sink/topology.json");
    if !topology.exists() {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    }
    let dir = temp_dir("live-grpc-ava");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let mut args = run_args(
        &topology.to_string_lossy(),
        "evr",
        &dir,
        http_port,
        cam_port,
        &server,
    );
    args.extend([
        "--archive".into(),
        dir.join("archive").to_string_lossy().into(),
    ]);
    args.extend(set("rtspUserName", "vigil"));
    args.extend(set("rtspPassword", "vigil"));
    args.extend(set("inferencingUrl", "http://unused/"));
    let mut vigil = vigil_run(&dir, &args);
    wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        1,
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(3));
    vigil.interrupt();
    let first_inference = logged(&dir, "Inference")
        .iter()
        .filter_map(|b| b["timestamp"].as_f64())
        .map(|t| t / 90_000.0)
        .fold(f64::INFINITY, f64::min);
    let started = event_time(&dir, "RecordingStarted", "");
    assert!(
        started <= first_inference + 0.001 && first_inference - started < 1.1,
        "the clip starts at the key frame at or before the first inference: {started} vs {first_inference}"
    );
    let segments = mp4_files(&dir.join("archive/videos/sample-grpc-extension-video-sink"));
    assert!(!segments.is_empty());
    for s in &segments {
        assert!(decodes_cleanly(s), "{s:?}");
    }
    let descriptor = &server.requests()["messages"][0];
    assert_eq!(
        descriptor["media_stream_descriptor"]["graph_identifier"]["graph_instance_name"],
        "evr"
    );
    assert!(
        descriptor["metadata"]["x-ms-authentication"]
            .as_str()
            .is_some_and(|h| h.starts_with("Basic ")),
        "the topology's credentials"
    );
}

/// A camera away for longer than 10 s: when it is back, its frames go to a new session (a new
/// descriptor, as AVA did after a camera outage); the old one was closed as a client should.
#[test]
fn a_camera_back_after_an_outage_gets_a_new_grpc_session() {
    let dir = temp_dir("live-grpc-camera-back");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = clips().join("camera-h264.mp4");
    let mut cam = camera(&clip, cam_port, "vigil", "vigil");
    let server = GrpcServer::start(&dir.join("server.log"), &[]);
    let mut args = run_args(
        "topologies/object-to-files-grpc.json",
        "camback",
        &dir,
        http_port,
        cam_port,
        &server,
    );
    args.extend(set("samplesPerSecond", 2));
    args.extend(set("outputDirectory", dir.join("out").display()));
    let mut vigil = vigil_run(&dir, &args);
    wait_for_event(
        &event_log(&dir),
        "ExtensionSessionEstablished",
        1,
        Duration::from_secs(30),
    );
    cam.kill9();
    std::thread::sleep(Duration::from_secs(12));
    let _cam = camera(&clip, cam_port, "vigil", "vigil");
    wait_for_event(
        &event_log(&dir),
        "ExtensionSessionEstablished",
        2,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    let sessions = logged(&dir, "ExtensionSessionEstablished");
    assert_eq!(
        sessions[1]["afterFailure"], false,
        "no fault: the camera was away"
    );
    let extension_faults = ["NetworkError", "ProtocolError"]
        .iter()
        .flat_map(|k| logged(&dir, k))
        .filter(|b| b["protocol"] == "grpc")
        .count();
    assert_eq!(
        extension_faults, 0,
        "the camera's outage is not the server's"
    );
    let seen = server.requests();
    let calls = seen["call_log"].as_array().expect("call log");
    assert!(calls.len() >= 2, "{calls:?}");
    assert_eq!(
        calls[0]["status"], "OK",
        "the first session half-closed by Vigil"
    );
    let descriptors = seen["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["payload"] == "media_stream_descriptor")
        .count();
    assert_eq!(
        descriptors,
        calls.len(),
        "each session began with a descriptor"
    );
}
