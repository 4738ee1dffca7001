//! The web page's "Recent clips" panel in headless Chromium (tests/web/clips.mjs) against `vigil
//! serve` with two door-sensor pipelines on a real RTSP camera: each clip is listed with its
//! snapshot, the pipeline filter keeps one pipeline's, a click plays the clip in the player, and
//! the download link serves the file as an attachment.

mod support;

use std::time::Duration;

use support::peers::{camera, free_port, http_post};
use support::service::{activate, count_of, serve, set_pipeline, set_topology, wait_until};
use support::web::{next_phase, start_script};
use support::{clips, temp_dir};

const DOOR: &str = "DoorSensorToFiles";

#[test]
fn recent_clips_are_listed_with_snapshots_filtered_and_played() {
    let dir = temp_dir("web-clips");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _vigil = serve(&dir, http_port, &[]);
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    for name in ["front", "back"] {
        let parameters = [
            ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
            ("outputDirectory", dir.join(name).display().to_string()),
            ("minActivation", "PT2S".to_string()),
            ("maxActivation", "PT2S".to_string()),
        ];
        let (status, payload) = set_pipeline(http_port, name, DOOR, &parameters);
        assert_eq!(status, 201, "{payload}");
        activate(http_port, name);
    }
    let log = dir.join("events.jsonl");
    wait_until("both cameras", Duration::from_secs(20), || {
        count_of(&log, "front", "MediaSessionEstablished") >= 1
            && count_of(&log, "back", "MediaSessionEstablished") >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    for name in ["front", "back"] {
        let url = format!("http://127.0.0.1:{http_port}/pipelines/{name}/inputs/recordingTrigger");
        assert_eq!(http_post(&url, "{}"), 202);
    }
    wait_until("two clips with snapshots", Duration::from_secs(30), || {
        count_of(&log, "front", "RecordingAvailable") >= 1
            && count_of(&log, "back", "RecordingAvailable") >= 1
            && count_of(&log, "front", "SnapshotAvailable") >= 1
            && count_of(&log, "back", "SnapshotAvailable") >= 1
    });

    // The API first: newest first, each with its snapshot, media and download routes.
    let listed = support::archive::get_json(&format!("http://127.0.0.1:{http_port}/api/clips"));
    let clips_listed = listed["clips"].as_array().expect("clips");
    assert_eq!(clips_listed.len(), 2, "{listed}");
    assert_eq!(listed["pipelines"], serde_json::json!(["back", "front"]));
    let back = &listed["clips"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["pipeline"] == "back"))
        .expect("back's clip")
        .clone();
    let (status, file) = support::archive::get(&format!(
        "http://127.0.0.1:{http_port}{}",
        back["media"].as_str().expect("media")
    ));
    assert_eq!(status, 200);
    let on_disk = support::mp4_files(&dir.join("back"));
    assert_eq!(
        file,
        std::fs::read(&on_disk[0]).expect("file"),
        "the clip's own file"
    );
    let headers = std::process::Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!(
            "http://127.0.0.1:{http_port}{}",
            back["download"].as_str().expect("download")
        ))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(
        headers.contains("content-disposition: attachment"),
        "{headers}"
    );
    let filtered = support::archive::get_json(&format!(
        "http://127.0.0.1:{http_port}/api/clips?pipeline=back"
    ));
    assert_eq!(filtered["clips"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        support::archive::get(&format!(
            "http://127.0.0.1:{http_port}/api/clips/999/media.mp4"
        ))
        .0,
        404
    );

    // The page.
    let shot = dir.join("clips.png");
    let stderr = dir.join("clips-mjs.log");
    let url = format!("http://127.0.0.1:{http_port}");
    let args = [url.as_str(), "back", "2", shot.to_str().expect("path")];
    let mut script = start_script("clips.mjs", &args, &[], &stderr);
    let done = next_phase(&mut script.lines, "done", &stderr);
    assert_eq!(done["errors"], serde_json::json!([]), "{done}");
    let all = done["all"].as_array().expect("all");
    assert_eq!(all.len(), 2, "{done}");
    for c in all {
        assert!(
            c["thumb"]["width"].as_u64().unwrap_or(0) > 0,
            "a thumbnail: {c}"
        );
    }
    let filtered = done["filtered"].as_array().expect("filtered");
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["pipeline"], "back");
    assert!(
        done["played"]["src"]
            .as_str()
            .is_some_and(|s| s.ends_with(back["media"].as_str().unwrap_or("?"))),
        "{done}"
    );
    assert!(done["played"]["currentTime"].as_f64().unwrap_or(0.0) > 0.5);
    assert_eq!(done["download"]["href"], back["download"]);
    println!("screenshot: {}", shot.display());
}
