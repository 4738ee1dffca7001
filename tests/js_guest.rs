//! JavaScript filter components: written with the SDK in guest-sdk/js and built by
//! scripts/build-js-guest.sh (esbuild and ComponentizeJS against wit/0.2). The JavaScript truck
//! filter (guest-sdk/js/examples/truck-filter) replaces the built-in Rust object filter in
//! `object-to-files.json`, replayed over the test clip against the real inference stand-in
//! (scripts/peers/infer-server.py), and gives exactly the same clips and trigger events for the
//! six configurations the Python guest is checked with (support/guests.rs), f32 edge cases
//! included; it refuses the same bad configurations with the same messages. A JavaScript
//! exception or endless loop costs its call only and is reported as a `ModuleFault`; a
//! JavaScript frame filter gets the pixels it asks for; the component imports no WASI the host
//! does not link; the SDK's own unit tests pass; the build script says what is missing; `vigil
//! filter new --lang js` makes a project that builds and runs. Built components are kept in
//! target/js-guests, keyed by the hash of everything that goes into them.
//!
//! `cargo bench --bench wasm_filters` prints size, compile, instantiate + create and per-call
//! figures of the JavaScript, Python and Rust guests.

mod support;

use std::process::{Command, Output};

use serde_json::{Value, json};
use support::guests::{self, config, load, refusal};
use support::js::{BRIGHT, FAULTY, TRUCK_FILTER, js_guest};
use support::{repo, temp_dir};
use vigil::wasm::module::ModuleSource;

/// The same pipeline with the JavaScript truck filter in place of the built-in Rust object
/// filter: for each configuration both record the same clips (names, frame counts) and emit the
/// same events, and those are what the configuration means (see `guests::truck_cases`).
#[test]
fn the_js_truck_filter_records_exactly_what_the_rust_one_does() {
    guests::records_exactly_what_rust_does(&js_guest(TRUCK_FILTER), "js", "JavaScript");
}

/// Both filters refuse the same bad configurations, naming the key, and start with the same good
/// one; beyond what the Python filter is held to, the JavaScript one reads the configuration as
/// the Rust rule does (keys exactly, in order, one region only, an empty `eventName` an unknown
/// key), so its messages are the Rust ones word for word but for the filter's name.
#[test]
fn the_js_truck_filter_refuses_what_the_rust_one_refuses() {
    let js = load(&js_guest(TRUCK_FILTER));
    guests::refuses_what_rust_refuses(&js);
    let rust = ModuleSource::parse("object-filter")
        .load()
        .expect("built-in");
    for bad in [
        config(&[("label", json!("truck"))]),
        config(&[("Labels", json!("truck"))]),
        config(&[("minimumConfidence", json!(" high "))]),
        config(&[("minimumConfidence", json!(1.5))]),
        config(&[("minimumBoxWidth", json!("-0.1"))]),
        config(&[("minimumBoxHeight", json!(true))]),
        config(&[("regionOfInterest", json!("0,0,1"))]),
        config(&[("regionOfInterest", json!("0,0,1,1;0,0,0.5,0.5"))]),
        config(&[("regionOfInterest", json!("0,0,1,1,1"))]),
        config(&[("output", json!(" trigger"))]),
        config(&[("eventName", json!("  "))]),
        config(&[
            ("minimumConfidence", json!("high")),
            ("colour", json!("red")),
        ]),
    ] {
        // The message after the module's name.
        let why = |module| {
            let text = refusal(module, &bad);
            let at = text.find("refused the configuration: ").unwrap_or(0);
            text[at..].to_string()
        };
        assert_eq!(
            why(&js).replace("truck-filter: ", "object-filter: "),
            why(&rust),
            "{bad:?}"
        );
    }
}

/// The component imports the contract's host interfaces and WASI preview 2's clocks, random,
/// cli, io and filesystem, which the host links (sandboxed), and nothing else: no wasi:http, no
/// sockets (ComponentizeJS's `http` and `fetch-event` features are disabled).
#[test]
fn the_js_component_imports_only_what_the_host_links() {
    let js = load(&js_guest(TRUCK_FILTER));
    let engine = vigil::wasm::engine::engine().expect("engine");
    let imports: Vec<String> = js
        .component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    assert!(
        imports.iter().any(|i| i == "vigil:filter/host@0.2.0"),
        "{imports:?}"
    );
    for name in &imports {
        let allowed = [
            "vigil:filter/",
            "wasi:clocks/",
            "wasi:random/",
            "wasi:cli/",
            "wasi:io/",
            "wasi:filesystem/",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        assert!(allowed, "{name} imported: {imports:?}");
    }
}

/// A JavaScript exception in `processEvent` costs that call only: it is a trap fault, and the
/// next call gets a fresh instance (its call count starts again at 1) that answers as before. So
/// does an endless loop: the deadline interrupts it.
#[test]
fn a_js_exception_costs_only_its_call() {
    guests::an_exception_costs_only_its_call(load(&js_guest(FAULTY)));
}

/// In the pipeline, the faulty guest meets the detections at 9 s (odd: exception), 10 s (even:
/// trigger) and 11 s (odd): two `ModuleFault` events name the module and the trap, the
/// exception's message (StarlingMonkey writes it and its stack to stderr) reaches the host's log,
/// and the pipeline goes on: the trigger at 10 s, from a fresh instance, records its clip.
#[test]
fn a_js_exception_is_reported_as_a_module_fault_and_recording_goes_on() {
    guests::faults_are_reported_and_recording_goes_on(&js_guest(FAULTY), "js", "");
}

/// A JavaScript frame filter gets what it asks for (a 160-pixel luma plane, its stride
/// respected), reads its settings (text read as a number) and reports motion only in bright
/// frames.
#[test]
fn a_js_frame_filter_gets_the_pixels_it_asks_for() {
    guests::a_frame_filter_gets_its_pixels(load(&js_guest(BRIGHT)));
}

/// `node --test`'s summary in `out`: (tests, passed, failed).
fn node_test_counts(out: &Output) -> (u32, u32, u32) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {what} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(u32::MAX)
    };
    (count("tests"), count("pass"), count("fail"))
}

