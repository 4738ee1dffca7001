//! Live end to end against real peers: the GStreamer RTSP camera looping a generated clip
//! (Digest auth), a Mosquitto broker with `mosquitto_pub` as the door sensor, and `vigil run`.
//! Files are checked with ffprobe; clip length is `minimumActivationTime − activationSignalOffset`
//! within one GOP (1 s).

mod support;

use std::path::Path;
use std::time::Duration;

use support::peers::{
    broker, camera, event_log, free_port, http_post, mqtt_publish, vigil_run, wait_for_event,
    wait_for_port,
};
use support::{clips, decodes_cleanly, mp4_files, probe, read_events, temp_dir};

const PIPELINE: &str = "frontdoor";

fn run_args(dir: &Path, camera_port: u16, http_port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "topologies/door-sensor-to-files.json".into(),
        "--pipeline-name".into(),
        PIPELINE.into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{camera_port}/camera"),
        "--set".into(),
        format!("outputDirectory={}", dir.join("out").display()),
        "--set".into(),
        "minActivation=PT5S".into(),
        "--event-log".into(),
        event_log(dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn trigger_url(http_port: u16) -> String {
    format!("http://127.0.0.1:{http_port}/pipelines/{PIPELINE}/inputs/recordingTrigger")
}

/// One MQTT trigger: one file of 5 s + 5 s pre-roll (± one GOP); a malformed message is
/// reported and changes nothing; events are published on the broker.
#[test]
fn mqtt_trigger_records_one_file_with_pre_roll() {
    let dir = temp_dir("live-mqtt");
    let (cam_port, mqtt_port, http_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = broker(mqtt_port);
    let sub_log = dir.join("mqtt-events.txt");
    let _sub = support::peers::Peer {
        child: std::process::Command::new("mosquitto_sub")
            .args([
                "-p",
                &mqtt_port.to_string(),
                "-t",
                &format!("vigil/{PIPELINE}/events"),
                "-v",
            ])
            .stdout(std::fs::File::create(&sub_log).expect("sub log"))
            .spawn()
            .expect("mosquitto_sub"),
    };
    let mut vigil = vigil_run(
        &dir,
        &run_args(
            &dir,
            cam_port,
            http_port,
            &["--mqtt", &format!("127.0.0.1:{mqtt_port}")],
        ),
    );
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    // 6 s of media for the pre-roll buffer.
    std::thread::sleep(Duration::from_secs(6));
    let topic = format!("vigil/{PIPELINE}/inputs/recordingTrigger");
    mqtt_publish(mqtt_port, &topic, "door opened, not JSON");
    mqtt_publish(
        mqtt_port,
        &topic,
        r#"{"body": {"door": "open"}, "systemProperties": {"messageId": "door-1"}}"#,
    );
    let events = wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(30));
    vigil.interrupt();
    let invalid: Vec<_> = events
        .iter()
        .filter(|(k, _, _)| k == "InvalidMessage")
        .collect();
    assert_eq!(invalid.len(), 1);
    assert!(
        invalid[0].1["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not JSON")
    );
    let started = events
        .iter()
        .find(|(k, _, _)| k == "RecordingStarted")
        .expect("RecordingStarted");
    assert_eq!(started.2.as_deref(), Some("door-1"));
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    let p = probe(&files[0]);
    assert_eq!(p.codec, "h264");
    assert!(
        (9.0..=11.0).contains(&p.duration),
        "clip of {} s, expected 10 s ± 1 GOP",
        p.duration
    );
    assert!((p.frames as f64 - p.duration * 30.0).abs() <= 2.0, "{p:?}");
    assert!(decodes_cleanly(&files[0]));
    let published = std::fs::read_to_string(&sub_log).unwrap_or_default();
    assert!(
        published.contains("Microsoft.VideoAnalyzer.Operational.RecordingAvailable"),
        "{published}"
    );
}

/// Triggers while the gate is open extend the clip; HTTP works like MQTT; a bad body is a 400.
#[test]
fn http_triggers_extend_an_open_clip() {
    let dir = temp_dir("live-http");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = vigil_run(&dir, &run_args(&dir, cam_port, http_port, &[]));
    wait_for_port(http_port);
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(http_post(&trigger_url(http_port), "[not an object]"), 400);
    assert_eq!(
        http_post(
            &format!("http://127.0.0.1:{http_port}/pipelines/{PIPELINE}/inputs/nope"),
            "{}"
        ),
        404
    );
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(30));
    vigil.interrupt();
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let p = probe(&files[0]);
    // 5 s pre-roll + 3 s between triggers + 5 s minimum.
    assert!(
        (12.0..=14.0).contains(&p.duration),
        "clip of {} s, expected 13 s ± 1 GOP",
        p.duration
    );
}

/// A wrong password is an AuthenticationError, retried without stopping the pipeline.
#[test]
fn wrong_password_is_reported_and_retried() {
    let dir = temp_dir("live-auth");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(
        &clips().join("camera-h264.mp4"),
        cam_port,
        "vigil",
        "secret",
    );
    let mut vigil = vigil_run(
        &dir,
        &run_args(&dir, cam_port, http_port, &["--set", "rtspPassword=wrong"]),
    );
    // Tried every second, reported once and then every 10 s with the attempts in between.
    let events = wait_for_event(
        &event_log(&dir),
        "AuthenticationError",
        2,
        Duration::from_secs(30),
    );
    assert!(
        vigil.child.try_wait().expect("status").is_none(),
        "vigil must keep running"
    );
    let refusals: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, _, _)| k == "AuthenticationError")
        .map(|(_, b, _)| b)
        .collect();
    assert!(
        refusals[0]["repeatsNotReported"].is_null(),
        "{:?}",
        refusals[0]
    );
    let repeats = refusals[1]["repeatsNotReported"].as_u64().unwrap_or(0);
    assert!(
        (6..=10).contains(&repeats),
        "about one attempt a second in 10 s: {repeats}"
    );
    assert_eq!(
        http_post(&format!("http://127.0.0.1:{http_port}/healthz"), ""),
        405
    );
    vigil.interrupt();
    assert!(
        !events
            .iter()
            .any(|(k, _, _)| k == "MediaSessionEstablished")
    );
}

