//! Snapshots: every recording gets a JPEG of the frame it was decided on (`<file>.jpg`), made
//! from the GOP the gate already holds: the right frame (the clip's burnt-in clock against the
//! camera's own frames), the opening event's boxes drawn where the event put them, announced by
//! `SnapshotAvailable`; live, the pipeline's latest snapshot is served over HTTP.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::peers::{
    camera, event_log, free_port, http_post, vigil_run, wait_for_event, wait_for_port,
};
use support::{clips, image_pixels, mp4_files, read_events, replay_ok, temp_dir};

/// Frame `n` of `clip` as a PNG in `dir`.
fn frame_of(clip: &Path, n: u32, dir: &Path) -> PathBuf {
    let out = dir.join(format!("frame-{n}.png"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(clip)
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-vframes", "1"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    out
}

/// PSNR (dB) of the burnt-in clock (the top-left 130×24) of `a` against `b`.
fn clock_psnr(a: &Path, b: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args([
            "-lavfi",
            "[0]crop=130:24:0:0,format=gray[a];[1]crop=130:24:0:0,format=gray[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let average = text
        .split("average:")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in {text}"));
    if average == "inf" {
        return f64::INFINITY;
    }
    average.parse().expect("a number")
}

#[test]
fn a_recording_gets_a_snapshot_of_the_frame_it_was_decided_on() {
    let dir = temp_dir("snapshot-door");
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-1\"}}\n\
         {\"at\": 9.0, \"input\": \"recordingTrigger\", \"body\": {\"messageId\": \"door-2\"}}\n",
    )
    .expect("write");
    let clip = clips().join("camera-h264.mp4");
    let log = dir.join("log.jsonl");
    replay_ok(
        "topologies/door-sensor-to-files.json",
        &clip,
        "2026-03-01T12:00:00Z",
        &log,
        &[
            "--events",
            &events.to_string_lossy(),
            "--set",
            &format!("outputDirectory={}", dir.join("out").display()),
        ],
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let snapshot = PathBuf::from(format!("{}.jpg", files[0].display()));
    let announced: Vec<serde_json::Value> = read_events(&log)
        .into_iter()
        .filter(|(k, _, _)| k == "SnapshotAvailable")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(announced.len(), 1, "one snapshot per recording");
    let a = &announced[0];
    assert_eq!(a["outputLocation"], snapshot.to_string_lossy().as_ref());
    assert_eq!(a["recording"], files[0].to_string_lossy().as_ref());
    // The first trigger's frame: 3 s into the clip.
    assert_eq!(a["frameTime"], "2026-03-01T12:00:03.000Z");
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(640), Some(360))
    );
    let (w, h, _) = image_pixels(&snapshot);
    assert_eq!((w, h), (640, 360), "the JPEG decodes at the camera's size");
    // The clock burnt into the picture reads 00:00:03, as the camera's frame 90 does, and not
    // 00:00:02 (frame 60) or 00:00:04 (frame 120).
    let at_3 = clock_psnr(&snapshot, &frame_of(&clip, 90, &dir));
    let at_2 = clock_psnr(&snapshot, &frame_of(&clip, 60, &dir));
    let at_4 = clock_psnr(&snapshot, &frame_of(&clip, 120, &dir));
    assert!(at_3 > 30.0, "the clock matches frame 90: {at_3:.1} dB");
    assert!(
        at_3 > at_2 + 5.0 && at_3 > at_4 + 5.0,
        "frame 90 ({at_3:.1} dB) against 60 ({at_2:.1}) and 120 ({at_4:.1})"
    );
}

#[test]
fn a_motion_clip_snapshot_outlines_the_motion_that_opened_it() {
    let dir = temp_dir("snapshot-motion");
    let log = dir.join("log.jsonl");
    replay_ok(
        "topologies/motion-to-files.json",
        &support::vtest(),
        "2026-03-01T12:00:00Z",
        &log,
        &[
            "--set",
            &format!("outputDirectory={}", dir.join("out").display()),
        ],
    );
    let inferences = inference_events(&log);
    let files = mp4_files(&dir.join("out"));
    assert!(!files.is_empty());
    for file in &files {
        let explanation: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!("{}.json", file.display())).expect("explanation"),
        )
        .expect("JSON");
        let opened = explanation["events"][0]["mediaTime"]
            .as_str()
            .expect("time");
        // The motion event that opened the clip, and its first box.
        let body = inferences
            .iter()
            .find(|(time, b)| time == opened && b["inferences"][0]["motion"]["box"].is_object())
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("the opening motion event at {opened}"));
        let b = &body["inferences"][0]["motion"]["box"];
        let (l, t, bw, bh) = (
            b["l"].as_f64().expect("l"),
            b["t"].as_f64().expect("t"),
            b["w"].as_f64().expect("w"),
            b["h"].as_f64().expect("h"),
        );
        let (w, h, rgb) = image_pixels(&PathBuf::from(format!("{}.jpg", file.display())));
        let amber = |x: f64, y: f64| {
            let (x, y) = ((x * w as f64) as u32 + 1, (y * h as f64) as u32);
            let at = ((y.min(h - 1) * w + x.min(w - 1)) * 3) as usize;
            let (r, g, bl) = (rgb[at], rgb[at + 1], rgb[at + 2]);
            r > 200 && (120..=220).contains(&g) && bl < 90
        };
        assert!(
            amber(l, t + bh / 2.0),
            "{}: the box's left edge at l={l:.3} is outlined",
            file.display()
        );
        assert!(
            !amber(l + bw / 2.0, t + bh / 2.0) || bw < 0.02,
            "{}: not its inside",
            file.display()
        );
    }
}

