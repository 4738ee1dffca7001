//! Inputs over their limits are refused and reported, never copied whole, and never cost the
//! connection: a retained 2 MB message on an input topic (it once sent the MQTT client into an
//! endless reconnect loop, losing every later trigger), a 100 KB MQTT trigger, a 100 KB HTTP
//! trigger. The trigger after them records its clip.

mod support;

use std::process::Command;
use std::time::Duration;

use support::peers::{broker, camera, event_log, free_port, http_post, vigil_run, wait_for_event};
use support::{clips, mp4_files, read_events, temp_dir};

const PIPELINE: &str = "door";

fn publish_file(port: u16, topic: &str, file: &std::path::Path, retain: bool) {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-p", &port.to_string(), "-t", topic, "-q", "1", "-f"])
        .arg(file);
    if retain {
        c.arg("-r");
    }
    assert!(c.status().expect("mosquitto_pub runs").success());
}

#[test]
fn oversized_and_retained_triggers_are_dropped_and_the_link_stays() {
    let dir = temp_dir("bounds-mqtt");
    let (cam_port, mqtt_port, http_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _broker = broker(mqtt_port);
    let topic = format!("vigil/{PIPELINE}/inputs/recordingTrigger");
    let big = dir.join("big.json");
    std::fs::write(&big, format!("{{\"pad\": \"{}\"}}", "x".repeat(2_000_000))).expect("write");
    publish_file(mqtt_port, &topic, &big, true);
    let args: Vec<String> = [
        "topologies/door-sensor-to-files.json".to_string(),
        "--pipeline-name".into(),
        PIPELINE.into(),
        "--set".into(),
        format!("rtspUrl=rtsp://127.0.0.1:{cam_port}/camera"),
        "--set".into(),
        format!("outputDirectory={}", dir.join("out").display()),
        "--set".into(),
        "minActivation=PT3S".into(),
        "--event-log".into(),
        event_log(&dir).display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
        "--mqtt".into(),
        format!("127.0.0.1:{mqtt_port}"),
    ]
    .to_vec();
    let mut vigil = vigil_run(&dir, &args);
    let log = event_log(&dir);
    wait_for_event(&log, "MediaSessionEstablished", 1, Duration::from_secs(20));
    // The retained message arrives at the subscription: dropped, reported.
    wait_for_event(&log, "InvalidMessage", 1, Duration::from_secs(10));
    let medium = dir.join("medium.json");
    std::fs::write(&medium, format!("{{\"pad\": \"{}\"}}", "y".repeat(100_000))).expect("write");
    publish_file(mqtt_port, &topic, &medium, false);
    let url = format!("http://127.0.0.1:{http_port}/pipelines/{PIPELINE}/inputs/recordingTrigger");
    let body = format!("{{\"pad\": \"{}\"}}", "z".repeat(100_000));
    assert_eq!(http_post(&url, &body), 413);
    wait_for_event(&log, "InvalidMessage", 3, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    support::peers::mqtt_publish(mqtt_port, &topic, r#"{"door": "open"}"#);
    wait_for_event(&log, "RecordingStopped", 1, Duration::from_secs(30));
    vigil.interrupt();

    let events = read_events(&log);
    let invalid: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, _, _)| k == "InvalidMessage")
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(invalid.len(), 3, "{invalid:?}");
    let detail = |i: usize| invalid[i]["detail"].as_str().unwrap_or("").to_string();
    assert!(detail(0).contains("retained"), "{}", detail(0));
    let mut sized: Vec<String> = vec![detail(1), detail(2)];
    sized.sort();
    assert!(
        sized[0].contains("MQTT message of 100011 bytes is over the 64 KiB limit"),
        "{sized:?}"
    );
    assert!(
        sized[1].contains("request body of 100011 bytes is over the 64 KiB limit"),
        "{sized:?}"
    );
    // Nothing was copied whole: the log holds no padding.
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("yyyyyyyyyy") && !text.contains("xxxxxxxxxx"));
    assert!(text.len() < 200_000, "{} bytes of events", text.len());
    // The link never broke, and the one good trigger recorded one clip.
    assert!(
        !events.iter().any(|(k, _, _)| k == "NetworkError"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(k, _, _)| k == "TriggerReceived")
            .count(),
        1
    );
    assert_eq!(mp4_files(&dir.join("out")).len(), 1);
}
