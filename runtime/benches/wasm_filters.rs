//! `cargo bench --bench wasm_filters`: what a WebAssembly frame filter costs.
//!
//! 1. Host→guest call cost per frame: a guest that does nothing (test-guests/noop-frame), called
//!    with 320×180 and 640×360 luma planes (the plane is copied into the guest each call).
//! 2. The motion detector as a guest against the same crate compiled natively (same frames: the
//!    generated test clip, decoded once, scaled to 320×180), with the ratio of the two.
//!
//! Wall time per call, median of 5 rounds; the machine is shared, so read the ratios.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use vigil::media::decode::Decoder;
use vigil::media::mp4_reader::Mp4Video;
use vigil::media::time::MediaTime;
use vigil::wasm::bindings::{Frame, Plane};
use vigil::wasm::convert::FilterConfig;
use vigil::wasm::filter::{FilterHost, Limits, Outcome};
use vigil::wasm::module::ModuleSource;

/// The motion detector's algorithm, compiled natively from the guest's own source file.
#[path = "../../guest-modules/motion-detector/src/detector.rs"]
#[allow(dead_code)]
mod detector;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Luma planes of the test clip's frames, `width` wide.
fn frames(width: u32) -> Vec<(u32, u32, Vec<u8>)> {
    let clip = repo().join("target/test-clips/camera-h264.mp4");
    if !clip.exists() {
        let status = std::process::Command::new("bash")
            .arg(repo().join("scripts/peers/make-test-clips.sh"))
            .arg(repo().join("target/test-clips"))
            .env("SIZE", "640x360")
            .status()
            .expect("bash runs");
        assert!(status.success(), "make-test-clips failed");
    }
    let video = Mp4Video::open(&clip).expect("clip opens");
    let mut decoder = None;
    let mut out = Vec::new();
    for sample in video.samples(MediaTime::from_nanos(0)) {
        let sample = sample.expect("sample");
        let d = decoder.get_or_insert_with(|| Decoder::new(&sample.params).expect("decoder"));
        for (pts, frame) in d.decode(&sample).expect("decodes") {
            let f = d.scale(&frame, pts, width, false).expect("scales");
            out.push((f.width, f.height, f.luma));
        }
    }
    out
}

fn frame_of((w, h, luma): &(u32, u32, Vec<u8>), i: usize) -> Frame {
    Frame {
        timestamp_ns: i as i64 * 33_333_333,
        source_width: 1920,
        source_height: 1080,
        luma: Some(Plane {
            width: *w,
            height: *h,
            stride: *w,
            data: luma.clone(),
        }),
        rgb: None,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median over 5 rounds of the mean µs per call of `call` over `frames`.
fn time_per_call(
    frames: &[(u32, u32, Vec<u8>)],
    mut call: impl FnMut(usize, &(u32, u32, Vec<u8>)),
) -> f64 {
    let rounds = (0..5)
        .map(|_| {
            let start = Instant::now();
            for (i, f) in frames.iter().enumerate() {
                call(i, f);
            }
            start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64
        })
        .collect();
    median(rounds)
}

fn guest(name: &str, config: FilterConfig) -> FilterHost {
    let source = if name == "motion-detector" {
        ModuleSource::parse(name)
    } else {
        ModuleSource::File(PathBuf::from(env!("VIGIL_GUEST_DIR")).join(format!("{name}.wasm")))
    };
    let module = source.load().expect("module loads");
    FilterHost::new("bench", module, config, Limits::default()).expect("instantiates")
}

fn main() {
    // `cargo test --all-targets` runs bench targets too: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("wasm_filters: run with `cargo bench --bench wasm_filters`");
        return;
    }
    println!("== host→guest call cost (noop-frame guest; the luma plane is copied in per call)");
    for width in [320u32, 640] {
        let frames = frames(width);
        let (w, h) = (frames[0].0, frames[0].1);
        let mut host = guest(
            "noop_frame",
            vec![("width".into(), json!(width.to_string()))],
        );
        let copy_only = time_per_call(&frames, |i, f| {
            std::hint::black_box(frame_of(f, i));
        });
        let per_call = time_per_call(&frames, |i, f| {
            let frame = frame_of(f, i);
            assert!(matches!(host.process_frame(frame), Outcome::Done(_)));
        });
        println!(
            "{w}x{h}: {per_call:.2} µs per call ({:.2} µs of it building the host's frame), {} frames",
            copy_only,
            frames.len()
        );
    }

    println!(
        "== motion detector: wasm guest vs the same crate compiled natively (320x180, medium)"
    );
    let frames = frames(320);
    let mut host = guest(
        "motion-detector",
        vec![("sensitivity".into(), json!("medium"))],
    );
    let mut native = detector::Detector::new(detector::Sensitivity::Medium);
    let native_us = time_per_call(&frames, |_, (w, h, luma)| {
        std::hint::black_box(native.process(*w, *h, *w, luma).len());
    });
    let guest_us = time_per_call(&frames, |i, f| {
        let frame = frame_of(f, i);
        assert!(matches!(host.process_frame(frame), Outcome::Done(_)));
    });
    println!(
        "native {native_us:.1} µs per frame, guest {guest_us:.1} µs per frame: guest/native = {:.2}",
        guest_us / native_us
    );
}
