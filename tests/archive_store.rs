//! Upload of the archive to real object stores, every test run against each: an S3 server
//! (s3s-fs, which checks SigV4 signatures) and Azure Blob Storage (Azurite, which checks shared-key
//! signatures): segments land under the right keys with the right bytes; a wrong secret is refused
//! and nothing is lost; a store that is down while recording gets everything once it is up; a
//! cache that overflows while the store is down drops the oldest media and the gap shows in
//! `availableMedia`; evicted segments play back from the store; retention deletes in both places;
//! `kill -9` around an upload and a frozen store lose nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::archive::{get_json, serve};
use support::peers::{
    camera, event_log, free_port, http_post, vigil_run_with_env, wait_for_event, wait_for_port,
};
use support::stores::{Kind, TestStore};
use support::{clips, read_events, repo, temp_dir};

const START: &str = "2026-01-01T00:00:00Z";
const VIDEO: &str = "frontdoor";

/// `vigil replay` of `clip` with door events at 3 s and 45 s into `archive`, uploading to
/// `store` (prefix `site-a`) with the environment `env`.
fn replay_with_store(
    dir: &Path,
    clip: &Path,
    archive: &Path,
    store: &TestStore,
    env: &[(String, String)],
    extra: &[&str],
) -> Vec<(String, serde_json::Value, Option<String>)> {
    let events = dir.join("door.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {}}\n\
         {\"at\": 45.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let log = dir.join("events.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("replay")
        .arg("topologies/door-sensor-to-video.json")
        .arg("--input")
        .arg(clip)
        .args(["--start-time", START, "--events"])
        .arg(&events)
        .arg("--archive")
        .arg(archive)
        .args(["--store", &store.url("site-a")])
        .arg("--event-log")
        .arg(&log)
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .current_dir(repo())
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_events(&log)
}

/// `vigil run` arguments: the door-sensor-to-video topology on the camera at `cam_port`, 5 s
/// clips, into `archive` and `store` under `prefix`, HTTP on `http_port`.
fn live_args(
    dir: &Path,
    archive: &Path,
    cam_port: u16,
    http_port: u16,
    store: &TestStore,
    prefix: &str,
) -> Vec<String> {
    vec![
        "topologies/door-sensor-to-video.json".into(),
        "--pipeline-name".into(),
        "door".into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        "minActivation=PT5S".into(),
        "--set".into(),
        "maxActivation=PT5S".into(),
        "--archive".into(),
        archive.to_string_lossy().into(),
        "--store".into(),
        store.url(prefix),
        "--event-log".into(),
        event_log(dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ]
}

/// The `eventTime` of the first `kind` event in `log`.
fn first_event_time(log: &Path, kind: &str) -> jiff::Timestamp {
    std::fs::read_to_string(log)
        .expect("log")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(kind))
        })
        .and_then(|v| v["properties"]["eventTime"].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no {kind} with a time"))
}

/// The object of the first `SegmentUploaded` in `events` holds the bytes of `segment`.
fn assert_first_upload_is_the_segment(
    events: &[(String, serde_json::Value, Option<String>)],
    segment: &Path,
    store: &TestStore,
) {
    let key = events
        .iter()
        .find(|(k, _, _)| k == "SegmentUploaded")
        .and_then(|(_, b, _)| b["key"].as_str().map(str::to_string))
        .expect("key");
    assert_eq!(
        std::fs::read(segment).expect("local"),
        store.read(&key).expect("uploaded"),
        "nothing lost"
    );
}

