//! FileSink behaviour that needs no camera: the disk quota, storage errors that are retried, and
//! recovery of files a crash cut mid-fragment (checked with ffprobe).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::media::{SmallDisk, clip_onto_a_filling_disk, params, sample};
use support::{clips, decodes_cleanly, mp4_files, probe, temp_dir, vigil};
use vigil::bus::event_log::EventBus;
use vigil::media::mp4_reader::Mp4Video;
use vigil::media::recovery::{Recovery, trim_incomplete_fragment};
use vigil::media::sample::VideoParams;
use vigil::media::time::{MediaDuration, MediaTime};
use vigil::nodes::file_sink::FileSink;
use vigil::nodes::gate_node::ClipCommand;
use vigil::nodes::signal_gate::EndReason;
use vigil::topology::model::FileSinkConfig;

/// A one-second synthetic clip of 30 samples of `bytes_each` (an IDR first) starting at `start` s.
fn clip(sink: &mut FileSink, activation: u64, start: i64, bytes_each: usize) {
    clip_with_gop(sink, activation, start, bytes_each, 30);
}

/// As [`clip`], with an IDR every `gop` samples (one fragment each).
fn clip_with_gop(sink: &mut FileSink, activation: u64, start: i64, bytes_each: usize, gop: i64) {
    let t0 = MediaTime::from_secs(1_800_000_000 + start);
    sink.handle(ClipCommand::Start {
        activation,
        start: t0,
        first_event: t0,
        correlation_id: format!("c{activation}"),
        audio: None,
        snapshot: None,
    });
    for i in 0..30 {
        let t = t0 + MediaDuration::from_millis(i * 1000 / 30);
        sink.handle(sample(t, bytes_each, i % gop == 0, params()));
    }
    sink.handle(ClipCommand::end(
        activation,
        t0 + MediaDuration::from_secs(1),
        EndReason::Minimum,
    ));
}

fn config(dir: &std::path::Path, mib: u64) -> FileSinkConfig {
    FileSinkConfig {
        base_directory_path: dir.to_path_buf(),
        file_name_pattern: "cam-${System.Runtime.DateTime}".into(),
        maximum_size_mib: Some(mib),
    }
}

#[test]
fn maximum_size_deletes_this_sinks_oldest_files_first() {
    let dir = temp_dir("quota");
    std::fs::write(dir.join("someone-else.mp4"), vec![0u8; 2 << 20]).expect("write");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&dir, 1), "/s".into(), bus.clone());
    // Five clips of ~300 KiB each into a 1 MiB budget.
    for n in 0..5 {
        clip(&mut sink, n + 1, 10 * n as i64, 10_240);
    }
    let ours: Vec<PathBuf> = mp4_files(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/cam-"))
        .collect();
    let total: u64 = ours
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(total <= 1 << 20, "{total} bytes kept");
    assert_eq!(ours.len(), 3, "{ours:?}");
    // The newest three survive; the first two (oldest) were deleted, in order.
    let deleted: Vec<String> = bus
        .remembered()
        .iter()
        .filter(|e| e.kind == "RecordingDeleted")
        .map(|e| e.body["outputLocation"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(
        deleted[0].ends_with("cam-20270115T080000Z.mp4"),
        "{deleted:?}"
    );
    assert!(
        deleted[1].ends_with("cam-20270115T080010Z.mp4"),
        "{deleted:?}"
    );
    assert!(
        dir.join("someone-else.mp4").exists(),
        "files of others are never touched"
    );
}

/// An open file is fsync'd when the interval has passed at a fragment (zero: every fragment),
/// and always when it closes; the file is the same either way.
#[test]
fn open_files_are_synced_on_the_interval_and_when_they_close() {
    let mut sizes = Vec::new();
    for (interval, syncs) in [(Duration::ZERO, 3), (Duration::from_secs(3600), 1)] {
        let dir = temp_dir("sync");
        let mut sink = FileSink::new(&config(&dir, 100), "/s".into(), EventBus::in_memory("p"))
            .with_sync_interval(interval);
        // Three fragments: two written while the clip is open, the last when it closes.
        clip_with_gop(&mut sink, 1, 0, 1000, 10);
        assert_eq!(sink.syncs(), syncs, "interval {interval:?}");
        let files = mp4_files(&dir);
        assert_eq!(files.len(), 1);
        let video = Mp4Video::open(&files[0]).expect("our reader reads it");
        assert_eq!(video.len(), 30);
        sizes.push(std::fs::metadata(&files[0]).map(|m| m.len()).unwrap_or(0));
    }
    assert_eq!(sizes[0], sizes[1]);
}

#[test]
fn a_storage_error_is_reported_and_retried() {
    let dir = temp_dir("storage");
    let blocked = dir.join("blocked");
    std::fs::write(&blocked, b"a file where the folder should be").expect("write");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&blocked, 100), "/s".into(), bus.clone());
    clip(&mut sink, 1, 0, 1000);
    assert!(bus.remembered().iter().any(|e| e.kind == "StorageError"));
    assert!(
        !bus.remembered()
            .iter()
            .any(|e| e.kind == "RecordingStarted")
    );
    // The disk is fixed; the next activation records.
    std::fs::remove_file(&blocked).expect("remove");
    clip(&mut sink, 2, 10, 1000);
    assert_eq!(mp4_files(&blocked).len(), 1);
    assert!(
        bus.remembered()
            .iter()
            .any(|e| e.kind == "RecordingAvailable")
    );
}

