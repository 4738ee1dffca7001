//! A camera outage inside one archive clip is a gap everywhere: the segment before it ends with
//! its last frame (no fragment stretched over the outage), the catalog records the gap, the
//! recorded ranges (`/api/videos`, `availableMedia`) have a hole, the HLS playlist says
//! `EXT-X-DISCONTINUITY` with the date media resumes at, and the MP4 export keeps the hole on
//! its timeline instead of showing one frame for seconds. Before: one 8 s fragment, an empty
//! gaps table, one range over the hole, an `#EXTINF:8.233` with no discontinuity. And a full
//! disk under the archive leaves only whole, closed segments and the lost media as a gap
//! (before: a torn segment still "recording", and no gap).

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::archive::{get, get_json, serve};
use support::media::{SmallDisk, clip_onto_a_filling_disk, params, sample};
use support::peers::{
    camera, event_log, free_port, http_post, vigil_run, wait_for_event, wait_for_port,
};
use support::{clips, decodes_cleanly, temp_dir};
use vigil::archive::catalog::Catalog;
use vigil::bus::event_log::EventBus;
use vigil::media::recovery::{Recovery, trim_incomplete_fragment};
use vigil::media::time::{MediaDuration, MediaTime};
use vigil::nodes::gate_node::ClipCommand;
use vigil::nodes::signal_gate::EndReason;
use vigil::nodes::video_sink::VideoSink;
use vigil::topology::model::VideoSinkConfig;

const VIDEO: &str = "frontdoor";

