//! The web page's Pipelines panel in headless Chromium (tests/web/pipelines.mjs) against
//! `vigil serve --data-dir` with a real RTSP camera: the pipelines set through AVA's methods are
//! listed with their state, camera and recent events; the Deactivate and Activate buttons run
//! the methods (the service agrees), and a failing activation's error is shown in the row.

mod support;

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};
use support::peers::{camera, free_port};
use support::service::{activate, call, count_of, serve, set_pipeline, set_topology, wait_until};
use support::web::{Script, next_phase, start_script};
use support::{clips, temp_dir};

const DOOR: &str = "DoorSensorToFiles";
const TOGGLED: &str = "garage";
const OTHER: &str = "porch";
const BROKEN: &str = "shed";

/// `properties.state` as `livePipelineGet` answers it.
fn state_of(port: u16, name: &str) -> String {
    let (status, payload) = call(
        port,
        "livePipelineGet",
        &json!({"@apiVersion": "1.1", "name": name}),
    );
    assert_eq!(status, 200, "livePipelineGet {name}: {payload}");
    payload["properties"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The row of `name` in a phase's `rows`.
fn row<'a>(phase: &'a Value, name: &str) -> &'a Value {
    phase["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row {name}: {phase}"))
}

/// The kinds of the events a row shows, in the order shown.
fn kinds(row: &Value) -> Vec<String> {
    row["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The times of the events a row shows are newest first.
fn assert_newest_first(row: &Value) {
    let times: Vec<jiff::Timestamp> = row["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| {
                    x["time"]
                        .as_str()
                        .unwrap_or("")
                        .parse()
                        .expect("ISO 8601 event time")
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(!times.is_empty(), "{row}");
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {row}"
    );
}

/// Two Active pipelines and an Inactive one whose module file is gone: the page lists them; its
/// Deactivate button makes one Inactive (page and `livePipelineGet`), Activate brings it back with
/// a new `LivePipelineActivated` in its row; the broken one's activation error is shown.
#[test]
fn the_pipelines_panel_lists_and_switches_pipelines() {
    let dir = temp_dir("web-pipelines");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut vigil = serve(&dir, http_port, &[]);
    let log = dir.join("events.jsonl");
    set_topology(http_port, "topologies/door-sensor-to-files.json");
    set_topology(
        http_port,
        "tests/topologies/service/trigger-or-filter-to-files.json",
    );
    for name in [TOGGLED, OTHER] {
        let parameters = [
            ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
            ("outputDirectory", dir.join(name).display().to_string()),
        ];
        let (status, payload) = set_pipeline(http_port, name, DOOR, &parameters);
        assert_eq!(status, 201, "{payload}");
        activate(http_port, name);
    }
    let module = dir.join("filter.wasm");
    std::fs::copy(
        format!("{}/noop_frame.wasm", env!("VIGIL_GUEST_DIR")),
        &module,
    )
    .expect("copy guest");
    let (status, payload) = set_pipeline(
        http_port,
        BROKEN,
        "TriggerOrFilterToFiles",
        &[
            ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
            ("outputDirectory", dir.join(BROKEN).display().to_string()),
            ("module", module.display().to_string()),
        ],
    );
    assert_eq!(status, 201, "{payload}");
    std::fs::remove_file(&module).expect("remove the module: the pipeline no longer binds");

    let shot = dir.join("pipelines.png");
    let stderr = dir.join("pipelines-mjs.log");
    let url = format!("http://127.0.0.1:{http_port}");
    let args = [
        url.as_str(),
        TOGGLED,
        OTHER,
        BROKEN,
        shot.to_str().expect("path"),
    ];
    let Script {
        peer: mut script,
        mut stdin,
        mut lines,
    } = start_script("pipelines.mjs", &args, &[], &stderr);

    // Listed: both Active, camera connected, a Deactivate button; the broken one Inactive.
    let listed = next_phase(&mut lines, "listed", &stderr);
    for name in [TOGGLED, OTHER] {
        let r = row(&listed, name);
        assert_eq!(r["state"], "Active", "{r}");
        assert_eq!(r["topology"], DOOR, "{r}");
        assert_eq!(r["camera"], "connected", "{r}");
        assert_eq!(r["status"], "running", "{r}");
        assert_eq!(r["button"]["text"], "Deactivate", "{r}");
        assert_newest_first(r);
    }
    let shed = row(&listed, BROKEN);
    assert_eq!(shed["state"], "Inactive", "{shed}");
    assert_eq!(shed["camera"], "off", "{shed}");
    assert_eq!(shed["button"]["text"], "Activate", "{shed}");
    let shown = kinds(row(&listed, TOGGLED));
    assert!(
        shown
            .iter()
            .any(|k| k == "LivePipelineActivated" || k == "MediaSessionEstablished"),
        "{shown:?}"
    );
    assert!(shown.len() <= 4, "a few events per row: {shown:?}");

    // Deactivated through the page: the page and the service both say Inactive.
    let deactivated = next_phase(&mut lines, "deactivated", &stderr);
    let r = row(&deactivated, TOGGLED);
    assert_eq!(r["state"], "Inactive", "{r}");
    assert_eq!(r["button"]["text"], "Activate", "{r}");
    assert_eq!(kinds(r)[0], "LivePipelineDeactivated", "{r}");
    assert_newest_first(r);
    assert_eq!(state_of(http_port, TOGGLED), "Inactive");
    assert_eq!(state_of(http_port, OTHER), "Active");
    assert_eq!(row(&deactivated, OTHER)["state"], "Active");
    assert_eq!(count_of(&log, TOGGLED, "LivePipelineDeactivated"), 1);
    stdin.write_all(b"continue\n").expect("tell the script");
    stdin.flush().expect("flush");

    // Activated again through the page; the broken one's error shown in its row.
    let done = next_phase(&mut lines, "done", &stderr);
    let again = &done["reactivated"];
    assert_eq!(again["state"], "Active", "{again}");
    assert_eq!(again["button"]["text"], "Deactivate", "{again}");
    assert_newest_first(again);
    assert_eq!(state_of(http_port, TOGGLED), "Active");
    wait_until("two activations logged", Duration::from_secs(5), || {
        count_of(&log, TOGGLED, "LivePipelineActivated") == 2
    });
    let error = done["brokenError"].as_str().unwrap_or("");
    assert!(
        error.contains(&format!("live pipeline '{BROKEN}' cannot be activated"))
            && error.contains("$.properties.processors[0].module"),
        "the service's error message and its detail on the page: {error:?}"
    );
    assert_eq!(row(&done, BROKEN)["state"], "Inactive");
    assert_eq!(state_of(http_port, BROKEN), "Inactive");
    let videos = done["videosNote"].as_str().unwrap_or("");
    assert_eq!(videos, "No video archive on this server", "{done}");
    let status = done["status"].as_str().unwrap_or("");
    assert!(status.starts_with("updated "), "{status}");
    assert_eq!(done["errors"], json!([]), "{done}");
    assert!(shot.exists(), "screenshot at {}", shot.display());
    let exit = script.child.wait().expect("the script ends");
    assert!(exit.success(), "{done}");
    println!("expected failed loads: {}", done["ignored"]);
    println!("screenshot: {}", shot.display());
    vigil.interrupt();
}
