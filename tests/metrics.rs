//! `GET /metrics` of a service with real pipelines: AVA's series and ours, per pipeline and
//! node, agree with what the pipelines did (the frames a FileSink counted are the frames
//! ffprobe finds in its file), and a deleted pipeline's series go with it.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::peers::{camera, free_port, http_post};
use support::service::{activate, call, count_of, serve, set_pipeline, set_topology, wait_until};
use support::{clips, mp4_files, probe, temp_dir};

fn scrape(port: u16) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", &text));
    (head.to_string(), body.to_string())
}

/// The value of the series `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn must(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_follow_every_pipeline_and_node() {
    let dir = temp_dir("metrics");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    let url = format!("rtsp://127.0.0.1:{cam_port}/camera");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    set_topology(
        http_port,
        "tests/topologies/service/trigger-or-filter-to-files.json",
    );
    let door = vec![
        ("rtspUrl", url.clone()),
        ("outputDirectory", dir.join("door").display().to_string()),
        ("minActivation", "PT3S".to_string()),
    ];
    assert_eq!(
        set_pipeline(http_port, "door", "DoorSensorToFiles", &door).0,
        201
    );
    let filter = vec![
        ("rtspUrl", url.clone()),
        ("outputDirectory", dir.join("filter").display().to_string()),
        (
            "module",
            format!("{}/noop_frame.wasm", env!("VIGIL_GUEST_DIR")),
        ),
    ];
    assert_eq!(
        set_pipeline(http_port, "filtered", "TriggerOrFilterToFiles", &filter).0,
        201
    );
    let idle = vec![
        ("rtspUrl", url),
        ("outputDirectory", "/nonexistent".to_string()),
    ];
    assert_eq!(
        set_pipeline(http_port, "idle", "DoorSensorToFiles", &idle).0,
        201
    );
    activate(http_port, "door");
    activate(http_port, "filtered");
    wait_until("both connect", Duration::from_secs(20), || {
        count_of(&log, "door", "MediaSessionEstablished") == 1
            && count_of(&log, "filtered", "MediaSessionEstablished") == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let trigger = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    wait_until("door's clip closes", Duration::from_secs(30), || {
        count_of(&log, "door", "RecordingStopped") == 1
    });

    let (head, text) = scrape(http_port);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // AVA's names.
    assert_eq!(
        must(
            &text,
            "va_active_live_pipelines{pipeline_topology=\"DoorSensorToFiles\"}"
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "va_active_live_pipelines{pipeline_topology=\"TriggerOrFilterToFiles\"}"
        ),
        1.0
    );
    // The allocator's figures: a service recording two pipelines holds heap memory.
    let heap_in_use = must(&text, "vigil_heap_bytes{kind=\"in_use\"}");
    assert!(heap_in_use > 100_000.0, "{heap_in_use}\n{text}");
    must(&text, "vigil_heap_bytes{kind=\"free\"}");
    must(&text, "vigil_heap_bytes{kind=\"mapped\"}");
    let received = must(
        &text,
        "va_received_bytes_total{pipeline=\"door\",node=\"camera\"}",
    );
    assert!(received > 1_000.0, "{received}\n{text}");
    assert_eq!(
        received,
        must(
            &text,
            "vigil_node_bytes_total{pipeline=\"door\",node=\"camera\"}"
        )
    );
    let latency = must(
        &text,
        "va_cumulative_latency_seconds_max{pipeline=\"door\",node=\"files\"}",
    );
    assert!((0.0..10.0).contains(&latency), "{latency}");
    assert!(
        must(
            &text,
            "va_cumulative_latency_seconds_average{pipeline=\"door\",node=\"files\"}"
        ) <= latency
    );
    // Ours: one opening, one recording, and exactly the frames the file holds.
    assert_eq!(
        must(
            &text,
            "vigil_gate_openings_total{pipeline=\"door\",node=\"gate\"}"
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "vigil_recordings_total{pipeline=\"door\",node=\"files\"}"
        ),
        1.0
    );
    let files = mp4_files(&dir.join("door"));
    assert_eq!(files.len(), 1, "{files:?}");
    let frames = probe(&files[0]).frames as f64;
    assert_eq!(
        must(
            &text,
            "vigil_node_frames_total{pipeline=\"door\",node=\"files\"}"
        ),
        frames
    );
    assert_eq!(
        must(
            &text,
            "vigil_node_frames_total{pipeline=\"door\",node=\"gate\"}"
        ),
        frames
    );
    assert_eq!(
        must(&text, "vigil_queue_depth{pipeline=\"door\",node=\"files\"}"),
        0.0
    );
    assert_eq!(must(&text, "vigil_live_pipelines{state=\"Active\"}"), 2.0);
    assert_eq!(must(&text, "vigil_live_pipelines{state=\"Inactive\"}"), 1.0);
    // The guest is timed and the frames it was given were decoded.
    let calls = must(
        &text,
        "vigil_guest_call_seconds_count{pipeline=\"filtered\",node=\"filter\"}",
    );
    assert!(calls > 0.0, "{calls}");
    assert!(
        must(
            &text,
            "vigil_decoded_frames_total{pipeline=\"filtered\",node=\"camera\"}"
        ) >= calls
    );

    // A deleted pipeline takes its series along; the others keep theirs.
    for method in ["livePipelineDeactivate", "livePipelineDelete"] {
        let (status, payload) = call(
            http_port,
            method,
            &json!({"@apiVersion": "1.1", "name": "filtered"}),
        );
        assert_eq!(status, 200, "{method}: {payload}");
    }
    let (_, text) = scrape(http_port);
    assert!(!text.contains("pipeline=\"filtered\""), "{text}");
    assert!(text.contains("pipeline=\"door\""));
    assert_eq!(
        must(
            &text,
            "va_active_live_pipelines{pipeline_topology=\"TriggerOrFilterToFiles\"}"
        ),
        0.0
    );
    vigil.interrupt();
}
