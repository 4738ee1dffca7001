//! Live HttpExtension runs against real peers: the GStreamer RTSP camera looping the generated
//! clip, the inference stand-in (scripts/peers/infer-server.py), a Mosquitto broker and the
//! outside decision process of AVA's round trip (scripts/peers/inference-decider.py).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::inference::InferServer;
use support::peers::{
    Peer, broker, camera, event_log, free_port, http_post, vigil_run, wait_for_event, wait_for_port,
};
use support::{clips, decodes_cleanly, mp4_files, probe, repo, temp_dir};

/// `vigil run` arguments for `topology` as pipeline `pipeline`: the event log in `dir`, the
/// HTTP listener on `http_port`, the camera on `cam_port`.
fn run_args(
    topology: &str,
    pipeline: &str,
    dir: &Path,
    http_port: u16,
    cam_port: u16,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        topology.into(),
        "--pipeline-name".into(),
        pipeline.into(),
        "--event-log".into(),
        event_log(dir).to_string_lossy().into(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
    ];
    args.extend(set(
        "rtspUrl",
        format!("rtsp://127.0.0.1:{cam_port}/camera"),
    ));
    args
}

fn set(name: &str, value: impl std::fmt::Display) -> [String; 2] {
    ["--set".into(), format!("{name}={value}")]
}

