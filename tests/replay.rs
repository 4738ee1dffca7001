//! `vigil replay` end to end: a generated 20 s clip (30 fps, key frame every second) through
//! AVA's evr-hubMessage-file-sink shape; clip boundaries, frame counts, file names and events are
//! exactly what the gate rules say, checked with ffprobe.

mod support;

use std::path::Path;

use support::{clips, decodes_cleanly, mp4_files, probe, read_events, temp_dir, vigil};

/// Writes the events file and replays `clip` with our door-sensor topology (offset −5 s,
/// minimum 10 s, maximum 60 s) plus `sets`; returns the output folder.
fn replay(name: &str, clip: &str, events: &[&str], sets: &[&str]) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let events_file = dir.join("events.jsonl");
    std::fs::write(&events_file, events.join("\n")).expect("write events");
    let out_dir = dir.join("out");
    let clip_path = clips().join(clip);
    let mut args: Vec<String> = vec![
        "replay".into(),
        "topologies/door-sensor-to-files.json".into(),
        "--input".into(),
        clip_path.to_string_lossy().into(),
        "--events".into(),
        events_file.to_string_lossy().into(),
        "--start-time".into(),
        "2026-03-01T12:00:00Z".into(),
        "--event-log".into(),
        dir.join("events-out.jsonl").to_string_lossy().into(),
        "--set".into(),
        format!("outputDirectory={}", out_dir.display()),
    ];
    for s in sets {
        args.push("--set".into());
        args.push((*s).into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vigil(&argv);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn trigger(at: f64) -> String {
    format!(r#"{{"at": {at}, "input": "recordingTrigger", "body": {{"door": "open"}}}}"#)
}

fn names(dir: &Path) -> Vec<String> {
    mp4_files(dir)
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .collect()
}

#[test]
fn one_trigger_gives_pre_roll_plus_minimum() {
    // Trigger at 8 s: the clip starts at the key frame at 3 s and ends at 18 s.
    let dir = replay("one-trigger", "camera-h264.mp4", &[&trigger(8.0)], &[]);
    let out = dir.join("out");
    assert_eq!(
        names(&out),
        vec!["door-DoorSensorToFiles-20260301T120003Z.mp4"]
    );
    let p = probe(&mp4_files(&out)[0]);
    assert_eq!(p.codec, "h264");
    assert_eq!(p.frames, 15 * 30);
    assert!((p.duration - 15.0).abs() < 1e-6, "{p:?}");
    assert!(decodes_cleanly(&mp4_files(&out)[0]));
}

#[test]
fn pre_roll_snaps_to_the_key_frame_at_or_before_the_asked_start() {
    // Trigger at 8.5 s asks for 3.5 s: the key frame at 3 s starts the clip, which ends at 18.5 s.
    let dir = replay("snap", "camera-h264.mp4", &[&trigger(8.5)], &[]);
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with("20260301T120003Z.mp4"));
    let p = probe(&files[0]);
    assert_eq!(p.frames, (15.5 * 30.0) as u64);
}

#[test]
fn a_trigger_during_the_clip_extends_it() {
    let dir = replay(
        "extend",
        "camera-h264.mp4",
        &[&trigger(6.0), &trigger(9.0)],
        &[],
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    // 1 s (key frame) to 9 + 10 = 19 s.
    assert_eq!(probe(&files[0]).frames, 18 * 30);
}

#[test]
fn the_cap_holds_and_the_next_trigger_opens_a_new_file() {
    // Minimum 3 s, maximum 6 s: triggers every second from 2 s; the first activation ends at 8 s (cap),
    // the trigger at 8 s opens the second (pre-roll from 3 s), which runs to its cap at 14 s.
    let events: Vec<String> = (2..=12).map(|s| trigger(s as f64)).collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let dir = replay(
        "cap",
        "camera-h264.mp4",
        &refs,
        &["minActivation=PT3S", "maxActivation=PT6S"],
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(
        names(&dir.join("out")),
        vec![
            "door-DoorSensorToFiles-20260301T120000Z.mp4".to_string(),
            "door-DoorSensorToFiles-20260301T120003Z.mp4".to_string(),
        ]
    );
    assert_eq!(probe(&files[0]).frames, 8 * 30);
    assert_eq!(probe(&files[1]).frames, 11 * 30);
}

#[test]
fn events_follow_ava_order_and_carry_the_trigger_correlation_id() {
    let e = r#"{"at": 8, "input": "recordingTrigger", "body": {"messageId": "door-42"}}"#;
    let dir = replay("events", "camera-h264.mp4", &[e], &[]);
    let all = read_events(&dir.join("events-out.jsonl"));
    // The clip's snapshot is announced by its own thread, so at no fixed place: once, and
    // correlated with the trigger.
    let snapshots: Vec<&Option<String>> = all
        .iter()
        .filter(|(k, _, _)| k == "SnapshotAvailable")
        .map(|(_, _, c)| c)
        .collect();
    assert_eq!(snapshots, [&Some("door-42".to_string())]);
    let events: Vec<_> = all
        .into_iter()
        .filter(|(k, _, _)| k != "SnapshotAvailable")
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "TriggerReceived",
            "RecordingStarted",
            "RecordingStopped",
            "RecordingAvailable"
        ]
    );
    let file = mp4_files(&dir.join("out"))[0].to_string_lossy().to_string();
    for (kind, body, corr) in &events[1..] {
        assert_eq!(body["outputType"], "filePath", "{kind}");
        assert_eq!(body["outputLocation"], file.as_str(), "{kind}");
        assert_eq!(corr.as_deref(), Some("door-42"), "{kind}");
    }
}

#[test]
fn h265_is_recorded_without_re_encoding() {
    let dir = replay("h265", "camera-h265.mp4", &[&trigger(10.0)], &[]);
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let p = probe(&files[0]);
    assert_eq!(p.codec, "hevc");
    assert_eq!(p.frames, 15 * 30);
    assert!(decodes_cleanly(&files[0]));
}

#[test]
fn an_unknown_event_input_is_refused() {
    let dir = temp_dir("bad-input");
    let events = dir.join("e.jsonl");
    std::fs::write(&events, r#"{"at": 1, "input": "window"}"#).expect("write");
    let clip = clips().join("camera-h264.mp4");
    let out = vigil(&[
        "replay",
        "topologies/door-sensor-to-files.json",
        "--input",
        &clip.to_string_lossy(),
        "--events",
        &events.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "event input 'window' is not a hubInputName of this topology (known: recordingTrigger)"
    ));
}
