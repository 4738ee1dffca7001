//! HttpExtension against a real HTTP inference stand-in (scripts/peers/infer-server.py), through
//! `vigil replay` so every frame time is exact: what the server receives (image size, padding,
//! pixel values of a known frame, each format, AVA's headers), the sampling rate over a minute,
//! motion-gated sampling, and faults (503 with Retry-After, garbage, server down).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::inference::{InferServer, Received};
use support::peers::free_port;
use support::{clips, decodes_cleanly, mp4_files, probe, read_events, temp_dir, vigil};

/// UTC of the replayed file's first frame, in seconds since the epoch.
const START: &str = "2026-01-01T00:00:00Z";
const START_SECS: f64 = 1_767_225_600.0;

/// A copy of a shipped topology with `edit` applied to its HttpExtension node.
fn topology_with(dir: &Path, shipped: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let path = support::repo().join("topologies").join(shipped);
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("topology")).expect("JSON");
    for p in doc["properties"]["processors"]
        .as_array_mut()
        .expect("processors")
    {
        if p["@type"] == "#Microsoft.VideoAnalyzer.HttpExtension" {
            edit(p);
        }
    }
    let out = dir.join(shipped);
    std::fs::write(&out, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
    out
}

/// Replays `clip` through `topology`; returns the events it logged.
fn replay(
    dir: &Path,
    topology: &Path,
    clip: &Path,
    url: &str,
    extra: &[&str],
) -> Vec<(String, Value, Option<String>)> {
    let log = dir.join("events.jsonl");
    let out_dir = dir.join("out");
    let (topology, clip, log_arg) = (
        topology.to_string_lossy().to_string(),
        clip.to_string_lossy().to_string(),
        log.to_string_lossy().to_string(),
    );
    let url = format!("inferencingUrl={url}");
    let out = format!("outputDirectory={}", out_dir.display());
    let mut args = vec![
        "replay",
        topology.as_str(),
        "--input",
        clip.as_str(),
        "--start-time",
        START,
        "--event-log",
        log_arg.as_str(),
        "--set",
        url.as_str(),
    ];
    let declares_output =
        std::fs::read_to_string(&topology).is_ok_and(|t| t.contains("\"outputDirectory\""));
    if declares_output {
        args.extend(["--set", out.as_str()]);
    }
    args.extend_from_slice(extra);
    let result = vigil(&args);
    assert!(
        result.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    read_events(&log)
}

/// RGB24 pixels of an encoded image, decoded by FFmpeg: (width, height, pixels).
fn decode_with_ffmpeg(dir: &Path, bytes: &[u8], ext: &str) -> (u32, u32, Vec<u8>) {
    let file = dir.join(format!("received.{ext}"));
    std::fs::write(&file, bytes).expect("write");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    let (w, h) = text.split_once(',').expect("width,height");
    let pixels = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    (
        w.parse().expect("width"),
        h.parse().expect("height"),
        pixels.stdout,
    )
}

/// Asserts the pixel at (x, y) is within `tolerance` of `rgb`.
fn assert_pixel(
    pixels: &[u8],
    width: u32,
    (x, y): (u32, u32),
    rgb: [u8; 3],
    tolerance: i32,
    what: &str,
) {
    let at = ((y * width + x) * 3) as usize;
    let got = &pixels[at..at + 3];
    let close = got
        .iter()
        .zip(rgb)
        .all(|(g, w)| (i32::from(*g) - i32::from(w)).abs() <= tolerance);
    assert!(
        close,
        "{what}: pixel ({x},{y}) is {got:?}, expected {rgb:?} ±{tolerance}"
    );
}

/// The clip's scene at t = 0 (scripts/peers/make-test-clips.sh): ground, road, building 2.
const GROUND: ([f64; 2], [u8; 3]) = ([0.5, 0.1], [0x4a, 0x5d, 0x3a]);
const ROAD: ([f64; 2], [u8; 3]) = ([0.5, 0.72], [0x2a, 0x2a, 0x2a]);
const BUILDING: ([f64; 2], [u8; 3]) = ([0.75, 0.35], [0xa0, 0xa0, 0xa0]);

/// Checks the scene in an image whose frame content sits at (cx, cy) with size cw×ch.
fn assert_scene(
    pixels: &[u8],
    width: u32,
    content: (u32, u32, u32, u32),
    tolerance: i32,
    what: &str,
) {
    let (cx, cy, cw, ch) = content;
    for ([fx, fy], rgb) in [GROUND, ROAD, BUILDING] {
        let x = cx + (fx * f64::from(cw)) as u32;
        let y = cy + (fy * f64::from(ch)) as u32;
        assert_pixel(pixels, width, (x, y), rgb, tolerance, what);
    }
}

/// Name, `image.scale`, `image.format`, image size, content rectangle (x, y, w, h).
type ImageCase = (&'static str, Value, Value, (u32, u32), (u32, u32, u32, u32));

/// Frame times of the requests the server received, in seconds from the replay's start.
fn request_times(server: &InferServer) -> Vec<f64> {
    server
        .requests()
        .iter()
        .map(|r| r.frame_time() - START_SECS)
        .collect()
}

/// True for an inference event with an object detection (the stand-in's answers).
fn is_detection((kind, body, _): &(String, Value, Option<String>)) -> bool {
    kind == "Inference" && body["inferences"][0]["type"] == "entity"
}

fn first_request(server: &InferServer) -> Received {
    let requests = server.requests();
    let first = requests
        .into_iter()
        .next()
        .expect("the server got a request");
    assert!(
        (first.frame_time() - START_SECS).abs() < 1e-6,
        "the first sample is the first frame"
    );
    first
}

/// Every image format and scale mode: what the server decodes has the asked size, black bars
/// where `pad` put them, and the known colours of the first frame where the frame landed.
#[test]
fn each_format_and_scale_mode_reaches_the_server_as_asked() {
    let clip = clips().join("camera-h264.mp4");
    let cases: Vec<ImageCase> = vec![
        (
            "jpeg-pad",
            json!({"mode": "pad", "width": "416", "height": "416"}),
            json!({"@type": "#Microsoft.VideoAnalyzer.ImageFormatJpeg", "quality": "90"}),
            (416, 416),
            (0, 91, 416, 234),
        ),
        (
            "png-preserve",
            json!({"mode": "preserveAspectRatio", "width": "320"}),
            json!({"@type": "#Microsoft.VideoAnalyzer.ImageFormatPng"}),
            (320, 180),
            (0, 0, 320, 180),
        ),
        (
            "bmp-stretch",
            json!({"mode": "stretch", "width": "200", "height": "300"}),
            json!({"@type": "#Microsoft.VideoAnalyzer.ImageFormatBmp"}),
            (200, 300),
            (0, 0, 200, 300),
        ),
        (
            "raw-rgb24-pad",
            json!({"mode": "pad", "width": "300", "height": "300"}),
            json!({"@type": "#Microsoft.VideoAnalyzer.ImageFormatRaw", "pixelFormat": "rgb24"}),
            (300, 300),
            (0, 66, 300, 169),
        ),
        (
            "raw-bgra-source-size",
            Value::Null,
            json!({"@type": "#Microsoft.VideoAnalyzer.ImageFormatRaw", "pixelFormat": "bgra"}),
            (640, 360),
            (0, 0, 640, 360),
        ),
    ];
    for (name, scale, format, (w, h), content) in cases {
        let dir = temp_dir(&format!("ext-{name}"));
        let server = InferServer::start(free_port(), &dir.join("requests"));
        let topology = topology_with(&dir, "object-to-files.json", |p| {
            p["image"] = json!({"format": format});
            if !scale.is_null() {
                p["image"]["scale"] = scale.clone();
            }
        });
        replay(&dir, &topology, &clip, &server.url(), &[]);
        let requests = server.requests();
        assert_eq!(
            requests.len(),
            20,
            "{name}: one sample per second of a 20 s clip"
        );
        let first = first_request(&server);
        assert_eq!(first.header("accept"), Some("application/json"), "{name}");
        assert!(
            first
                .header("x-ms-client-request-id")
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
            "{name}: a request id"
        );
        let content_type = first.header("content-type").expect("content type");
        let (width, height, pixels) = match content_type {
            "image/x-raw" => {
                let fmt = first.header("x-vigil-pixel-format").expect("pixel format");
                let bpp = if fmt == "rgb24" { 3 } else { 4 };
                assert_eq!(first.body.len() as u32, w * h * bpp, "{name}: raw size");
                let rgb: Vec<u8> = if fmt == "rgb24" {
                    first.body.clone()
                } else {
                    first
                        .body
                        .chunks_exact(4)
                        .flat_map(|p| [p[2], p[1], p[0]])
                        .collect()
                };
                (w, h, rgb)
            }
            other => {
                let ext = other.strip_prefix("image/").expect("image type");
                decode_with_ffmpeg(&dir, &first.body, ext)
            }
        };
        assert_eq!((width, height), (w, h), "{name}: image size");
        assert_eq!(
            first.header("x-vigil-image-width"),
            Some(w.to_string().as_str())
        );
        let tolerance = if name.starts_with("jpeg") { 14 } else { 8 };
        assert_scene(&pixels, width, content, tolerance, name);
        if content.1 > 0 {
            assert_pixel(
                &pixels,
                width,
                (w / 2, content.1 / 2),
                [0, 0, 0],
                6,
                "top bar",
            );
            let bottom = content.1 + content.3 + (h - content.1 - content.3) / 2;
            assert_pixel(&pixels, width, (w / 2, bottom), [0, 0, 0], 6, "bottom bar");
        }
    }
}

/// The detector's boxes come back without the padding: the red box is on the road
/// (t ≈ 0.62, h = 1/6 of the frame) and crosses left to right; found at 9, 10 and 11 s.
#[test]
fn inference_events_carry_unpadded_boxes_at_the_frame_time() {
    let dir = temp_dir("ext-boxes");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let topology = topology_with(&dir, "object-to-files.json", |_| {});
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &[],
    );
    let inferences: Vec<&Value> = events
        .iter()
        .filter(|e| is_detection(e))
        .map(|(_, b, _)| b)
        .collect();
    let times: Vec<f64> = inferences
        .iter()
        .map(|b| b["timestamp"].as_f64().expect("timestamp") / 90_000.0 - START_SECS)
        .collect();
    assert_eq!(times, vec![9.0, 10.0, 11.0], "frames with the red box");
    let at_10 = &inferences[1]["inferences"][0]["entity"]["box"];
    let near = |v: &Value, want: f64| (v.as_f64().expect("number") - want).abs() < 0.02;
    assert!(
        near(&at_10["t"], 0.62),
        "top on the road, padding removed: {at_10}"
    );
    assert!(near(&at_10["h"], 1.0 / 6.0), "height 1/6: {at_10}");
    assert!(
        near(&at_10["l"], (1.0 - 1.0 / 12.0) / 2.0),
        "centred at 10 s: {at_10}"
    );
    assert!(near(&at_10["w"], 1.0 / 12.0), "width 1/12: {at_10}");
    // The object filter turned them into triggers; the gate wrote one clip with 5 s of pre-roll.
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert_eq!(name, "object-20260101T000004Z.mp4", "starts 5 s before 9 s");
    assert!(decodes_cleanly(&files[0]));
    let p = probe(&files[0]);
    // Last event at 11 s + minimum 10 s (clip ends at the deadline 21 s, the file ends at 20 s).
    assert!((p.duration - 16.0).abs() < 0.1, "duration {}", p.duration);
}

/// 2 samples/s over a minute of 30 fps video: 120 requests, exactly 15 frames apart.
#[test]
fn sampling_rate_is_obeyed_over_a_minute() {
    let dir = temp_dir("ext-sampling");
    let minute = support::archive::minute_clip(&dir);
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let topology = topology_with(&dir, "object-to-files.json", |_| {});
    let events = replay(
        &dir,
        &topology,
        &minute,
        &server.url(),
        &["--set", "samplesPerSecond=2"],
    );
    let times = request_times(&server);
    assert_eq!(times.len(), 120, "60 s × 2/s");
    for pair in times.windows(2) {
        assert!(
            (pair[1] - pair[0] - 0.5).abs() < 1.0 / 60.0,
            "samples {:.3} and {:.3} are not 15 frames apart",
            pair[0],
            pair[1]
        );
    }
    let found = events.iter().filter(|e| is_detection(e)).count();
    assert_eq!(
        found, 21,
        "the red box at 8.5 … 11.5 s of each of three loops"
    );
}

/// Motion in front of the extension: the service sees frames only while the box moves
/// (8–12 s), none while the scene is still.
#[test]
fn motion_gated_sampling_sends_nothing_while_the_scene_is_still() {
    let dir = temp_dir("ext-motion-gated");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let topology = topology_with(&dir, "motion-gated-inference.json", |_| {});
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &["--set", "samplesPerSecond=5"],
    );
    let times = request_times(&server);
    assert!(times.len() >= 10, "sampled while moving: {times:?}");
    assert!(
        times.iter().all(|t| (8.0..12.5).contains(t)),
        "only frames with motion: {times:?}"
    );
    let found = events.iter().filter(|e| is_detection(e)).count();
    assert!(found >= 5, "the service found the box in the frames it got");
}

