//! The web page's sign-in in headless Chromium (tests/web/signin.mjs) against `vigil serve
//! --tokens`: signed out the page shows only the form and fetches no data; a wrong token is
//! refused by the form with the service's words; a viewer sees the pipelines with the
//! Activate/Deactivate button disabled; Sign out clears the cookie; an operator's Deactivate
//! works (the service agrees).

mod support;

use std::io::Write;
use std::process::Command;

use serde_json::{Value, json};
use support::peers::{camera, free_port};
use support::service::{count_of, serve_with};
use support::web::{Script, next_phase, start_script};
use support::{clips, repo, temp_dir};

const OPERATOR: &str = "operator-token-for-the-page-0001";
const VIEWER: &str = "viewer-token-for-the-page-000001";
const DOOR: &str = "DoorSensorToFiles";
const PIPELINE: &str = "garage";

/// Calls AVA method `method` over HTTP with `token` as a Bearer token: (AVA status, payload).
fn call_as(port: u16, token: &str, method: &str, payload: &Value) -> (u16, Value) {
    support::service::call_with_token(port, Some(token), method, payload)
}

/// `properties.state` as `livePipelineGet` answers the operator.
fn state_of(port: u16, name: &str) -> String {
    let (status, payload) = call_as(
        port,
        OPERATOR,
        "livePipelineGet",
        &json!({"@apiVersion": "1.1", "name": name}),
    );
    assert_eq!(status, 200, "livePipelineGet {name}: {payload}");
    payload["properties"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The page's requests of a phase as `METHOD PATH STATUS`.
fn requests(phase: &Value) -> Vec<String> {
    phase["api"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}",
                        c["method"].as_str().unwrap_or("?"),
                        c["path"].as_str().unwrap_or("?"),
                        c["status"]
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The sign-in cookie among a phase's cookies.
fn sign_in_cookie(phase: &Value) -> Option<&Value> {
    phase["cookies"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "vigil_token"))
}

/// The page shows the form and nothing of the service: no pipeline row, neither the pipeline's
/// nor its topology's name, no account, no sign-out.
fn assert_signed_out(phase: &Value) {
    let page = &phase["page"];
    assert_eq!(page["form"], true, "the form: {phase}");
    assert_eq!(page["tokenField"]["type"], "password", "{phase}");
    assert_eq!(page["tokenField"]["visible"], true, "{phase}");
    assert_eq!(page["submit"], "Sign in", "{phase}");
    assert_eq!(page["pipelinesPane"], false, "{phase}");
    assert_eq!(page["mainPane"], false, "{phase}");
    assert_eq!(page["rows"], json!([]), "no pipeline data: {phase}");
    assert_eq!(page["shown"], json!([]), "no pipeline data: {phase}");
    assert_eq!(page["account"], Value::Null, "{phase}");
    assert_eq!(page["signOut"], false, "{phase}");
}

/// The row of the pipeline as a phase's page shows it.
fn row(phase: &Value) -> &Value {
    phase["page"]["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == PIPELINE))
        .unwrap_or_else(|| panic!("no row {PIPELINE}: {phase}"))
}

/// One Active pipeline on a service with an operator and a viewer token, and the page through
/// (a) the form, (b) a wrong token, (c) the viewer, (d) sign-out, (e) the operator's Deactivate.
#[test]
fn the_page_signs_in_viewers_and_operators() {
    let dir = temp_dir("web-signin");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("operator {OPERATOR}\nviewer {VIEWER}\n"))
        .expect("write tokens");
    let data = dir.join("data");
    let mut vigil = serve_with(
        &dir,
        http_port,
        &[
            "--data-dir",
            data.to_str().expect("path"),
            "--tokens",
            tokens.to_str().expect("path"),
        ],
    );
    let log = dir.join("events.jsonl");

    // The service asks for a token: without one a method is refused.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "content-type: application/json", "-d", "{}"])
        .arg(format!(
            "http://127.0.0.1:{http_port}/api/methods/livePipelineList"
        ))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    let text =
        std::fs::read_to_string(repo().join("topologies/door-sensor-to-files.json")).expect("file");
    let topology: Value = serde_json::from_str(&text).expect("JSON");
    let (status, payload) = call_as(http_port, OPERATOR, "pipelineTopologySet", &topology);
    assert!(status == 200 || status == 201, "{status} {payload}");
    let parameters = json!([
        {"name": "rtspUrl", "value": format!("rtsp://127.0.0.1:{cam_port}/camera")},
        {"name": "outputDirectory", "value": dir.join(PIPELINE).display().to_string()},
    ]);
    let (status, payload) = call_as(
        http_port,
        OPERATOR,
        "livePipelineSet",
        &json!({"@apiVersion": "1.1", "name": PIPELINE,
                "properties": {"topologyName": DOOR, "parameters": parameters}}),
    );
    assert_eq!(status, 201, "{payload}");
    let (status, payload) = call_as(
        http_port,
        OPERATOR,
        "livePipelineActivate",
        &json!({"@apiVersion": "1.1", "name": PIPELINE}),
    );
    assert_eq!(status, 200, "{payload}");
    assert_eq!(state_of(http_port, PIPELINE), "Active");

    let shot = dir.join("signin.png");
    let stderr = dir.join("signin-mjs.log");
    let url = format!("http://127.0.0.1:{http_port}");
    let args = [url.as_str(), PIPELINE, shot.to_str().expect("path")];
    let env = [
        ("SIGNIN_OPERATOR_TOKEN", OPERATOR),
        ("SIGNIN_VIEWER_TOKEN", VIEWER),
    ];
    let Script {
        peer: mut script,
        mut stdin,
        mut lines,
    } = start_script("signin.mjs", &args, &env, &stderr);

    // (a) Before sign-in: the form only; the page asked whether a token is needed and nothing else.
    let signin = next_phase(&mut lines, "signin", &stderr);
    assert_signed_out(&signin);
    assert_eq!(signin["page"]["error"], "", "{signin}");
    assert_eq!(
        requests(&signin),
        ["GET /api/session 200"],
        "no data fetched: {signin}"
    );

    // (b) A wrong token: the service's refusal by the form, no cookie, still no data.
    let rejected = next_phase(&mut lines, "rejected", &stderr);
    assert_signed_out(&rejected);
    assert_eq!(
        rejected["page"]["error"], "this token is not valid here",
        "{rejected}"
    );
    assert_eq!(requests(&rejected), ["POST /api/login 401"], "{rejected}");
    assert!(sign_in_cookie(&rejected).is_none(), "{rejected}");

    // (c) The viewer: the pipeline shown, its button disabled and saying why; a forced click calls
    // nothing; the cookie is HttpOnly and SameSite=Strict.
    let viewer = next_phase(&mut lines, "viewer", &stderr);
    let page = &viewer["page"];
    assert_eq!(page["form"], false, "{viewer}");
    assert_eq!(page["account"], "viewer", "{viewer}");
    assert_eq!(page["signOut"], true, "{viewer}");
    assert_eq!(page["pipelinesPane"], true, "{viewer}");
    assert_eq!(
        page["tokenField"]["filled"], false,
        "the token is not kept: {viewer}"
    );
    let r = row(&viewer);
    assert_eq!(r["state"], "Active", "{r}");
    assert_eq!(r["topology"], DOOR, "{r}");
    assert_eq!(r["button"]["text"], "Deactivate", "{r}");
    assert_eq!(r["button"]["disabled"], true, "{r}");
    let title = r["button"]["title"].as_str().unwrap_or("");
    assert!(title.contains("operator token"), "{title:?}");
    let calls = requests(&viewer);
    assert!(
        calls.contains(&"POST /api/login 200".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"GET /api/pipelines 200".to_string()),
        "{calls:?}"
    );
    assert_eq!(
        viewer["forcedClick"]["methodCalls"],
        json!([]),
        "a disabled button calls nothing: {viewer}"
    );
    let after = &viewer["forcedClick"]["page"];
    assert_eq!(after["form"], false, "{viewer}");
    let cookie = sign_in_cookie(&viewer).unwrap_or_else(|| panic!("a cookie: {viewer}"));
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(state_of(http_port, PIPELINE), "Active");
    stdin.write_all(b"continue\n").expect("tell the script");
    stdin.flush().expect("flush");

    // (d) Signed out: the form again, no request once the logout was answered, the cookie gone:
    // the page's own fetch is refused.
    let out = next_phase(&mut lines, "signedout", &stderr);
    assert_signed_out(&out);
    assert_eq!(out["page"]["error"], "", "{out}");
    assert!(
        requests(&out).contains(&"POST /api/logout 204".to_string()),
        "{out}"
    );
    assert_eq!(
        out["sentAfterLogout"],
        json!([]),
        "no poll once signed out: {out}"
    );
    assert!(sign_in_cookie(&out).is_none(), "the cookie is gone: {out}");
    assert_eq!(out["probe"]["status"], 401, "{out}");
    assert!(
        out["probe"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{out}"
    );

    // (e) The operator: the button enabled (also after a reload, the cookie kept); its click
    // deactivates the pipeline.
    let operator = next_phase(&mut lines, "operator", &stderr);
    assert_eq!(operator["page"]["account"], "operator", "{operator}");
    assert_eq!(operator["page"]["form"], false, "{operator}");
    let r = row(&operator);
    assert_eq!(r["state"], "Active", "{r}");
    assert_eq!(r["button"]["text"], "Deactivate", "{r}");
    assert_eq!(r["button"]["disabled"], false, "{r}");
    assert_eq!(r["button"]["title"], "", "{r}");
    let calls = requests(&operator);
    assert!(
        calls.contains(&"GET /api/session 200".to_string())
            && !calls.iter().any(|c| c.ends_with(" 401")),
        "the reload found the session: {calls:?}"
    );

    let done = next_phase(&mut lines, "done", &stderr);
    let r = row(&done);
    assert_eq!(r["state"], "Inactive", "{r}");
    assert_eq!(r["button"]["text"], "Activate", "{r}");
    assert_eq!(r["button"]["disabled"], false, "{r}");
    assert!(
        requests(&done).contains(&"POST /api/methods/livePipelineDeactivate 200".to_string()),
        "{done}"
    );
    assert_eq!(state_of(http_port, PIPELINE), "Inactive");
    assert_eq!(count_of(&log, PIPELINE, "LivePipelineDeactivated"), 1);
    assert_eq!(done["errors"], json!([]), "{done}");
    assert!(shot.exists(), "screenshot at {}", shot.display());
    let exit = script.child.wait().expect("the script ends");
    assert!(exit.success(), "{done}");
    println!("expected failed loads: {}", done["ignored"]);
    println!("screenshot: {}", shot.display());
    vigil.interrupt();
}
