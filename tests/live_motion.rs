//! Motion detection live: the GStreamer camera loops the clip (a box moves 8–12 s into each
//! 20 s loop); `vigil run` records each motion episode with its pre-roll, and swaps the
//! detector's module file while it runs.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::peers::{camera, event_log, free_port, vigil_run, wait_for_event};
use support::{clips, decodes_cleanly, mp4_files, read_events, temp_dir};
use vigil::bus::trigger::parse_utc;

fn args(dir: &std::path::Path, cam_port: u16, module: &str) -> Vec<String> {
    args_on(dir, cam_port, module, free_port())
}

fn args_on(dir: &std::path::Path, cam_port: u16, module: &str, http_port: u16) -> Vec<String> {
    [
        "tests/topologies/valid/motion-or-door.json",
        "--pipeline-name",
        "yard",
        "--set",
        &format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set",
        &format!("outputDirectory={}", dir.join("out").display()),
        "--set",
        &format!("motionModule={module}"),
        "--event-log",
        &event_log(dir).to_string_lossy(),
        "--http",
        &format!("127.0.0.1:{http_port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The eventTime of the first event of `kind` in the log.
fn time_of(log: &std::path::Path, kind: &str) -> vigil::media::time::MediaTime {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains(&format!(".{kind}\"")))
        .unwrap_or_else(|| panic!("no {kind}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    parse_utc(v["properties"]["eventTime"].as_str().unwrap_or("")).expect("time")
}

#[test]
fn a_motion_episode_is_recorded_from_the_key_frame_before_its_pre_roll() {
    let dir = temp_dir("live-motion");
    let cam_port = free_port();
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = vigil_run(&dir, &args(&dir, cam_port, "motion-detector"));
    let log = event_log(&dir);
    wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(60));
    vigil.interrupt();
    let first_motion = time_of(&log, "Inference");
    let started = time_of(&log, "RecordingStarted");
    let wanted = first_motion - vigil::media::time::MediaDuration::from_secs(3);
    let early = wanted - started;
    assert!(
        early >= vigil::media::time::MediaDuration::ZERO
            && early <= vigil::media::time::MediaDuration::from_secs(1),
        "the clip starts {early} before first motion − 3 s (allowed: up to one 1 s GOP)"
    );
    let files = mp4_files(&dir.join("out"));
    assert_eq!(files.len(), 1, "one file per episode: {files:?}");
    assert!(decodes_cleanly(&files[0]));
}

#[test]
fn the_detector_module_is_swapped_while_recording_runs() {
    let dir = temp_dir("live-swap");
    let cam_port = free_port();
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let guests = PathBuf::from(env!("VIGIL_GUEST_DIR"));
    let module = dir.join("detector.wasm");
    std::fs::copy(guests.join("trap.wasm"), &module).expect("copy");
    let mut vigil = vigil_run(&dir, &args(&dir, cam_port, &module.to_string_lossy()));
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    // A file that is not a component: reported, the old module keeps running.
    std::fs::write(&module, b"not wasm").expect("write");
    wait_for_event(&log, "ModuleLoadError", 1, Duration::from_secs(10));
    std::fs::copy(guests.join("motion_detector.wasm"), &module).expect("copy");
    let events = wait_for_event(&log, "ModuleSwapped", 1, Duration::from_secs(10));
    vigil.interrupt();
    let swapped = events
        .iter()
        .find(|(k, _, _)| k == "ModuleSwapped")
        .expect("swap");
    let bytes = std::fs::read(guests.join("motion_detector.wasm")).expect("read");
    assert_eq!(
        swapped.1["hash"],
        vigil::wasm::module::content_hash(&bytes).as_str()
    );
    // The trap guest faulted on odd seconds before the swap; the pipeline kept running.
    assert!(read_events(&log).iter().any(|(k, _, _)| k == "ModuleFault"));
}

/// `livePipelineModuleSwap` replaces the running detector (a 0.1.0 guest that traps on odd
/// seconds) with the SDK-built motion detector (0.2.0) and answers once it runs: its hash and
/// contract, the hash it replaced. A node without a module, and a file that is no component,
/// are refused with what is wrong, the old module still running. The next episode is recorded
/// by the new detector; no frame is missing from the clips.
#[test]
fn the_control_api_swaps_a_running_nodes_module() {
    use support::service::call;
    let dir = temp_dir("live-api-swap");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let guests = PathBuf::from(env!("VIGIL_GUEST_DIR"));
    let trap = guests.join("trap.wasm");
    let mut vigil = vigil_run(
        &dir,
        &args_on(&dir, cam_port, &trap.to_string_lossy(), http_port),
    );
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    let swap = |node: &str, module: &str| {
        call(
            http_port,
            "livePipelineModuleSwap",
            &serde_json::json!({"@apiVersion": "1.1", "name": "yard",
                                "properties": {"nodeName": node, "module": module}}),
        )
    };
    let (status, answer) = swap("gate", "motion-detector");
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer.to_string().contains("(nodes with one: motion)"),
        "{answer}"
    );
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").expect("write");
    let (status, answer) = swap("motion", &junk.to_string_lossy());
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("the previous module keeps running"),
        "{answer}"
    );

    let detector = guests.join("motion_detector.wasm");
    let (status, answer) = swap("motion", &detector.to_string_lossy());
    assert_eq!(status, 200, "{answer}");
    let hash =
        |p: &std::path::Path| vigil::wasm::module::content_hash(&std::fs::read(p).expect("read"));
    let done = &answer["properties"];
    assert_eq!(done["hash"], hash(&detector).as_str(), "{answer}");
    assert_eq!(done["previousHash"], hash(&trap).as_str(), "{answer}");
    assert_eq!(
        (done["contract"].as_str(), done["world"].as_str()),
        (Some("0.2.0"), Some("frame-filter"))
    );
    let swapped_at = std::time::Instant::now();
    // The next motion episode (the box moves 8–12 s into each 20 s loop) is the new detector's.
    let events = wait_for_event(&log, "RecordingAvailable", 1, Duration::from_secs(45));
    vigil.interrupt();
    assert!(swapped_at.elapsed() < Duration::from_secs(45));
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    let swapped = events
        .iter()
        .find(|(k, _, _)| k == "ModuleSwapped")
        .expect("ModuleSwapped");
    assert_eq!(swapped.1["hash"], hash(&detector).as_str());
    assert_eq!(
        kinds.iter().filter(|k| **k == "ModuleLoadError").count(),
        1,
        "{kinds:?}"
    );
    // The trap guest's motion on even seconds kept the gate open across the swap: that clip
    // shows whether the swap held the stream.
    let files = mp4_files(&dir.join("out"));
    assert!(!files.is_empty());
    for f in &files {
        let p = support::probe(f);
        assert_eq!(
            p.frames as f64,
            (p.duration * 30.0).round(),
            "no frame missing from {f:?}: {p:?}"
        );
        assert!(decodes_cleanly(f));
    }
}

/// AVA's `motion-detection` topology, unchanged: motion inferences are published on the
/// IotHubMessageSink's topic, `vigil/<pipeline>/outputs/inferenceOutput`, through Mosquitto.
#[test]
fn ava_motion_detection_publishes_inferences_on_mqtt() {
    let topology =
        support::repo().join("../shared/ava-topologies/live/motion-detection/topology.json");
    if !topology.exists() {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    }
    let dir = temp_dir("live-ava-motion");
    let (cam_port, mqtt_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = support::peers::broker(mqtt_port);
    let received = dir.join("outputs.txt");
    let _sub = support::peers::Peer {
        child: std::process::Command::new("mosquitto_sub")
            .args([
                "-p",
                &mqtt_port.to_string(),
                "-t",
                "vigil/cam1/outputs/inferenceOutput",
                "-C",
                "1",
            ])
            .stdout(std::fs::File::create(&received).expect("file"))
            .spawn()
            .expect("mosquitto_sub"),
    };
    let args: Vec<String> = [
        topology.to_string_lossy().to_string(),
        "--pipeline-name".into(),
        "cam1".into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        "rtspUserName=vigil".into(),
        "--set".into(),
        "rtspPassword=vigil".into(),
        "--mqtt".into(),
        format!("127.0.0.1:{mqtt_port}"),
        "--event-log".into(),
        event_log(&dir).to_string_lossy().to_string(),
        "--http".into(),
        format!("127.0.0.1:{}", free_port()),
    ]
    .to_vec();
    let mut vigil = vigil_run(&dir, &args);
    wait_for_event(&event_log(&dir), "Inference", 1, Duration::from_secs(40));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&received)
        .unwrap_or_default()
        .is_empty()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    vigil.interrupt();
    let text = std::fs::read_to_string(&received).unwrap_or_default();
    let event: serde_json::Value =
        serde_json::from_str(text.trim()).expect("an event on the outputs topic");
    assert_eq!(
        event["properties"]["eventType"],
        "Microsoft.VideoAnalyzer.Analytics.Inference"
    );
    assert_eq!(
        event["properties"]["subject"],
        "/livePipelines/cam1/processors/motionDetection"
    );
    assert_eq!(event["body"]["inferences"][0]["type"], "motion");
}