/// The SDK's unit tests, the truck filter's and the template's run outside a component
/// (`--test`, node's own test runner) and pass.
#[test]
fn the_sdk_and_example_unit_tests_pass() {
    for (dir, tests) in [
        ("guest-sdk/js/tests", 12),
        (TRUCK_FILTER, 4),
        ("guest-sdk/js/template", 2),
    ] {
        let out = Command::new("bash")
            .arg(repo().join("scripts/build-js-guest.sh"))
            .arg("--test")
            .arg(repo().join(dir))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{dir}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(node_test_counts(&out), (tests, tests, 0), "{dir}");
    }
}

/// Without the tools the build stops at once and says how to install them; a folder without a
/// filter class, and an app that does not parse, are refused with the reason.
#[test]
fn the_build_script_says_what_is_missing() {
    let dir = temp_dir("js-build-errors");
    let script = repo().join("scripts/build-js-guest.sh");
    let build = |src: &std::path::Path, tools: Option<&std::path::Path>| {
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(src).arg(dir.join("out.wasm"));
        if let Some(t) = tools {
            cmd.env("VIGIL_JS_TOOLS", t);
        }
        let out = cmd.output().expect("bash runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = build(&repo().join(TRUCK_FILTER), Some(&dir.join("no-tools")));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("@bytecodealliance/componentize-js esbuild not found")
            && stderr.contains("scripts/setup.sh")
            && stderr.contains("npm install"),
        "{stderr}"
    );
    std::fs::write(dir.join("app.js"), "export const x = 1;\n").expect("write");
    let (code, stderr) = build(&dir, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("extends vigil_filter's EventFilter or FrameFilter"),
        "{stderr}"
    );
    std::fs::write(
        dir.join("app.js"),
        "import { EventFilter } from \"vigil_filter\";\nexport default class F extends EventFilter {\n  processEvent(e) { return e\n}\n",
    )
    .expect("write");
    let (code, stderr) = build(&dir, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot build") && stderr.contains("/app.js:5:"),
        "the parse error says where: {stderr}"
    );
    assert!(!dir.join("out.wasm").exists());
}

/// `vigil filter new --lang js` makes a project (an ES module package, the SDK linked in its
/// node_modules) whose tests run with plain `node --test test_app.js` and with `./build.sh
/// --test`, and whose `./build.sh` builds a component that `vigil filter test` runs on events,
/// with the exact output; a JavaScript frame-filter project is refused with where to look.
#[test]
fn a_new_js_filter_project_builds_and_runs_in_the_test_bench() {
    let dir = temp_dir("js-filter-new");
    let (project, names) =
        guests::new_event_project(&dir, "js", "JavaScript projects start from an event filter");
    assert_eq!(
        names,
        [
            ".gitignore",
            "README.md",
            "app.js",
            "build.sh",
            "node_modules",
            "package.json",
            "test_app.js"
        ]
    );
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("package.json")).expect("package.json"),
    )
    .expect("JSON");
    assert_eq!(
        (&package["name"], &package["type"]),
        (&json!("trucky"), &json!("module"))
    );
    let app = std::fs::read_to_string(project.join("app.js")).expect("app.js");
    assert!(
        app.contains("\"trucky: \"") && !app.contains("NAME"),
        "{app}"
    );
    let plain = Command::new("node")
        .args(["--test", "test_app.js"])
        .current_dir(&project)
        .output()
        .expect("node runs");
    assert_eq!(node_test_counts(&plain), (2, 2, 0), "plain node --test");
    let tests = Command::new(project.join("build.sh"))
        .arg("--test")
        .output()
        .expect("build.sh runs");
    assert_eq!(node_test_counts(&tests), (2, 2, 0), "./build.sh --test");
    guests::build_project(&project);
    guests::a_new_filter_runs_in_the_test_bench(&project.join("filter.wasm"), &dir);
}

/// A JavaScript frame filter leaves each call's plane for its garbage collector, which lets the
/// heap reach ~70 MiB before it collects: at a 64 MiB limit a no-op filter at 320×180 faulted
/// every ~3,080 calls. Under the host's default limit it runs 5,000 calls without a fault.
#[test]
fn a_js_frame_filter_runs_within_the_default_memory_limit() {
    use vigil::wasm::bindings::{Frame, Plane};
    use vigil::wasm::filter::{FilterHost, Limits, Outcome};
    let module = guests::load(&support::js::js_guest(
        "guest-sdk/js/tests/guests/noop-frame",
    ));
    let limits = Limits {
        call_deadline: guests::limits().call_deadline,
        init_deadline: guests::limits().init_deadline,
        ..Limits::default()
    };
    let mut host = FilterHost::new("noop", module, vec![], limits).expect("starts");
    for i in 0..5000i64 {
        let frame = Frame {
            timestamp_ns: i * 100_000_000,
            source_width: 320,
            source_height: 180,
            luma: Some(Plane {
                width: 320,
                height: 180,
                stride: 320,
                data: vec![7; 320 * 180],
            }),
            rgb: None,
        };
        match host.process_frame(frame) {
            Outcome::Done(found) => assert!(found.is_empty()),
            other => panic!("call {i}: {other:?}"),
        }
    }
}
