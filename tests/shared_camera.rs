//! Pipelines of one service that read the same camera (URL and credentials) share one RTSP
//! session: against a camera that serves ONE session (a SETUP beyond answers 503), three
//! pipelines record the clips their triggers ask for, one joining late and one leaving early,
//! and none of them ever sees the session fail; other credentials are another session.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::peers::{camera_with, free_port, http_post};
use support::service::{activate, call, count_of, serve, set_pipeline, set_topology, wait_until};
use support::{clips, decodes_cleanly, mp4_files, temp_dir};

const DOOR: &str = "DoorSensorToFiles";

fn parameters(cam_port: u16, out: &Path, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
        ("rtspPassword", password.to_string()),
        ("outputDirectory", out.display().to_string()),
        ("minActivation", "PT3S".into()),
    ]
}

fn trigger(http_port: u16, pipeline: &str) {
    let url = format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
    assert_eq!(http_post(&url, "{}"), 202, "trigger for {pipeline}");
}

const FAILURES: [&str; 5] = [
    "NetworkError",
    "ProtocolError",
    "AuthenticationError",
    "MediaSessionEnded",
    "MediaFormatError",
];

#[test]
fn pipelines_on_one_camera_share_its_one_session() {
    let dir = temp_dir("shared-camera");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera_with(
        &clips().join("camera-h264.mp4"),
        cam_port,
        "vigil",
        "vigil",
        &["--max-sessions", "1"],
    );
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    for p in ["p1", "p2", "p3"] {
        let (status, payload) = set_pipeline(
            http_port,
            p,
            DOOR,
            &parameters(cam_port, &dir.join(p), "vigil"),
        );
        assert_eq!(status, 201, "{payload}");
    }
    activate(http_port, "p1");
    activate(http_port, "p2");
    wait_until("p1 and p2 connect", Duration::from_secs(20), || {
        count_of(&log, "p1", "MediaSessionEstablished") == 1
            && count_of(&log, "p2", "MediaSessionEstablished") == 1
    });
    std::thread::sleep(Duration::from_secs(1));
    trigger(http_port, "p1");
    trigger(http_port, "p2");

    // p3 joins the running session: it is told the session is up, and records from a key frame.
    activate(http_port, "p3");
    wait_until(
        "p3 is told the session is up",
        Duration::from_secs(10),
        || count_of(&log, "p3", "MediaSessionEstablished") == 1,
    );
    std::thread::sleep(Duration::from_secs(2));
    trigger(http_port, "p3");
    wait_until("three clips", Duration::from_secs(30), || {
        ["p1", "p2", "p3"]
            .iter()
            .all(|p| count_of(&log, p, "RecordingStopped") == 1)
    });

    // p1 leaves; the session goes on for p2 and p3.
    let (status, payload) = call(
        http_port,
        "livePipelineDeactivate",
        &json!({"@apiVersion": "1.1", "name": "p1"}),
    );
    assert_eq!(status, 200, "{payload}");
    std::thread::sleep(Duration::from_secs(1));
    trigger(http_port, "p2");
    wait_until("p2's second clip", Duration::from_secs(30), || {
        count_of(&log, "p2", "RecordingStopped") == 2
    });

    // Other credentials are another session: refused by the camera, reported by p4 alone.
    let (status, payload) = set_pipeline(
        http_port,
        "p4",
        DOOR,
        &parameters(cam_port, &dir.join("p4"), "wrong"),
    );
    assert_eq!(status, 201, "{payload}");
    activate(http_port, "p4");
    wait_until("p4's session is refused", Duration::from_secs(20), || {
        count_of(&log, "p4", "AuthenticationError") >= 1
    });
    vigil.interrupt();

    for p in ["p1", "p2", "p3"] {
        for kind in FAILURES {
            assert_eq!(count_of(&log, p, kind), 0, "{p} saw {kind}");
        }
        assert_eq!(count_of(&log, p, "MediaSessionEstablished"), 1, "{p}");
    }
    for (p, clips) in [("p1", 1), ("p2", 2), ("p3", 1)] {
        let files = mp4_files(&dir.join(p));
        assert_eq!(files.len(), clips, "{p}: {files:?}");
        for f in &files {
            assert!(
                decodes_cleanly(f),
                "{} does not decode cleanly",
                f.display()
            );
        }
    }
    assert_eq!(count_of(&log, "p4", "MediaSessionEstablished"), 0);
    assert!(mp4_files(&dir.join("p4")).is_empty());
}