/// 503 with Retry-After: 2 — the next request waits 2 s of media time; the busy answers are
/// reported (at most one report per 10 s).
#[test]
fn busy_service_is_asked_again_after_retry_after() {
    let dir = temp_dir("ext-503");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    server.control(r#"{"status": 503, "retry_after": "2"}"#);
    let topology = topology_with(&dir, "object-to-files.json", |_| {});
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &["--set", "samplesPerSecond=5"],
    );
    let times = request_times(&server);
    let expected: Vec<f64> = (0..10).map(|i| f64::from(i) * 2.0).collect();
    let close = times.len() == expected.len()
        && times
            .iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() < 1e-6);
    assert!(close, "one request every 2 s: {times:?}");
    let busy: Vec<&Value> = events
        .iter()
        .filter(|(k, b, _)| k == "ProtocolError" && b["errorCode"] == "503")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(busy.len(), 2, "reported at 0 s and 10 s: {busy:?}");
    assert_eq!(busy[1]["repeatsNotReported"], 4);
}

/// A body that is not JSON is reported; requests go on at the sampling rate.
#[test]
fn garbage_answers_are_reported_and_sampling_goes_on() {
    let dir = temp_dir("ext-garbage");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    server.control(r#"{"garbage": true}"#);
    let topology = topology_with(&dir, "object-to-files.json", |_| {});
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &[],
    );
    assert_eq!(server.requests().len(), 20);
    let errors: Vec<&Value> = events
        .iter()
        .filter(|(k, _, _)| k == "ProtocolError")
        .map(|(_, b, _)| b)
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not JSON")),
        "{errors:?}"
    );
    assert!(!events.iter().any(|(k, _, _)| k == "Inference"));
    assert!(
        mp4_files(&dir.join("out")).is_empty(),
        "no detection, no clip"
    );
}

