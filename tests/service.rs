//! `vigil serve`: AVA's module methods over HTTP and MQTT against a real camera and broker, the
//! state machine and its error answers, the data directory across `kill -9`, and pipelines that
//! fail (dead camera, trapping guest, unwritable directory) beside pipelines that record.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::peers::{Peer, broker, camera, free_port, http_post, mqtt_publish};
use support::service::{
    activate, call, count_of, serve, set_pipeline, set_topology, states, wait_until,
};
use support::{clips, mp4_files, probe, temp_dir};

const DOOR: &str = "DoorSensorToFiles";

fn door_parameters(cam_port: u16, out: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
        ("outputDirectory", out.display().to_string()),
        ("minActivation", "PT3S".into()),
    ]
}

fn trigger(http_port: u16, pipeline: &str) {
    let url = format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
    assert_eq!(http_post(&url, "{}"), 202, "trigger for {pipeline}");
}

/// Milliseconds since the epoch of the first event `kind` of `pipeline`.
fn event_time(log: &Path, pipeline: &str, kind: &str) -> i64 {
    let events = support::service::events_of(log, pipeline);
    let e = events
        .iter()
        .find(|e| {
            e["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(".{kind}")))
        })
        .unwrap_or_else(|| panic!("{pipeline}: no {kind}"));
    let text = e["properties"]["eventTime"].as_str().unwrap_or("");
    let ts: jiff::Timestamp = text.parse().expect("ISO 8601 eventTime");
    ts.as_millisecond()
}

fn detail_codes(payload: &Value) -> Vec<String> {
    payload["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|x| x["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The samples' method sequence (set, list, activate, record, deactivate, delete) and every error
/// case of the state machine, over HTTP, with AVA's statuses and payload shapes.
#[test]
fn ava_methods_over_http_follow_the_state_machine() {
    let dir = temp_dir("service-http");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &["--max-topologies", "2"]);
    let log = dir.join("events.jsonl");
    let out = dir.join("out");

    assert_eq!(
        call(http_port, "pipelineTopologyList", &json!({})).1,
        json!({"value": []})
    );
    assert_eq!(call(http_port, "pipelineTopologyRename", &json!({})).0, 501);
    let (status, payload) = call(
        http_port,
        "livePipelineList",
        &json!({"@apiVersion": "3.0"}),
    );
    assert_eq!(
        (status, detail_codes(&payload)),
        (400, vec!["ApiVersionNotSupported".to_string()])
    );
    assert_eq!(
        call(http_port, "pipelineTopologyGet", &json!({"name": DOOR})).0,
        404
    );

    // A broken topology: every problem, each with its JSON path and node.
    let text =
        std::fs::read_to_string(support::repo().join("topologies/door-sensor-to-files.json"))
            .expect("file");
    let mut broken: Value = serde_json::from_str(&text).expect("JSON");
    broken["name"] = json!("Broken");
    broken["properties"]["processors"][0]["activationSignalOffset"] = json!("-PT5M");
    broken["properties"]["sinks"][0]["maximumSizeMiB"] = json!("lots");
    let (status, payload) = call(http_port, "pipelineTopologySet", &broken);
    assert_eq!(status, 400, "{payload}");
    let details = payload["error"]["details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(details.len(), 2, "{payload}");
    assert_eq!(details[0]["code"], "PipelineValidationError");
    assert_eq!(
        details[0]["target"],
        "$.properties.processors[0].activationSignalOffset"
    );
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("(node 'gate')"),
        "{payload}"
    );
    assert_eq!(details[1]["target"], "$.properties.sinks[0].maximumSizeMiB");

    set_topology(http_port, "topologies/door-sensor-to-files.json");
    let (status, payload) = call(http_port, "pipelineTopologyGet", &json!({"name": DOOR}));
    assert_eq!(status, 200);
    assert_eq!(payload["name"], DOOR);
    assert!(payload["systemData"]["createdAt"].is_string());
    // Setting it again is an update.
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(call(http_port, "pipelineTopologySet", &doc).0, 200);
    set_topology(http_port, "topologies/motion-to-files.json");
    let mut third = doc.clone();
    third["name"] = json!("Third");
    let (status, payload) = call(http_port, "pipelineTopologySet", &third);
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["ResourceLimitExceeded".to_string()])
    );

    // Live pipelines: a missing topology, a bad value, then a good one.
    let (status, payload) = set_pipeline(http_port, "door1", "NoSuchTopology", &[]);
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["ResourceValidationError".to_string()])
    );
    let mut bad = door_parameters(cam_port, &out);
    bad.push(("maxActivation", "PT2H".into()));
    let (status, payload) = set_pipeline(http_port, "door1", DOOR, &bad);
    assert_eq!(status, 400, "{payload}");
    assert_eq!(
        payload["error"]["details"][0]["target"],
        "$.properties.processors[0].maximumActivationTime"
    );
    let (status, payload) =
        set_pipeline(http_port, "door1", DOOR, &door_parameters(cam_port, &out));
    assert_eq!(status, 201, "{payload}");
    assert_eq!(payload["properties"]["state"], "Inactive");
    assert_eq!(payload["properties"]["topologyName"], DOOR);
    assert_eq!(
        call(
            http_port,
            "livePipelineDeactivate",
            &json!({"name": "door1"})
        )
        .0,
        200
    );
    assert_eq!(
        call(
            http_port,
            "livePipelineActivate",
            &json!({"name": "nobody"})
        )
        .0,
        404
    );

    activate(http_port, "door1");
    activate(http_port, "door1");
    assert_eq!(
        states(http_port),
        vec![("door1".to_string(), "Active".to_string())]
    );
    // What an Active pipeline and its topology refuse.
    let (status, payload) = call(http_port, "livePipelineDelete", &json!({"name": "door1"}));
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["OperationNotAllowedInState".to_string()])
    );
    let mut changed = door_parameters(cam_port, &out);
    changed[2].1 = "PT4S".into();
    let (status, payload) = set_pipeline(http_port, "door1", DOOR, &changed);
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["OperationNotAllowedInState".to_string()])
    );
    let (status, payload) = call(http_port, "pipelineTopologyDelete", &json!({"name": DOOR}));
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["PipelineTopologyInUse".to_string()])
    );
    let mut longer = doc.clone();
    longer["properties"]["processors"][0]["activationSignalOffset"] = json!("-PT6S");
    let (status, payload) = call(http_port, "pipelineTopologySet", &longer);
    assert_eq!(
        (status, detail_codes(&payload)),
        (409, vec!["PipelineTopologyInUse".to_string()])
    );
    let mut described = doc.clone();
    described["properties"]["description"] = json!("a new description only");
    assert_eq!(call(http_port, "pipelineTopologySet", &described).0, 200);

    // It records: one trigger, one file of 3 s + 5 s pre-roll.
    wait_until("the camera session", Duration::from_secs(20), || {
        count_of(&log, "door1", "MediaSessionEstablished") >= 1
    });
    std::thread::sleep(Duration::from_secs(6));
    trigger(http_port, "door1");
    assert_eq!(
        http_post(
            &format!("http://127.0.0.1:{http_port}/pipelines/door2/inputs/recordingTrigger"),
            "{}"
        ),
        404
    );
    wait_until("RecordingAvailable", Duration::from_secs(30), || {
        count_of(&log, "door1", "RecordingAvailable") >= 1
    });
    let files = mp4_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let p = probe(&files[0]);
    assert!((7.0..=10.0).contains(&p.duration), "{p:?}");

    assert_eq!(
        call(
            http_port,
            "livePipelineDeactivate",
            &json!({"@apiVersion": "1.1", "name": "door1"})
        )
        .0,
        200
    );
    assert_eq!(
        states(http_port),
        vec![("door1".to_string(), "Inactive".to_string())]
    );
    assert_eq!(count_of(&log, "door1", "LivePipelineDeactivated"), 1);
    assert_eq!(
        call(http_port, "livePipelineDelete", &json!({"name": "door1"})).0,
        200
    );
    assert_eq!(
        call(http_port, "livePipelineDelete", &json!({"name": "door1"})).0,
        204
    );
    assert_eq!(
        call(http_port, "pipelineTopologyDelete", &json!({"name": DOOR})).0,
        200
    );
    assert_eq!(
        call(http_port, "pipelineTopologyDelete", &json!({"name": DOOR})).0,
        204
    );
    let (_, list) = call(http_port, "pipelineTopologyList", &json!({}));
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    vigil.interrupt();
    assert_eq!(mp4_files(&out).len(), 1, "nothing more was recorded");
}

