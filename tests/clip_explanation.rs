//! Why each clip exists: the explanation a FileSink writes beside each recording
//! (`<file>.json`) names the events that opened and extended it, the gate timing, the pre-roll
//! asked and given and the end; replaying the same source and events gives the same explanation,
//! byte for byte; `vigil explain` prints it; motion clips name the module that decided them.

mod support;

use std::path::{Path, PathBuf};

use support::{clips, mp4_files, replay_ok, temp_dir, vigil};

/// Replays the door-sensor topology on the test clip with triggers at 3 s (`door-1`) and 9 s
/// (`door-2`) into `dir/out`; returns the recordings.
fn replay_door(dir: &Path) -> Vec<PathBuf> {
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-1\"}}\n\
         {\"at\": 9.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-2\"}}\n",
    )
    .expect("write events");
    let out = dir.join("out");
    replay_ok(
        "topologies/door-sensor-to-files.json",
        &clips().join("camera-h264.mp4"),
        "2026-03-01T12:00:00Z",
        &dir.join("log.jsonl"),
        &[
            "--events",
            &events.to_string_lossy(),
            "--set",
            &format!("outputDirectory={}", out.display()),
        ],
    );
    mp4_files(&out)
}

fn sidecar(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.json", file.display()))
}

#[test]
fn a_recording_says_which_events_made_it_and_how_its_gate_was_timed() {
    let dir = temp_dir("explain-door");
    let files = replay_door(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(sidecar(&files[0])).expect("explanation beside the file");
    let e: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(e["pipeline"], "DoorSensorToFiles");
    assert_eq!(e["gate"], "gate");
    assert_eq!(e["activation"], 1);
    assert_eq!(e["continuous"], false);
    assert_eq!(
        e["timing"],
        serde_json::json!({"activationEvaluationWindow": "PT1S", "activationSignalOffset": "-PT5S",
                           "minimumActivationTime": "PT10S", "maximumActivationTime": "PT60S"})
    );
    assert_eq!(e["firstEvent"], "2026-03-01T12:00:03.000Z");
    // 5 s of pre-roll asked; the clip's media began at 0 s, so 3 s given.
    assert_eq!(e["preroll"]["askedSeconds"], 5.0);
    assert_eq!(e["preroll"]["givenSeconds"], 3.0);
    assert_eq!(e["preroll"]["start"], "2026-03-01T12:00:00.000Z");
    // The second trigger at 9 s kept the gate open until 9 + 10 s.
    assert_eq!(e["end"], "2026-03-01T12:00:19.000Z");
    assert_eq!(e["endReason"], "minimumActivationTime");
    assert_eq!(e["eventsTotal"], 2);
    let events = e["events"].as_array().expect("events");
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap_or(""),
                r["mediaTime"].as_str().unwrap_or(""),
                r["correlationId"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("opened", "2026-03-01T12:00:03.000Z", "door-1"),
            ("extended", "2026-03-01T12:00:09.000Z", "door-2")
        ]
    );
    for r in events {
        assert_eq!(r["eventType"], "Microsoft.VideoAnalyzer.Analytics.Trigger");
        assert_eq!(
            r["node"],
            "/livePipelines/DoorSensorToFiles/sources/doorSensor"
        );
    }

    // The same source and events again: the same explanation, byte for byte.
    let again = replay_door(&temp_dir("explain-door-again"));
    assert_eq!(
        std::fs::read(sidecar(&again[0])).expect("second explanation"),
        text.as_bytes(),
        "a replay explains its clip the same way"
    );

    // For a person, and as JSON.
    let out = vigil(&["explain", &files[0].to_string_lossy()]);
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "pipeline DoorSensorToFiles, gate gate, activation 1",
        "pre-roll: 5.000 s asked (from 2026-03-01T11:59:58.000Z), 3.000 s given (the clip starts at 2026-03-01T12:00:00.000Z)",
        "  2026-03-01T12:00:03.000Z opened  Trigger from /livePipelines/DoorSensorToFiles/sources/doorSensor correlation door-1",
        "  2026-03-01T12:00:09.000Z extended Trigger from /livePipelines/DoorSensorToFiles/sources/doorSensor correlation door-2",
        "ended 2026-03-01T12:00:19.000Z (minimumActivationTime)",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }
    let json = vigil(&["explain", "--json", &files[0].to_string_lossy()]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json is JSON");
    assert_eq!(parsed, e);
    let missing = vigil(&["explain", &dir.join("nothing.mp4").to_string_lossy()]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nothing.mp4.json: no explanation"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn a_motion_clip_names_the_detector_and_its_module() {
    let dir = temp_dir("explain-motion");
    let out = dir.join("out");
    replay_ok(
        "topologies/motion-to-files.json",
        &support::vtest(),
        "2026-03-01T12:00:00Z",
        &dir.join("log.jsonl"),
        &["--set", &format!("outputDirectory={}", out.display())],
    );
    let files = mp4_files(&out);
    assert!(!files.is_empty(), "vtest has motion");
    let mut hashes = std::collections::BTreeSet::new();
    for f in &files {
        let e: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sidecar(f)).expect("explanation")).expect("JSON");
        let events = e["events"].as_array().expect("events");
        assert!(!events.is_empty());
        assert_eq!(events[0]["role"], "opened");
        assert_eq!(e["eventsTotal"].as_u64(), Some(events.len() as u64));
        for r in events {
            assert_eq!(
                r["eventType"],
                "Microsoft.VideoAnalyzer.Analytics.Inference"
            );
            assert_eq!(r["node"], "/livePipelines/MotionToFiles/processors/motion");
            let hash = r["moduleHash"].as_str().unwrap_or("");
            assert!(
                hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "the motion module's content hash: {r}"
            );
            hashes.insert(hash.to_string());
        }
    }
    assert_eq!(hashes.len(), 1, "one module decided every clip: {hashes:?}");
}