/// No server at all: network errors are reported with back-off, and the trigger from the
/// message input still records its clip (the AVA round-trip topology).
#[test]
fn unreachable_service_never_stops_the_recording() {
    let dir = temp_dir("ext-down");
    let topology = topology_with(&dir, "inference-roundtrip-to-files.json", |_| {});
    let triggers = dir.join("triggers.jsonl");
    std::fs::write(
        &triggers,
        "{\"at\": 8.0, \"input\": \"recordingTrigger\", \"body\": {\"label\": \"truck\"}}\n",
    )
    .expect("write");
    let nobody = format!("http://127.0.0.1:{}/score", free_port());
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &nobody,
        &[
            "--events",
            triggers.to_str().expect("path"),
            "--set",
            "minActivation=PT6S",
            "--set",
            "maxActivation=PT10S",
        ],
    );
    let errors: Vec<&Value> = events
        .iter()
        .filter(|(k, _, _)| k == "NetworkError")
        .map(|(_, b, _)| b)
        .collect();
    assert!(!errors.is_empty(), "the outage is reported");
    assert_eq!(errors[0]["errorCode"], "connectionFailed");
    assert_eq!(errors[0]["retryInSeconds"], 1.0);
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    assert!(decodes_cleanly(&files[0]));
    let p = probe(&files[0]);
    assert!(
        (p.duration - 11.0).abs() < 0.1,
        "3 s … 14 s: {}",
        p.duration
    );
}