/// A recording cut at any byte (as `kill -9` or a power cut would leave it) is trimmed back to
/// its last complete fragment and then plays without errors.
#[test]
fn a_file_cut_anywhere_is_trimmed_to_its_last_complete_fragment() {
    let dir = temp_dir("trim");
    let events = dir.join("e.jsonl");
    std::fs::write(&events, r#"{"at": 5, "input": "recordingTrigger"}"#).expect("write");
    let clip = clips().join("camera-h264.mp4");
    let out = dir.join("out");
    let r = vigil(&[
        "replay",
        "topologies/door-sensor-to-files.json",
        "--input",
        &clip.to_string_lossy(),
        "--events",
        &events.to_string_lossy(),
        "--set",
        &format!("outputDirectory={}", out.display()),
        "--event-log",
        &dir.join("log").to_string_lossy(),
    ]);
    assert!(r.status.success());
    let original = std::fs::read(&mp4_files(&out)[0]).expect("read");
    // 15 one-second fragments; cut at a spread of offsets, including inside boxes' headers.
    let mut checked = 0;
    for cut in (original.len() / 3..original.len()).step_by(original.len() / 23) {
        let path = dir.join(format!("cut-{cut}.mp4"));
        std::fs::write(&path, &original[..cut]).expect("write");
        match trim_incomplete_fragment(&path).expect("scan") {
            Recovery::Trimmed { fragments, .. } | Recovery::Intact { fragments } => {
                let p = probe(&path);
                assert_eq!(p.frames, u64::from(fragments) * 30, "cut at {cut}");
                assert!(decodes_cleanly(&path), "cut at {cut}");
                checked += 1;
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    assert!(checked >= 15, "{checked} cuts checked");
    // A file cut inside its init segment has nothing playable; files of others are left alone.
    let tiny = dir.join("tiny.mp4");
    std::fs::write(&tiny, &original[..100]).expect("write");
    assert_eq!(
        trim_incomplete_fragment(&tiny).expect("scan"),
        Recovery::Unplayable
    );
    let theirs = clips().join("camera-h264.mp4");
    assert_eq!(
        trim_incomplete_fragment(&theirs).expect("scan"),
        Recovery::NotOurs
    );
}

#[test]
fn the_sink_trims_its_damaged_files_when_it_starts() {
    let dir = temp_dir("startup");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&dir, 100), "/s".into(), bus);
    clip(&mut sink, 1, 0, 2000);
    clip(&mut sink, 2, 5, 2000);
    drop(sink);
    let files = mp4_files(&dir);
    let len = std::fs::metadata(&files[1]).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .expect("open");
    f.set_len(len - 100).expect("truncate");
    let bus = EventBus::in_memory("p");
    let _sink = FileSink::new(&config(&dir, 100), "/s".into(), bus.clone());
    let recovered: Vec<_> = bus
        .remembered()
        .into_iter()
        .filter(|e| e.kind == "RecordingRecovered" || e.kind == "RecordingUnplayable")
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(
        recovered[0].body["outputLocation"],
        files[1].to_string_lossy().as_ref()
    );
    // Found at start-up, before any media: stamped with the time it was found, not 1970.
    let now = vigil::nodes::rtsp_source::wall_now();
    let age = now.as_nanos() - recovered[0].time.as_nanos();
    assert!(
        (0..60_000_000_000).contains(&age),
        "{:?}",
        recovered[0].time
    );
}

/// The sink deletes and trims only files it can prove it wrote: a file that merely matches its
/// name pattern is never counted against `maximumSizeMiB` (it was deleted), and recovery never
/// follows a symlink out of the directory (it truncated the target).
#[test]
fn only_its_own_files_are_deleted_or_trimmed() {
    let dir = temp_dir("own-files");
    let elsewhere = temp_dir("own-files-elsewhere");
    // A Vigil file outside the directory, with a torn last fragment recovery would cut off.
    {
        let bus = EventBus::in_memory("p");
        let mut sink = FileSink::new(&config(&elsewhere, 64), "/s".into(), bus);
        clip(&mut sink, 1, 0, 1024);
        sink.shutdown();
    }
    let target = mp4_files(&elsewhere).pop().expect("a file");
    let mut bytes = std::fs::read(&target).expect("read");
    bytes.extend_from_slice(&[0, 0, 0, 200, b'm', b'o', b'o', b'f', 1, 2, 3]);
    std::fs::write(&target, &bytes).expect("write");
    let link = dir.join("cam-20200101T000001Z.mp4");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let foreign = dir.join("cam-20200101T000000Z.mp4");
    std::fs::write(&foreign, vec![7u8; 2 << 20]).expect("write");

    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&dir, 1), "/s".into(), bus.clone());
    for n in 0..5 {
        clip(&mut sink, n + 1, 10 * n as i64, 10_240);
    }
    sink.shutdown();
    assert_eq!(std::fs::read(&foreign).map(|b| b.len()).ok(), Some(2 << 20));
    assert_eq!(
        std::fs::read(&target).expect("target"),
        bytes,
        "the target was touched"
    );
    assert!(
        std::fs::symlink_metadata(&link).is_ok(),
        "the link was deleted"
    );
    let kinds: Vec<String> = bus.remembered().iter().map(|e| e.kind.clone()).collect();
    assert!(
        !kinds.iter().any(|k| k == "RecordingRecovered"),
        "{kinds:?}"
    );
    let deleted: Vec<String> = bus
        .remembered()
        .iter()
        .filter(|e| e.kind == "RecordingDeleted")
        .map(|e| e.body["outputLocation"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted.iter().all(|d| d.contains("cam-2027")),
        "{deleted:?}"
    );
}

/// A camera's timestamp glitch (one frame late by 128 ms, the next back on time) moves one
/// frame, never the timeline: every sample stays within one glitch of its true time and the
/// last one is exactly on time. (Each out-of-order frame used to get the previous, outlier
/// duration, so the timeline drifted by seconds per fragment.)
#[test]
fn a_timestamp_glitch_moves_one_frame_not_the_timeline() {
    let dir = temp_dir("glitch");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&dir, 64), "/s".into(), bus);
    let t0 = MediaTime::from_secs(1_800_000_000);
    sink.handle(ClipCommand::Start {
        activation: 1,
        start: t0,
        first_event: t0,
        correlation_id: "c".into(),
        audio: None,
        snapshot: None,
    });
    // 90 frames of 100 ms ticks at 30 fps; frames 10, 40 and 70 arrive 128 ms late.
    let true_time = |i: i64| t0 + MediaDuration::from_nanos(i * 1_000_000_000 / 30);
    for i in 0..90i64 {
        let late = if i % 30 == 10 {
            MediaDuration::from_millis(128)
        } else {
            MediaDuration::ZERO
        };
        let t = true_time(i) + late;
        sink.handle(sample(t, 64, i % 30 == 0, params()));
    }
    sink.handle(ClipCommand::end(1, true_time(90), EndReason::Minimum));
    sink.shutdown();
    let file = mp4_files(&dir).pop().expect("a file");
    let video = Mp4Video::open(&file).expect("readable");
    let times: Vec<MediaTime> = video.samples(t0).map(|s| s.expect("sample").dts).collect();
    assert_eq!(times.len(), 90);
    for (i, t) in times.iter().enumerate() {
        let off = (*t - true_time(i as i64)).as_secs_f64().abs();
        assert!(off <= 0.129, "frame {i} is {off:.3} s off its time");
        if i > 0 {
            assert!(
                *t > times[i - 1],
                "frame {i} does not follow frame {}",
                i - 1
            );
        }
    }
    let last = (times[89] - true_time(89)).as_secs_f64().abs();
    assert!(last < 0.001, "the last frame drifted {last:.3} s");
}

