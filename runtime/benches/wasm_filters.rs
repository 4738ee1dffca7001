//! `cargo bench --bench wasm_filters`: what a WebAssembly frame filter costs.
//!
//! 1. Host→guest call cost per frame: a guest that does nothing (test-guests/noop-frame), called
//!    with 320×180 and 640×360 luma planes (the plane is copied into the guest each call).
//! 2. The motion detector as a guest against the same crate compiled natively (same frames: the
//!    generated test clip, decoded once, scaled to 320×180), with the ratio of the two.
//!
//! 3. Call cost per guest language: a frame filter that does nothing at 320×180 and the truck
//!    filter on an event with one truck, Rust against Python (componentize-py) and JavaScript
//!    (ComponentizeJS), each skipped when its tools are not installed.
//! 4. Start-up per language: compile (no cache), instantiate + create, and the call after a fault
//!    (which pays for a fresh instance), against a normal call.
//!
//! Wall time per call, median of 5 rounds; the machine is shared, so read the ratios.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use vigil::media::decode::Decoder;
use vigil::media::mp4_reader::Mp4Video;
use vigil::media::time::MediaTime;
use vigil::wasm::bindings::{Entity, Event, Frame, Inference, Payload, Plane, Rect, Tag};
use vigil::wasm::convert::FilterConfig;
use vigil::wasm::filter::{FilterHost, Limits, Outcome};
use vigil::wasm::module::{LoadedModule, ModuleSource};

/// The motion detector's algorithm, compiled natively from the guest's own source file.
#[path = "../../guest-modules/motion-detector/src/detector.rs"]
#[allow(dead_code)]
mod detector;

/// The tests' cached build of guest components, which `python` and `js` use.
#[path = "../../tests/support/guest_build.rs"]
mod guest_build;

/// Python components built from guest-sdk/python (the tests' builder).
#[path = "../../tests/support/python.rs"]
#[allow(dead_code)]
mod python;

/// JavaScript components built from guest-sdk/js (the tests' builder).
#[path = "../../tests/support/js.rs"]
#[allow(dead_code)]
mod js;

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

/// A module of a guest language: (language, frame noop, truck filter, faulting guest and the
/// kind of call it faults on).
struct Language {
    name: &'static str,
    noop: std::sync::Arc<LoadedModule>,
    truck: std::sync::Arc<LoadedModule>,
    faulty: std::sync::Arc<LoadedModule>,
    faulty_world_frame: bool,
    bytes: Vec<u8>,
}

fn file(path: PathBuf) -> std::sync::Arc<LoadedModule> {
    ModuleSource::File(path).load().expect("module loads")
}

fn languages() -> Vec<Language> {
    let dir = PathBuf::from(env!("VIGIL_GUEST_DIR"));
    let mut out = vec![Language {
        name: "rust",
        noop: file(dir.join("noop_frame.wasm")),
        truck: ModuleSource::parse("object-filter")
            .load()
            .expect("built-in"),
        faulty: file(dir.join("trap.wasm")),
        faulty_world_frame: true,
        bytes: vigil::wasm::module::builtin("object-filter")
            .expect("built-in")
            .to_vec(),
    }];
    let has_componentize_py = std::process::Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_componentize_py {
        let truck = python::python_guest(python::TRUCK_FILTER);
        out.push(Language {
            name: "python",
            noop: file(python::python_guest(
                "guest-sdk/python/tests/guests/noop-frame",
            )),
            truck: file(truck.clone()),
            faulty: file(python::python_guest(python::FAULTY)),
            faulty_world_frame: false,
            bytes: std::fs::read(&truck).expect("built"),
        });
    } else {
        println!("(python skipped: componentize-py not installed; scripts/setup.sh installs it)");
    }
    if js::tools()
        .join("node_modules/@bytecodealliance/componentize-js")
        .is_dir()
    {
        let truck = js::js_guest(js::TRUCK_FILTER);
        out.push(Language {
            name: "javascript",
            noop: file(js::js_guest("guest-sdk/js/tests/guests/noop-frame")),
            truck: file(truck.clone()),
            faulty: file(js::js_guest(js::FAULTY)),
            faulty_world_frame: false,
            bytes: std::fs::read(&truck).expect("built"),
        });
    } else {
        println!(
            "(javascript skipped: ComponentizeJS not installed; scripts/setup.sh installs it)"
        );
    }
    out
}

/// An event with one truck at 0.9 in the middle of the frame, at second `second`.
fn truck_event(second: i64) -> Event {
    Event {
        timestamp_ns: 1_767_225_600_000_000_000 + second * 1_000_000_000,
        inferences: vec![Inference {
            subtype: Some("objectDetection".into()),
            ..Inference::of(Payload::Entity(Entity {
                tag: Tag {
                    value: "truck".into(),
                    confidence: 0.9,
                },
                box_: Rect {
                    l: 0.4,
                    t: 0.6,
                    w: 0.08,
                    h: 0.17,
                },
                id: None,
                attributes: vec![],
            }))
        }],
    }
}

