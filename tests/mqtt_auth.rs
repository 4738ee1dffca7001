//! A broker that asks for a user name and password (Mosquitto with `allow_anonymous false`):
//! with `--mqtt-user` and `VIGIL_MQTT_PASSWORD` vigil connects and a trigger records its clip;
//! with a wrong password the refusal is reported and retried, and recording over HTTP goes on.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::peers::{
    Peer, camera, door_run_args, event_log, free_port, http_post, vigil_run_with_env,
    wait_for_event, wait_for_port,
};
use support::{clips, mp4_files, read_events, temp_dir};

fn broker_with_password(dir: &Path, port: u16) -> Peer {
    let passwords = dir.join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["vigil", "broker-secret-1"])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(status.success());
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            passwords.display()
        ),
    )
    .expect("write conf");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    wait_for_port(port);
    Peer { child }
}

fn args(dir: &Path, cam_port: u16, http_port: u16, mqtt_port: u16) -> Vec<String> {
    let mut args = door_run_args(dir, "door", cam_port, http_port);
    let broker = format!("127.0.0.1:{mqtt_port}");
    args.extend(
        [
            "--set",
            "minActivation=PT3S",
            "--mqtt",
            &broker,
            "--mqtt-user",
            "vigil",
        ]
        .map(String::from),
    );
    args
}

#[test]
fn the_broker_login_is_used_and_a_refusal_is_reported() {
    let dir = temp_dir("mqtt-auth");
    let (cam_port, mqtt_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = broker_with_password(&dir, mqtt_port);

    // The right password: a trigger published with the broker's login records a clip.
    let good = dir.join("good");
    std::fs::create_dir_all(&good).expect("dir");
    let http_port = free_port();
    let env = [(
        "VIGIL_MQTT_PASSWORD".to_string(),
        "broker-secret-1".to_string(),
    )];
    let mut vigil = vigil_run_with_env(&good, &args(&good, cam_port, http_port, mqtt_port), &env);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&good),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("mosquitto_pub")
        .args([
            "-p",
            &mqtt_port.to_string(),
            "-u",
            "vigil",
            "-P",
            "broker-secret-1",
        ])
        .args([
            "-t",
            "vigil/door/inputs/recordingTrigger",
            "-m",
            "{}",
            "-q",
            "1",
        ])
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    wait_for_event(
        &event_log(&good),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    assert_eq!(mp4_files(&good.join("out")).len(), 1);
    assert!(
        !read_events(&event_log(&good))
            .iter()
            .any(|(k, _, _)| k == "NetworkError")
    );

    // A wrong password: refused, reported (once per outage), retried; HTTP triggers still record.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).expect("dir");
    let http_port = free_port();
    let env = [("VIGIL_MQTT_PASSWORD".to_string(), "wrong".to_string())];
    let mut vigil = vigil_run_with_env(&bad, &args(&bad, cam_port, http_port, mqtt_port), &env);
    wait_for_port(http_port);
    let events = wait_for_event(&event_log(&bad), "NetworkError", 1, Duration::from_secs(20));
    let refusal = events
        .iter()
        .find(|(k, _, _)| k == "NetworkError")
        .map(|(_, b, _)| b.clone())
        .unwrap_or_default();
    assert!(
        refusal["detail"]
            .as_str()
            .is_some_and(|d| d.to_ascii_lowercase().contains("auth")),
        "{refusal}"
    );
    assert!(
        !refusal.to_string().contains("wrong"),
        "the password is not in the event"
    );
    wait_for_event(
        &event_log(&bad),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(2));
    let url = format!("http://127.0.0.1:{http_port}/pipelines/door/inputs/recordingTrigger");
    assert_eq!(http_post(&url, "{}"), 202);
    wait_for_event(
        &event_log(&bad),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
}
