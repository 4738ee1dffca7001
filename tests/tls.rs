//! TLS against real peers, with a CA made at test time (openssl): the HTTPS listener (the CLI
//! client and curl through it, the sign-in cookie marked Secure, a renewed certificate picked
//! up while running and a broken one refused with the old one kept); MQTT over TLS to
//! Mosquitto's TLS listener; an HTTPS inference service; an S3 server behind a TLS proxy. A
//! peer whose CA is not trusted is refused, and reported.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::archive::{s3_server, store_env};
use support::inference::InferServer;
use support::peers::{
    camera, door_run_args, event_log, free_port, vigil_run, wait_for_event, wait_for_port,
};
use support::service::serve;
use support::tls::{TestCa, mosquitto_tls, mqtt_publish_tls, peer_certificate_sha256, tls_proxy};
use support::{clips, mp4_files, read_events, repo, temp_dir};

const OPERATOR: &str = "operator-token-for-the-tls-test-1";

fn vigil_client(args: &[&str], ca: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command.args(args).env("VIGIL_TOKEN", OPERATOR);
    if let Some(ca) = ca {
        command.arg("--ca-file").arg(ca);
    }
    command.output().expect("vigil runs")
}

/// Waits until the listener on `port` presents the certificate whose DER hashes to `sha256`.
fn wait_for_certificate(port: u16, ca: &Path, sha256: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let served = peer_certificate_sha256(port, Some(ca));
        if served.as_deref() == Ok(sha256) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the listener still serves {served:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_https_listener_serves_the_api_and_follows_its_certificate_files() {
    let dir = temp_dir("tls-listener");
    let ca = TestCa::new(&dir, "Vigil test CA");
    let first = ca.issue("first", "vigil first");
    let (cert, key) = (dir.join("listener.crt"), dir.join("listener.key"));
    std::fs::copy(&first.cert, &cert).expect("copy");
    std::fs::copy(&first.key, &key).expect("copy");
    let port = free_port();
    let _service = serve(
        &dir,
        port,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        peer_certificate_sha256(port, Some(&ca.ca_cert)).as_deref(),
        Ok(first.der_sha256().as_str())
    );
    let untrusted = peer_certificate_sha256(port, None).expect_err("an unknown CA is refused");
    assert!(
        untrusted.to_ascii_lowercase().contains("certificate"),
        "{untrusted}"
    );

    // The CLI client over HTTPS: trusted with --ca-file, refused without.
    let server = format!("https://127.0.0.1:{port}");
    let listed = vigil_client(
        &["pipeline", "list", "--server", &server, "--json"],
        Some(&ca.ca_cert),
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refused = vigil_client(&["pipeline", "list", "--server", &server], None);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("UnknownIssuer"), "{why}");

    // Plain HTTP on the HTTPS port gets no answer, and the listener goes on serving.
    let plain = Command::new("curl")
        .args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000");
    let health = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&ca.ca_cert)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok\n");

    // Renewal: the new pair replaces the old one while the service runs.
    let second = ca.issue("second", "vigil renewed");
    std::fs::copy(&second.key, &key).expect("copy");
    std::fs::copy(&second.cert, &cert).expect("copy");
    wait_for_certificate(port, &ca.ca_cert, &second.der_sha256());
    wait_for_event(
        &dir.join("events.jsonl"),
        "CertificateReloaded",
        1,
        Duration::from_secs(10),
    );

    // A broken key: refused and reported, the renewed pair stays in force.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbroken\n").expect("write");
    let events = wait_for_event(
        &dir.join("events.jsonl"),
        "CertificateRefused",
        1,
        Duration::from_secs(10),
    );
    let refusal = events
        .iter()
        .find(|(k, _, _)| k == "CertificateRefused")
        .map(|(_, b, _)| b.clone())
        .unwrap_or_default();
    let detail = refusal["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("listener.key") && detail.contains("previous certificate stays"),
        "{refusal}"
    );
    assert_eq!(
        peer_certificate_sha256(port, Some(&ca.ca_cert)).as_deref(),
        Ok(second.der_sha256().as_str())
    );
}

#[test]
fn the_sign_in_cookie_is_secure_over_https() {
    let dir = temp_dir("tls-cookie");
    let ca = TestCa::new(&dir, "Vigil cookie CA");
    let pair = ca.issue("listener", "vigil");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("operator {OPERATOR}\n")).expect("write");
    let port = free_port();
    let _service = serve(
        &dir,
        port,
        &[
            "--tokens",
            tokens.to_str().expect("utf-8"),
            "--tls-cert",
            pair.cert.to_str().expect("utf-8"),
            "--tls-key",
            pair.key.to_str().expect("utf-8"),
        ],
    );
    let login = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&ca.ca_cert)
        .args(["-H", "content-type: application/json", "--data"])
        .arg(format!("{{\"token\": \"{OPERATOR}\"}}"))
        .arg(format!("https://127.0.0.1:{port}/api/login"))
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&login.stdout).to_ascii_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.contains("httponly")
            && cookie.contains("samesite=strict")
            && cookie.contains("; secure"),
        "{cookie}"
    );
    // With the token the CLI client is let in; the listener asks for it.
    let listed = vigil_client(
        &[
            "pipeline",
            "list",
            "--server",
            &format!("https://127.0.0.1:{port}"),
        ],
        Some(&ca.ca_cert),
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

fn door_args(dir: &Path, cam_port: u16, http_port: u16, broker: &str) -> Vec<String> {
    let mut args = door_run_args(dir, "door", cam_port, http_port);
    args.extend(["--set", "minActivation=PT3S", "--mqtt", broker].map(String::from));
    args
}

#[test]
fn mqtt_over_tls_carries_triggers_and_an_untrusted_broker_is_refused() {
    let dir = temp_dir("tls-mqtt");
    let ca = TestCa::new(&dir, "Vigil broker CA");
    let pair = ca.issue("broker", "mosquitto");
    let (cam_port, mqtt_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = mosquitto_tls(mqtt_port, &ca, &pair, &dir);
    let broker = format!("mqtts://127.0.0.1:{mqtt_port}");

    // Without the CA: the broker's certificate is refused, reported and retried.
    let untrusted = dir.join("untrusted");
    std::fs::create_dir_all(&untrusted).expect("dir");
    let http_port = free_port();
    let mut vigil = vigil_run(
        &untrusted,
        &door_args(&untrusted, cam_port, http_port, &broker),
    );
    let events = wait_for_event(
        &event_log(&untrusted),
        "NetworkError",
        1,
        Duration::from_secs(20),
    );
    vigil.interrupt();
    let refusal = events
        .iter()
        .find(|(k, _, _)| k == "NetworkError")
        .map(|(_, b, _)| b.clone())
        .unwrap_or_default();
    assert_eq!(refusal["broker"], broker.as_str(), "{refusal}");
    assert!(
        refusal["detail"]
            .as_str()
            .is_some_and(|d| d.contains("UnknownIssuer") || d.contains("certificate")),
        "{refusal}"
    );

    // With it: connected, and a trigger published over TLS records exactly one clip.
    let trusted = dir.join("trusted");
    std::fs::create_dir_all(&trusted).expect("dir");
    let http_port = free_port();
    let mut args = door_args(&trusted, cam_port, http_port, &broker);
    args.extend(["--ca-file".into(), ca.ca_cert.display().to_string()]);
    let mut vigil = vigil_run(&trusted, &args);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&trusted),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    // The subscription is made once connected; give it the time of a TLS handshake.
    std::thread::sleep(Duration::from_secs(2));
    mqtt_publish_tls(
        mqtt_port,
        &ca.ca_cert,
        "vigil/door/inputs/recordingTrigger",
        "{}",
    );
    wait_for_event(
        &event_log(&trusted),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    assert_eq!(mp4_files(&trusted.join("out")).len(), 1);
    assert!(
        !read_events(&event_log(&trusted))
            .iter()
            .any(|(k, _, _)| k == "NetworkError"),
        "no broker fault with the CA trusted"
    );
}

/// `vigil run` arguments: the inference round trip on the camera at `cam_port` against `url`,
/// trusting `ca` when given.
fn inference_args(dir: &Path, cam_port: u16, url: &str, ca: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "topologies/inference-roundtrip-to-files.json".into(),
        "--pipeline-name".into(),
        "infer".into(),
        "--event-log".into(),
        event_log(dir).display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{}", free_port()),
    ];
    if let Some(ca) = ca {
        args.extend(["--ca-file".into(), ca.display().to_string()]);
    }
    for (name, value) in [
        ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
        ("inferencingUrl", url.to_string()),
        ("samplesPerSecond", "2".into()),
        ("outputDirectory", dir.join("out").display().to_string()),
    ] {
        args.extend(["--set".into(), format!("{name}={value}")]);
    }
    args
}

#[test]
fn an_https_inference_service_is_called_with_the_trusted_ca() {
    let dir = temp_dir("tls-inference");
    let ca = TestCa::new(&dir, "Vigil inference CA");
    let pair = ca.issue("infer", "inference");
    let (cam_port, infer_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let server = InferServer::start_tls(infer_port, &dir.join("requests"), &pair.cert, &pair.key);
    let trusted = dir.join("trusted");
    std::fs::create_dir_all(&trusted).expect("dir");
    let mut vigil = vigil_run(
        &trusted,
        &inference_args(&trusted, cam_port, &server.https_url(), Some(&ca.ca_cert)),
    );
    let events = wait_for_event(
        &event_log(&trusted),
        "Inference",
        3,
        Duration::from_secs(40),
    );
    vigil.interrupt();
    assert!(
        server.requests().len() >= 3,
        "the service received the frames over HTTPS"
    );
    let extension_fault = |(k, b, _): &(String, serde_json::Value, Option<String>)| {
        (k == "NetworkError" || k == "ProtocolError") && b["errorCode"].is_string()
    };
    assert!(!events.iter().any(extension_fault), "no fault: {events:?}");

    // The same endpoint without --ca-file: refused, reported as a connection failure.
    let untrusted = dir.join("untrusted");
    std::fs::create_dir_all(&untrusted).expect("dir");
    let before = server.requests().len();
    let mut vigil = vigil_run(
        &untrusted,
        &inference_args(&untrusted, cam_port, &server.https_url(), None),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let fault = loop {
        let found = read_events(&event_log(&untrusted))
            .into_iter()
            .find(|e| extension_fault(e));
        if let Some((_, body, _)) = found {
            break body;
        }
        assert!(Instant::now() < deadline, "no extension fault reported");
        std::thread::sleep(Duration::from_millis(200));
    };
    vigil.interrupt();
    assert_eq!(fault["errorCode"], "connectionFailed", "{fault}");
    assert!(
        fault["detail"]
            .as_str()
            .is_some_and(|d| d.contains("certificate") || d.contains("UnknownIssuer")),
        "{fault}"
    );
    assert_eq!(server.requests().len(), before, "no request got through");
}

#[test]
fn the_archive_uploads_to_an_s3_server_behind_tls() {
    let dir = temp_dir("tls-store");
    let ca = TestCa::new(&dir, "Vigil store CA");
    let pair = ca.issue("store", "s3");
    let (s3_port, proxy_port) = (free_port(), free_port());
    let bucket_dir = dir.join("s3");
    std::fs::create_dir_all(bucket_dir.join("vigil")).expect("bucket");
    let _s3 = s3_server(&bucket_dir, s3_port);
    let _proxy = tls_proxy(proxy_port, s3_port, &pair, &dir);
    let events = dir.join("door.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let log = dir.join("events.jsonl");
    let mut env = store_env(s3_port, support::archive::SECRET_KEY);
    for (name, value) in env.iter_mut() {
        if name == "AWS_ENDPOINT_URL" {
            *value = format!("https://127.0.0.1:{proxy_port}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("replay")
        .arg("topologies/door-sensor-to-video.json")
        .arg("--input")
        .arg(clips().join("camera-h264.mp4"))
        .args(["--start-time", "2026-01-01T00:00:00Z", "--events"])
        .arg(&events)
        .arg("--archive")
        .arg(dir.join("archive"))
        .args(["--store", "s3://vigil/site-a", "--ca-file"])
        .arg(&ca.ca_cert)
        .arg("--event-log")
        .arg(&log)
        .envs(env)
        .env("RUST_LOG", "warn")
        .current_dir(repo())
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploaded: Vec<serde_json::Value> = read_events(&log)
        .into_iter()
        .filter(|(k, _, _)| k == "SegmentUploaded")
        .map(|(_, b, _)| b)
        .collect();
    assert!(!uploaded.is_empty(), "segments were uploaded over HTTPS");
    for segment in &uploaded {
        let key = segment["key"].as_str().expect("key");
        let stored = bucket_dir.join("vigil").join(key);
        let size = std::fs::metadata(&stored)
            .unwrap_or_else(|e| panic!("{}: {e}", stored.display()))
            .len();
        assert_eq!(Some(size), segment["bytes"].as_u64(), "{key}");
    }
    assert!(
        !read_events(&log)
            .iter()
            .any(|(k, _, _)| k == "StorageError"),
        "no store fault"
    );
}

/// Azure Blob Storage over HTTPS (Azurite with a certificate of a CA made here): with the CA in
/// `--ca-file` every segment lands with its bytes; without it the store is refused as untrusted,
/// reported, and the segments stay in the cache.
#[test]
fn the_archive_uploads_to_azure_blob_behind_tls() {
    use support::stores::{Kind, StoreTls, TestStore};
    let dir = temp_dir("tls-azure");
    let ca = TestCa::new(&dir, "Vigil Azure CA");
    let pair = ca.issue("azurite", "azurite");
    let store = TestStore::new(Kind::Azure, &dir.join("azurite")).with_tls(StoreTls {
        cert: pair.cert.clone(),
        key: pair.key.clone(),
        ca: ca.ca_cert.clone(),
    });
    let _server = store.start();
    let events = dir.join("door.jsonl");
    std::fs::write(
        &events,
        "{\"at\": 3.0, \"input\": \"recordingTrigger\", \"body\": {}}\n",
    )
    .expect("write");
    let replay = |name: &str, ca_file: Option<&Path>| {
        let log = dir.join(format!("{name}.jsonl"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.arg("replay")
            .arg("topologies/door-sensor-to-video.json")
            .arg("--input")
            .arg(clips().join("camera-h264.mp4"))
            .args(["--start-time", "2026-01-01T00:00:00Z", "--events"])
            .arg(&events)
            .arg("--archive")
            .arg(dir.join(name))
            .args(["--store", &store.url("site-a")])
            .arg("--event-log")
            .arg(&log)
            .envs(store.env())
            .env("RUST_LOG", "warn")
            .current_dir(repo());
        if let Some(ca) = ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        let out = cmd.output().expect("vigil runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        read_events(&log)
    };

    let untrusted = replay("untrusted", None);
    let errors: Vec<&serde_json::Value> = untrusted
        .iter()
        .filter(|(k, _, _)| k == "StorageError")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    assert!(
        errors[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("certificate") || d.contains("UnknownIssuer")),
        "{errors:?}"
    );
    assert!(!untrusted.iter().any(|(k, _, _)| k == "SegmentUploaded"));
    assert!(
        store.keys("site-a/").is_empty(),
        "nothing reached the store"
    );

    let trusted = replay("trusted", Some(&ca.ca_cert));
    let uploaded: Vec<&serde_json::Value> = trusted
        .iter()
        .filter(|(k, _, _)| k == "SegmentUploaded")
        .map(|(_, b, _)| b)
        .collect();
    assert!(!uploaded.is_empty(), "segments were uploaded over HTTPS");
    for segment in &uploaded {
        let key = segment["key"].as_str().expect("key");
        let stored = store
            .read(key)
            .unwrap_or_else(|| panic!("{key} in the store"));
        assert_eq!(
            Some(stored.len() as u64),
            segment["bytes"].as_u64(),
            "{key}"
        );
    }
    assert!(
        !trusted.iter().any(|(k, _, _)| k == "StorageError"),
        "no store fault"
    );
}
