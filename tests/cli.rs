//! The `vigil` binary as a user runs it: exit codes and output of `validate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("vigil runs")
}

#[test]
fn validate_prints_a_summary_and_exits_zero() {
    let out = vigil(&[
        "validate",
        "topologies/door-sensor-to-files.json",
        "--set",
        "rtspUrl=rtsp://127.0.0.1:8554/cam",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        stdout.contains("valid: topology 'DoorSensorToFiles'"),
        "{stdout}"
    );
    assert!(stdout.contains("gate:SignalGateProcessor"), "{stdout}");
}

#[test]
fn validate_prints_every_error_one_per_line_and_exits_one() {
    let out = vigil(&["validate", "tests/topologies/broken/several-mistakes.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("tests/topologies/broken/several-mistakes.json: $.properties."))
    );
    assert!(lines[1].contains("(node 'gate')"));
}

#[test]
fn set_without_equals_is_a_usage_error() {
    let out = vigil(&[
        "validate",
        "topologies/door-sensor-to-files.json",
        "--set",
        "rtspUrl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not NAME=VALUE"));
}

#[test]
fn live_pipeline_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let live = dir.join("live.json");
    std::fs::write(
        &live,
        r#"{"name": "p1", "properties": {"parameters": [{"name": "rtspUrl"}]}}"#,
    )
    .expect("write");
    let out = vigil(&[
        "validate",
        "topologies/door-sensor-to-files.json",
        "--live-pipeline",
        &live.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(
            "live.json: $.properties.topologyName: required property 'topologyName' is missing"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.properties.parameters[0].value: required property 'value' is missing"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Errors never print a password: not one written in a URL, not a `secretString` value.
#[test]
fn validate_errors_print_no_secrets() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let text = std::fs::read_to_string(repo().join("topologies/door-sensor-to-files.json"))
        .expect("topology");
    // The gate's minimum activation reads a secretString parameter here.
    let text = text.replace("\"${minActivation}\"", "\"${rtspPassword}\"");
    let topology = dir.join("secret.json");
    std::fs::write(&topology, text).expect("write");
    let out = vigil(&[
        "validate",
        topology.to_str().expect("path"),
        "--set",
        "rtspUrl=http://admin:hunter2@10.0.0.1/x",
        "--set",
        "rtspPassword=s3cr3t-value",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("'http://admin:***@10.0.0.1/x'"), "{stdout}");
    assert!(
        stdout.contains("minimumActivationTime (node 'gate'): '***'"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("s3cr3t"),
        "{stdout}"
    );
}

/// The cluster's options: each names what is wrong, before anything starts.
#[test]
fn serve_refuses_cluster_options_it_cannot_use() {
    let out = vigil(&["serve", "--node-id", "a", "--data-dir", "target/nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("need --cluster URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vigil(&[
        "serve",
        "--cluster",
        "http://nats.example",
        "--http",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cluster http://nats.example: not a list of nats:// URLs"),
        "{stderr}"
    );
    // Nothing listens on port 1: the node says it cannot join, and exits.
    let out = vigil(&[
        "serve",
        "--cluster",
        "nats://127.0.0.1:1",
        "--http",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the cluster at nats://127.0.0.1:1"),
        "{stderr}"
    );
    let out = vigil(&[
        "serve",
        "--cluster",
        "nats://127.0.0.1:1",
        "--lease-ttl",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