/// A disk that fills mid-clip, then is freed: the file being written is cut back to its last
/// complete fragment before it is announced, retries come a second of media apart, leave no
/// empty files and are reported every 10 s, and once there is room again the clip goes on in a
/// new file within a second.
#[test]
fn a_full_disk_leaves_only_playable_files_and_retries_within_a_second() {
    let dir = temp_dir("full-disk");
    let Some(disk) = SmallDisk::mount(&dir.join("disk"), 512) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let out = dir.join("disk").join("out");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&out, 100), "/s".into(), bus.clone());
    let t0 = MediaTime::from_secs(1_800_000_000);
    // The 512 KiB disk is full within the first 9 s; at 20 s it grows to 4 MiB.
    clip_onto_a_filling_disk(t0, &disk, 4096, |c| sink.handle(c));
    let events = bus.remembered();
    let errors: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "StorageError")
        .map(|e| (e.time.as_nanos() - t0.as_nanos()) / 1_000_000_000)
        .collect();
    assert!(!errors.is_empty(), "the full disk was reported");
    assert!(
        errors.windows(2).all(|w| w[1] - w[0] >= 10),
        "a failing disk is reported every 10 s, not at every retry: {errors:?}"
    );
    let repeats: u64 = events
        .iter()
        .filter(|e| e.kind == "StorageError")
        .filter_map(|e| e.body["repeatsNotReported"].as_u64())
        .sum();
    assert!(
        repeats >= 3,
        "the retries (a second after each failure) are counted: {repeats}"
    );
    assert!(
        errors.iter().all(|&s| s < 20),
        "no error once freed: {errors:?}"
    );
    // What is on disk: only files with media, each ending at a complete fragment, and every one
    // announced available.
    let files = mp4_files(&out);
    let available: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "RecordingAvailable")
        .filter_map(|e| e.body["outputLocation"].as_str().map(str::to_string))
        .collect();
    assert!(!files.is_empty(), "recording resumed once freed");
    for f in &files {
        assert!(
            matches!(
                trim_incomplete_fragment(f).expect("scan"),
                Recovery::Intact { .. }
            ),
            "{} is cut at a complete fragment",
            f.display()
        );
        assert!(
            available.contains(&f.to_string_lossy().to_string()),
            "{} is announced",
            f.display()
        );
    }
    // Once there is room (at 20 s), the next retry (at most a second later) records to the end.
    let last = Mp4Video::open(files.last().expect("a file")).expect("readable");
    assert!(
        (30 * 19..=30 * 20).contains(&last.len()),
        "recording resumed within a second of the disk being freed: {} frames",
        last.len()
    );
    for f in &files[..files.len() - 1] {
        let video = Mp4Video::open(f).expect("readable");
        assert!(
            video.len() >= 30 && video.len().is_multiple_of(30),
            "{}: {} frames, whole fragments",
            f.display(),
            video.len()
        );
    }
    // No file was announced that is not on disk or was removed as unplayable.
    for path in &available {
        let path = std::path::Path::new(path);
        let freed = events.iter().any(|e| {
            e.kind == "RecordingUnplayable" && e.body["outputLocation"].as_str() == path.to_str()
        });
        assert!(!freed, "{} announced and removed", path.display());
    }
}