/// The same methods over MQTT: a request on `vigil/methods/POST/<method>/?$rid=<id>`, the answer
/// on `vigil/methods/res/<status>/?$rid=<id>`.
#[test]
fn methods_over_mqtt_answer_on_the_response_topic() {
    let dir = temp_dir("service-mqtt");
    let (mqtt_port, http_port) = (free_port(), free_port());
    let _broker = broker(mqtt_port);
    let _vigil = serve(
        &dir,
        http_port,
        &["--mqtt", &format!("127.0.0.1:{mqtt_port}")],
    );
    let answers = dir.join("answers.txt");
    let mut sub = Peer {
        child: Command::new("mosquitto_sub")
            .args([
                "-p",
                &mqtt_port.to_string(),
                "-t",
                "vigil/methods/res/#",
                "-v",
                "-C",
                "3",
            ])
            .stdout(std::fs::File::create(&answers).expect("answers"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    };
    // The service subscribes once the broker accepted it.
    std::thread::sleep(Duration::from_secs(2));
    let text =
        std::fs::read_to_string(support::repo().join("topologies/door-sensor-to-files.json"))
            .expect("file");
    mqtt_publish(
        mqtt_port,
        "vigil/methods/POST/pipelineTopologySet/?$rid=1",
        &text,
    );
    mqtt_publish(
        mqtt_port,
        "vigil/methods/POST/livePipelineGet/?$rid=2",
        r#"{"@apiVersion": "1.1", "name": "absent"}"#,
    );
    mqtt_publish(
        mqtt_port,
        "vigil/methods/POST/pipelineTopologyList/?$rid=3",
        r#"{"@apiVersion": "1.1"}"#,
    );
    wait_until("three answers", Duration::from_secs(15), || {
        std::fs::read_to_string(&answers)
            .map(|t| t.lines().count() >= 3)
            .unwrap_or(false)
    });
    let _ = sub.child.wait();
    let text = std::fs::read_to_string(&answers).expect("answers");
    let lines: Vec<(&str, Value)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(topic, body)| (topic, serde_json::from_str(body).expect("JSON answer")))
        .collect();
    assert_eq!(lines[0].0, "vigil/methods/res/201/?$rid=1");
    assert_eq!(lines[0].1["payload"]["name"], DOOR);
    assert_eq!(lines[1].0, "vigil/methods/res/404/?$rid=2");
    assert_eq!(lines[1].1["payload"]["error"]["code"], "NotFound");
    assert_eq!(lines[2].0, "vigil/methods/res/200/?$rid=3");
    assert_eq!(lines[2].1["payload"]["value"][0]["name"], DOOR);
}

/// `kill -9` of the service with 10 active pipelines mid-clip: after a restart all 10 are Active
/// again, their cut-off files repaired, and they record new clips.
#[test]
fn kill_9_and_restart_bring_every_active_pipeline_back() {
    let dir = temp_dir("service-kill9");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    let names: Vec<String> = (0..10).map(|i| format!("cam{i}")).collect();
    for name in &names {
        let mut params = door_parameters(cam_port, &dir.join(name));
        params[2].1 = "PT20S".into();
        assert_eq!(set_pipeline(http_port, name, DOOR, &params).0, 201);
        activate(http_port, name);
    }
    wait_until("10 camera sessions", Duration::from_secs(30), || {
        names
            .iter()
            .all(|n| count_of(&log, n, "MediaSessionEstablished") >= 1)
    });
    std::thread::sleep(Duration::from_secs(3));
    for name in &names {
        trigger(http_port, name);
    }
    wait_until("10 recordings started", Duration::from_secs(20), || {
        names
            .iter()
            .all(|n| count_of(&log, n, "RecordingStarted") >= 1)
    });
    std::thread::sleep(Duration::from_secs(3));
    vigil.kill9();

    let mut vigil = serve(&dir, http_port, &[]);
    let active: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), "Active".to_string()))
        .collect();
    assert_eq!(states(http_port), active);
    for name in &names {
        let files = mp4_files(&dir.join(name));
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        assert!(
            probe(&files[0]).frames > 0,
            "{name}: the cut-off clip plays"
        );
    }
    wait_until("10 camera sessions again", Duration::from_secs(30), || {
        names
            .iter()
            .all(|n| count_of(&log, n, "MediaSessionEstablished") >= 2)
    });
    std::thread::sleep(Duration::from_secs(3));
    for name in &names {
        trigger(http_port, name);
    }
    wait_until("10 new clips", Duration::from_secs(60), || {
        names
            .iter()
            .all(|n| count_of(&log, n, "RecordingAvailable") >= 1)
    });
    vigil.interrupt();
    for name in &names {
        assert_eq!(mp4_files(&dir.join(name)).len(), 2, "{name}");
    }
}

