//! Live view in headless Chromium (tests/web/live.mjs): a running pipeline's camera plays live on
//! the page from the samples the pipeline already receives (the camera keeps one session), and
//! how far behind the camera it plays is measured and printed (not asserted: shared machines).

mod support;

use std::time::Duration;

use support::peers::{camera, free_port};
use support::service::{activate, count_of, serve, set_pipeline, set_topology, wait_until};
use support::web::{next_phase, start_script};
use support::{clips, temp_dir};

#[test]
fn a_running_pipeline_plays_live_on_the_page() {
    let dir = temp_dir("web-live");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _vigil = serve(&dir, http_port, &[]);
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    let parameters = [
        ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
        ("outputDirectory", dir.join("out").display().to_string()),
    ];
    let (status, payload) = set_pipeline(http_port, "porch", "DoorSensorToFiles", &parameters);
    assert_eq!(status, 201, "{payload}");
    // Before it ran, there is no live view to ask for.
    let url = format!("http://127.0.0.1:{http_port}/api/pipelines/porch/live.m3u8");
    assert_eq!(support::archive::get(&url).0, 404);
    activate(http_port, "porch");
    let log = dir.join("events.jsonl");
    wait_until("the camera", Duration::from_secs(20), || {
        count_of(&log, "porch", "MediaSessionEstablished") >= 1
    });
    let (status, playlist) = support::archive::get(&url);
    assert_eq!(status, 200);
    let playlist = String::from_utf8_lossy(&playlist).to_string();
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"/api/pipelines/porch/live/init.mp4"),
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{playlist}");

    let shot = dir.join("live.png");
    let stderr = dir.join("live-mjs.log");
    let base = format!("http://127.0.0.1:{http_port}");
    let args = [base.as_str(), "porch", shot.to_str().expect("path")];
    let mut script = start_script("live.mjs", &args, &[], &stderr);
    let done = next_phase(&mut script.lines, "done", &stderr);
    assert_eq!(done["errors"], serde_json::json!([]), "{done}");
    let (start, end) = (
        done["played"]["start"].as_f64().unwrap_or(0.0),
        done["played"]["end"].as_f64().unwrap_or(0.0),
    );
    assert!(end > start + 4.0, "the live view advanced: {done}");
    let mut lags: Vec<f64> = done["lags"]
        .as_array()
        .expect("lags")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert!(!lags.is_empty(), "the page knows what UTC it shows: {done}");
    lags.sort_by(f64::total_cmp);
    println!(
        "live view behind the camera: median {:.0} ms, max {:.0} ms; screenshot {}",
        lags[lags.len() / 2],
        lags[lags.len() - 1],
        shot.display()
    );
    // One camera session for the pipeline, live view included.
    assert_eq!(count_of(&log, "porch", "MediaSessionEstablished"), 1);
}
