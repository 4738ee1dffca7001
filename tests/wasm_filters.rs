//! WebAssembly filters: faults are contained (a guest that loops forever, one that allocates
//! without bound, one that traps), hot swap between calls, and motion detection through the
//! built-in component in a replayed pipeline.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{clips, mp4_files, probe, read_events, temp_dir, vigil};
use vigil::wasm::bindings::{Event, Frame, Inference, Payload, Plane};
use vigil::wasm::filter::{FilterHost, Limits, Outcome};
use vigil::wasm::module::{Contract, LoadedModule, ModuleSource, World};

fn guest(name: &str) -> PathBuf {
    PathBuf::from(env!("VIGIL_GUEST_DIR")).join(format!("{name}.wasm"))
}

fn load(name: &str) -> Arc<LoadedModule> {
    ModuleSource::File(guest(name)).load().expect("guest loads")
}

fn frame(second: i64) -> Frame {
    Frame {
        timestamp_ns: 1_800_000_000_000_000_000 + second * 1_000_000_000,
        source_width: 1920,
        source_height: 1080,
        luma: Some(Plane {
            width: 160,
            height: 90,
            stride: 160,
            data: vec![0; 160 * 90],
        }),
        rgb: None,
    }
}

fn limits() -> Limits {
    Limits {
        // Well above what a normal call takes on a loaded 2-core machine in a debug build;
        // the spinning guest still meets it at once.
        call_deadline: Duration::from_millis(500),
        init_deadline: Duration::from_secs(5),
        memory_bytes: 32 << 20,
    }
}