/// 20 pipelines in one service: one with a dead camera, one whose guest traps on every frame, one
/// writing to a directory it cannot create. The other 17 write exactly the clip their trigger
/// asks for; the failing ones are reported and stay Active.
#[test]
fn failing_pipelines_never_stop_the_others() {
    let dir = temp_dir("service-isolation");
    let (cam_port, dead_port, http_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    set_topology(
        http_port,
        "tests/topologies/service/trigger-or-filter-to-files.json",
    );
    let not_a_dir = dir.join("a-file");
    std::fs::write(&not_a_dir, b"not a directory").expect("file");
    let good: Vec<String> = (0..17).map(|i| format!("good{i}")).collect();
    for name in &good {
        assert_eq!(
            set_pipeline(
                http_port,
                name,
                DOOR,
                &door_parameters(cam_port, &dir.join(name))
            )
            .0,
            201
        );
    }
    assert_eq!(
        set_pipeline(
            http_port,
            "dead",
            DOOR,
            &door_parameters(dead_port, &dir.join("dead"))
        )
        .0,
        201
    );
    assert_eq!(
        set_pipeline(
            http_port,
            "unwritable",
            DOOR,
            &door_parameters(cam_port, &not_a_dir.join("sub"))
        )
        .0,
        201
    );
    let trap = format!("{}/trap.wasm", env!("VIGIL_GUEST_DIR"));
    let (status, payload) = set_pipeline(
        http_port,
        "trapping",
        "TriggerOrFilterToFiles",
        &[
            ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
            (
                "outputDirectory",
                dir.join("trapping").display().to_string(),
            ),
            ("module", trap),
        ],
    );
    assert_eq!(status, 201, "{payload}");
    for name in good
        .iter()
        .map(String::as_str)
        .chain(["dead", "unwritable", "trapping"])
    {
        activate(http_port, name);
    }
    wait_until("17 camera sessions", Duration::from_secs(40), || {
        good.iter()
            .all(|n| count_of(&log, n, "MediaSessionEstablished") >= 1)
    });
    std::thread::sleep(Duration::from_secs(4));
    for name in good
        .iter()
        .map(String::as_str)
        .chain(["unwritable", "trapping"])
    {
        trigger(http_port, name);
    }
    wait_until("17 clips", Duration::from_secs(60), || {
        good.iter()
            .all(|n| count_of(&log, n, "RecordingAvailable") >= 1)
    });
    wait_until("the faults reported", Duration::from_secs(20), || {
        count_of(&log, "dead", "NetworkError") >= 1
            && count_of(&log, "trapping", "ModuleFault") >= 1
            && count_of(&log, "unwritable", "StorageError") >= 1
    });
    let all = states(http_port);
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|(_, s)| s == "Active"), "{all:?}");
    vigil.interrupt();
    for name in &good {
        let files = mp4_files(&dir.join(name));
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        // The clip ends minimumActivationTime (3 s) after its trigger, on the media timeline;
        // its pre-roll is what the camera had sent (20 sessions load the machine's camera).
        let p = probe(&files[0]);
        assert!((3.0..=9.5).contains(&p.duration), "{name}: {p:?}");
        assert_eq!(count_of(&log, name, "RecordingAvailable"), 1, "{name}");
        let at = |kind: &str| event_time(&log, name, kind);
        assert_eq!(
            at("RecordingStopped") - at("TriggerReceived"),
            3000,
            "{name}"
        );
    }
    assert!(mp4_files(&dir.join("dead")).is_empty());
}