/// The camera dies mid-recording and comes back: the open file is closed valid, the source
/// reconnects, and the next trigger records a second valid file (H.265 passthrough).
#[test]
fn camera_restart_mid_recording_h265() {
    let dir = temp_dir("live-restart");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = clips().join("camera-h265.mp4");
    let cam = camera(&clip, cam_port, "vigil", "vigil");
    let mut vigil = vigil_run(&dir, &run_args(&dir, cam_port, http_port, &[]));
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    std::thread::sleep(Duration::from_secs(2));
    drop(cam);
    wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(30));
    let _cam = camera(&clip, cam_port, "vigil", "vigil");
    wait_for_event(&log, "MediaSessionEstablished", 2, Duration::from_secs(40));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    let events = wait_for_event(&log, "RecordingAvailable", 2, Duration::from_secs(30));
    vigil.interrupt();
    assert!(
        events
            .iter()
            .any(|(k, _, _)| k == "NetworkError" || k == "MediaSessionEnded")
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let p = probe(f);
        assert_eq!(p.codec, "hevc");
        assert!(p.frames > 30, "{f:?}: {p:?}");
        assert!(decodes_cleanly(f), "{f:?}");
    }
}

/// `kill -9` mid-clip: the file plays up to its last fragment; the next start trims its tail.
#[test]
fn kill_9_mid_clip_leaves_a_playable_file() {
    let dir = temp_dir("live-kill");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = vigil_run(
        &dir,
        &run_args(&dir, cam_port, http_port, &["--set", "minActivation=PT30S"]),
    );
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    wait_for_event(&log, "RecordingStarted", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(4500));
    vigil.kill9();
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let before = probe(&files[0]);
    assert!(before.frames >= 4 * 30, "{before:?}");
    // Restart: the sink scans its folder, trims an incomplete tail (if the kill left one).
    let mut again = vigil_run(&dir, &run_args(&dir, cam_port, http_port, &[]));
    wait_for_event(&log, "MediaSessionEstablished", 2, Duration::from_secs(20));
    again.interrupt();
    let after = probe(&files[0]);
    assert!(decodes_cleanly(&files[0]));
    assert_eq!(
        after.frames % 30,
        0,
        "whole one-second fragments only: {after:?}"
    );
    assert!(after.frames >= before.frames.saturating_sub(30));
    // The file the kill left open is announced once, whole or trimmed (a whole one was never
    // announced before), with the fragments it kept.
    let recovered: Vec<serde_json::Value> = read_events(&log)
        .into_iter()
        .filter(|(k, _, _)| k == "RecordingRecovered")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(
        recovered[0]["outputLocation"].as_str(),
        files[0].to_str(),
        "{recovered:?}"
    );
    assert_eq!(recovered[0]["fragmentsKept"], after.frames / 30);
}

/// A topology whose gate lets audio through records the camera's AAC track beside the video.
#[test]
fn aac_audio_is_recorded_when_the_selectors_let_it_through() {
    let dir = temp_dir("live-aac");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(
        &clips().join("camera-h264-aac.mp4"),
        cam_port,
        "vigil",
        "vigil",
    );
    let mut args = run_args(&dir, cam_port, http_port, &[]);
    args[0] = "topologies/door-sensor-to-files-audio.json".into();
    let mut vigil = vigil_run(&dir, &args);
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(30));
    vigil.interrupt();
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&files[0])
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let streams: Vec<(&str, f64)> = text
        .lines()
        .filter_map(|l| {
            l.split_once(',')
                .map(|(c, d)| (c, d.parse().unwrap_or(0.0)))
        })
        .collect();
    assert_eq!(streams.len(), 2, "{text}");
    assert_eq!(streams[0].0, "h264");
    assert_eq!(streams[1].0, "aac");
    assert!(
        (streams[0].1 - streams[1].1).abs() < 1.0,
        "audio and video lengths differ: {text}"
    );
    assert!(decodes_cleanly(&files[0]));
}

/// Basic authentication and RTP over UDP (our extension to AVA's TCP-only transport).
#[test]
fn basic_auth_over_udp_records() {
    let dir = temp_dir("live-udp");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = support::peers::camera_with(
        &clips().join("camera-h264.mp4"),
        cam_port,
        "vigil",
        "vigil",
        &["--auth", "basic", "--protocols", "udp"],
    );
    let mut vigil = vigil_run(
        &dir,
        &run_args(&dir, cam_port, http_port, &["--set", "rtspTransport=udp"]),
    );
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http_post(&trigger_url(http_port), "{}"), 202);
    wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(30));
    vigil.interrupt();
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let p = probe(&files[0]);
    assert!(
        (7.0..=9.0).contains(&p.duration),
        "3 s of pre-roll held + 5 s: {p:?}"
    );
    assert!(decodes_cleanly(&files[0]));
}
