//! Replay and live run one engine: the same media and the same triggers give the same clips.
//!
//! Live, three pipelines of one service share the camera's session, so they see the same
//! samples: `all` records everything to a file and `yard` to a video of the archive (their
//! gates held open), `door` records a clip per trigger. Then `vigil replay` runs `door`'s
//! topology over `all`'s file, and again over the archive's export of the same minute, with the
//! same trigger bodies, each arriving where it arrived live (after the same frame, which its
//! `TriggerReceived` event gives). Each replay's clips must be `door`'s byte for byte: the same
//! files by name (their UTC start), the same bytes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::peers::{camera, free_port, http_post};
use support::service::{activate, count_of, serve, set_pipeline, set_topology, wait_until};
use support::{clips, mp4_files, temp_dir, vigil};

const DOOR: &str = "DoorSensorToFiles";

/// UTC (Unix seconds) of the first sample of an MP4 that Vigil wrote: its first `prft` box
/// (NTP time of the fragment's first sample; the first fragment starts at decode time 0).
fn first_sample_utc(file: &Path) -> f64 {
    let bytes = std::fs::read(file).expect("read");
    let at = bytes
        .windows(4)
        .position(|w| w == b"prft")
        .expect("a prft box");
    // 'prft', version+flags (4), reference track (4), NTP (8).
    let ntp = &bytes[at + 12..at + 20];
    let ntp = u64::from_be_bytes(ntp.try_into().expect("8 bytes"));
    let (secs, frac) = ((ntp >> 32) as f64, (ntp & 0xffff_ffff) as f64);
    secs - 2_208_988_800.0 + frac / 4_294_967_296.0
}

