//! A broker that goes away and comes back: the outage is reported once, the link is back within
//! about a second of the broker (no back-off that widens the outage), so a trigger published
//! 2 s after the broker's return records its clip. A link cut while the broker stays up: the
//! session is persistent and subscribed with QoS 1, so a trigger published during the cut is
//! delivered when the link is back and records its clip (before: a clean session, and the
//! trigger was lost).

mod support;

use std::time::Duration;

use support::peers::{
    broker, camera, door_run_args, event_log, free_port, mqtt_publish, vigil_run, wait_for_event,
    wait_for_port,
};
use support::relay::Relay;
use support::{clips, mp4_files, read_events, temp_dir};

#[test]
fn a_broker_that_comes_back_is_used_again_within_a_second() {
    let dir = temp_dir("mqtt-reconnect");
    let (cam_port, http_port, mqtt_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mut mosquitto = broker(mqtt_port);
    let mut args = door_run_args(&dir, "door", cam_port, http_port);
    let address = format!("127.0.0.1:{mqtt_port}");
    args.extend(["--set", "minActivation=PT3S", "--mqtt", &address].map(String::from));
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    // The broker is away for 8 s (several attempts fail), then back on the same port.
    mosquitto.kill9();
    wait_for_event(&event_log(&dir), "NetworkError", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(8));
    let _mosquitto = broker(mqtt_port);
    std::thread::sleep(Duration::from_secs(2));
    mqtt_publish(mqtt_port, "vigil/door/inputs/recordingTrigger", "{}");
    wait_for_event(
        &event_log(&dir),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    assert_eq!(mp4_files(&dir.join("out")).len(), 1);
    let outages = read_events(&event_log(&dir))
        .into_iter()
        .filter(|(k, b, _)| k == "NetworkError" && b["broker"].is_string())
        .count();
    assert_eq!(outages, 1, "one outage, reported once");
}

#[test]
fn a_trigger_published_while_the_link_is_cut_is_delivered_when_it_is_back() {
    let dir = temp_dir("mqtt-session");
    let (cam_port, http_port, mqtt_port) = (free_port(), free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let _mosquitto = broker(mqtt_port);
    let relay = Relay::start(free_port(), mqtt_port);
    let mut args = door_run_args(&dir, "door", cam_port, http_port);
    let address = format!("127.0.0.1:{}", relay.port);
    args.extend(["--set", "minActivation=PT3S", "--mqtt", &address].map(String::from));
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    // Connected and subscribed by now (the broker is local).
    std::thread::sleep(Duration::from_secs(2));
    relay.cut();
    wait_for_event(&event_log(&dir), "NetworkError", 1, Duration::from_secs(20));
    mqtt_publish(mqtt_port, "vigil/door/inputs/recordingTrigger", "{}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        mp4_files(&dir.join("out")).is_empty(),
        "nothing recorded while the link is cut"
    );
    relay.restore();
    wait_for_event(
        &event_log(&dir),
        "RecordingStopped",
        1,
        Duration::from_secs(30),
    );
    vigil.interrupt();
    assert_eq!(mp4_files(&dir.join("out")).len(), 1);
}