/// The same inferences decide two recordings in one pipeline: in-process through the
/// object-filter component, and over MQTT through an outside process that publishes a trigger
/// with the inference's eventTime. Both gates write the same clip: same first frame (the file
/// name is its UTC time), and the same frames up to the round trip's latency at the end.
#[test]
fn in_process_rule_and_mqtt_round_trip_record_the_same_clips() {
    let dir = temp_dir("live-both-ways");
    let (cam_port, mqtt_port, http_port, infer_port) =
        (free_port(), free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = broker(mqtt_port);
    let server = InferServer::start(infer_port, &dir.join("requests"));
    let pipeline = "bothways";
    let _decider = Peer {
        child: Command::new("python3")
            .arg(repo().join("scripts/peers/inference-decider.py"))
            .args(["--port", &mqtt_port.to_string(), "--pipeline", pipeline])
            .args(["--labels", "truck"])
            .stdout(std::fs::File::create(dir.join("decider.log")).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("the decider starts"),
    };
    let mut args = run_args(
        "tests/topologies/valid/inference-both-ways.json",
        pipeline,
        &dir,
        http_port,
        cam_port,
    );
    args.extend(["--mqtt".to_string(), format!("127.0.0.1:{mqtt_port}")]);
    args.extend(set("inferencingUrl", server.url()));
    args.extend(set("samplesPerSecond", 2));
    args.extend(set("minActivation", "PT6S"));
    args.extend(set("maxActivation", "PT20S"));
    args.extend(set("outputDirectory", dir.join("out").display()));
    let mut vigil = vigil_run(&dir, &args);
    // One episode of the red box (8–12 s of each 20 s loop) gives one clip on each path.
    let events = wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        2,
        Duration::from_secs(75),
    );
    // Inference snapshots are served while vigil runs: the picture the service analysed (the
    // frame at its 2 samples/s, as sent), the truck's box outlined. At most one event per 0.9 s
    // of media gets one: the first with a box that has one is checked.
    let (inference, jpeg) = support::log_events(&event_log(&dir))
        .into_iter()
        .filter(|e| {
            e["properties"]["subject"]
                .as_str()
                .is_some_and(|s| s.ends_with("/processors/inference"))
                && e["body"]["inferences"][0]["entity"]["box"].is_object()
        })
        .find_map(|e| {
            let id = e["systemProperties"]["messageId"].as_str()?.to_string();
            let url = format!("http://127.0.0.1:{http_port}/api/snapshots/{id}.jpg");
            let (status, jpeg) = support::archive::get(&url);
            (status == 200).then_some((e, jpeg))
        })
        .expect("an inference event with a box and its snapshot");
    let image = dir.join("inference-snapshot.jpg");
    std::fs::write(&image, &jpeg).expect("write");
    let pixels = support::image_pixels(&image);
    let b = &inference["body"]["inferences"][0]["entity"]["box"];
    let (l, t, h) = (
        b["l"].as_f64().expect("l"),
        b["t"].as_f64().expect("t"),
        b["h"].as_f64().expect("h"),
    );
    assert!(
        support::is_amber(&pixels, l, t + h / 2.0),
        "the box's left edge at l={l:.3} is outlined in {}",
        image.display()
    );
    let unknown = format!("http://127.0.0.1:{http_port}/api/snapshots/nothing.jpg");
    assert_eq!(support::archive::get(&unknown).0, 404);
    vigil.interrupt();
    // The in-process clip's explanation names the snapshots of the events that made it,
    // written beside it.
    let local_files = mp4_files(&dir.join("out/in-process"));
    for file in support::event_snapshots_of(&local_files[0]) {
        assert_eq!(
            support::image_pixels(&file).0,
            pixels.0,
            "{}",
            file.display()
        );
    }
    let triggers = events
        .iter()
        .filter(|(k, _, _)| k == "TriggerReceived")
        .count();
    assert!(triggers >= 1, "the decider's triggers arrived over MQTT");
    let local = mp4_files(&dir.join("out/in-process"));
    let remote = mp4_files(&dir.join("out/round-trip"));
    assert!(!local.is_empty() && !remote.is_empty());
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    assert_eq!(
        name(&local[0]),
        name(&remote[0]),
        "both clips start at the same frame"
    );
    let (a, b) = (probe(&local[0]), probe(&remote[0]));
    assert!(decodes_cleanly(&local[0]) && decodes_cleanly(&remote[0]));
    // The gate keeps a clip open minimumActivationTime after an event *arrives* (design.md):
    // the round trip arrives later by its latency (loopback MQTT + the decider), so its clip
    // may end a few frames later; start and content are the same.
    assert!(
        b.frames >= a.frames && b.frames - a.frames <= 6,
        "same clip, the round trip at most 0.2 s longer: {a:?} {b:?}"
    );
    // When the camera's session began less than 5 s before the first detection (a slow start
    // on a loaded machine), the clip is that much shorter, and says so.
    let missing: f64 = events
        .iter()
        .filter(|(k, _, _)| k == "PrerollIncomplete")
        .filter(|(_, b, _)| b["cause"] == "mediaBegan")
        .filter_map(|(_, b, _)| b["missingSeconds"].as_f64())
        .next()
        .unwrap_or(0.0);
    assert!(
        a.duration + missing > 11.0,
        "5 s of pre-roll + at least 6 s: {} (+{missing} s reported missing)",
        a.duration
    );
}

/// The service is down when the pipeline starts, then comes up slow (1.5 s per answer at 5
/// samples/s): outages are reported and retried, frames due while a request is in flight are
/// skipped and counted in /metrics, and a trigger records its clip on time all along.
#[test]
fn absent_then_slow_service_never_stalls_the_recording() {
    let dir = temp_dir("live-slow-service");
    let (cam_port, http_port, infer_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let pipeline = "slowservice";
    let mut args = run_args(
        "topologies/inference-roundtrip-to-files.json",
        pipeline,
        &dir,
        http_port,
        cam_port,
    );
    args.extend(set(
        "inferencingUrl",
        format!("http://127.0.0.1:{infer_port}/score"),
    ));
    args.extend(set("samplesPerSecond", 5));
    args.extend(set("minActivation", "PT5S"));
    args.extend(set("maxActivation", "PT10S"));
    args.extend(set("outputDirectory", dir.join("out").display()));
    let mut vigil = vigil_run(&dir, &args);
    let events = wait_for_event(&event_log(&dir), "NetworkError", 1, Duration::from_secs(30));
    let outage = events
        .iter()
        .find(|(k, _, _)| k == "NetworkError")
        .map(|(_, b, _)| b.clone())
        .expect("reported");
    assert_eq!(outage["errorCode"], "connectionFailed");

    let server = InferServer::start(infer_port, &dir.join("requests"));
    server.control(r#"{"delay_ms": 1500}"#);
    wait_for_port(http_port);
    let url = format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
    // Let the pre-roll buffer fill, then trigger.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(http_post(&url, "{}"), 202);
    let events = wait_for_event(
        &event_log(&dir),
        "RecordingAvailable",
        1,
        Duration::from_secs(30),
    );
    let metrics = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{http_port}/metrics")])
        .output()
        .expect("curl runs");
    let metrics = String::from_utf8_lossy(&metrics.stdout).to_string();
    vigil.interrupt();

    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(decodes_cleanly(&files[0]));
    let p = probe(&files[0]);
    assert!(
        (p.duration - 10.0).abs() <= 1.1,
        "5 s pre-roll + 5 s, within a GOP: {}",
        p.duration
    );
    assert!(
        (p.frames as f64 - p.duration * 30.0).abs() <= 2.0,
        "no frame lost: {p:?}"
    );
    assert!(!server.requests().is_empty(), "requests resumed");
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let busy = counter(
        "vigil_extension_samples_skipped_total{pipeline=\"slowservice\",node=\"inferenceClient\",reason=\"busy\"}",
    );
    let backoff = counter(
        "vigil_extension_samples_skipped_total{pipeline=\"slowservice\",node=\"inferenceClient\",reason=\"backoff\"}",
    );
    assert!(
        busy > 0,
        "frames skipped while busy are counted:\n{metrics}"
    );
    assert!(backoff > 0, "frames skipped while backing off:\n{metrics}");
    assert!(
        events.iter().any(|(k, b, _)| k == "DataDropped"
            && b["detail"]
                .as_str()
                .is_some_and(|d| d.contains("inference service"))),
        "skips are reported"
    );
}

/// The live truck rule swapped while recording, through the control API, from the built-in Rust
/// object filter to the Python truck filter (guest-sdk/python/examples/truck-filter), then to
/// the JavaScript one (guest-sdk/js/examples/truck-filter): each answer names the component's
/// hash, contract and world and the hash it replaced, `ModuleSwapped` says the same, the next
/// episode of the truck is decided by the new filter (its start-up log line, its decisions after
/// the swap), and no frame is missing from any clip.
#[test]
fn a_live_truck_rule_swaps_to_the_python_then_the_js_filter_while_recording() {
    use support::service::call;
    let python = support::python::python_guest(support::python::TRUCK_FILTER);
    let js = support::js::js_guest(support::js::TRUCK_FILTER);
    let dir = temp_dir("live-guest-swaps");
    let (cam_port, http_port, infer_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let server = InferServer::start(infer_port, &dir.join("requests"));
    let mut args = run_args(
        "topologies/object-to-files.json",
        "yard",
        &dir,
        http_port,
        cam_port,
    );
    args.extend(set("inferencingUrl", server.url()));
    args.extend(set("samplesPerSecond", 2));
    args.extend(set("outputDirectory", dir.join("out").display()));
    let mut vigil = vigil_run(&dir, &args);
    let log = event_log(&dir);
    let hash = |p: &Path| vigil::wasm::module::content_hash(&std::fs::read(p).expect("read"));
    let builtin = vigil::wasm::module::builtin("object-filter").expect("built-in");
    let mut previous = vigil::wasm::module::content_hash(builtin);
    // Each filter opens the gate on its episode (one every 20 s); the swap comes while it records.
    for (episode, module) in [(1, &python), (2, &js)] {
        wait_for_event(&log, "RecordingStarted", episode, Duration::from_secs(60));
        let (status, answer) = call(
            http_port,
            "livePipelineModuleSwap",
            &serde_json::json!({"@apiVersion": "1.1", "name": "yard",
                "properties": {"nodeName": "objectFilter", "module": module.to_string_lossy()}}),
        );
        assert_eq!(status, 200, "{answer}");
        let done = &answer["properties"];
        assert_eq!(done["hash"], hash(module).as_str(), "{answer}");
        assert_eq!(done["previousHash"], previous.as_str(), "{answer}");
        assert_eq!(
            (done["contract"].as_str(), done["world"].as_str()),
            (Some("0.2.0"), Some("event-filter")),
            "{answer}"
        );
        previous = hash(module);
    }
    // The third episode is the JavaScript filter's.
    let events = wait_for_event(&log, "RecordingAvailable", 3, Duration::from_secs(90));
    vigil.interrupt();
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    for module in [&python, &js] {
        let swapped = events
            .iter()
            .position(|(k, b, _)| k == "ModuleSwapped" && b["hash"] == hash(module).as_str())
            .unwrap_or_else(|| panic!("ModuleSwapped with {module:?}'s hash: {kinds:?}"));
        assert!(
            events[swapped..].iter().any(|(k, _, _)| k == "Inference"),
            "{module:?} decided after its swap: {kinds:?}"
        );
    }
    assert!(!kinds.contains(&"ModuleFault"), "{kinds:?}");
    let stderr = std::fs::read_to_string(dir.join("vigil.log")).unwrap_or_default();
    for line in [
        "guest: truck-filter: labels=['truck']",
        "guest: truck-filter: labels=truck minimumConfidence=0.500",
    ] {
        assert!(
            stderr.contains(line),
            "each filter started with the node's configuration: {line}"
        );
    }
    let files = mp4_files(&dir.join("out"));
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let p = probe(f);
        assert_eq!(
            p.frames as f64,
            (p.duration * 30.0).round(),
            "no frame missing from {f:?}: {p:?}"
        );
        assert!(decodes_cleanly(f), "{f:?}");
    }
}
