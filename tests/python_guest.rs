//! Python filter components: written with the SDK in guest-sdk/python and built by
//! scripts/build-python-guest.sh (componentize-py against wit/0.2). The Python truck filter
//! (guest-sdk/python/examples/truck-filter) replaces the built-in Rust object filter in
//! `object-to-files.json`, replayed over the test clip against the real inference stand-in
//! (scripts/peers/infer-server.py), and gives exactly the same clips and trigger events, for
//! several configurations, f32 edge cases included; it refuses the same bad configurations. A
//! Python exception costs its call only and is reported as a `ModuleFault`; a Python frame filter
//! gets the pixels it asks for; the SDK's own unit tests pass; the build script says what is
//! missing. Built components are kept in target/python-guests, keyed by the hash of everything
//! that goes into them.
//!
//! `cargo test --test python_guest measure -- --ignored --nocapture` prints the figures in
//! guest-sdk/python/README.md (size, compile, instantiate + create, per call, against Rust).

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::inference::InferServer;
use support::peers::free_port;
use support::python::{BRIGHT, FAULTY, TRUCK_FILTER, python_guest};
use support::{clips, mp4_files, probe, repo, temp_dir};
use vigil::wasm::bindings::{Entity, Event, Frame, Inference, Payload, Plane, Rect, Tag};
use vigil::wasm::convert::inference_json;
use vigil::wasm::filter::{FilterHost, Limits, Outcome};
use vigil::wasm::module::{Contract, LoadedModule, ModuleSource, World};

/// UTC of the replayed file's first frame (an even second: the detections at 9, 10 and 11 s
/// fall in odd, even, odd seconds).
const START: &str = "2026-01-01T00:00:00Z";
const START_NS: i64 = 1_767_225_600_000_000_000;

/// What one replay of the pipeline gave.
#[derive(Debug, PartialEq)]
struct Run {
    /// Clip file names and their frame counts.
    clips: Vec<(String, u64)>,
    /// The filter node's events: (eventTime, body).
    decisions: Vec<(String, Value)>,
    /// Bodies of the `ModuleFault` events.
    faults: Vec<Value>,
}