fn segment_files(archive: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(archive.join("videos").join(VIDEO))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Every segment is uploaded under `<prefix>/<video>/<clip>-<seq>.mp4` with the cache's bytes;
/// with a wrong secret the store refuses (SignatureDoesNotMatch), the failure is reported once
/// and every segment stays in the cache.
fn segments_land_in_the_store_with_their_bytes(kind: Kind) {
    let dir = temp_dir("store-upload");
    let store = TestStore::new(kind, &dir.join("store"));
    let _server = store.start();
    let clip = support::archive::minute_clip(&dir);

    let refused = dir.join("refused");
    std::fs::create_dir_all(&refused).expect("dir");
    let archive_refused = refused.join("archive");
    let events = replay_with_store(
        &refused,
        &clip,
        &archive_refused,
        &store,
        &store.env_with_wrong_secret(),
        &[],
    );
    let errors: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, _, _)| k == "StorageError")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    assert!(
        errors[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(store.refusal_code())),
        "{errors:?}"
    );
    assert_eq!(
        segment_files(&archive_refused).len(),
        3,
        "all kept in the cache"
    );

    let archive = dir.join("archive");
    let events = replay_with_store(&dir, &clip, &archive, &store, &store.env(), &[]);
    let uploaded: Vec<String> = events
        .iter()
        .filter(|(k, _, _)| k == "SegmentUploaded")
        .map(|(_, b, _)| b["key"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        uploaded,
        vec![
            "site-a/frontdoor/00000001-0000.mp4",
            "site-a/frontdoor/00000001-0001.mp4",
            "site-a/frontdoor/00000002-0000.mp4"
        ],
        "in order"
    );
    for (local, key) in segment_files(&archive).iter().zip(&uploaded) {
        assert_eq!(
            std::fs::read(local).expect("local"),
            store.read(key).expect("uploaded"),
            "{key}"
        );
    }
    let marker = String::from_utf8(
        store
            .read("site-a/frontdoor/.vigil-video.json")
            .expect("ownership marker"),
    )
    .expect("UTF-8");
    assert!(marker.contains("installation"), "{marker}");
}