/// Seconds between consecutive video packets of `path`, by ffprobe's presentation times.
fn packet_steps(path: &std::path::Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A VideoSink appending to [`VIDEO`] in 30 s segments.
fn video_config() -> VideoSinkConfig {
    VideoSinkConfig {
        video_name: VIDEO.into(),
        title: None,
        description: None,
        segment_length: MediaDuration::from_secs(30),
        retention_period: None,
        local_media_cache_path: None,
        local_media_cache_maximum_size_mib: None,
        disable_video_preview_image: false,
    }
}

#[test]
fn a_camera_outage_inside_a_clip_is_a_gap_everywhere() {
    let dir = temp_dir("archive-gaps");
    let archive = dir.join("archive");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = clips().join("camera-h264.mp4");
    let mut cam = camera(&clip, cam_port, "vigil", "vigil");
    let args: Vec<String> = vec![
        "topologies/door-sensor-to-video.json".into(),
        "--pipeline-name".into(),
        "door".into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        "minActivation=PT60S".into(),
        "--set".into(),
        "maxActivation=PT60S".into(),
        "--archive".into(),
        archive.to_string_lossy().into(),
        "--event-log".into(),
        event_log(&dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    let trigger = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    cam.kill9();
    std::thread::sleep(Duration::from_secs(4));
    let _cam = camera(&clip, cam_port, "vigil", "vigil");
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        2,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(5));
    vigil.interrupt();

    // The catalog: one gap of about the outage, no fragment longer than a fragment can be
    // (1 s), none inside the gap, no empty segment.
    let catalog = Catalog::open(&archive).expect("catalog");
    let segments = catalog.all_segments().expect("segments");
    assert!(
        segments.iter().all(|s| s.end > s.start),
        "no 0 s segment: {segments:?}"
    );
    assert_eq!(
        segments
            .iter()
            .map(|s| s.clip)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1,
        "one clip: {segments:?}"
    );
    let gaps = catalog
        .gaps_between(VIDEO, segments[0].start, segments[segments.len() - 1].end)
        .expect("gaps");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let gap = &gaps[0];
    assert_eq!(gap.reason, "no media from the source");
    let hole = (gap.end - gap.start).as_nanos() as f64 / 1e9;
    assert!(
        (3.5..9.0).contains(&hole),
        "the gap is the outage (4 s and the reconnect): {hole} s"
    );
    for s in &segments {
        for f in catalog.fragments(s.id).expect("fragments") {
            assert!(
                f.end - f.start <= MediaDuration::from_nanos(1_100_000_000),
                "a fragment spans {:?}..{:?} (the outage is {:?}..{:?})",
                f.start,
                f.end,
                gap.start,
                gap.end
            );
            assert!(
                f.end <= gap.start || f.start >= gap.end,
                "{f:?} inside {gap:?}"
            );
        }
    }
    drop(catalog);

    // Ranges, playlist and export.
    let port = free_port();
    let _server = serve(&archive, port);
    let videos = get_json(&format!("http://127.0.0.1:{port}/api/videos"));
    let ranges = videos["videos"][0]["timeRanges"]
        .as_array()
        .expect("ranges")
        .clone();
    assert_eq!(
        ranges.len(),
        2,
        "a hole where the camera was away: {ranges:?}"
    );
    assert_eq!(
        ranges[0]["end"].as_str(),
        Some(gap.start.to_string().as_str())
    );
    assert_eq!(
        ranges[1]["start"].as_str(),
        Some(gap.end.to_string().as_str())
    );
    let (start, end) = (
        ranges[0]["start"].as_str().expect("start").to_string(),
        ranges[1]["end"].as_str().expect("end").to_string(),
    );
    let base = format!("http://127.0.0.1:{port}/api/videos/{VIDEO}");
    let full: Value = get_json(&format!(
        "{base}/availableMedia?precision=full&startTime={start}&endTime={end}"
    ));
    assert_eq!(
        full["timeRanges"].as_array().map(Vec::len),
        Some(2),
        "{full}"
    );

    let (status, m3u8) = get(&format!(
        "{base}/manifest.m3u8?startTime={start}&endTime={end}"
    ));
    assert_eq!(status, 200);
    let m3u8 = String::from_utf8_lossy(&m3u8).to_string();
    assert_eq!(m3u8.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{m3u8}");
    let after = m3u8.split("#EXT-X-DISCONTINUITY\n").nth(1).unwrap_or("");
    assert!(
        after.contains(&format!("#EXT-X-PROGRAM-DATE-TIME:{}", gap.end)),
        "the date media resumes at follows the discontinuity:\n{m3u8}"
    );
    let longest = m3u8
        .lines()
        .filter_map(|l| {
            l.strip_prefix("#EXTINF:")?
                .trim_end_matches(',')
                .parse::<f64>()
                .ok()
        })
        .fold(0.0, f64::max);
    assert!(
        longest <= 1.1,
        "no fragment over the outage: #EXTINF:{longest}\n{m3u8}"
    );

    let (status, bytes) = get(&format!(
        "{base}/download.mp4?startTime={start}&endTime={end}"
    ));
    assert_eq!(status, 200);
    let mp4 = dir.join("export.mp4");
    std::fs::write(&mp4, bytes).expect("write");
    assert!(decodes_cleanly(&mp4));
    let steps = packet_steps(&mp4);
    let jumps: Vec<f64> = steps.iter().copied().filter(|d| *d > 0.5).collect();
    assert_eq!(
        jumps.len(),
        1,
        "one hole on the export's timeline: {jumps:?}"
    );
    assert!(
        (hole - 0.1..hole + 0.1).contains(&jumps[0]),
        "the hole is the gap: {} vs {hole}",
        jumps[0]
    );
}

/// A disk that fills while a clip is archived (the catalog is on it too), then is freed: every
/// segment left is cut back to its last recorded fragment (file length = the catalog's bytes,
/// nothing torn after it) and closed (no playlist stays live), none is empty, the media the
/// failure lost is a recorded gap, retries come a second after each failure (reported every
/// 10 s), and archiving resumes within a second of the room made.
#[test]
fn a_full_disk_leaves_only_whole_closed_segments_and_a_gap() {
    let dir = temp_dir("archive-full-disk");
    let Some(disk) = SmallDisk::mount(&dir.join("disk"), 640) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let archive = dir.join("disk").join("archive");
    let bus = EventBus::in_memory("p");
    let mut sink = VideoSink::new(&video_config(), &archive, "/s".into(), bus.clone());
    let t0 = MediaTime::from_secs(1_800_000_000);
    clip_onto_a_filling_disk(t0, &disk, 8192, |c| sink.handle(c));
    sink.shutdown();
    let events = bus.remembered();
    let errors: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "StorageError")
        .map(|e| (e.time.as_nanos() - t0.as_nanos()) / 1_000_000_000)
        .collect();
    assert!(!errors.is_empty(), "the full disk was reported");
    assert!(
        errors.iter().all(|&s| s < 20),
        "no error once freed: {errors:?}"
    );
    assert!(
        errors.windows(2).all(|w| w[1] - w[0] >= 10),
        "reported every 10 s, not at every retry: {errors:?}"
    );

    let catalog = Catalog::open(&archive).expect("catalog");
    let segments = catalog.all_segments().expect("segments");
    assert!(
        segments.len() >= 2,
        "archiving resumed once freed: {segments:?}"
    );
    for s in &segments {
        assert!(!s.recording, "closed: {s:?}");
        assert!(s.end > s.start && s.bytes > s.init_len, "not empty: {s:?}");
        let file = archive.join(&s.path);
        let len = std::fs::metadata(&file).expect("file").len() as i64;
        assert_eq!(
            len, s.bytes,
            "{} holds exactly its recorded fragments",
            s.path
        );
        assert!(
            matches!(
                trim_incomplete_fragment(&file).expect("scan"),
                Recovery::Intact { .. }
            ),
            "{} ends at a complete fragment",
            s.path
        );
    }
    let files = std::fs::read_dir(archive.join("videos").join(VIDEO))
        .expect("folder")
        .count();
    assert_eq!(
        files,
        segments.len(),
        "no file without a row (no empty file left)"
    );
    let gaps = catalog
        .gaps_between(VIDEO, t0, t0 + MediaDuration::from_secs(40))
        .expect("gaps");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].reason, "storage error");
    assert_eq!(
        gaps[0].start, segments[0].end,
        "from where the first segment stops"
    );
    assert_eq!(gaps[0].end, segments[1].start, "to where archiving resumed");
    let resumed = (segments[1].start - t0).as_nanos() as f64 / 1e9;
    assert!(
        (20.0..=21.0).contains(&resumed),
        "resumed within a second of the room made at 20 s: {resumed} s"
    );
}