/// The lines of an event log as JSON.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Replays the clip through `object-to-files.json` with the filter node's `module` set to
/// `module` and `edit` applied to the node; `sets` are more `--set` values. Returns what it
/// recorded, and vigil's standard error (the log at info level: the guests' output).
fn replay(
    name: &str,
    module: &str,
    edit: impl Fn(&mut Value),
    sets: &[(&str, &str)],
) -> (Run, String) {
    let dir = temp_dir(name);
    let server = InferServer::start(free_port(), &dir.join("requests"));
    let shipped = repo().join("topologies/object-to-files.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(shipped).expect("topology")).expect("JSON");
    for p in doc["properties"]["processors"]
        .as_array_mut()
        .expect("processors")
    {
        if p["@type"] == "#Vigil.WasmProcessor" {
            p["module"] = json!(module);
            edit(p);
        }
    }
    let topology = dir.join("topology.json");
    std::fs::write(&topology, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
    let log = dir.join("events.jsonl");
    let out_dir = dir.join("out");
    let clip = clips().join("camera-h264.mp4");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo())
        .env("RUST_LOG", "info")
        .arg("replay")
        .arg(&topology)
        .arg("--input")
        .arg(&clip)
        .args(["--start-time", START, "--event-log"])
        .arg(&log)
        .args(["--set", &format!("inferencingUrl={}", server.url())])
        .args(["--set", &format!("outputDirectory={}", out_dir.display())]);
    for (k, v) in sets {
        cmd.args(["--set", &format!("{k}={v}")]);
    }
    let result: Output = cmd.output().expect("vigil runs");
    let stderr = String::from_utf8_lossy(&result.stderr).to_string();
    assert!(result.status.success(), "{name}: replay failed: {stderr}");
    let clips = mp4_files(&out_dir)
        .iter()
        .map(|f| {
            let n = f.file_name().expect("name").to_string_lossy().to_string();
            (n, probe(f).frames)
        })
        .collect();
    let lines = log_lines(&log);
    let kind = |l: &Value| {
        l["properties"]["eventType"]
            .as_str()
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let decisions = lines
        .iter()
        .filter(|l| {
            kind(l) == "Inference"
                && l["properties"]["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("/processors/objectFilter"))
        })
        .map(|l| {
            (
                l["properties"]["eventTime"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                l["body"].clone(),
            )
        })
        .collect();
    let faults = lines
        .iter()
        .filter(|l| kind(l) == "ModuleFault")
        .map(|l| l["body"].clone())
        .collect();
    (
        Run {
            clips,
            decisions,
            faults,
        },
        stderr,
    )
}

/// The trigger event the filters emit for one truck at 0.9.
fn trigger(name: &str) -> Value {
    json!([{"type": "event", "event": {"name": name,
        "properties": {"count": "1", "label": "truck", "confidence": "0.900"}}}])
}

/// A configuration case: name, `output`, `eventName`, `--set` values, then what both filters
/// must give: the seconds of the filter's events and the clips.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    Vec<u32>,
    Vec<(&'static str, u64)>,
);

/// The same pipeline with the Python truck filter in place of the built-in Rust object filter:
/// for each configuration both record the same clips (names, frame counts) and emit the same
/// events, and those are what the configuration means. The stand-in finds the truck at 9, 10 and
/// 11 s, its box centre at x = 0.23, 0.49995 and 0.77; the gate records 5 s before the first
/// event to 10 s after the last (the file ends at 20 s). Two cases sit on f32 edges the Python
/// filter must compute as Rust does: the 10 s centre, in f32 0.49994999, is inside a region
/// ending at 0.49995 (in f64 it is not), and a confidence of 0.9 meets a minimum of 0.9 (in f64
/// the f32 0.9 is below it).
#[test]
fn the_python_truck_filter_records_exactly_what_the_rust_one_does() {
    let python = python_guest(TRUCK_FILTER);
    let whole = vec![("object-20260101T000004Z.mp4", 16 * 30)];
    let cases: Vec<Case> = vec![
        (
            "trigger",
            "trigger",
            None,
            vec![],
            vec![9, 10, 11],
            whole.clone(),
        ),
        (
            "labels-any-case-confidence-edge",
            "trigger",
            Some("truckSeen"),
            vec![("objectLabels", "Car, TRUCK"), ("minimumConfidence", "0.9")],
            vec![9, 10, 11],
            whole.clone(),
        ),
        (
            "detections-region-edge",
            "detections",
            None,
            vec![("regionOfInterest", "0,0,0.49995,1")],
            vec![9, 10],
            whole,
        ),
        (
            "right-half",
            "trigger",
            None,
            vec![("regionOfInterest", "0.5,0,0.5,1")],
            vec![11],
            vec![("object-20260101T000006Z.mp4", 14 * 30)],
        ),
        (
            "confidence-above",
            "trigger",
            None,
            vec![("minimumConfidence", "0.91")],
            vec![],
            vec![],
        ),
        (
            "other-label",
            "trigger",
            None,
            vec![("objectLabels", "car")],
            vec![],
            vec![],
        ),
    ];
    for (name, output, event_name, sets, seconds, clips) in cases {
        let edit = |p: &mut Value| {
            p["configuration"]["output"] = json!(output);
            if let Some(n) = event_name {
                p["configuration"]["eventName"] = json!(n);
            }
        };
        let (rust, _) = replay(&format!("py-{name}-rust"), "object-filter", edit, &sets);
        let (py, log) = replay(
            &format!("py-{name}-python"),
            &python.to_string_lossy(),
            edit,
            &sets,
        );
        assert_eq!(
            py, rust,
            "{name}: the Python filter differs from the Rust one"
        );
        assert!(
            log.contains("guest: truck-filter: labels="),
            "{name}: the filter logs its rule through the host's log"
        );
        let want_clips: Vec<(String, u64)> =
            clips.iter().map(|(n, f)| (n.to_string(), *f)).collect();
        assert_eq!(rust.clips, want_clips, "{name}: clips");
        let times: Vec<String> = seconds
            .iter()
            .map(|s| format!("2026-01-01T00:00:{s:02}.000Z"))
            .collect();
        let got: Vec<&String> = rust.decisions.iter().map(|(t, _)| t).collect();
        assert_eq!(got, times.iter().collect::<Vec<_>>(), "{name}: event times");
        assert!(rust.faults.is_empty(), "{name}: {:?}", rust.faults);
        for (_, body) in &rust.decisions {
            if output == "trigger" {
                assert_eq!(
                    body["inferences"],
                    trigger(event_name.unwrap_or("objectDetected")),
                    "{name}"
                );
            } else {
                let only = &body["inferences"];
                assert_eq!(only.as_array().map(Vec::len), Some(1), "{name}: {body}");
                assert_eq!(only[0]["type"], "entity", "{name}");
                assert_eq!(only[0]["subtype"], "objectDetection", "{name}: kept whole");
                assert_eq!(only[0]["entity"]["tag"]["value"], "truck", "{name}");
            }
        }
    }
}

/// Limits as in wasm_filters.rs: a call deadline above what a debug build on a loaded 2-core
/// machine needs.
fn limits() -> Limits {
    Limits {
        call_deadline: Duration::from_millis(500),
        init_deadline: Duration::from_secs(10),
        memory_bytes: 64 << 20,
    }
}

fn load(path: &Path) -> Arc<LoadedModule> {
    ModuleSource::File(path.to_path_buf())
        .load()
        .expect("component loads")
}

fn config(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Both filters refuse the same bad configurations, naming the key, and start with the same good
/// one (typed values: numbers and text alike).
#[test]
fn the_python_truck_filter_refuses_what_the_rust_one_refuses() {
    let python = load(&python_guest(TRUCK_FILTER));
    assert_eq!(
        (python.world, python.contract),
        (World::Event, Contract::V0_2)
    );
    let rust = ModuleSource::parse("object-filter")
        .load()
        .expect("built-in");
    for (bad, needle) in [
        (
            config(&[("label", json!("truck"))]),
            "unknown configuration key 'label'",
        ),
        (
            config(&[("minimumConfidence", json!("high"))]),
            "'minimumConfidence'",
        ),
        (
            config(&[("minimumConfidence", json!(2))]),
            "'minimumConfidence'",
        ),
        (
            config(&[("regionOfInterest", json!("0,0,1"))]),
            "'regionOfInterest'",
        ),
        (config(&[("output", json!("clip"))]), "'output'"),
    ] {
        for module in [&rust, &python] {
            let refused = FilterHost::new("f", module.clone(), bad.clone(), limits())
                .err()
                .unwrap_or_else(|| panic!("{}: accepted {bad:?}", module.origin));
            let why = format!("{refused:#}");
            assert!(
                why.contains("refused the configuration") && why.contains(needle),
                "{}: {why}",
                module.origin
            );
        }
    }
    let good = config(&[
        ("labels", json!("truck")),
        ("minimumConfidence", json!(0.5)),
        ("regionOfInterest", json!("0,0,1,1")),
        ("output", json!("trigger")),
        ("eventName", json!("truckSeen")),
    ]);
    let event = Event {
        timestamp_ns: START_NS,
        inferences: vec![
            entity(
                "truck",
                0.75,
                Rect {
                    l: 0.2,
                    t: 0.2,
                    w: 0.2,
                    h: 0.2,
                },
            ),
            entity(
                "person",
                0.99,
                Rect {
                    l: 0.2,
                    t: 0.2,
                    w: 0.2,
                    h: 0.2,
                },
            ),
            entity(
                "TRUCK",
                0.8,
                Rect {
                    l: 0.5,
                    t: 0.5,
                    w: 0.1,
                    h: 0.1,
                },
            ),
        ],
    };
    // Two trucks count (any case); the most confident names the trigger.
    let want = json!([{"timestamp_ns": START_NS, "inferences": [{"type": "event", "event": {
        "name": "truckSeen",
        "properties": {"count": "2", "label": "TRUCK", "confidence": "0.800"}}}]}]);
    for module in [&rust, &python] {
        let mut host =
            FilterHost::new("f", module.clone(), good.clone(), limits()).expect("starts");
        match host.process_event(event.clone()) {
            Outcome::Done(out) => assert_eq!(events_json(&out), want, "{}", module.origin),
            other => panic!("{}: {other:?}", module.origin),
        }
    }
}

fn entity(label: &str, confidence: f32, b: Rect) -> Inference {
    Inference {
        subtype: Some("objectDetection".into()),
        ..Inference::of(Payload::Entity(Entity {
            tag: Tag {
                value: label.into(),
                confidence,
            },
            box_: b,
            id: None,
            attributes: vec![],
        }))
    }
}

/// Events as JSON: their time and their inferences in AVA's schema (as the host logs them).
fn events_json(events: &[Event]) -> Value {
    events
        .iter()
        .map(|e| {
            json!({
                "timestamp_ns": e.timestamp_ns,
                "inferences": e.inferences.iter().map(inference_json).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The faulty guest's trigger for the event at `second` after `calls` calls of its instance.
fn faulty_trigger(second: i64, calls: u32) -> Value {
    let ns = START_NS + second * 1_000_000_000;
    json!([{"timestamp_ns": ns, "inferences": [{"type": "event", "event": {
        "name": "objectDetected",
        "properties": {"second": (ns / 1_000_000_000).to_string(), "calls": calls.to_string()}}}]}])
}

/// A Python exception in `process_event` costs that call only: it is a trap fault, and the next
/// call gets a fresh instance (its call count starts again at 1) that answers as before. So does
/// an endless loop: the deadline interrupts it.
#[test]
fn a_python_exception_costs_only_its_call() {
    let mut host =
        FilterHost::new("faulty", load(&python_guest(FAULTY)), vec![], limits()).expect("starts");
    let at = |second: i64| Event {
        timestamp_ns: START_NS + second * 1_000_000_000,
        inferences: vec![Inference::of(Payload::Motion(None))],
    };
    match host.process_event(at(0)) {
        Outcome::Done(out) => assert_eq!(events_json(&out), faulty_trigger(0, 1)),
        other => panic!("{other:?}"),
    }
    match host.process_event(at(2)) {
        Outcome::Done(out) => {
            assert_eq!(
                events_json(&out),
                faulty_trigger(2, 2),
                "the instance is kept"
            )
        }
        other => panic!("{other:?}"),
    }
    for s in [3, 5] {
        match host.process_event(at(s)) {
            Outcome::Fault(why) => assert!(why.starts_with("trap"), "{why}"),
            other => panic!("second {s}: {other:?}"),
        }
        match host.process_event(at(s + 1)) {
            Outcome::Done(out) => {
                assert_eq!(
                    events_json(&out),
                    faulty_trigger(s + 1, 1),
                    "a fresh instance"
                )
            }
            other => panic!("second {}: {other:?}", s + 1),
        }
    }
    match host.process_event(at(7)) {
        Outcome::Fault(why) => assert_eq!(why, "deadline: the call ran longer than 500 ms"),
        other => panic!("the loop: {other:?}"),
    }
    match host.process_event(at(8)) {
        Outcome::Done(out) => assert_eq!(events_json(&out), faulty_trigger(8, 1), "after the loop"),
        other => panic!("after the loop: {other:?}"),
    }
}

/// In the pipeline, the faulty guest meets the detections at 9 s (odd: exception), 10 s (even:
/// trigger) and 11 s (odd): two `ModuleFault` events name the module and the trap, the Python
/// traceback reaches the host's log, and the pipeline goes on: the trigger at 10 s, from a fresh
/// instance, records its clip (5 s before it to the end of the file).
#[test]
fn a_python_exception_is_reported_as_a_module_fault_and_recording_goes_on() {
    let faulty = python_guest(FAULTY);
    let (run, log) = replay("py-faulty", &faulty.to_string_lossy(), |_| {}, &[]);
    assert_eq!(
        run.clips,
        vec![("object-20260101T000005Z.mp4".to_string(), 15 * 30)]
    );
    let times: Vec<&str> = run.decisions.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(times, vec!["2026-01-01T00:00:10.000Z"]);
    assert_eq!(
        run.decisions[0].1["inferences"][0]["event"]["properties"],
        json!({"second": "1767225610", "calls": "1"}),
        "a fresh instance after the fault at 9 s"
    );
    assert_eq!(run.faults.len(), 2, "{:?}", run.faults);
    for (fault, second) in run.faults.iter().zip([9, 11]) {
        assert_eq!(fault["module"], json!(faulty.to_string_lossy()), "{fault}");
        assert!(
            fault["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("trap")),
            "{fault}"
        );
        assert_eq!(
            fault["eventTime"],
            json!(format!("2026-01-01T00:00:{second:02}.000Z")),
            "{fault}"
        );
        assert!(
            log.contains(&format!(
                "RuntimeError: faulty guest: event at {} ns is in an odd second",
                START_NS + second * 1_000_000_000
            )),
            "the traceback of {second} s is in the log"
        );
    }
}

/// A Python frame filter gets what it asks for (a 160-pixel luma plane), reads its settings
/// (text read as a number) and reports motion only in bright frames.
#[test]
fn a_python_frame_filter_gets_the_pixels_it_asks_for() {
    let bright = load(&python_guest(BRIGHT));
    assert_eq!(
        (bright.world, bright.contract),
        (World::Frame, Contract::V0_2)
    );
    let config = vec![("threshold".to_string(), json!("100"))];
    let mut host = FilterHost::new("bright", bright.clone(), config, limits()).expect("starts");
    let asked = host.frame_request().expect("a frame filter's request");
    assert_eq!((asked.width, asked.luma, asked.rgb), (160, true, false));
    let frame = |value: u8| Frame {
        timestamp_ns: START_NS,
        source_width: 640,
        source_height: 360,
        // A stride wider than the row: the padding (255) must not count.
        luma: Some(Plane {
            width: 160,
            height: 90,
            stride: 192,
            data: (0..192 * 90)
                .map(|i| if i % 192 < 160 { value } else { 255 })
                .collect(),
        }),
        rgb: None,
    };
    match host.process_frame(frame(101)) {
        Outcome::Done(found) => assert_eq!(
            found.iter().map(inference_json).collect::<Vec<_>>(),
            vec![
                json!({"type": "motion", "motion": {"box": {"l": 0.0, "t": 0.0, "w": 1.0, "h": 1.0}}})
            ]
        ),
        other => panic!("{other:?}"),
    }
    match host.process_frame(frame(100)) {
        Outcome::Done(found) => assert!(found.is_empty(), "{found:?}"),
        other => panic!("{other:?}"),
    }
    let refused = FilterHost::new(
        "bright",
        bright,
        vec![("threshold".to_string(), json!("high"))],
        limits(),
    )
    .err()
    .expect("refused");
    assert!(
        format!("{refused:#}").contains("threshold must be a number, not \"high\""),
        "{refused:#}"
    );
}

/// The SDK's unit tests and the truck filter's run outside a component (`--test`) and pass.
#[test]
fn the_sdk_and_example_unit_tests_pass() {
    for (dir, tests) in [("guest-sdk/python/tests", 11), (TRUCK_FILTER, 4)] {
        let out = Command::new("bash")
            .arg(repo().join("scripts/build-python-guest.sh"))
            .arg("--test")
            .arg(repo().join(dir))
            .output()
            .expect("bash runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{dir}: {stderr}");
        assert!(
            stderr.contains(&format!("Ran {tests} tests")) && stderr.trim_end().ends_with("OK"),
            "{dir}: {stderr}"
        );
    }
}

/// Without componentize-py the build stops at once and says how to install it; a folder without
/// a filter class is refused with the reason.
#[test]
fn the_build_script_says_what_is_missing() {
    let dir = temp_dir("py-build-errors");
    let script = repo().join("scripts/build-python-guest.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(repo().join(TRUCK_FILTER))
        .arg(dir.join("out.wasm"))
        .env("COMPONENTIZE_PY", dir.join("no-such-componentize-py"))
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("componentize-py not found")
            && stderr.contains("pip install componentize-py"),
        "{stderr}"
    );
    std::fs::write(dir.join("app.py"), "x = 1\n").expect("write");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .arg(dir.join("out.wasm"))
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("subclasses vigil_filter.EventFilter or FrameFilter"),
        "{stderr}"
    );
    assert!(!dir.join("out.wasm").exists());
}

/// Median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The figures of guest-sdk/python/README.md, Python truck filter next to the Rust object filter:
/// component size; compile (`Component::new` on an engine configured as the host's, without its
/// disk cache); instantiate + `create`; per call of `process-event` (an event with one truck,
/// passed as a trigger; an event with ten detections of other labels, dropped). Not a check:
/// run it with `--ignored --nocapture` (in release for the host's own share).
#[test]
#[ignore = "measurement; prints figures"]
fn measure() {
    let engine = {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        c.epoch_interruption(true);
        wasmtime::Engine::new(&c).expect("engine")
    };
    let python_path = python_guest(TRUCK_FILTER);
    let modules: Vec<(&str, Vec<u8>)> = vec![
        (
            "rust object-filter",
            vigil::wasm::module::builtin("object-filter")
                .expect("built-in")
                .to_vec(),
        ),
        (
            "python truck-filter",
            std::fs::read(&python_path).expect("built"),
        ),
    ];
    let config = config(&[
        ("labels", json!("truck")),
        ("minimumConfidence", json!("0.5")),
        ("regionOfInterest", json!("0,0,1,1")),
        ("output", json!("trigger")),
    ]);
    let truck = Event {
        timestamp_ns: START_NS,
        inferences: vec![entity(
            "truck",
            0.9,
            Rect {
                l: 0.4,
                t: 0.6,
                w: 0.08,
                h: 0.17,
            },
        )],
    };
    let crowd = Event {
        timestamp_ns: START_NS,
        inferences: (0..10)
            .map(|i| {
                entity(
                    "person",
                    0.9,
                    Rect {
                        l: 0.05 * i as f32,
                        t: 0.5,
                        w: 0.05,
                        h: 0.2,
                    },
                )
            })
            .collect(),
    };
    for (name, bytes) in modules {
        let started = Instant::now();
        let _ = wasmtime::component::Component::new(&engine, &bytes).expect("compiles");
        let compile = started.elapsed();
        let module = Arc::new(vigil::wasm::module::load_bytes(name, &bytes).expect("loads"));
        let mut creates = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let host = FilterHost::new("f", module.clone(), config.clone(), Limits::default())
                .expect("starts");
            creates.push(started.elapsed());
            drop(host);
        }
        let mut host = FilterHost::new("f", module.clone(), config.clone(), Limits::default())
            .expect("starts");
        let mut per_call = Vec::new();
        for event in [&truck, &crowd] {
            for _ in 0..200 {
                let _ = host.process_event(event.clone());
            }
            let mut rounds = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                for _ in 0..1000 {
                    match host.process_event(event.clone()) {
                        Outcome::Done(_) => {}
                        other => panic!("{name}: {other:?}"),
                    }
                }
                rounds.push(started.elapsed() / 1000);
            }
            per_call.push(median(rounds));
        }
        println!(
            "{name}: {} bytes; compile {:.2} s; instantiate+create {:.1} ms (median of 5); \
             process-event {:.1} µs (one truck, trigger), {:.1} µs (ten persons, dropped)",
            bytes.len(),
            compile.as_secs_f64(),
            median(creates).as_secs_f64() * 1e3,
            per_call[0].as_secs_f64() * 1e6,
            per_call[1].as_secs_f64() * 1e6,
        );
    }
}

/// `vigil filter new --lang python` makes a project whose `./build.sh --test` runs its unit
/// tests and whose `./build.sh` builds a component that `vigil filter test` runs on events,
/// with the exact output; a Python frame-filter project is refused with where to look.
#[test]
fn a_new_python_filter_project_builds_and_runs_in_the_test_bench() {
    let dir = temp_dir("py-filter-new");
    let vigil = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .output()
            .expect("vigil runs")
    };
    let at = dir.to_str().expect("path");
    let refused = vigil(&[
        "filter", "new", "framey", "--lang", "python", "--world", "frame", "--dir", at,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("Python projects start from an event filter"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let made = vigil(&["filter", "new", "trucky", "--lang", "python", "--dir", at]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let project = dir.join("trucky");
    let mut names: Vec<String> = std::fs::read_dir(&project)
        .expect("project")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "app.py", "build.sh", "test_app.py"]);
    let tests = Command::new(project.join("build.sh"))
        .arg("--test")
        .output()
        .expect("build.sh runs");
    let stderr = String::from_utf8_lossy(&tests.stderr);
    assert!(
        tests.status.success() && stderr.contains("Ran 2 tests"),
        "{stderr}"
    );
    let built = Command::new(project.join("build.sh"))
        .output()
        .expect("build.sh runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let module = project.join("filter.wasm");
    let entity = |label: &str, confidence: f64| {
        json!({"type": "entity", "entity": {"tag": {"value": label, "confidence": confidence},
               "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4}}})
    };
    let lines = [
        json!({"at": 1.5, "inferences": [entity("truck", 0.9), entity("car", 0.8)]}),
        json!({"at": 2.0, "inferences": [entity("car", 0.95)]}),
        json!({"at": 3.25, "inferences": [entity("truck", 0.55)]}),
    ];
    let events = dir.join("events.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&events, text).expect("write");
    let out = vigil(&[
        "filter",
        "test",
        "--module",
        module.to_str().expect("path"),
        "--events",
        events.to_str().expect("path"),
        "--config",
        "label=truck",
        "--config",
        "minimumConfidence=0.6",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        got,
        [json!({"at": "1.5s", "time": "2000-01-01T00:00:01.500Z",
            "events": [{"at": "1.5s", "inferences": [entity("truck", 0.9)]}]})]
    );
}