/// AVA's `httpExtension` topology, unchanged: BMP at 0.2 samples/s, preserveAspectRatio 416×416,
/// Basic credentials; its inferences are published for the IotHubMessageSink.
#[test]
fn ava_http_extension_topology_runs_unchanged() {
    let topology =
        support::repo().join("../shared/ava-topologies/live/httpExtension/topology.json");
    if !topology.exists() {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    }
    let dir = temp_dir("ext-ava");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let events = replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &["--set", "rtspUrl=rtsp://unused/"],
    );
    let requests = server.requests();
    let times: Vec<f64> = requests
        .iter()
        .map(|r| r.frame_time() - START_SECS)
        .collect();
    assert_eq!(times, vec![0.0, 5.0, 10.0, 15.0], "one frame every 5 s");
    let first = &requests[0];
    assert_eq!(first.header("content-type"), Some("image/bmp"));
    assert_eq!(
        first.header("authorization"),
        Some("Basic ZHVtbXlVc2VyTmFtZTpkdW1teVBhc3N3b3Jk"),
        "dummyUserName:dummyPassword"
    );
    let (w, h, _) = decode_with_ffmpeg(&dir, &first.body, "bmp");
    assert_eq!((w, h), (416, 234), "preserveAspectRatio within 416×416");
    let found: Vec<f64> = events
        .iter()
        .filter(|(k, _, _)| k == "Inference")
        .map(|(_, b, _)| b["timestamp"].as_f64().expect("timestamp") / 90_000.0 - START_SECS)
        .collect();
    assert_eq!(found, vec![10.0], "the red box is on screen at 10 s");
}