/// The `Inference` events of an event log: (event time, body).
fn inference_events(log: &Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(log)
        .expect("log")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(".Inference"))
        })
        .map(|v| {
            (
                v["properties"]["eventTime"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                v["body"].clone(),
            )
        })
        .collect()
}

#[test]
fn live_the_latest_snapshot_is_served() {
    let dir = temp_dir("snapshot-live");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let args: Vec<String> = vec![
        "topologies/door-sensor-to-files.json".into(),
        "--pipeline-name".into(),
        "frontdoor".into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        format!("outputDirectory={}", dir.join("out").display()),
        "--set".into(),
        "minActivation=PT5S".into(),
        "--event-log".into(),
        event_log(&dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    let url = format!("http://127.0.0.1:{http_port}/api/pipelines/frontdoor/snapshot.jpg");
    let (status, _) = support::archive::get(&url);
    assert_eq!(status, 404, "no snapshot before the first clip");
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    let trigger =
        format!("http://127.0.0.1:{http_port}/pipelines/frontdoor/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    let events = wait_for_event(
        &event_log(&dir),
        "SnapshotAvailable",
        1,
        Duration::from_secs(20),
    );
    let (status, jpeg) = support::archive::get(&url);
    vigil.interrupt();
    assert_eq!(status, 200);
    let served = dir.join("served.jpg");
    std::fs::write(&served, &jpeg).expect("write");
    let (w, h, _) = image_pixels(&served);
    assert_eq!((w, h), (640, 360));
    let written = events
        .iter()
        .find(|(k, _, _)| k == "SnapshotAvailable")
        .and_then(|(_, b, _)| b["outputLocation"].as_str().map(PathBuf::from))
        .expect("path");
    assert_eq!(
        std::fs::read(&written).expect("snapshot file"),
        jpeg,
        "the served snapshot is the one written beside the file"
    );
    // After a restart the clip is on the review list again (from its explanation), once.
    let mut again = vigil_run(&dir, &args);
    wait_for_port(http_port);
    let clips_url = format!("http://127.0.0.1:{http_port}/api/clips");
    support::service::wait_until("the clip is listed again", Duration::from_secs(15), || {
        support::archive::get_json(&clips_url)["clips"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    let listed = support::archive::get_json(&clips_url);
    again.interrupt();
    let clips = listed["clips"].as_array().expect("clips");
    assert_eq!(clips.len(), 1, "{listed}");
    assert_eq!(clips[0]["pipeline"], "frontdoor");
    assert_eq!(clips[0]["events"], serde_json::json!(["Trigger"]));
    let file = written.with_extension("");
    assert_eq!(
        clips[0]["name"],
        file.file_name().expect("name").to_string_lossy().as_ref()
    );
    assert!(clips[0]["snapshot"].is_string(), "{listed}");
}

/// A VideoSink's clips get their snapshots in the archive (`snapshots/<video>/<clip>.jpg`),
/// served by the playback API.
#[test]
fn archive_clips_get_snapshots_served_by_the_playback_api() {
    let dir = temp_dir("snapshot-archive");
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {}}\n\
         {\"at\": 45.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let clip = support::archive::minute_clip(&dir);
    let archive = dir.join("archive");
    let log = dir.join("log.jsonl");
    replay_ok(
        "topologies/door-sensor-to-video.json",
        &clip,
        "2026-01-01T00:00:00Z",
        &log,
        &[
            "--events",
            &events.to_string_lossy(),
            "--archive",
            &archive.to_string_lossy(),
        ],
    );
    let announced: Vec<(String, String)> = read_events(&log)
        .into_iter()
        .filter(|(k, _, _)| k == "SnapshotAvailable")
        .map(|(_, b, _)| {
            (
                b["recording"].as_str().unwrap_or("").to_string(),
                b["frameTime"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        announced,
        vec![
            (
                "frontdoor clip 1".to_string(),
                "2026-01-01T00:00:03.000Z".to_string()
            ),
            (
                "frontdoor clip 2".to_string(),
                "2026-01-01T00:00:45.000Z".to_string()
            ),
        ]
    );
    for n in ["00000001", "00000002"] {
        let (w, h, _) = image_pixels(&archive.join(format!("snapshots/frontdoor/{n}.jpg")));
        assert_eq!((w, h), (640, 360));
    }
    let port = free_port();
    let _server = support::archive::serve(&archive, port);
    let base = format!("http://127.0.0.1:{port}/api/videos/frontdoor/clips");
    let (status, jpeg) = support::archive::get(&format!("{base}/2/snapshot.jpg"));
    assert_eq!(status, 200);
    assert_eq!(
        jpeg,
        std::fs::read(archive.join("snapshots/frontdoor/00000002.jpg")).expect("file")
    );
    assert_eq!(
        support::archive::get(&format!("{base}/9/snapshot.jpg")).0,
        404
    );
    assert_eq!(
        support::archive::get(&format!(
            "http://127.0.0.1:{port}/api/videos/../clips/1/snapshot.jpg"
        ))
        .0,
        404
    );
}