/// A clip whose gate closes while the camera is away (the gate's end comes from the wall clock,
/// seconds after the last frame) ends with its last frame: the catalog's last fragment is not
/// stretched to the gate's end (before: 15 frames shown for 5.4 s).
#[test]
fn a_clip_that_ends_while_the_camera_is_away_ends_with_its_last_frame() {
    let dir = temp_dir("archive-end-away");
    let archive = dir.join("archive");
    let bus = EventBus::in_memory("p");
    let mut sink = VideoSink::new(&video_config(), &archive, "/s".into(), bus);
    let t0 = MediaTime::from_secs(1_800_000_000);
    sink.handle(support::media::clip_start(t0));
    // 2.5 s of media, then nothing; the gate closes at 8 s.
    for i in 0..75i64 {
        let t = t0 + MediaDuration::from_millis(i * 1000 / 30);
        sink.handle(sample(t, 200, i % 30 == 0, params()));
    }
    sink.handle(ClipCommand::end(
        1,
        t0 + MediaDuration::from_secs(8),
        EndReason::Minimum,
    ));
    let catalog = Catalog::open(&archive).expect("catalog");
    let segments = catalog.all_segments().expect("segments");
    assert_eq!(segments.len(), 1);
    let end = segments[0].end - t0;
    assert!(
        (2_490..=2_510).contains(&(end.as_nanos() / 1_000_000)),
        "ends with its last frame (2.5 s), not at the gate's 8 s: {end:?}"
    );
}

/// A segment whose file cannot be made (here a folder stands at its path; a full disk does the
/// same after the catalog took its row) leaves no row behind: the next try, at the first key
/// frame a second later, opens the segment under the same name (it was refused as taken).
#[test]
fn a_segment_file_that_cannot_be_made_leaves_no_row() {
    let dir = temp_dir("archive-no-file");
    let archive = dir.join("archive");
    let blocker = archive.join(format!("videos/{VIDEO}/00000001-0000.mp4"));
    std::fs::create_dir_all(&blocker).expect("a folder in the way");
    let bus = EventBus::in_memory("p");
    let mut sink = VideoSink::new(&video_config(), &archive, "/s".into(), bus.clone());
    let t0 = MediaTime::from_secs(1_800_000_000);
    sink.handle(support::media::clip_start(t0));
    for i in 0..150i64 {
        if i == 15 {
            std::fs::remove_dir(&blocker).expect("out of the way");
        }
        let t = t0 + MediaDuration::from_millis(i * 1000 / 30);
        sink.handle(sample(t, 2000, i % 30 == 0, params()));
    }
    sink.handle(ClipCommand::end(
        1,
        t0 + MediaDuration::from_secs(5),
        EndReason::Minimum,
    ));
    sink.shutdown();
    let errors: Vec<String> = bus
        .remembered()
        .iter()
        .filter(|e| e.kind == "StorageError")
        .map(|e| e.body["detail"].to_string())
        .collect();
    assert_eq!(errors.len(), 1, "the one failure, reported: {errors:?}");
    let catalog = Catalog::open(&archive).expect("catalog");
    let segments = catalog.all_segments().expect("segments");
    assert_eq!(segments.len(), 1, "{segments:?}");
    let s = &segments[0];
    assert_eq!(s.path, format!("videos/{VIDEO}/00000001-0000.mp4"));
    assert!(!s.recording);
    assert_eq!(
        (s.start, s.end),
        (
            t0 + MediaDuration::from_secs(1),
            t0 + MediaDuration::from_secs(5)
        ),
        "from the next key frame after the failure to the clip's end"
    );
}