/// Median µs of `f` over `n` runs.
fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..n)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

fn per_language(frames: &[(u32, u32, Vec<u8>)]) {
    println!("== call cost per guest language (320x180 frame noop; truck filter, one truck)");
    let truck_config: FilterConfig = vec![
        ("labels".into(), json!("truck")),
        ("output".into(), json!("trigger")),
    ];
    let noop_config: FilterConfig = vec![("width".into(), json!("320"))];
    let mut rust_frame = 0.0;
    let mut rust_event = 0.0;
    let langs = languages();
    for lang in &langs {
        let mut noop = FilterHost::new(
            "bench",
            lang.noop.clone(),
            noop_config.clone(),
            Limits::default(),
        )
        .expect("starts");
        // A guest whose memory grows per call (a leak, or garbage its collector leaves) faults
        // at its limit and gets a fresh instance: counted, and the calls before the first such
        // fault reported.
        let (mut calls, mut memory_faults, mut first_fault) = (0u64, 0u64, None);
        let frame_us = time_per_call(frames, |i, f| {
            calls += 1;
            match noop.process_frame(frame_of(f, i)) {
                Outcome::Done(_) => {}
                Outcome::Fault(why) if why.starts_with("memory") => {
                    memory_faults += 1;
                    first_fault.get_or_insert(calls);
                }
                other => panic!("{}: noop frame filter: {other:?}", lang.name),
            }
        });
        let leak = match first_fault {
            Some(n) => format!(
                "; memory limit hit after {n} calls ({memory_faults} times in {calls}: ~{} KiB kept per call)",
                (Limits::default().memory_bytes as u64 / n) >> 10
            ),
            None => String::new(),
        };
        let mut truck = FilterHost::new(
            "bench",
            lang.truck.clone(),
            truck_config.clone(),
            Limits::default(),
        )
        .expect("starts");
        let event = truck_event(0);
        let event_us = median(
            (0..5)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..500 {
                        assert!(matches!(
                            truck.process_event(event.clone()),
                            Outcome::Done(_)
                        ));
                    }
                    start.elapsed().as_secs_f64() * 1e6 / 500.0
                })
                .collect(),
        );
        if lang.name == "rust" {
            (rust_frame, rust_event) = (frame_us, event_us);
        }
        println!(
            "{}: frame {frame_us:.1} µs ({:.1}x rust), event {event_us:.1} µs ({:.1}x rust){leak}",
            lang.name,
            frame_us / rust_frame,
            event_us / rust_event
        );
    }

    println!(
        "== start-up per guest language (truck filter; fault guest for the call after a fault)"
    );
    let engine = {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        c.epoch_interruption(true);
        wasmtime::Engine::new(&c).expect("engine")
    };
    for lang in &langs {
        let start = Instant::now();
        let _ = wasmtime::component::Component::new(&engine, &lang.bytes).expect("compiles");
        let compile_ms = start.elapsed().as_secs_f64() * 1e3;
        let create_us = median_us(20, || {
            let host = FilterHost::new(
                "bench",
                lang.truck.clone(),
                truck_config.clone(),
                Limits::default(),
            )
            .expect("starts");
            std::hint::black_box(&host);
        });
        let mut faulty = FilterHost::new("bench", lang.faulty.clone(), vec![], Limits::default())
            .expect("starts");
        let mut call = |second: i64| -> bool {
            if lang.faulty_world_frame {
                let f = &frames[0];
                let mut frame = frame_of(f, 0);
                frame.timestamp_ns = second * 1_000_000_000;
                matches!(faulty.process_frame(frame), Outcome::Done(_))
            } else {
                matches!(faulty.process_event(truck_event(second)), Outcome::Done(_))
            }
        };
        let mut normal = Vec::new();
        let mut after_fault = Vec::new();
        for round in 0..20i64 {
            let even = 1_767_225_600 + round * 2;
            assert!(call(even), "{}: a call in an even second", lang.name);
            let start = Instant::now();
            assert!(call(even), "{}", lang.name);
            normal.push(start.elapsed().as_secs_f64() * 1e6);
            assert!(!call(even + 1), "{}: the odd second faults", lang.name);
            let start = Instant::now();
            assert!(call(even + 2), "{}: a fresh instance answers", lang.name);
            after_fault.push(start.elapsed().as_secs_f64() * 1e6);
        }
        println!(
            "{}: {} bytes; compile {compile_ms:.0} ms; instantiate+create {create_us:.0} µs; \
             call after a fault {:.0} µs (a normal call {:.0} µs)",
            lang.name,
            lang.bytes.len(),
            median(after_fault),
            median(normal)
        );
    }
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
    per_language(&frames);
}