/// The operations file of AVA's Python sample app runs unchanged through `vigil methods run`
/// (its one placeholder, the topology URL, pointed at a file), with AVA's statuses in order;
/// then the client's own commands print their tables.
#[test]
fn the_sample_apps_operations_file_runs_unchanged() {
    let shared = support::repo()
        .join("../shared/ava-topologies/samples/video-analyzer-iot-edge-python/operations.json");
    let Ok(text) = std::fs::read_to_string(&shared) else {
        eprintln!(
            "skipped: {} is absent (the compatibility corpus is not in this clone)",
            shared.display()
        );
        return;
    };
    let dir = temp_dir("service-operations");
    let http_port = free_port();
    let mut vigil = serve(&dir, http_port, &[]);
    let server = format!("http://127.0.0.1:{http_port}");
    // The sample's livePipelineSet names its topology 'TopologyName'; its README has users
    // point pipelineTopologyUrl at theirs.
    let door =
        std::fs::read_to_string(support::repo().join("topologies/door-sensor-to-files.json"))
            .expect("file");
    let mut topology: Value = serde_json::from_str(&door).expect("JSON");
    topology["name"] = json!("TopologyName");
    std::fs::write(dir.join("topology.json"), topology.to_string()).expect("write");
    std::fs::write(
        dir.join("operations.json"),
        text.replace("https://<update_url_to_topology.json>", "topology.json"),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["methods", "run"])
        .arg(dir.join("operations.json"))
        .args(["--server", &server, "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("vigil methods runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let calls: Vec<(String, u64)> = answers
        .iter()
        .map(|a| {
            (
                a["opName"].as_str().unwrap_or("").to_string(),
                a["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [
        ("pipelineTopologyList", 200),
        ("livePipelineList", 200),
        ("pipelineTopologySet", 201),
        ("livePipelineSet", 201),
        ("livePipelineActivate", 200),
        ("livePipelineList", 200),
        ("livePipelineDeactivate", 200),
        ("livePipelineDelete", 200),
        ("livePipelineList", 200),
        ("pipelineTopologyDelete", 200),
        ("pipelineTopologyList", 200),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    assert_eq!(calls, expected);
    assert_eq!(
        answers[5]["payload"]["value"][0]["properties"]["state"],
        "Active"
    );
    assert_eq!(
        answers[5]["payload"]["value"][0]["name"],
        "Sample-Pipeline-1"
    );
    // The password is a secretString: never echoed back.
    let params = answers[3]["payload"]["properties"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let password = params
        .iter()
        .find(|p| p["name"] == "rtspPassword")
        .expect("rtspPassword");
    assert!(password.get("value").is_none(), "{password}");
    assert_eq!(answers[10]["payload"]["value"], json!([]));

    let vigil_client = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .args(["--server", &server])
            .output()
            .expect("vigil runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let door_file = support::repo().join("topologies/door-sensor-to-files.json");
    let (ok, text) = vigil_client(&["topology", "set", &door_file.display().to_string()]);
    assert!(
        ok && text.contains("topology 'DoorSensorToFiles' created"),
        "{text}"
    );
    let (ok, text) = vigil_client(&[
        "pipeline",
        "set",
        "porch",
        "--topology",
        DOOR,
        "--set",
        "rtspUrl=rtsp://127.0.0.1:9/none",
    ]);
    assert!(
        ok && text.contains("live pipeline 'porch' created"),
        "{text}"
    );
    let (ok, text) = vigil_client(&["pipeline", "list"]);
    assert!(ok, "{text}");
    let row = text.lines().find(|l| l.starts_with("porch")).unwrap_or("");
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        ["porch", "Inactive", DOOR, "0"],
        "{text}"
    );
    let (ok, text) = vigil_client(&[
        "pipeline",
        "set",
        "porch",
        "--topology",
        DOOR,
        "--set",
        "minActivation=PT2H",
    ]);
    assert!(
        !ok && text.contains("$.properties.processors[0].minimumActivationTime"),
        "{text}"
    );
    let (ok, text) = vigil_client(&["topology", "delete", DOOR]);
    assert!(!ok && text.contains("PipelineTopologyInUse"), "{text}");
    vigil.interrupt();
}

/// A pipeline that was Active but no longer binds when the service starts again (its module
/// file is gone) is reported and left Inactive; the service starts all the same.
#[test]
fn a_pipeline_that_no_longer_binds_after_a_restart_is_reported() {
    let dir = temp_dir("service-restore");
    let http_port = free_port();
    let module = dir.join("filter.wasm");
    std::fs::copy(format!("{}/trap.wasm", env!("VIGIL_GUEST_DIR")), &module).expect("copy guest");
    let mut vigil = serve(&dir, http_port, &[]);
    set_topology(
        http_port,
        "tests/topologies/service/trigger-or-filter-to-files.json",
    );
    let (status, payload) = set_pipeline(
        http_port,
        "filtered",
        "TriggerOrFilterToFiles",
        &[
            ("rtspUrl", format!("rtsp://127.0.0.1:{}/none", free_port())),
            ("outputDirectory", dir.join("out").display().to_string()),
            ("module", module.display().to_string()),
        ],
    );
    assert_eq!(status, 201, "{payload}");
    activate(http_port, "filtered");
    vigil.interrupt();
    std::fs::remove_file(&module).expect("remove the module");

    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    let failures: Vec<Value> = support::service::events_of(&log, "filtered")
        .into_iter()
        .filter(|e| e["body"]["code"] == "pipelineRestoreFailed")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let answer = &failures[0]["body"]["answer"];
    assert_eq!(answer["status"], 400);
    assert_eq!(
        answer["payload"]["error"]["details"][0]["target"],
        "$.properties.processors[0].module"
    );
    assert_eq!(
        states(http_port),
        vec![("filtered".to_string(), "Inactive".to_string())]
    );
    vigil.interrupt();
}

/// A data directory that cannot be written: the call answers 500 naming the file, and the
/// service holds nothing it could not keep.
#[test]
fn a_data_directory_that_cannot_be_written_refuses_the_change() {
    let dir = temp_dir("service-unwritable-data");
    let http_port = free_port();
    let mut vigil = serve(&dir, http_port, &[]);
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    let folder = dir.join("data/livePipelines");
    std::fs::remove_dir_all(&folder).expect("remove the folder");
    std::fs::write(&folder, b"in the way").expect("a file in its place");
    let (status, payload) = set_pipeline(http_port, "porch", DOOR, &[]);
    assert_eq!(status, 500, "{payload}");
    assert_eq!(payload["error"]["code"], "InternalServerError");
    let message = payload["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("cannot store live pipeline 'porch'") && message.contains("porch.json"),
        "{message}"
    );
    assert!(states(http_port).is_empty());
    vigil.interrupt();
}

/// The libraries FFmpeg's decoder maps into the service (none until a pipeline decodes).
fn ffmpeg_libraries(vigil: &Peer) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", vigil.child.id())).expect("maps");
    let mut libraries: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("libavcodec") || p.contains("libswscale") || p.contains("libavutil"))
        .map(str::to_string)
        .collect();
    libraries.dedup();
    libraries
}

/// A service whose pipelines only record never loads FFmpeg (a clip is recorded without it);
/// the first pipeline that decodes loads it, and detects motion with it.
#[test]
fn ffmpeg_is_loaded_only_once_a_pipeline_decodes() {
    let dir = temp_dir("service-lazy-ffmpeg");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    set_topology(http_port, "topologies/motion-to-files.json");
    assert_eq!(
        set_pipeline(
            http_port,
            "door",
            DOOR,
            &door_parameters(cam_port, &dir.join("door"))
        )
        .0,
        201
    );
    activate(http_port, "door");
    wait_until("the door camera's session", Duration::from_secs(30), || {
        count_of(&log, "door", "MediaSessionEstablished") >= 1
    });
    trigger(http_port, "door");
    wait_until("the door clip", Duration::from_secs(30), || {
        count_of(&log, "door", "RecordingAvailable") >= 1
    });
    assert!(probe(&mp4_files(&dir.join("door"))[0]).frames > 0);
    assert_eq!(ffmpeg_libraries(&vigil), Vec::<String>::new());

    let motion = [
        ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
        ("outputDirectory", dir.join("motion").display().to_string()),
    ];
    assert_eq!(
        set_pipeline(http_port, "motion", "MotionToFiles", &motion).0,
        201
    );
    activate(http_port, "motion");
    wait_until("motion detected", Duration::from_secs(60), || {
        count_of(&log, "motion", "Inference") >= 1
    });
    let libraries = ffmpeg_libraries(&vigil);
    assert!(
        libraries.iter().any(|l| l.contains("libavcodec.so.")),
        "{libraries:?}"
    );
    vigil.interrupt();
}