/// The cache (6 MiB here) overflows while the store is unreachable: the oldest segments are
/// dropped, each drop is reported, and `availableMedia` shows the gap.
fn cache_overflow_drops_the_oldest_and_reports_the_gap(kind: Kind) {
    let dir = temp_dir("store-overflow");
    let clip = busy_minute(&dir);
    let archive = dir.join("archive");
    // Never started: nobody answers on its port.
    let nobody = TestStore::new(kind, &dir.join("store"));
    let events = replay_with_store(
        &dir,
        &clip,
        &archive,
        &nobody,
        &nobody.env(),
        &["--set", "cacheMaximumSizeMiB=6"],
    );
    let dropped: Vec<(String, String)> = events
        .iter()
        .filter(|(k, _, _)| k == "DataDropped")
        .map(|(_, b, _)| {
            (
                b["start"].as_str().unwrap_or("").to_string(),
                b["end"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(!dropped.is_empty(), "something was dropped");
    assert_eq!(
        dropped[0].0, "2026-01-01T00:00:00.000Z",
        "the oldest first: {dropped:?}"
    );
    let kept: u64 = segment_files(&archive)
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(kept <= 6 * 1024 * 1024, "within the budget: {kept} bytes");
    let port = free_port();
    let _server = serve(&archive, port);
    let available = get_json(&format!(
        "http://127.0.0.1:{port}/api/videos/{VIDEO}/availableMedia?precision=full&startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T01:00:00Z"
    ));
    let first = available["timeRanges"][0]["start"].as_str().unwrap_or("");
    assert_eq!(
        first,
        dropped.last().map(|d| d.1.as_str()).unwrap_or(""),
        "the media starts where the drops end: {available}"
    );
}

/// Live: the store is down while a clip records; the failure is reported, the segment waits in
/// the cache, and once the store is up it is uploaded with its bytes.
fn store_down_then_up_loses_nothing(kind: Kind) {
    let dir = temp_dir("store-down-up");
    let archive = dir.join("archive");
    let store = TestStore::new(kind, &dir.join("store"));
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let args = live_args(&dir, &archive, cam_port, http_port, &store, "live");
    let mut vigil = vigil_run_with_env(&dir, &args, &store.env());
    wait_for_port(http_port);
    std::thread::sleep(Duration::from_secs(6));
    let trigger = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    wait_for_event(
        &event_log(&dir),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    wait_for_event(&event_log(&dir), "StorageError", 1, Duration::from_secs(10));
    // Away for 10 s more (several attempts fail), then back: used again within about a second.
    std::thread::sleep(Duration::from_secs(10));
    let _server = store.start();
    let back = jiff::Timestamp::now();
    let events = wait_for_event(
        &event_log(&dir),
        "SegmentUploaded",
        1,
        Duration::from_secs(60),
    );
    vigil.interrupt();
    assert!(events.iter().any(|(k, _, _)| k == "StorageRestored"));
    let restored: jiff::Timestamp = first_event_time(&event_log(&dir), "StorageRestored");
    let late = back.duration_until(restored).as_secs_f64();
    assert!(
        late < 2.5,
        "the store was used again {late:.2} s after it was back"
    );
    let local = segment_files(&archive);
    assert_eq!(local.len(), 1);
    assert_first_upload_is_the_segment(&events, &local[0], &store);
}

/// A busier minute than the test clip: ~1.5 Mbit/s of noise, 640×360.
fn busy_minute(dir: &Path) -> PathBuf {
    let clip = dir.join("busy.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=s=640x360:r=30:d=60,noise=alls=12:allf=t")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "1500k",
            "-g",
            "30",
        ])
        .args(["-bf", "0", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    clip
}

/// With the store up and a 6 MiB cache, uploaded segments leave the cache (oldest first) and are
/// played back from the store: the HLS media route and the MP4 export read them there.
fn evicted_segments_play_back_from_the_store(kind: Kind) {
    let dir = temp_dir("store-evicted");
    let store = TestStore::new(kind, &dir.join("store"));
    let _server = store.start();
    let clip = busy_minute(&dir);
    let archive = dir.join("archive");
    let events = replay_with_store(
        &dir,
        &clip,
        &archive,
        &store,
        &store.env(),
        &["--set", "cacheMaximumSizeMiB=6"],
    );
    assert_eq!(
        events
            .iter()
            .filter(|(k, _, _)| k == "SegmentUploaded")
            .count(),
        3
    );
    assert!(
        !events.iter().any(|(k, _, _)| k == "DataDropped"),
        "nothing lost"
    );
    let local = segment_files(&archive);
    assert!(local.len() < 3, "the oldest left the cache: {local:?}");
    let evicted = store
        .read("site-a/frontdoor/00000001-0000.mp4")
        .expect("in the store");
    let port = free_port();
    let _vigil = support::archive::serve_with_store(
        &archive,
        port,
        &["--store", &store.url("site-a")],
        &store.env(),
    );
    let base = format!("http://127.0.0.1:{port}/api/videos/{VIDEO}");
    let (status, media) = support::archive::get(&format!("{base}/media/1.mp4"));
    assert_eq!(status, 200);
    assert_eq!(media, evicted, "segment 1 from the store");
    let (status, mp4) = support::archive::get(&format!(
        "{base}/download.mp4?startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T00:00:33Z"
    ));
    assert_eq!(status, 200);
    let file = dir.join("export.mp4");
    std::fs::write(&file, mp4).expect("write");
    assert!(support::decodes_cleanly(&file));
    assert_eq!(
        support::probe(&file).frames,
        33 * 30,
        "0–33 s, the evicted part included"
    );
}

/// `retentionPeriod` (P1D): clips recorded three days ago are deleted from the cache and the
/// store at the next pass of the archive keeper, each reported.
fn retention_deletes_expired_segments_locally_and_remotely(kind: Kind) {
    let dir = temp_dir("store-retention");
    let store = TestStore::new(kind, &dir.join("store"));
    let _server = store.start();
    let clip = support::archive::minute_clip(&dir);
    // The shipped topology with a retention period on its video.
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("topologies/door-sensor-to-video.json"))
            .expect("topology"),
    )
    .expect("JSON");
    doc["properties"]["sinks"][0]["videoCreationProperties"]["retentionPeriod"] = "P1D".into();
    let topology = dir.join("retention.json");
    std::fs::write(&topology, doc.to_string()).expect("write");
    let three_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72);
    let archive = dir.join("archive");
    let events_file = dir.join("door.jsonl");
    std::fs::write(
        &events_file,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let replay = |log: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("replay")
            .arg(&topology)
            .arg("--input")
            .arg(&clip)
            .args(["--start-time", &three_days_ago.to_string(), "--events"])
            .arg(&events_file)
            .arg("--archive")
            .arg(&archive)
            .args(["--store", &store.url("old")])
            .arg("--event-log")
            .arg(log)
            .envs(store.env())
            .current_dir(repo())
            .output()
            .expect("vigil runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        read_events(log)
    };
    let events = replay(&dir.join("events.jsonl"));
    // One pass of the keeper after the replay: the segments are uploaded, then found expired.
    let uploaded = events
        .iter()
        .filter(|(k, _, _)| k == "SegmentUploaded")
        .count();
    assert_eq!(uploaded, 2, "0–30 s and 30–33 s");
    let deleted = events
        .iter()
        .filter(|(k, b, _)| k == "RecordingDeleted" && b["reason"] == "retentionPeriod")
        .count();
    assert_eq!(deleted, 2, "both segments expired");
    assert!(segment_files(&archive).is_empty(), "gone from the cache");
    assert!(
        !archive.join("snapshots/frontdoor/00000001.jpg").exists(),
        "the clip's snapshot went with its last segment"
    );
    let remote: Vec<String> = store
        .keys("old/frontdoor/")
        .into_iter()
        .filter(|k| k.ends_with(".mp4"))
        .collect();
    assert!(remote.is_empty(), "gone from the store: {remote:?}");
    assert_eq!(
        store.keys("old/frontdoor/"),
        vec!["old/frontdoor/.vigil-video.json"],
        "the ownership marker stays"
    );
}

/// `kill -9` as the clip ends (while its segment is finished and uploaded, twice a second): after
/// a restart every segment in the cache plays and reaches the store with the same bytes.
fn kill_9_around_upload_leaves_cache_and_store_agreeing(kind: Kind) {
    let dir = temp_dir("store-kill9");
    let archive = dir.join("archive");
    let store = TestStore::new(kind, &dir.join("store"));
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _server = store.start();
    let args = |http: u16| live_args(&dir, &archive, cam_port, http, &store, "crash");
    let env = store.env();
    let mut vigil = vigil_run_with_env(&dir, &args(http_port), &env);
    wait_for_port(http_port);
    std::thread::sleep(Duration::from_secs(6));
    let trigger = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    wait_for_event(
        &event_log(&dir),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.kill9();
    let second = free_port();
    let mut again = vigil_run_with_env(&dir, &args(second), &env);
    wait_for_port(second);
    let local = segment_files(&archive);
    assert!(!local.is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let all_uploaded = || {
        local.iter().all(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            store.read(&format!("crash/frontdoor/{name}")) == std::fs::read(f).ok()
        })
    };
    while !all_uploaded() {
        assert!(
            std::time::Instant::now() < deadline,
            "segments not in the store: {local:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    again.interrupt();
    for f in &local {
        assert!(support::decodes_cleanly(f), "{f:?} plays");
    }
}

/// A store that stops answering (frozen, its connections open) mid-upload: the upload gives up
/// at its deadline and the outage is reported (before: nothing for the client's 60 s), and once
/// the store answers again the segment lands, its `SegmentUploaded` stamped when it did (before:
/// when the attempt began).
fn a_frozen_store_is_reported_and_used_again_when_it_thaws(kind: Kind) {
    let dir = temp_dir("store-frozen");
    let archive = dir.join("archive");
    let store = TestStore::new(kind, &dir.join("store"));
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let server = store.start();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &server.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    let args = live_args(&dir, &archive, cam_port, http_port, &store, "frozen");
    let mut vigil = vigil_run_with_env(&dir, &args, &store.env());
    wait_for_port(http_port);
    std::thread::sleep(Duration::from_secs(6));
    let trigger = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&trigger, "{}"), 202);
    wait_for_event(
        &event_log(&dir),
        "RecordingStarted",
        1,
        Duration::from_secs(20),
    );
    signal("-STOP");
    let frozen = std::time::Instant::now();
    wait_for_event(&event_log(&dir), "StorageError", 1, Duration::from_secs(40));
    let reported = frozen.elapsed();
    signal("-CONT");
    let thawed = jiff::Timestamp::now();
    let events = wait_for_event(
        &event_log(&dir),
        "SegmentUploaded",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    assert!(
        reported < Duration::from_secs(30),
        "the frozen store was reported after {reported:?}"
    );
    assert!(events.iter().any(|(k, _, _)| k == "StorageRestored"));
    let uploaded: jiff::Timestamp = first_event_time(&event_log(&dir), "SegmentUploaded");
    assert!(
        uploaded >= thawed,
        "stamped when it landed ({uploaded}), after the thaw ({thawed})"
    );
    let local = segment_files(&archive);
    assert_first_upload_is_the_segment(&events, &local[0], &store);
}

/// An object larger than a part (8 MiB) goes up in parts and comes back whole, read by another
/// client than Vigil's; a ranged read across a part boundary gets exactly its bytes; a missing
/// object reads as absent, and deleting it twice is fine.
fn large_objects_go_up_in_parts(kind: Kind) {
    use vigil::archive::store::{MULTIPART_PART, ObjectStore};
    let dir = temp_dir("store-multipart");
    let store = TestStore::new(kind, &dir.join("store"));
    let _server = store.start();
    let env = store.env();
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let client = ObjectStore::from_env_with(&store.url("big"), &lookup).expect("store");
    client.check().expect("the bucket answers");
    let body: Vec<u8> = (0..2 * MULTIPART_PART + 12345)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    let key = client.key("frontdoor/00000001-0000.mp4");
    client.put(&key, body.clone()).expect("uploaded in parts");
    assert_eq!(
        store.read(&key).as_deref(),
        Some(&body[..]),
        "whole and in order"
    );
    let (first, last) = (MULTIPART_PART as u64 - 100, MULTIPART_PART as u64 + 99);
    assert_eq!(
        client.get_range(&key, first, last).expect("ranged read"),
        Some(body[first as usize..=last as usize].to_vec())
    );
    assert_eq!(
        client
            .get(&client.key("frontdoor/absent.mp4"))
            .expect("get"),
        None
    );
    client.delete(&key).expect("delete");
    client.delete(&key).expect("absent is fine");
    assert_eq!(store.read(&key), None);
}

/// Every test above, once against each store.
macro_rules! on_each_store {
    ($($test:ident),* $(,)?) => {
        mod s3 {
            $(#[test]
            fn $test() {
                super::$test(super::Kind::S3)
            })*
        }
        mod azure {
            $(#[test]
            fn $test() {
                super::$test(super::Kind::Azure)
            })*
        }
    };
}

on_each_store!(
    segments_land_in_the_store_with_their_bytes,
    cache_overflow_drops_the_oldest_and_reports_the_gap,
    store_down_then_up_loses_nothing,
    evicted_segments_play_back_from_the_store,
    retention_deletes_expired_segments_locally_and_remotely,
    kill_9_around_upload_leaves_cache_and_store_agreeing,
    a_frozen_store_is_reported_and_used_again_when_it_thaws,
    large_objects_go_up_in_parts,
);
