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
//! `cargo bench --bench wasm_filters` prints size, compile, instantiate + create and per-call
//! figures of the Python, JavaScript and Rust guests.

mod support;

use std::process::Command;

use support::guests::{self, load};
use support::python::{BRIGHT, FAULTY, TRUCK_FILTER, python_guest};
use support::{repo, temp_dir};

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
    guests::records_exactly_what_rust_does(&python_guest(TRUCK_FILTER), "py", "Python");
}

/// Both filters refuse the same bad configurations, naming the key, and start with the same good
/// one (typed values: numbers and text alike).
#[test]
fn the_python_truck_filter_refuses_what_the_rust_one_refuses() {
    guests::refuses_what_rust_refuses(&load(&python_guest(TRUCK_FILTER)));
}

/// A Python exception in `process_event` costs that call only: it is a trap fault, and the next
/// call gets a fresh instance (its call count starts again at 1) that answers as before. So does
/// an endless loop: the deadline interrupts it.
#[test]
fn a_python_exception_costs_only_its_call() {
    guests::an_exception_costs_only_its_call(load(&python_guest(FAULTY)));
}

/// In the pipeline, the faulty guest meets the detections at 9 s (odd: exception), 10 s (even:
/// trigger) and 11 s (odd): two `ModuleFault` events name the module and the trap, the Python
/// traceback reaches the host's log, and the pipeline goes on: the trigger at 10 s, from a fresh
/// instance, records its clip (5 s before it to the end of the file).
#[test]
fn a_python_exception_is_reported_as_a_module_fault_and_recording_goes_on() {
    guests::faults_are_reported_and_recording_goes_on(
        &python_guest(FAULTY),
        "py",
        "RuntimeError: ",
    );
}

/// A Python frame filter gets what it asks for (a 160-pixel luma plane), reads its settings
/// (text read as a number) and reports motion only in bright frames.
#[test]
fn a_python_frame_filter_gets_the_pixels_it_asks_for() {
    guests::a_frame_filter_gets_its_pixels(load(&python_guest(BRIGHT)));
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

/// `vigil filter new --lang python` makes a project whose `./build.sh --test` runs its unit
/// tests and whose `./build.sh` builds a component that `vigil filter test` runs on events,
/// with the exact output; a Python frame-filter project is refused with where to look.
#[test]
fn a_new_python_filter_project_builds_and_runs_in_the_test_bench() {
    let dir = temp_dir("py-filter-new");
    let (project, names) =
        guests::new_event_project(&dir, "python", "Python projects start from an event filter");
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
    guests::build_project(&project);
    guests::a_new_filter_runs_in_the_test_bench(&project.join("filter.wasm"), &dir);
}