#[test]
fn a_guest_that_loops_forever_is_stopped_at_its_deadline_then_backed_off() {
    let mut host = FilterHost::new("spin", load("spin"), vec![], limits()).expect("init");
    let started = std::time::Instant::now();
    for s in 0..3 {
        match host.process_frame(frame(s)) {
            Outcome::Fault(why) => assert!(why.starts_with("deadline"), "{why}"),
            other => panic!("expected a deadline fault, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Three faults in a row (the last at 2 s): calls pause for 1 s of stream time, then resume
    // with a fresh instance.
    assert!(matches!(host.process_frame(frame(2)), Outcome::Skipped));
    assert!(matches!(host.process_frame(frame(5)), Outcome::Fault(_)));
}

#[test]
fn an_init_that_never_returns_is_stopped_at_the_init_deadline() {
    let limits = Limits {
        init_deadline: Duration::from_millis(800),
        ..limits()
    };
    let config = vec![("spin-in-init".to_string(), json!(""))];
    let started = std::time::Instant::now();
    let refused = FilterHost::new("spin", load("spin"), config, limits)
        .err()
        .expect("an init that never returns is refused");
    let why = format!("{refused:#}");
    assert!(
        why.contains("instantiation and init ran longer than 800 ms"),
        "{why}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_guest_that_allocates_without_bound_hits_its_memory_limit() {
    let mut host = FilterHost::new("hog", load("hog"), vec![], limits()).expect("init");
    match host.process_frame(frame(0)) {
        Outcome::Fault(why) => assert!(why.contains("memory") || why.starts_with("trap"), "{why}"),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn a_trapping_guest_costs_only_that_call() {
    let mut host = FilterHost::new("trap", load("trap"), vec![], limits()).expect("init");
    let mut done = 0;
    for s in 0..4 {
        match host.process_frame(frame(s * 2)) {
            Outcome::Done(found) => {
                assert!(
                    matches!(
                        found.as_slice(),
                        [Inference {
                            payload: Payload::Motion(None),
                            ..
                        }]
                    ),
                    "{found:?}"
                );
                done += 1;
            }
            other => panic!("even second {}: {other:?}", s * 2),
        }
        assert!(
            matches!(host.process_frame(frame(s * 2 + 1)), Outcome::Fault(ref w) if w.starts_with("trap"))
        );
    }
    assert_eq!(done, 4, "a fresh instance serves the call after each trap");
}

#[test]
fn swap_replaces_the_module_between_calls_and_keeps_the_old_one_on_failure() {
    let event = Event {
        timestamp_ns: 1,
        inferences: vec![Inference::of(Payload::Motion(None))],
    };
    let mut host =
        FilterHost::new("f", load("passthrough_events"), vec![], limits()).expect("init");
    assert_eq!(host.module().world, World::Event);
    assert!(matches!(host.process_event(event.clone()), Outcome::Done(ref v) if v.len() == 1));
    let old_hash = host.module().hash.clone();
    // A frame filter cannot replace an event filter: refused, the old module keeps running.
    assert!(host.swap(load("trap")).is_err());
    assert_eq!(host.module().hash, old_hash);
    assert!(matches!(host.process_event(event.clone()), Outcome::Done(ref v) if v.len() == 1));
    host.swap(load("drop_events")).expect("swap");
    assert_ne!(host.module().hash, old_hash);
    assert!(matches!(host.process_event(event.clone()), Outcome::Done(ref v) if v.is_empty()));
}

fn replay_motion(name: &str, module: &str, events: &str) -> PathBuf {
    let dir = temp_dir(name);
    let ev = dir.join("events.jsonl");
    std::fs::write(&ev, events).expect("write");
    let clip = clips().join("camera-h264.mp4");
    let out = vigil(&[
        "replay",
        "tests/topologies/valid/motion-or-door.json",
        "--input",
        &clip.to_string_lossy(),
        "--events",
        &ev.to_string_lossy(),
        "--start-time",
        "2026-03-01T12:00:00Z",
        "--event-log",
        &dir.join("log.jsonl").to_string_lossy(),
        "--set",
        &format!("outputDirectory={}", dir.join("out").display()),
        "--set",
        &format!("motionModule={module}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The clip's box moves between 8 s and 12 s: one file, from the key frame 3 s before the
/// first motion, with motion events carrying boxes.
#[test]
fn builtin_motion_detector_records_the_motion_episode() {
    let dir = replay_motion("motion", "motion-detector", "");
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .to_string_lossy()
            .ends_with("motion-MotionOrDoorToFiles-20260301T120005Z.mp4"),
        "{files:?}"
    );
    let events = read_events(&dir.join("log.jsonl"));
    let motion: Vec<_> = events.iter().filter(|(k, _, _)| k == "Inference").collect();
    assert!(!motion.is_empty());
    let first_box = &motion[0].1["inferences"][0]["motion"]["box"];
    assert!(first_box["l"].as_f64().is_some(), "{first_box}");
    // The box is on the road (y from 0.62 of the height).
    let t = first_box["t"].as_f64().unwrap_or(0.0);
    assert!((0.5..0.8).contains(&t), "{first_box}");
    // Clip: 5 s to the end of the file (20 s), the gate still open at the end.
    assert_eq!(probe(&files[0]).frames, 15 * 30);
}

/// A guest that loops forever is reported per fault and backed off; the door trigger still
/// records.
#[test]
fn a_faulty_module_never_stops_recording() {
    let spin = guest("spin");
    let dir = replay_motion(
        "faulty",
        &spin.to_string_lossy(),
        r#"{"at": 10, "input": "recordingTrigger"}"#,
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1);
    let events = read_events(&dir.join("log.jsonl"));
    let faults: Vec<_> = events
        .iter()
        .filter(|(k, _, _)| k == "ModuleFault")
        .collect();
    assert!(faults.len() >= 3, "{} faults", faults.len());
    assert!(
        faults[0].1["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("deadline")
    );
    assert!(
        faults[0].1["module"]
            .as_str()
            .unwrap_or("")
            .ends_with("spin.wasm")
    );
}

/// AVA's `evr-motion-file-sink` topology, unchanged (it writes to /var/media), replayed over the
/// clip whose box moves from 8 s to 12 s: one file from the key frame at 8 s to the end.
#[test]
fn ava_evr_motion_file_sink_runs_unchanged() {
    let topology =
        support::repo().join("../shared/ava-topologies/live/evr-motion-file-sink/topology.json");
    if !topology.exists() {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    }
    let dir = temp_dir("ava-motion");
    let pipeline = format!("test-{}", std::process::id());
    let clip = clips().join("camera-h264.mp4");
    let out = vigil(&[
        "replay",
        &topology.to_string_lossy(),
        "--input",
        &clip.to_string_lossy(),
        "--start-time",
        "2026-03-01T12:00:00Z",
        "--pipeline-name",
        &pipeline,
        "--set",
        "rtspUrl=rtsp://camera.invalid/replaced-by-the-file",
        "--event-log",
        &dir.join("log.jsonl").to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = PathBuf::from(format!(
        "/var/media/sampleFilesFromEVR-motion-EVRToFilesOnMotionDetection-{pipeline}-filesinkOutput-20260301T120008Z.mp4"
    ));
    let p = probe(&expected);
    let _ = std::fs::remove_file(&expected);
    // Its explanation and snapshot beside it.
    for extra in [".json", ".jpg"] {
        let _ = std::fs::remove_file(format!("{}{extra}", expected.display()));
    }
    assert_eq!(p.frames, 12 * 30, "{p:?}");
    let events = read_events(&dir.join("log.jsonl"));
    let kinds: Vec<&str> = events
        .iter()
        .map(|(k, _, _)| k.as_str())
        .filter(|k| *k != "Inference" && *k != "SnapshotAvailable")
        .collect();
    assert_eq!(
        kinds,
        vec!["RecordingStarted", "RecordingStopped", "RecordingAvailable"]
    );
}

fn replay_filtered(name: &str, filter: &str) -> PathBuf {
    let dir = temp_dir(name);
    let clip = clips().join("camera-h264.mp4");
    let out = vigil(&[
        "replay",
        "tests/topologies/valid/motion-through-filter.json",
        "--input",
        &clip.to_string_lossy(),
        "--start-time",
        "2026-03-01T12:00:00Z",
        "--event-log",
        &dir.join("log.jsonl").to_string_lossy(),
        "--set",
        &format!("outputDirectory={}", dir.join("out").display()),
        "--set",
        &format!("filterModule={}", guest(filter).display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A `#Vigil.WasmProcessor` event filter decides: passing motion events on records the episode,
/// dropping them records nothing; what it passes is logged as its own analytics, correlated with
/// the motion event it came from.
#[test]
fn an_event_filter_component_decides_what_opens_the_gate() {
    let passed = replay_filtered("filter-pass", "passthrough_events");
    assert_eq!(mp4_files(&passed.join("out")).len(), 1);
    let events = read_events(&passed.join("log.jsonl"));
    let from_filter: Vec<_> = events
        .iter()
        .filter(|(k, _, c)| k == "Inference" && c.is_some())
        .collect();
    assert!(
        !from_filter.is_empty(),
        "the filter's events carry the motion event's id"
    );
    let dropped = replay_filtered("filter-drop", "drop_events");
    assert!(mp4_files(&dropped.join("out")).is_empty());
}

/// The built-in motion detector is a vigil:filter@0.2.0 component (written with the SDK), the
/// passthrough test guest a 0.1.0 one: in one pipeline the first's motion boxes reach the second
/// and come back as its own events, with the boxes the detector found; the clip is the episode's.
#[test]
fn components_of_both_contract_versions_run_side_by_side() {
    let motion = ModuleSource::parse("motion-detector")
        .load()
        .expect("built-in");
    assert_eq!(
        (motion.world, motion.contract),
        (World::Frame, Contract::V0_2)
    );
    let old = load("passthrough_events");
    assert_eq!((old.world, old.contract), (World::Event, Contract::V0_1));
    let dir = replay_filtered("filter-versions", "passthrough_events");
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        probe(&files[0]).frames,
        15 * 30,
        "from the key frame 3 s before the motion at 8 s to the end"
    );
    let events = read_events(&dir.join("log.jsonl"));
    let (from_motion, from_filter): (Vec<_>, Vec<_>) = events
        .iter()
        .filter(|(k, _, _)| k == "Inference")
        .partition(|(_, _, c)| c.is_none());
    assert!(!from_motion.is_empty());
    assert_eq!(
        from_motion.len(),
        from_filter.len(),
        "one passed on per motion event"
    );
    for ((_, m, _), (_, f, _)) in from_motion.iter().zip(&from_filter) {
        assert_eq!(
            m["inferences"], f["inferences"],
            "the boxes cross both contracts"
        );
        assert!(
            m["inferences"][0]["motion"]["box"]["w"].as_f64().is_some(),
            "{m}"
        );
    }
}

/// Every WASI call a guest can make is harmless, here on a thread inside a tokio runtime (as on
/// a camera's thread, where the synchronous WASI calls used to panic the host): output goes to
/// the log, sleep returns at once (it held the thread past the deadline), stdin is closed,
/// sockets and files are refused, the wall clock is the stream clock. A guest's panic costs
/// its call only.
#[test]
fn every_wasi_call_of_a_hostile_guest_is_harmless() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let event = Event {
        timestamp_ns: 1_800_000_000_123_456_789,
        inferences: vec![Inference::of(Payload::Motion(None))],
    };
    for call in [
        "stdout", "stderr", "sleep", "stdin", "udp", "file", "clock", "panic",
    ] {
        let config = vec![("call".to_string(), json!(call))];
        let outcome = runtime.block_on(async {
            let mut host = FilterHost::new(call, load("wasi_calls"), config, limits())
                .unwrap_or_else(|e| panic!("{call}: {e:#}"));
            host.process_event(event.clone())
        });
        match (call, outcome) {
            ("clock", Outcome::Done(events)) => {
                assert_eq!(events.len(), 1);
                assert_eq!(
                    events[0].timestamp_ns, event.timestamp_ns,
                    "the stream clock"
                );
            }
            ("panic", Outcome::Fault(why)) => assert!(why.starts_with("trap"), "{why}"),
            (_, Outcome::Done(events)) => {
                assert_eq!(events.len(), 1, "{call}: the call did not end as promised")
            }
            (_, other) => panic!("{call}: {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/vigil-guest-was-here").exists());
}

/// `vigil filter test` on the built-in motion detector over the clip (its box moves 8–12 s into
/// it): ten frames a second are analysed (200 calls for the 20 s), the first motion is the frame
/// at 8.1 s, nothing before 8 s; a second run matches the first's saved output, and an edited
/// expectation is reported with the line that differs.
#[test]
fn filter_test_runs_a_module_on_a_clip_and_checks_an_expectation() {
    let dir = temp_dir("filter-test-clip");
    let clip = clips().join("camera-h264.mp4");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "filter",
            "test",
            "--module",
            "motion-detector",
            "--input",
            clip.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        vigil(&args)
    };
    let first = run(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("200 calls"), "{stderr}");
    assert!(stderr.contains("vigil:filter@0.2.0"), "{stderr}");
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["at"], "8.1s", "{}", lines[0]);
    assert_eq!(lines[0]["time"], "2000-01-01T00:00:08.100Z");
    assert!(
        lines[0]["inferences"][0]["motion"]["box"]["w"]
            .as_f64()
            .is_some()
    );
    let last = lines.last().expect("motion found");
    let secs = |v: &serde_json::Value| {
        v["at"]
            .as_str()
            .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
            .expect("at")
    };
    assert!((8.0..13.0).contains(&secs(last)), "{last}");
    let saved = dir.join("expected.jsonl");
    std::fs::write(&saved, &out).expect("write");
    let again = run(&["--expect", saved.to_str().expect("path")]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let edited = out.replacen("\"8.1s\"", "\"8.0s\"", 1);
    std::fs::write(&saved, edited).expect("write");
    let differs = run(&["--expect", saved.to_str().expect("path")]);
    assert_eq!(differs.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&differs.stderr).contains("line 1 differs"),
        "{}",
        String::from_utf8_lossy(&differs.stderr)
    );
}

/// `vigil filter new --lang rust` makes a project that builds into a 0.2.0 event filter with one
/// command and whose unit test passes; `vigil filter test` runs it on events: it keeps the
/// detections of the label asked for at or above the confidence, case-insensitively, and drops
/// events with none.
#[test]
fn a_new_rust_filter_project_builds_and_runs_in_the_test_bench() {
    let dir = temp_dir("filter-new");
    let made = vigil(&[
        "filter",
        "new",
        "truckish",
        "--dir",
        dir.to_str().expect("path"),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let project = dir.join("truckish");
    // A target folder that outlives the test: later runs build incrementally.
    let target = support::repo().join("target/filter-new-test");
    for args in [
        &["build", "--release", "--quiet", "--target", "wasm32-wasip2"][..],
        &["test", "--quiet"][..],
    ] {
        let status = std::process::Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("cargo");
        assert!(status.success(), "cargo {args:?} in the new project");
    }
    let module = target.join("wasm32-wasip2/release/truckish.wasm");
    let entity = support::guests::entity_json;
    let lines = [
        serde_json::json!({"at": 1.5, "inferences": [entity("truck", 0.9), entity("car", 0.8)]}),
        serde_json::json!({"at": 2.0, "inferences": [entity("car", 0.95)]}),
        serde_json::json!({"at": 3.25, "inferences": [entity("Truck", 0.55)]}),
    ];
    let got = support::guests::filter_test_on_events(
        &module,
        &dir,
        &lines,
        &["labels=truck", "minimumConfidence=0.5"],
    );
    assert_eq!(
        got,
        [
            serde_json::json!({"at": "1.5s", "time": "2000-01-01T00:00:01.500Z",
                "events": [{"at": "1.5s", "inferences": [entity("truck", 0.9)]}]}),
            serde_json::json!({"at": "3.25s", "time": "2000-01-01T00:00:03.250Z",
                "events": [{"at": "3.25s", "inferences": [entity("Truck", 0.55)]}]}),
        ]
    );
}
