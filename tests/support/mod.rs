//! Shared helpers for the integration tests: generated clips, temp folders, ffprobe, the binary.
#![allow(dead_code)]

pub mod archive;
pub mod cluster;
pub mod grpc;
pub mod guest_build;
pub mod guests;
pub mod inference;
pub mod js;
pub mod media;
pub mod netns;
pub mod peers;
pub mod python;
pub mod relay;
pub mod service;
pub mod stores;
pub mod tls;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

static CLIPS: Mutex<()> = Mutex::new(());

/// The generated test clips (640x360, 30 fps, 20 s, key frame every 1 s, motion 8–12 s),
/// made once per checkout with scripts/peers/make-test-clips.sh.
pub fn clips() -> PathBuf {
    let dir = repo().join("target/test-clips");
    let _guard = CLIPS.lock().unwrap_or_else(|e| e.into_inner());
    if ["camera-h264.mp4", "camera-h265.mp4", "camera-h264-aac.mp4"]
        .iter()
        .any(|f| !dir.join(f).exists())
    {
        let out = Command::new("bash")
            .arg(repo().join("scripts/peers/make-test-clips.sh"))
            .arg(&dir)
            .env("SIZE", "640x360")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "make-test-clips failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// vtest.avi (real CCTV footage from Debian's opencv-doc, which scripts/setup-media.sh
/// installs) as H.264 in the test clips (made once, by whichever test asks first); none where
/// opencv-doc is missing.
pub fn cctv_clip() -> Option<PathBuf> {
    let source = [
        "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
        "/usr/share/opencv4/samples/data/vtest.avi",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())?;
    let out = clips().join("vtest.mp4");
    let _guard = CLIPS.lock().unwrap_or_else(|e| e.into_inner());
    if !out.exists() {
        // A name of this process's own: test binaries may run side by side.
        let tmp = out.with_extension(format!("{}.tmp.mp4", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
            .arg(&source)
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30", "-pix_fmt",
                "yuv420p",
            ])
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg failed for {}", out.display());
        std::fs::rename(&tmp, &out).expect("rename");
    }
    Some(out)
}

/// [`cctv_clip`], which these tests need (scripts/setup-media.sh installs opencv-doc).
pub fn vtest() -> PathBuf {
    cctv_clip().expect("vtest.avi from Debian's opencv-doc (bash scripts/setup-media.sh)")
}

/// A fresh, empty folder under target/test-work.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = repo()
        .join("target/test-work")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs the `vigil` binary in the repository root.
pub fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .output()
        .expect("vigil runs")
}

/// `vigil replay TOPOLOGY --input CLIP --start-time START --event-log LOG` plus `extra`;
/// panics, with its stderr, when it fails.
pub fn replay_ok(topology: &str, clip: &Path, start: &str, log: &Path, extra: &[&str]) {
    let (clip, log) = (clip.to_string_lossy(), log.to_string_lossy());
    let mut args = vec!["replay", topology, "--input", &clip, "--start-time", start];
    args.extend_from_slice(&["--event-log", &log]);
    args.extend_from_slice(extra);
    let out = vigil(&args);
    assert!(
        out.status.success(),
        "vigil replay {topology}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ffprobe says about a file's video stream.
#[derive(Debug, PartialEq)]
pub struct Probe {
    /// Codec name (`h264`, `hevc`).
    pub codec: String,
    /// Frames decoded.
    pub frames: u64,
    /// Stream duration in seconds.
    pub duration: f64,
}

/// Probes `path` with ffprobe (counting frames); panics with ffprobe's words on any error.
pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames,duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    Probe {
        codec: field("codec_name"),
        frames: field("nb_read_frames").parse().unwrap_or(0),
        duration: field("duration").parse().unwrap_or(0.0),
    }
}

/// Decodes the whole file with ffmpeg; true when it reports no error.
pub fn decodes_cleanly(path: &Path) -> bool {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    out.status.success() && out.stderr.is_empty()
}

/// The `.mp4` files in `dir`, sorted by name.
pub fn mp4_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The RGB24 pixels of an image (ffmpeg decodes it): (width, height, bytes).
pub fn image_pixels(image: &Path) -> (u32, u32, Vec<u8>) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(image)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut wh = text
        .trim()
        .split(',')
        .map(|v| v.parse::<u32>().expect("size"));
    let (w, h) = (wh.next().expect("w"), wh.next().expect("h"));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(image)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert_eq!(out.stdout.len(), (w * h * 3) as usize);
    (w, h, out.stdout)
}

/// True when the pixel at (`x`, `y`) (relative to the image) or the one right of it is the
/// amber boxes are outlined in (JPEG shifts colours a little).
pub fn is_amber(image: &(u32, u32, Vec<u8>), x: f64, y: f64) -> bool {
    let (w, h, rgb) = image;
    let (px, py) = ((x * f64::from(*w)) as u32, (y * f64::from(*h)) as u32);
    [px, px + 1].iter().any(|&px| {
        let at = ((py.min(h - 1) * w + px.min(w - 1)) * 3) as usize;
        let (r, g, b) = (rgb[at], rgb[at + 1], rgb[at + 2]);
        r > 200 && (120..=220).contains(&g) && b < 90
    })
}

/// The event log's events whole (JSON), in order.
pub fn log_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

/// The files of the event snapshots a FileSink's `clip` names in its explanation (`<clip>.json`),
/// beside it; fails when it names none.
pub fn event_snapshots_of(clip: &Path) -> Vec<PathBuf> {
    let explanation: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.json", clip.display())).expect("explanation"),
    )
    .expect("JSON");
    let named: Vec<PathBuf> = explanation["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["snapshot"].as_str())
        .map(|name| clip.with_file_name(name))
        .collect();
    assert!(
        !named.is_empty(),
        "no event snapshot named in {explanation}"
    );
    named
}

/// The events of a JSON-lines log: (eventType suffix, body, correlationId).
pub fn read_events(path: &Path) -> Vec<(String, serde_json::Value, Option<String>)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let kind = v["properties"]["eventType"]
                .as_str()
                .unwrap_or("")
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_string();
            let corr = v["systemProperties"]["correlationId"]
                .as_str()
                .map(str::to_string);
            (kind, v["body"].clone(), corr)
        })
        .collect()
}
