//! What the tests of filter components written in other languages share (python_guest.rs,
//! js_guest.rs): the replay of `object-to-files.json` with a guest in the filter node, the six
//! configurations on which a guest truck filter must record exactly what the built-in Rust object
//! filter records, the bad configurations both refuse, the faulty guest's calls and pipeline, the
//! bright frame filter's frames, and the test bench on a new project's filter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::inference::InferServer;
use super::peers::free_port;
use super::{clips, mp4_files, probe, repo, temp_dir};
use vigil::wasm::bindings::{Entity, Event, Frame, Inference, Payload, Plane, Rect, Tag};
use vigil::wasm::convert::inference_json;
use vigil::wasm::filter::{FilterHost, Limits, Outcome};
use vigil::wasm::module::{Contract, LoadedModule, ModuleSource, World};

/// UTC of the replayed file's first frame (an even second: the detections at 9, 10 and 11 s
/// fall in odd, even, odd seconds).
pub const START: &str = "2026-01-01T00:00:00Z";
/// [`START`] as UTC nanoseconds.
pub const START_NS: i64 = 1_767_225_600_000_000_000;

/// What one replay of the pipeline gave.
#[derive(Debug, PartialEq)]
pub struct Run {
    /// Clip file names and their frame counts.
    pub clips: Vec<(String, u64)>,
    /// The filter node's events: (eventTime, body).
    pub decisions: Vec<(String, Value)>,
    /// Bodies of the `ModuleFault` events.
    pub faults: Vec<Value>,
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
pub fn replay(
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
pub fn trigger(name: &str) -> Value {
    json!([{"type": "event", "event": {"name": name,
        "properties": {"count": "1", "label": "truck", "confidence": "0.900"}}}])
}

/// A configuration case: name, `output`, `eventName`, `--set` values, then what both filters
/// must give: the seconds of the filter's events and the clips.
pub type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    Vec<u32>,
    Vec<(&'static str, u64)>,
);

/// The six configurations a guest truck filter is replayed with. The stand-in finds the truck at
/// 9, 10 and 11 s, its box centre at x = 0.23, 0.49995 and 0.77; the gate records 5 s before the
/// first event to 10 s after the last (the file ends at 20 s). Two cases sit on f32 edges a guest
/// must compute as Rust does: the 10 s centre, in f32 0.49994999, is inside a region ending at
/// 0.49995 (in f64 it is not), and a confidence of 0.9 meets a minimum of 0.9 (in f64 the f32 0.9
/// is below it).
pub fn truck_cases() -> Vec<Case> {
    let whole = vec![("object-20260101T000004Z.mp4", 16 * 30)];
    vec![
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
    ]
}

/// Replays each of [`truck_cases`] with the built-in Rust object filter and with `guest` (a truck
/// filter written in `language`; `tag` prefixes the work folders): both record the same clips
/// (names, frame counts) and emit the same events, those are what the configuration means, and
/// the guest logs its rule through the host's log.
pub fn records_exactly_what_rust_does(guest: &Path, tag: &str, language: &str) {
    let cases = truck_cases();
    for (name, output, event_name, sets, seconds, clips) in cases {
        let edit = |p: &mut Value| {
            p["configuration"]["output"] = json!(output);
            if let Some(n) = event_name {
                p["configuration"]["eventName"] = json!(n);
            }
        };
        let (rust, _) = replay(&format!("{tag}-{name}-rust"), "object-filter", edit, &sets);
        let (theirs, log) = replay(
            &format!("{tag}-{name}-{language}"),
            &guest.to_string_lossy(),
            edit,
            &sets,
        );
        assert_eq!(
            theirs, rust,
            "{name}: the {language} filter differs from the Rust one"
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
pub fn limits() -> Limits {
    Limits {
        call_deadline: Duration::from_millis(500),
        init_deadline: Duration::from_secs(10),
        memory_bytes: 64 << 20,
    }
}

/// The component at `path`, loaded as the host loads it.
pub fn load(path: &Path) -> Arc<LoadedModule> {
    ModuleSource::File(path.to_path_buf())
        .load()
        .expect("component loads")
}

/// A typed configuration from (name, JSON value) pairs.
pub fn config(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// `guest` (a truck filter) and the built-in Rust object filter refuse the same bad
/// configurations, naming the key, and start with the same good one (typed values: numbers and
/// text alike), deciding alike on an event with two trucks and a person.
pub fn refuses_what_rust_refuses(guest: &Arc<LoadedModule>) {
    assert_eq!(
        (guest.world, guest.contract),
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
        for module in [&rust, guest] {
            let why = refusal(module, &bad);
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
    for module in [&rust, guest] {
        let mut host =
            FilterHost::new("f", module.clone(), good.clone(), limits()).expect("starts");
        match host.process_event(event.clone()) {
            Outcome::Done(out) => assert_eq!(events_json(&out), want, "{}", module.origin),
            other => panic!("{}: {other:?}", module.origin),
        }
    }
}

/// Why `module` refuses `config` (the host's whole message), or a panic when it starts.
pub fn refusal(module: &Arc<LoadedModule>, config: &[(String, Value)]) -> String {
    let refused = FilterHost::new("f", module.clone(), config.to_vec(), limits())
        .err()
        .unwrap_or_else(|| panic!("{}: accepted {config:?}", module.origin));
    format!("{refused:#}")
}

/// An `objectDetection` entity.
pub fn entity(label: &str, confidence: f32, b: Rect) -> Inference {
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
pub fn events_json(events: &[Event]) -> Value {
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
pub fn faulty_trigger(second: i64, calls: u32) -> Value {
    let ns = START_NS + second * 1_000_000_000;
    json!([{"timestamp_ns": ns, "inferences": [{"type": "event", "event": {
        "name": "objectDetected",
        "properties": {"second": (ns / 1_000_000_000).to_string(), "calls": calls.to_string()}}}]}])
}

/// The faulty guest (tests/guests/faulty of an SDK) under a filter host: its instance is kept
/// between calls; an exception (odd seconds: 3 s, 5 s) costs that call only, a trap fault, and
/// the next call gets a fresh instance (its call count starts again at 1) that answers as before;
/// the endless loop at 7 s is stopped by the deadline and costs its call only too.
pub fn an_exception_costs_only_its_call(faulty: Arc<LoadedModule>) {
    let mut host = FilterHost::new("faulty", faulty, vec![], limits()).expect("starts");
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

/// The faulty guest at `faulty` in the pipeline meets the detections at 9 s (odd: exception),
/// 10 s (even: trigger) and 11 s (odd): two `ModuleFault` events name the module and the trap,
/// the exception's message (after `raised`, how the language names it) reaches the host's log,
/// and the pipeline goes on: the trigger at 10 s, from a fresh instance, records its clip (5 s
/// before it to the end of the file).
pub fn faults_are_reported_and_recording_goes_on(faulty: &Path, tag: &str, raised: &str) {
    let (run, log) = replay(
        &format!("{tag}-faulty"),
        &faulty.to_string_lossy(),
        |_| {},
        &[],
    );
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
                "{raised}faulty guest: event at {} ns is in an odd second",
                START_NS + second * 1_000_000_000
            )),
            "the exception of {second} s is in the log: {log}"
        );
    }
}

/// The bright guest (tests/guests/bright of an SDK) gets what it asks for (a 160-pixel luma
/// plane), reads its settings (text read as a number) and reports motion only in bright frames,
/// the stride's padding not counted; a threshold that is no number is refused, naming it.
pub fn a_frame_filter_gets_its_pixels(bright: Arc<LoadedModule>) {
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

/// An entity inference as AVA's schema writes it, with the box the filter-test cases use.
pub fn entity_json(label: &str, confidence: f64) -> Value {
    json!({"type": "entity", "entity": {"tag": {"value": label, "confidence": confidence},
           "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4}}})
}

/// `vigil filter test --module module --events E` with `--config` for each of `config`, `E`
/// holding `lines` (written in `dir`); checks that it succeeded and returns its output lines.
pub fn filter_test_on_events(
    module: &Path,
    dir: &Path,
    lines: &[Value],
    config: &[&str],
) -> Vec<Value> {
    let events = dir.join("events.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&events, text).expect("write");
    let mut args = vec![
        "filter",
        "test",
        "--module",
        module.to_str().expect("path"),
        "--events",
        events.to_str().expect("path"),
    ];
    for c in config {
        args.extend(["--config", c]);
    }
    let out = super::vigil(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

/// `vigil filter test` runs a new project's filter (`module`, the template's label filter) on
/// three events with `label=truck`, `minimumConfidence=0.6`: only the truck at 0.9 passes, at
/// 1.5 s, alone, with the exact output line. `dir` holds the events file.
pub fn a_new_filter_runs_in_the_test_bench(module: &Path, dir: &Path) {
    let entity = entity_json;
    let lines = [
        json!({"at": 1.5, "inferences": [entity("truck", 0.9), entity("car", 0.8)]}),
        json!({"at": 2.0, "inferences": [entity("car", 0.95)]}),
        json!({"at": 3.25, "inferences": [entity("truck", 0.55)]}),
    ];
    let got = filter_test_on_events(
        module,
        dir,
        &lines,
        &["label=truck", "minimumConfidence=0.6"],
    );
    assert_eq!(
        got,
        [json!({"at": "1.5s", "time": "2000-01-01T00:00:01.500Z",
            "events": [{"at": "1.5s", "inferences": [entity("truck", 0.9)]}]})]
    );
}

/// `vigil filter new` for `lang` in `dir`: a frame-filter project is refused with `refusal` in
/// the message, then the event-filter project `trucky` is made. Returns its folder and its file
/// names, sorted.
pub fn new_event_project(dir: &Path, lang: &str, refusal: &str) -> (PathBuf, Vec<String>) {
    let vigil = super::vigil;
    let at = dir.to_str().expect("path");
    let refused = vigil(&[
        "filter", "new", "framey", "--lang", lang, "--world", "frame", "--dir", at,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains(refusal), "{why}");
    let made = vigil(&["filter", "new", "trucky", "--lang", lang, "--dir", at]);
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
    (project, names)
}

/// Runs the project's `./build.sh` (which makes `filter.wasm`) and checks that it succeeded.
pub fn build_project(project: &Path) {
    let built = Command::new(project.join("build.sh"))
        .output()
        .expect("build.sh runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
}
