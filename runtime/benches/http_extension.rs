//! `cargo bench --bench http_extension`: the cost of the HttpExtension path per sampled frame
//! once the frame is decoded (decoding is shared with every other node): scale 1080p to
//! 416×234, pad to 416×416, encode JPEG (quality 90), POST on loopback to a server answering
//! 204. Reports wall and thread-CPU milliseconds per frame, frames/s per core, the split between
//! scaling, encoding and the request, and FFmpeg doing the same scale+pad+JPEG in the same run
//! (its CPU time from `-benchmark`, its decode-only run subtracted; the median of 5 runs).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use vigil::bus::event_log::EventBus;
use vigil::media::image::encode_image;
use vigil::media::time::MediaTime;
use vigil::nodes::http_extension::HttpExtensionNode;
use vigil::topology::model::{
    Endpoint, HttpExtensionConfig, ImageFormat, ImageProperties, ImageScale, SamplingOptions,
    ScaleMode,
};

mod common;

use common::{start_http_server, thread_cpu};

const FRAMES: usize = 60;
/// Frames FFmpeg's reference works through per run (the clip looped), and its runs: the median
/// of their differences, so one disturbed run does not move the ratio.
const FFMPEG_FRAMES: usize = 300;
const FFMPEG_RUNS: usize = 5;

/// CPU seconds (user + system, as FFmpeg's `-benchmark` reports them) FFmpeg (one thread)
/// spends on `filters` for FFMPEG_FRAMES frames of `clip`: CPU, not wall time, so other work
/// on the machine does not move the reference.
fn ffmpeg_seconds(clip: &Path, filters: Option<&str>) -> f64 {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-v", "info", "-benchmark"]);
    cmd.args(["-threads", "1", "-stream_loop", "-1", "-i"])
        .arg(clip);
    cmd.args([
        "-frames:v",
        &FFMPEG_FRAMES.to_string(),
        "-filter_threads",
        "1",
    ]);
    match filters {
        Some(vf) => cmd.args([
            "-vf",
            vf,
            "-q:v",
            "3",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-",
        ]),
        None => cmd.args(["-f", "null", "-"]),
    };
    let out = cmd.output().expect("ffmpeg runs");
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let seconds = |key: &str| -> f64 {
        log.lines()
            .filter_map(|l| l.split_once("bench: utime=").map(|(_, rest)| rest))
            .next()
            .and_then(|rest| {
                let rest = if key == "utime" {
                    rest
                } else {
                    rest.split_once("stime=")?.1
                };
                rest.split('s').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no {key} in FFmpeg's -benchmark line: {log}"))
    };
    seconds("utime") + seconds("stime")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("http_extension: run with `cargo bench --bench http_extension`");
        return;
    }
    let clip = common::clip();
    let (mut decoder, frames) = common::decoded_frames(FRAMES);
    let config = HttpExtensionConfig {
        endpoint: Endpoint {
            url: start_http_server(),
            credentials: None,
            tls: None,
        },
        image: ImageProperties {
            scale: Some(ImageScale {
                mode: ScaleMode::Pad,
                width: Some(416),
                height: Some(416),
            }),
            format: ImageFormat::Jpeg { quality: 90 },
        },
        sampling: SamplingOptions {
            skip_samples_without_annotation: false,
            maximum_samples_per_second: None,
        },
    };
    let bus = EventBus::in_memory("bench");
    let mut node =
        HttpExtensionNode::inline(&config, "/bench/inference".into(), bus.clone()).expect("node");
    let rounds = 5;
    let pts_of = |round: usize, i: usize| {
        MediaTime::from_nanos(((round * frames.len() + i) as i64) * 33_333_333)
    };
    // Pass 1: the split between scaling and encoding, in this thread's CPU time.
    let (mut scale_s, mut encode_s) = (0.0, 0.0);
    for _ in 0..rounds {
        for (_, frame) in &frames {
            let layout = vigil::media::image::ImageLayout::new(
                frame.width(),
                frame.height(),
                config.image.scale.as_ref(),
            );
            let t0 = thread_cpu();
            let content = common::content_for(&mut decoder, frame, &layout, &node);
            let t1 = thread_cpu();
            let encoded = encode_image(&content, layout, &config.image.format).expect("encodes");
            std::hint::black_box(encoded.bytes.len());
            scale_s += t1 - t0;
            encode_s += thread_cpu() - t1;
        }
    }
    // Pass 2: the node's whole path, as the frame hub runs it.
    let cpu_start = thread_cpu();
    let wall_start = Instant::now();
    for round in 0..rounds {
        for (i, (_, frame)) in frames.iter().enumerate() {
            let pts = pts_of(round, i);
            let Some(layout) = node.wants(pts, false, frame.width(), frame.height()) else {
                panic!("every frame is due");
            };
            let content = common::content_for(&mut decoder, frame, &layout, &node);
            node.on_image(pts, &content, layout, &[]);
        }
    }
    let n = (rounds * frames.len()) as f64;
    let wall_ms = wall_start.elapsed().as_secs_f64() / n * 1e3;
    let cpu_ms = (thread_cpu() - cpu_start) / n * 1e3;
    let (scale_ms, encode_ms) = (scale_s / n * 1e3, encode_s / n * 1e3);
    let post_ms = (cpu_ms - scale_ms - encode_ms).max(0.0);
    let failures = bus
        .remembered()
        .iter()
        .filter(|e| e.kind.ends_with("Error"))
        .count();
    assert_eq!(failures, 0, "every request succeeded");
    println!(
        "1080p -> 416x416 JPEG q90 + POST on loopback, {} frames × {rounds}:",
        frames.len()
    );
    println!(
        "  {wall_ms:.2} ms per frame wall, {cpu_ms:.2} ms thread CPU ({scale_ms:.2} scale, {encode_ms:.2} encode, {post_ms:.2} the rest: the request)"
    );
    println!("  {:.0} frames/s per core", 1000.0 / cpu_ms.max(1e-9));
    let mut per_frame: Vec<f64> = (0..FFMPEG_RUNS)
        .map(|_| {
            let decode_only = ffmpeg_seconds(&clip, None);
            let with_jpeg = ffmpeg_seconds(&clip, Some("scale=416:234,pad=416:416:0:91"));
            (with_jpeg - decode_only).max(0.0) / FFMPEG_FRAMES as f64 * 1e3
        })
        .collect();
    per_frame.sort_by(f64::total_cmp);
    let ffmpeg_ms = per_frame[FFMPEG_RUNS / 2];
    println!(
        "  FFmpeg scale+pad+JPEG (CPU, decode subtracted): {ffmpeg_ms:.2} ms per frame; vigil (scale+encode CPU, no request) / FFmpeg = {:.2}",
        (scale_ms + encode_ms) / ffmpeg_ms.max(1e-9)
    );
}
