//! Inference events get snapshots too: the picture the motion detector (or inference service)
//! analysed, with the event's boxes outlined. A clip's explanation names the snapshots of its
//! events, kept beside the file (FileSink) or in the archive (VideoSink), where the playback API
//! serves them with the events that made each clip (the timeline's markers).

mod support;

use std::path::Path;

use serde_json::Value;
use support::{image_pixels, is_amber, log_events, mp4_files, replay_ok, temp_dir};

/// The first motion box of the `Inference` event of `log` sent by `node` (a subject's end) at
/// `time`: (l, t, w, h), and whether it is the event's only box.
fn motion_box(log: &Path, node: &str, time: &str) -> ((f64, f64, f64, f64), bool) {
    let event = log_events(log)
        .into_iter()
        .find(|e| {
            e["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(".Inference"))
                && e["properties"]["eventTime"] == time
                && e["properties"]["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(node))
        })
        .unwrap_or_else(|| panic!("an Inference event of {node} at {time}"));
    let b = &event["body"]["inferences"][0]["motion"]["box"];
    let v = |k: &str| {
        b[k].as_f64()
            .unwrap_or_else(|| panic!("box {k} in {event}"))
    };
    let only = event["body"]["inferences"]
        .as_array()
        .is_some_and(|i| i.len() == 1);
    ((v("l"), v("t"), v("w"), v("h")), only)
}

/// The media times of `node`'s `Inference` events that get a snapshot: at most one per 0.9 s of
/// media per node (the first, then the first at least 0.9 s after the last one that got one).
fn paced(log: &Path, node: &str) -> std::collections::BTreeSet<String> {
    let mut due = std::collections::BTreeSet::new();
    let mut last: Option<i64> = None;
    for e in log_events(log) {
        let p = &e["properties"];
        let ours = p["eventType"]
            .as_str()
            .is_some_and(|t| t.ends_with(".Inference"))
            && p["subject"].as_str().is_some_and(|s| s.ends_with(node));
        if !ours {
            continue;
        }
        let time = p["eventTime"].as_str().expect("eventTime").to_string();
        let ms = time
            .parse::<jiff::Timestamp>()
            .expect("UTC")
            .as_millisecond();
        if last.is_none_or(|l| ms < l || ms - l >= 900) {
            last = Some(ms);
            due.insert(time);
        }
    }
    due
}

/// Checks that `image` is the 640×480 picture of vtest's frame with `b` outlined (its left
/// edge amber; its middle not, when it is the only box).
fn outlined(image: &Path, (b, only): ((f64, f64, f64, f64), bool)) {
    let pixels = image_pixels(image);
    assert_eq!((pixels.0, pixels.1), (640, 480), "{}", image.display());
    let (l, t, w, h) = b;
    assert!(
        is_amber(&pixels, l, t + h / 2.0),
        "{}: the box's left edge at l={l:.3} is outlined",
        image.display()
    );
    assert!(
        !only || w < 0.03 || !is_amber(&pixels, l + w / 2.0, t + h / 2.0),
        "{}: its inside is not",
        image.display()
    );
}

#[test]
fn motion_events_get_snapshots_beside_their_clip() {
    let dir = temp_dir("event-snapshots-files");
    let log = dir.join("log.jsonl");
    let out = dir.join("out");
    replay_ok(
        "topologies/motion-to-files.json",
        &support::vtest(),
        "2026-03-01T12:00:00Z",
        &log,
        &["--set", &format!("outputDirectory={}", out.display())],
    );
    let files = mp4_files(&out);
    assert!(!files.is_empty());
    let due = paced(&log, "/motion");
    let mut checked = 0;
    for file in &files {
        let explanation: Value = serde_json::from_slice(
            &std::fs::read(format!("{}.json", file.display())).expect("explanation"),
        )
        .expect("JSON");
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let events = explanation["events"].as_array().expect("events");
        assert!(!events.is_empty());
        for (n, e) in events.iter().enumerate() {
            // A motion event of the clip has its snapshot when one was due for its node, named
            // by its place in the list.
            let time = e["mediaTime"].as_str().expect("time");
            if !due.contains(time) {
                assert!(e.get("snapshot").is_none(), "{}: event {n}", file.display());
                continue;
            }
            assert_eq!(
                e["snapshot"],
                format!("{name}.event-{}.jpg", n + 1),
                "{}: event {n}",
                file.display()
            );
            let image = out.join(e["snapshot"].as_str().expect("name"));
            outlined(&image, motion_box(&log, "/motion", time));
            checked += 1;
        }
    }
    assert!(checked >= 2, "{checked} event snapshots");
    // Nothing else named like an event snapshot was left.
    let jpegs = std::fs::read_dir(&out)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".event-"))
        .count();
    assert_eq!(jpegs, checked);
}

