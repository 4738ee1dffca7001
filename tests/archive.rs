//! The video archive: clips appended to one video by `vigil replay` (exact times), then served by
//! `vigil serve`: `/api/videos`, `availableMedia` (gaps where the gate was closed, AVA's span
//! limits), the HLS playlist (byte ranges, discontinuity between clips), MP4 export, and the web
//! page in headless Chromium playing the first clip with hls.js. Live: a clip is playable through
//! the live playlist while it records; `kill -9` mid-segment is repaired at the next start.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::archive::{get, get_json, minute_clip, serve};
use support::peers::{
    camera, event_log, free_port, http_post, vigil_run, wait_for_event, wait_for_port,
};
use support::{clips, decodes_cleanly, probe, read_events, repo, temp_dir, vigil};

const START: &str = "2026-01-01T00:00:00Z";
const VIDEO: &str = "frontdoor";

/// Replays a minute with door events at 3 s and 45 s into `archive` (30 s gate, 5 s pre-roll):
/// clips [0 s, 33 s) and [40 s, 60 s).
fn record_two_clips(dir: &Path, archive: &Path) {
    record_clips(dir, archive, &[3.0, 45.0]);
}

/// Replays a minute (key frames every 2 s) with door events at `at` seconds into `archive`.
fn record_clips(dir: &Path, archive: &Path, at: &[f64]) {
    let events = dir.join("door.jsonl");
    let lines: String = at
        .iter()
        .map(|t| {
            format!("{{\"at\": {t:.1}, \"input\": \"recordingTrigger\", \"body\": {{\"door\": \"open\"}}}}\n")
        })
        .collect();
    std::fs::write(&events, lines).expect("write");
    let (clip, events, archive, log) = (
        minute_clip(dir),
        events.to_string_lossy().to_string(),
        archive.to_string_lossy().to_string(),
        dir.join("events.jsonl").to_string_lossy().to_string(),
    );
    let out = vigil(&[
        "replay",
        "topologies/door-sensor-to-video.json",
        "--input",
        clip.to_str().expect("path"),
        "--start-time",
        START,
        "--events",
        &events,
        "--archive",
        &archive,
        "--event-log",
        &log,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ranges(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("ranges")
        .iter()
        .map(|r| {
            (
                r["start"].as_str().expect("start").to_string(),
                r["end"].as_str().expect("end").to_string(),
            )
        })
        .collect()
}

/// Two gate openings make two clips in one video, with the gap between them everywhere.
#[test]
fn clips_append_to_one_video_and_play_back() {
    let dir = temp_dir("archive-replay");
    let archive = dir.join("archive");
    record_two_clips(&dir, &archive);
    let events = read_events(&dir.join("events.jsonl"));
    let kinds: Vec<&str> = events
        .iter()
        .filter(|(_, b, _)| b["outputType"] == "video")
        .map(|(k, _, _)| k.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "VideoCreated",
            "RecordingStarted",
            "RecordingAvailable",
            "RecordingStopped",
            "RecordingStarted",
            "RecordingAvailable",
            "RecordingStopped"
        ]
    );
    // The video is created before any media: its event carries the time it was (UTC), not 1970.
    let log = std::fs::read_to_string(dir.join("events.jsonl")).expect("log");
    let created = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with("VideoCreated"))
        })
        .expect("VideoCreated");
    let at: jiff::Timestamp = created["properties"]["eventTime"]
        .as_str()
        .expect("eventTime")
        .parse()
        .expect("a time");
    assert!(
        at.duration_until(jiff::Timestamp::now()).as_secs().abs() < 600,
        "VideoCreated at {at}"
    );
    // Segments: [0, 30), [30, 33) of clip 1 and [40, 60) of clip 2, each a playable file
    // (decode times run on across the segments of a clip).
    let mut files: Vec<PathBuf> = std::fs::read_dir(archive.join("videos").join(VIDEO))
        .expect("video folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let frames: Vec<u64> = files
        .iter()
        .map(|f| {
            assert!(decodes_cleanly(f), "{f:?}");
            probe(f).frames
        })
        .collect();
    assert_eq!(frames, vec![900, 90, 600], "{files:?}");

    let port = free_port();
    let _server = serve(&archive, port);
    let base = format!("http://127.0.0.1:{port}/api/videos/{VIDEO}");
    let videos = get_json(&format!("http://127.0.0.1:{port}/api/videos"));
    assert_eq!(videos["videos"][0]["name"], VIDEO);
    assert_eq!(videos["videos"][0]["recording"], false);
    let expected = vec![
        (
            "2026-01-01T00:00:00.000Z".to_string(),
            "2026-01-01T00:00:33.000Z".to_string(),
        ),
        (
            "2026-01-01T00:00:40.000Z".to_string(),
            "2026-01-01T00:01:00.000Z".to_string(),
        ),
    ];
    assert_eq!(ranges(&videos["videos"][0]["timeRanges"]), expected);
    let full = get_json(&format!(
        "{base}/availableMedia?precision=full&startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T01:00:00Z"
    ));
    assert_eq!(
        ranges(&full["timeRanges"]),
        expected,
        "gaps where the gate was closed"
    );
    let day = get_json(&format!(
        "{base}/availableMedia?precision=day&startTime=2026-01-01&endTime=2026-01-31"
    ));
    assert_eq!(
        ranges(&day["timeRanges"]),
        vec![(
            "2026-01-01T00:00:00.000Z".to_string(),
            "2026-01-02T00:00:00.000Z".to_string()
        )]
    );
    let (status, _) = get(&format!(
        "{base}/availableMedia?precision=full&startTime=2026-01-01T00:00:00Z&endTime=2026-01-02T02:00:00Z"
    ));
    assert_eq!(status, 400, "more than 25 h at full precision");
    // An impossible date is a 400 naming it (it was a 500 with a panic's text).
    let (status, body) = get(&format!(
        "{base}/availableMedia?precision=day&startTime=2026-02-31&endTime=2026-03-02"
    ));
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("'2026-02-31' is not a date"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // A byte range past the end of a segment is 416 (it was 200 with the whole file).
    let segment = format!("{base}/media/1.mp4");
    let (status, whole) = get(&segment);
    assert_eq!(status, 200);
    let past = format!("bytes={}-", whole.len());
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("range: {past}"))
        .arg(&segment)
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "416");

    let (status, m3u8) = get(&format!(
        "{base}/manifest.m3u8?startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T00:01:00Z"
    ));
    assert_eq!(status, 200);
    let m3u8 = String::from_utf8_lossy(&m3u8).to_string();
    assert_eq!(m3u8.matches("#EXT-X-DISCONTINUITY").count(), 1, "{m3u8}");
    assert_eq!(
        m3u8.matches("#EXT-X-MAP").count(),
        3,
        "one per segment file"
    );
    assert_eq!(m3u8.matches("#EXTINF").count(), 53, "one per 1 s fragment");
    assert!(m3u8.contains("#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:40.000Z"));
    assert!(
        m3u8.trim_end().ends_with("#EXT-X-ENDLIST"),
        "nothing is recording"
    );
    // The playlist plays end to end in FFmpeg (byte ranges, maps, discontinuity).
    let hls = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(format!(
            "{base}/manifest.m3u8?startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T00:01:00Z"
        ))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        hls.status.success() && hls.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&hls.stderr)
    );

    let mp4 = dir.join("export.mp4");
    let (status, bytes) = get(&format!(
        "{base}/download.mp4?startTime=2026-01-01T00:00:10Z&endTime=2026-01-01T00:00:50Z"
    ));
    assert_eq!(status, 200);
    std::fs::write(&mp4, bytes).expect("write");
    assert!(decodes_cleanly(&mp4));
    let p = probe(&mp4);
    assert_eq!(p.frames, (23 + 10) * 30, "10–33 s and 40–50 s");
    assert!(
        (p.duration - 40.0).abs() < 0.1,
        "the gap stays: {}",
        p.duration
    );

    // The web page in headless Chromium: the video is listed, its two ranges drawn, a click on
    // the first plays it from its start.
    let shot = dir.join("page.png");
    let page = Command::new("node")
        .arg(repo().join("tests/web/playback.mjs"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(VIDEO)
        .arg(&shot)
        .current_dir(repo())
        .output()
        .expect("node runs");
    let line = String::from_utf8_lossy(&page.stdout).to_string();
    assert!(
        page.status.success(),
        "{line}{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let result: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(result["ranges"], 2);
    assert_eq!(result["rangeStart"], "2026-01-01T00:00:00.000Z");
    assert_eq!(
        result["clipMarks"],
        serde_json::json!(["2026-01-01T00:00:03.000Z", "2026-01-01T00:00:45.000Z"]),
        "each clip's trigger marked where it happened"
    );
    assert!(result["currentTime"].as_f64().unwrap_or(0.0) >= 1.0);
    let shown = result["shownTime"].as_str().expect("shown time");
    assert!(
        shown.starts_with("2026-01-01T00:00:0") || shown.starts_with("2026-01-01T00:00:1"),
        "the frame shown is from the first clip: {shown}"
    );
    assert_eq!(result["errors"], serde_json::json!([]));
    assert!(shot.exists(), "screenshot at {}", shot.display());
    println!("screenshot: {}", shot.display());
}

/// A door event 1 s after a clip ended: its 5 s of pre-roll reach back into the clip before, but
/// nothing is written twice: the second clip starts at the first clip's end (33 s, a key frame),
/// so the video is one continuous range and the playlist's dates never step back. Before: the
/// second clip began at 29 s, and 29–33 s was in the video twice.
#[test]
fn clips_in_one_video_never_overlap() {
    let dir = temp_dir("archive-overlap");
    let archive = dir.join("archive");
    record_clips(&dir, &archive, &[3.0, 34.0]);
    let started: Vec<String> = std::fs::read_to_string(dir.join("events.jsonl"))
        .expect("log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["properties"]["eventType"] == "Microsoft.VideoAnalyzer.Operational.RecordingStarted"
        })
        .filter_map(|v| v["properties"]["eventTime"].as_str().map(String::from))
        .collect();
    assert_eq!(
        started,
        ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:33.000Z"]
    );
    let port = free_port();
    let _server = serve(&archive, port);
    let videos = get_json(&format!("http://127.0.0.1:{port}/api/videos"));
    assert_eq!(
        ranges(&videos["videos"][0]["timeRanges"]),
        vec![(
            "2026-01-01T00:00:00.000Z".to_string(),
            "2026-01-01T00:01:00.000Z".to_string()
        )]
    );
    let (status, m3u8) = get(&format!(
        "http://127.0.0.1:{port}/api/videos/{VIDEO}/manifest.m3u8?startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T00:01:00Z"
    ));
    assert_eq!(status, 200);
    let m3u8 = String::from_utf8_lossy(&m3u8).to_string();
    let dates: Vec<&str> = m3u8
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");
    assert!(dates.contains(&"2026-01-01T00:00:33.000Z"), "{m3u8}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(archive.join("videos").join(VIDEO))
        .expect("video folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let frames: Vec<u64> = files.iter().map(|f| probe(f).frames).collect();
    assert_eq!(
        frames,
        vec![900, 90, 810],
        "[0, 30), [30, 33), [33, 60): {files:?}"
    );
}

/// Live: the clip is playable through the live playlist while it records; `kill -9` in the
/// middle of a segment is repaired at the next start, and every segment then plays.
#[test]
fn live_recording_is_playable_and_survives_kill_9() {
    let dir = temp_dir("archive-live");
    let archive = dir.join("archive");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let pipeline = "door";
    let args: Vec<String> = vec![
        "topologies/door-sensor-to-video.json".into(),
        "--pipeline-name".into(),
        pipeline.into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--archive".into(),
        archive.to_string_lossy().into(),
        "--event-log".into(),
        event_log(&dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    std::thread::sleep(Duration::from_secs(6));
    let trigger =
        format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    let sent = std::time::Instant::now();
    wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        1,
        Duration::from_secs(20),
    );
    let to_available = sent.elapsed();
    let base = format!("http://127.0.0.1:{http_port}/api/videos/{VIDEO}");
    let (status, m3u8) = get(&format!("{base}/manifest.m3u8"));
    let m3u8 = String::from_utf8_lossy(&m3u8).to_string();
    assert_eq!(status, 200, "{m3u8}");
    assert!(
        !m3u8.contains("#EXT-X-ENDLIST"),
        "live while recording:\n{m3u8}"
    );
    assert!(m3u8.contains("#EXTINF"), "the first fragments are listed");
    println!("trigger to RecordingAvailable: {to_available:?}");
    std::thread::sleep(Duration::from_secs(3));
    vigil.kill9();

    let mut again = vigil_run(&dir, &args);
    let events = wait_for_event(
        &event_log(&dir),
        "ArchiveRepaired",
        1,
        Duration::from_secs(20),
    );
    again.interrupt();
    let repaired = events
        .iter()
        .find(|(k, _, _)| k == "ArchiveRepaired")
        .map(|(_, b, _)| b.clone())
        .expect("reported");
    assert_eq!(repaired["segmentsClosed"], 1, "{repaired}");
    let port = free_port();
    let _server = serve(&archive, port);
    let videos = get_json(&format!("http://127.0.0.1:{port}/api/videos"));
    assert_eq!(videos["videos"][0]["recording"], false);
    for f in std::fs::read_dir(archive.join("videos").join(VIDEO))
        .expect("folder")
        .flatten()
    {
        assert!(
            decodes_cleanly(&f.path()),
            "{:?} plays after repair",
            f.path()
        );
    }
    let (status, m3u8) = get(&format!(
        "http://127.0.0.1:{port}/api/videos/{VIDEO}/manifest.m3u8"
    ));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&m3u8).contains("#EXT-X-ENDLIST"));
}

/// AVA's video-sink topologies, unchanged, through `vigil replay` of the test clip (motion
/// 8–12 s; a door event at 10 s): each appends the clip its gate rules give to its video.
#[test]
fn ava_video_sink_topologies_run_unchanged() {
    let corpus = repo().join("../shared/ava-topologies/live");
    if !corpus.exists() {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    }
    let dir = temp_dir("archive-ava");
    let trigger = dir.join("trigger.jsonl");
    std::fs::write(
        &trigger,
        "{\"at\": 10.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let pipeline = format!("avatest{}", std::process::id());
    let cases = [
        // (topology, video, expected range: motion from 8 s / door event at 10 s − 5 s / always)
        (
            "evr-motion-video-sink",
            "sample-motion-video",
            "00:00:08",
            "00:00:20",
        ),
        (
            "evr-motion-video-sink-file-sink",
            "sample-motion-video-sink-files",
            "00:00:08",
            "00:00:20",
        ),
        (
            "evr-hubMessage-video-sink",
            "sample-hub-messages-video-sink",
            "00:00:05",
            "00:00:20",
        ),
        (
            "cvr-video-sink",
            "sample-cvr-video-sink",
            "00:00:00",
            "00:00:20",
        ),
    ];
    for (topology, video, start, end) in cases {
        let archive = dir.join(topology);
        let file = corpus.join(topology).join("topology.json");
        let mut args = vec![
            "replay".to_string(),
            file.to_string_lossy().to_string(),
            "--input".into(),
            clips()
                .join("camera-h264.mp4")
                .to_string_lossy()
                .to_string(),
            "--start-time".into(),
            START.into(),
            "--archive".into(),
            archive.to_string_lossy().to_string(),
            "--pipeline-name".into(),
            pipeline.clone(),
            "--set".into(),
            "rtspUrl=rtsp://unused/".into(),
        ];
        if topology == "evr-hubMessage-video-sink" {
            let nobody = format!("inferencingUrl=http://127.0.0.1:{}/score", free_port());
            args.extend(["--set".into(), nobody, "--events".into()]);
            args.push(trigger.to_string_lossy().to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vigil(&refs);
        assert!(
            out.status.success(),
            "{topology}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let _server = serve(&archive, port);
        let videos = get_json(&format!("http://127.0.0.1:{port}/api/videos"));
        assert_eq!(videos["videos"][0]["name"], video, "{topology}");
        assert_eq!(
            ranges(&videos["videos"][0]["timeRanges"]),
            vec![(
                format!("2026-01-01T{start}.000Z"),
                format!("2026-01-01T{end}.000Z")
            )],
            "{topology}"
        );
    }
    // The file sink of evr-motion-video-sink-file-sink wrote to AVA's /var/media: clean up.
    for f in std::fs::read_dir("/var/media")
        .into_iter()
        .flatten()
        .flatten()
    {
        if f.file_name().to_string_lossy().contains(&pipeline) {
            let _ = std::fs::remove_file(f.path());
        }
    }
}