/// The camera changes format mid-clip (a new resolution): the clip goes on in a new file, and
/// the finished one is announced at once, not when the gate closes; each file once.
#[test]
fn a_file_replaced_by_a_format_change_is_announced_at_once() {
    let dir = temp_dir("format-change");
    let bus = EventBus::in_memory("p");
    let mut sink = FileSink::new(&config(&dir, 100), "/s".into(), bus.clone());
    let t0 = MediaTime::from_secs(1_800_000_000);
    sink.handle(support::media::clip_start(t0));
    let wide = Arc::new(VideoParams {
        width: 128,
        ..(*params()).clone()
    });
    for i in 0..120i64 {
        let t = t0 + MediaDuration::from_millis(i * 1000 / 30);
        let format = if i < 60 { params() } else { wide.clone() };
        sink.handle(sample(t, 500, i % 30 == 0, format));
    }
    let announced = |kind: &str| -> Vec<String> {
        bus.remembered()
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.body["outputLocation"].as_str().map(str::to_string))
            .collect()
    };
    let files = mp4_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let first = files[0].to_string_lossy().to_string();
    assert_eq!(
        announced("RecordingAvailable"),
        std::slice::from_ref(&first),
        "before the gate closes"
    );
    let stopped = bus
        .remembered()
        .into_iter()
        .find(|e| e.kind == "RecordingStopped")
        .expect("stopped");
    assert_eq!(
        stopped.time,
        t0 + MediaDuration::from_secs(2),
        "at the new format's first frame"
    );
    assert_eq!(Mp4Video::open(&files[0]).expect("readable").len(), 60);
    sink.handle(ClipCommand::end(
        1,
        t0 + MediaDuration::from_secs(4),
        EndReason::Minimum,
    ));
    let second = files[1].to_string_lossy().to_string();
    assert_eq!(
        announced("RecordingAvailable"),
        [first.clone(), second.clone()]
    );
    assert_eq!(announced("RecordingStopped"), [first, second]);
    assert_eq!(Mp4Video::open(&files[1]).expect("readable").len(), 60);
}