#[test]
fn archive_clips_keep_their_event_snapshots_and_list_their_events() {
    let dir = temp_dir("event-snapshots-archive");
    let log = dir.join("log.jsonl");
    let archive = dir.join("archive");
    replay_ok(
        "tests/topologies/service/motion-to-video.json",
        &support::vtest(),
        "2026-03-01T12:00:00Z",
        &log,
        &["--archive", &archive.to_string_lossy()],
    );
    let port = support::peers::free_port();
    let _server = support::archive::serve(&archive, port);
    let base = format!("http://127.0.0.1:{port}/api/videos/yard");
    let listed = support::archive::get_json(&format!(
        "{base}/events?startTime=2026-03-01T11:00:00Z&endTime=2026-03-01T13:00:00Z"
    ));
    let events = listed["events"].as_array().expect("events");
    assert!(events.len() >= 2, "{listed}");
    let due = paced(&log, "/motion");
    let mut last = String::new();
    let mut with_snapshots = 0;
    for e in events {
        let time = e["time"].as_str().expect("time").to_string();
        assert!(time >= last, "oldest first: {listed}");
        last = time.clone();
        assert!(
            e["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(".Inference")),
            "{e}"
        );
        let clip = e["clip"].as_i64().expect("clip");
        // The clip's explanation lists the same event, with its snapshot's file.
        let explanation = support::archive::get_json(&format!("{base}/clips/{clip}/explanation"));
        let n = explanation["events"]
            .as_array()
            .expect("events")
            .iter()
            .position(|x| x["mediaTime"] == time.as_str())
            .expect("listed in the explanation")
            + 1;
        if !due.contains(&time) {
            assert_eq!(e["snapshot"], Value::Null, "{e}");
            continue;
        }
        with_snapshots += 1;
        assert_eq!(
            explanation["events"][n - 1]["snapshot"],
            format!("{clip:08}.event-{n}.jpg")
        );
        let url = format!("/api/videos/yard/clips/{clip}/events/{n}.jpg");
        assert_eq!(e["snapshot"], url);
        let (status, jpeg) = support::archive::get(&format!("http://127.0.0.1:{port}{url}"));
        assert_eq!(status, 200, "{url}");
        let file = archive.join(format!("snapshots/yard/{clip:08}.event-{n}.jpg"));
        assert_eq!(jpeg, std::fs::read(&file).expect("the file"), "{url}");
        outlined(&file, motion_box(&log, "/motion", &time));
    }
    assert!(with_snapshots >= 2, "{listed}");
    // A window with no clip lists nothing; an event number the clip does not have is a 404.
    let empty = support::archive::get_json(&format!(
        "{base}/events?startTime=2026-03-01T08:00:00Z&endTime=2026-03-01T09:00:00Z"
    ));
    assert_eq!(empty["events"], serde_json::json!([]));
    assert_eq!(
        support::archive::get(&format!("{base}/clips/1/events/999.jpg")).0,
        404
    );
    assert_eq!(
        support::archive::get(&format!("{base}/clips/1/events/x.jpg")).0,
        404
    );
}

#[test]
fn a_live_archive_clip_is_on_the_review_list_with_its_snapshot_and_media() {
    use std::time::Duration;
    use support::peers::{camera, event_log, free_port, http_post, vigil_run, wait_for_event};
    let dir = temp_dir("review-archive");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = support::clips().join("camera-h264.mp4");
    let _camera = camera(&clip, cam_port, "vigil", "vigil");
    let args: Vec<String> = vec![
        "topologies/door-sensor-to-video.json".into(),
        "--pipeline-name".into(),
        "frontdoor".into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        format!("archiveDirectory={}", dir.join("archive").display()),
        "--set".into(),
        "minActivation=PT3S".into(),
        "--event-log".into(),
        event_log(&dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    let mut vigil = vigil_run(&dir, &args);
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(6));
    let base = format!("http://127.0.0.1:{http_port}");
    let trigger = format!("{base}/pipelines/frontdoor/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, r#"{"sensor": "door"}"#), 202);
    wait_for_event(&log, "RecordingStopped", 1, Duration::from_secs(30));
    wait_for_event(&log, "SnapshotAvailable", 1, Duration::from_secs(20));
    let list = support::archive::get_json(&format!("{base}/api/clips"));
    let clips = list["clips"].as_array().expect("clips");
    assert_eq!(clips.len(), 1, "{list}");
    let c = &clips[0];
    assert_eq!(c["pipeline"], "frontdoor");
    assert_eq!(
        c["video"],
        serde_json::json!({"name": "frontdoor", "clip": 1})
    );
    assert_eq!(c["events"], serde_json::json!(["Trigger"]));
    assert_eq!(
        c["snapshot"], "/api/videos/frontdoor/clips/1/snapshot.jpg",
        "{c}"
    );
    let (status, jpeg) =
        support::archive::get(&format!("{base}{}", c["snapshot"].as_str().unwrap_or("")));
    assert_eq!(status, 200);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
    // Its media is the clip's range exported from the archive: 5 s of pre-roll + 3 s.
    let (status, mp4) =
        support::archive::get(&format!("{base}{}", c["media"].as_str().unwrap_or("")));
    vigil.interrupt();
    // After a restart the clip is listed again (from the archive's catalog), once.
    let mut again = vigil_run(&dir, &args);
    support::peers::wait_for_port(http_port);
    let clips_now = || support::archive::get_json(&format!("{base}/api/clips"));
    support::service::wait_until("the clip is listed again", Duration::from_secs(15), || {
        clips_now()["clips"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    let relisted = clips_now();
    again.interrupt();
    let relisted = relisted["clips"].as_array().expect("clips");
    assert_eq!(relisted.len(), 1, "{relisted:?}");
    for key in [
        "pipeline", "video", "start", "end", "events", "snapshot", "media",
    ] {
        assert_eq!(relisted[0][key], c[key], "{key}");
    }
    assert_eq!(status, 200, "{c}");
    let file = dir.join("review.mp4");
    std::fs::write(&file, &mp4).expect("write");
    let probe = support::probe(&file);
    let start: jiff::Timestamp = c["start"].as_str().expect("start").parse().expect("UTC");
    let end: jiff::Timestamp = c["end"].as_str().expect("end").parse().expect("UTC");
    let span = (end - start).as_secs_f64();
    assert!(
        (probe.duration - span).abs() < 0.2 && span > 7.5,
        "the export covers the clip: {} s against {span} s ({c})",
        probe.duration
    );
}