/// The object filter's region of interest is outlined (dashed, cyan) on the snapshot of the clip
/// its verdict opened, and the verdict's clip names the snapshot of the inference it came from.
#[test]
fn a_clip_snapshot_shows_the_filters_region_of_interest() {
    let dir = temp_dir("ext-region");
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let topology = topology_with(&dir, "object-to-files.json", |_| {});
    replay(
        &dir,
        &topology,
        &clips().join("camera-h264.mp4"),
        &server.url(),
        &["--set", "regionOfInterest=0.25,0.5,0.5,0.5"],
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    let snapshot = dir.join("out").join(format!(
        "{}.jpg",
        files[0].file_name().expect("name").to_string_lossy()
    ));
    let image = support::image_pixels(&snapshot);
    assert_eq!((image.0, image.1), (640, 360));
    let cyan = |x: u32, y: u32| {
        let at = ((y * image.0 + x) * 3) as usize;
        let (r, g, b) = (image.2[at], image.2[at + 1], image.2[at + 2]);
        r < 100 && g > 140 && b > 190
    };
    // The region's left edge is x 160 from y 180, dashes of 8 pixels from there.
    assert!(
        cyan(160, 183) || cyan(161, 183),
        "the region's left edge in {}",
        snapshot.display()
    );
    assert!(
        cyan(290, 181) || cyan(290, 180),
        "its top edge (a dash at x 288-295)"
    );
    assert!(!cyan(320, 270), "not its inside");
    for file in support::event_snapshots_of(&files[0]) {
        let (w, _, _) = support::image_pixels(&file);
        assert_eq!(w, 416, "the image the service was sent: {}", file.display());
    }
}