/// A VideoSink keeps each clip's explanation in the archive's catalog: `vigil explain` on a
/// segment file reads it there, and the playback API serves it.
#[test]
fn an_archive_clip_is_explained_from_the_catalog() {
    let dir = temp_dir("explain-archive");
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-1\"}}\n\
         {\"at\": 45.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-2\"}}\n",
    )
    .expect("write events");
    let clip = support::archive::minute_clip(&dir);
    let archive = dir.join("archive");
    replay_ok(
        "topologies/door-sensor-to-video.json",
        &clip,
        "2026-01-01T00:00:00Z",
        &dir.join("log.jsonl"),
        &[
            "--events",
            &events.to_string_lossy(),
            "--archive",
            &archive.to_string_lossy(),
        ],
    );
    let videos = archive.join("videos/frontdoor");
    for (segment, opened) in [
        (
            "00000001-0000.mp4",
            "2026-01-01T00:00:03.000Z opened  Trigger",
        ),
        (
            "00000001-0001.mp4",
            "2026-01-01T00:00:03.000Z opened  Trigger",
        ),
        (
            "00000002-0000.mp4",
            "2026-01-01T00:00:45.000Z opened  Trigger",
        ),
    ] {
        let out = vigil(&["explain", &videos.join(segment).to_string_lossy()]);
        assert!(
            out.status.success(),
            "{segment}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(opened)),
            "{segment}: {opened:?} in:\n{text}"
        );
        assert!(
            text.contains("pipeline DoorSensorToVideo, gate gate"),
            "{text}"
        );
    }
    let port = support::peers::free_port();
    let _server = support::archive::serve(&archive, port);
    let base = format!("http://127.0.0.1:{port}/api/videos/frontdoor/clips");
    let second = support::archive::get_json(&format!("{base}/2/explanation"));
    assert_eq!(second["activation"], 2);
    assert_eq!(second["events"][0]["correlationId"], "door-2");
    assert_eq!(second["eventsTotal"], 1);
    let (status, _) = support::archive::get(&format!("{base}/9/explanation"));
    assert_eq!(status, 404);
}