/// Every video packet: timestamp, size and MD5, as ffmpeg's framemd5 lists them.
fn packets(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn replay_of_what_live_saw_gives_the_same_clips() {
    let dir = temp_dir("replay-live");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut service = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    let url = format!("rtsp://127.0.0.1:{cam_port}/camera");
    let params = |out: &str, min: &str| {
        vec![
            ("rtspUrl", url.clone()),
            ("outputDirectory", dir.join(out).display().to_string()),
            ("minActivation", min.to_string()),
            ("maxActivation", "PT60S".to_string()),
        ]
    };
    assert_eq!(
        set_pipeline(http_port, "all", DOOR, &params("all", "PT60S")).0,
        201
    );
    assert_eq!(
        set_pipeline(http_port, "door", DOOR, &params("door", "PT3S")).0,
        201
    );
    set_topology(http_port, "topologies/door-sensor-to-video.json");
    let archive = dir.join("archive");
    let yard = vec![
        ("rtspUrl", url.clone()),
        ("archiveDirectory", archive.display().to_string()),
        ("videoName", "yard".to_string()),
        ("minActivation", "PT60S".to_string()),
        ("maxActivation", "PT60S".to_string()),
    ];
    assert_eq!(
        set_pipeline(http_port, "yard", "DoorSensorToVideo", &yard).0,
        201
    );
    activate(http_port, "all");
    activate(http_port, "door");
    activate(http_port, "yard");
    wait_until("all three connect", Duration::from_secs(20), || {
        ["all", "door", "yard"]
            .iter()
            .all(|p| count_of(&log, p, "MediaSessionEstablished") == 1)
    });
    std::thread::sleep(Duration::from_secs(1));
    let post = |pipeline: &str, body: &str| {
        let url =
            format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
        assert_eq!(http_post(&url, body), 202, "trigger for {pipeline}");
    };
    post("all", "{}");
    post("yard", "{}");
    // door's first clip starts 5 s before its trigger: well inside all's recording.
    std::thread::sleep(Duration::from_secs(7));
    let mut bodies = Vec::new();
    for (n, pause) in [9, 4].into_iter().enumerate() {
        let body = format!(r#"{{"sensor": "door", "count": {n}}}"#);
        post("door", &body);
        bodies.push(body);
        std::thread::sleep(Duration::from_secs(pause));
    }
    wait_until("door's two clips close", Duration::from_secs(30), || {
        count_of(&log, "door", "RecordingStopped") == 2
    });
    service.interrupt();

    let all = mp4_files(&dir.join("all"));
    assert_eq!(all.len(), 1, "{all:?}");
    let live = mp4_files(&dir.join("door"));
    assert_eq!(live.len(), 2, "{live:?}");

    // The replay: door's topology over all's file, the same bodies, each arriving after the
    // frame it arrived after live. Live, its TriggerReceived time is the gate's media clock
    // then (that frame's time, in whole milliseconds); a replayed event is handled after the
    // first frame at or after its `at`: half a frame before that frame's time.
    let start = first_sample_utc(&all[0]);
    let arrivals: Vec<f64> = support::service::events_of(&log, "door")
        .iter()
        .filter(|e| {
            e["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(".TriggerReceived"))
        })
        .map(|e| {
            let time: jiff::Timestamp = e["properties"]["eventTime"]
                .as_str()
                .unwrap_or("")
                .parse()
                .expect("eventTime");
            time.as_millisecond() as f64 / 1000.0
        })
        .collect();
    assert_eq!(arrivals.len(), 2);
    // The events for a replay of `input`, whose first sample is at `start` (UTC).
    let events_for = |input: &Path, start: f64| -> PathBuf {
        let events: Vec<String> = bodies
            .iter()
            .zip(&arrivals)
            .map(|(body, arrival)| {
                let at = arrival - start - 0.016;
                format!(r#"{{"at": {at:.3}, "input": "recordingTrigger", "body": {body}}}"#)
            })
            .collect();
        let file = input.with_extension("events.jsonl");
        std::fs::write(&file, events.join("\n")).expect("write events");
        file
    };
    let replay = replay_door(&dir, &all[0], &events_for(&all[0], start), "replayed");
    assert_same_clips(&live, &replay);

    // The same minute from the continuously recorded archive, exported as one MP4.
    let port = free_port();
    let server = support::archive::serve(&archive, port);
    let from = jiff::Timestamp::from_millisecond((start * 1000.0).round() as i64).expect("UTC");
    let to = from + jiff::SignedDuration::from_secs(60);
    let (status, export) = support::archive::get(&format!(
        "http://127.0.0.1:{port}/api/videos/yard/download.mp4?startTime={from}&endTime={to}"
    ));
    drop(server);
    assert_eq!(status, 200);
    let exported = dir.join("yard-export.mp4");
    std::fs::write(&exported, export).expect("write");
    // yard's gate opened at its own trigger: its first key frame may be the next one.
    let from_archive = first_sample_utc(&exported);
    assert!(
        (from_archive - start).abs() < 1.1,
        "the export starts where all's file does, or a key frame later"
    );
    let events_file = events_for(&exported, from_archive);
    let replay = replay_door(&dir, &exported, &events_file, "replayed-archive");
    assert_same_clips(&live, &replay);
}

/// `vigil replay` of door's topology over `input` with `events`, clips into `<dir>/<out>`.
fn replay_door(dir: &Path, input: &Path, events_file: &Path, out: &str) -> Vec<PathBuf> {
    let replayed = dir.join(out);
    let args = [
        "replay".to_string(),
        "topologies/door-sensor-to-files.json".into(),
        "--input".into(),
        input.display().to_string(),
        "--events".into(),
        events_file.display().to_string(),
        "--pipeline-name".into(),
        "door".into(),
        "--event-log".into(),
        dir.join(format!("{out}-log.jsonl")).display().to_string(),
        "--set".into(),
        format!("outputDirectory={}", replayed.display()),
        "--set".into(),
        "minActivation=PT3S".into(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vigil(&argv);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    mp4_files(&replayed)
}

/// `replay`'s clips are `live`'s: the same names (UTC starts), packets and bytes.
fn assert_same_clips(live: &[PathBuf], replay: &[PathBuf]) {
    let names = |files: &[std::path::PathBuf]| -> Vec<String> {
        files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    };
    assert_eq!(names(replay), names(live), "the same clips, by UTC start");
    for (l, r) in live.iter().zip(replay) {
        let (lp, rp) = (packets(l), packets(r));
        assert!(lp.len() > 60, "{}: {} packets", l.display(), lp.len());
        assert_eq!(lp, rp, "{} and {} differ", l.display(), r.display());
        assert!(
            (first_sample_utc(l) - first_sample_utc(r)).abs() < 0.001,
            "{} and {} start at different times",
            l.display(),
            r.display()
        );
        assert!(
            std::fs::read(l).expect("live clip") == std::fs::read(r).expect("replayed clip"),
            "{} and {} are not byte-identical",
            l.display(),
            r.display()
        );
    }
}
