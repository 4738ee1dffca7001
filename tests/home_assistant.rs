//! Home Assistant over MQTT discovery, against a real broker (Mosquitto): `vigil serve
//! --ha-discovery` announces a motion pipeline (recording and motion sensors, snapshot camera,
//! activate switch, retained, with the service's availability), then a pipeline going through
//! activate (from HA's switch), motion, recording and deactivate (from the switch again) shows
//! on its state topics; the camera topic carries a JPEG; a killed service goes `offline` by its
//! last will.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::peers::{Peer, broker, camera, free_port, mqtt_publish};
use support::service::{call, serve, set_pipeline, set_topology, states, wait_until};
use support::{clips, temp_dir};

const NODE: &str = "vigil-ha-test";

/// `mosquitto_sub -v` on `topics`, each message a line `TOPIC PAYLOAD` in `out`.
fn subscribe(port: u16, topics: &[&str], out: &Path) -> Peer {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-p", &port.to_string(), "-v"]);
    for t in topics {
        cmd.args(["-t", t]);
    }
    Peer {
        child: cmd
            .stdout(std::fs::File::create(out).expect("out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    }
}

/// The messages received so far: (topic, payload).
fn messages(out: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, p)| (t.to_string(), p.to_string()))
        .collect()
}

fn wait_for(out: &Path, topic: &str, payload: &str, what: &str) {
    wait_until(what, Duration::from_secs(40), || {
        messages(out)
            .iter()
            .any(|(t, p)| t == topic && p == payload)
    });
}

fn state_of(port: u16, name: &str) -> String {
    states(port)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[test]
fn a_pipeline_appears_in_home_assistant_and_follows_activate_motion_recording_deactivate() {
    let dir = temp_dir("home-assistant");
    let (mqtt_port, http_port, cam_port) = (free_port(), free_port(), free_port());
    let _broker = broker(mqtt_port);
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let mqtt = format!("127.0.0.1:{mqtt_port}");
    let mut vigil = serve(
        &dir,
        http_port,
        &["--mqtt", &mqtt, "--mqtt-client-id", NODE, "--ha-discovery"],
    );
    set_topology(http_port, "topologies/motion-to-files.json");
    let (status, payload) = set_pipeline(
        http_port,
        "yard",
        "MotionToFiles",
        &[
            ("rtspUrl", format!("rtsp://127.0.0.1:{cam_port}/camera")),
            ("outputDirectory", dir.join("out").display().to_string()),
        ],
    );
    assert!(status == 200 || status == 201, "{payload}");

    // Discovery (retained: a subscriber that comes later gets it too).
    let configs = dir.join("configs.txt");
    let _configs = subscribe(mqtt_port, &["homeassistant/#"], &configs);
    let prefix = format!("homeassistant/%/{NODE}/yard_");
    let topic = |component: &str, object: &str| prefix.replace('%', component) + object + "/config";
    let wanted = [
        topic("binary_sensor", "recording"),
        topic("binary_sensor", "motion"),
        topic("camera", "snapshot"),
        topic("switch", "active"),
    ];
    wait_until("four discovery messages", Duration::from_secs(20), || {
        let got = messages(&configs);
        wanted.iter().all(|w| got.iter().any(|(t, _)| t == w))
    });
    let got = messages(&configs);
    let config = |t: &str| -> Value {
        serde_json::from_str(&got.iter().find(|(x, _)| x == t).expect("config").1).expect("JSON")
    };
    let availability = format!("vigil/{NODE}/availability");
    for w in &wanted {
        let c = config(w);
        assert_eq!(c["availability_topic"], availability.as_str(), "{w}");
        assert_eq!(c["device"]["name"], "Vigil yard", "{w}");
    }
    assert_eq!(config(&wanted[0])["state_topic"], "vigil/yard/ha/recording");
    assert_eq!(config(&wanted[1])["device_class"], "motion");
    assert_eq!(config(&wanted[2])["topic"], "vigil/yard/ha/snapshot");
    let switch = config(&wanted[3]);
    assert_eq!(switch["command_topic"], "vigil/yard/ha/active/set");
    assert_eq!(switch["state_topic"], "vigil/yard/ha/active");

    let states_file = dir.join("states.txt");
    let _states = subscribe(
        mqtt_port,
        &[
            &availability,
            "vigil/yard/ha/active",
            "vigil/yard/ha/recording",
            "vigil/yard/ha/motion",
        ],
        &states_file,
    );
    wait_for(&states_file, &availability, "online", "online");
    wait_for(
        &states_file,
        "vigil/yard/ha/active",
        "OFF",
        "inactive at first",
    );

    // HA's switch activates the pipeline.
    mqtt_publish(mqtt_port, "vigil/yard/ha/active/set", "ON");
    wait_until("Active", Duration::from_secs(20), || {
        state_of(http_port, "yard") == "Active"
    });
    wait_for(&states_file, "vigil/yard/ha/active", "ON", "switch on");
    // The camera's box moves 8-12 s into its 20 s loop: motion, then a clip.
    wait_for(&states_file, "vigil/yard/ha/motion", "ON", "motion");
    wait_for(&states_file, "vigil/yard/ha/recording", "ON", "recording");
    // The camera entity gets the clip's snapshot: a JPEG.
    let jpeg = dir.join("snapshot.jpg");
    wait_until("a retained snapshot", Duration::from_secs(30), || {
        let out = Command::new("mosquitto_sub")
            .args(["-p", &mqtt_port.to_string(), "-t", "vigil/yard/ha/snapshot"])
            .args(["-C", "1", "-N", "-W", "2"])
            .output()
            .expect("mosquitto_sub");
        out.stdout.starts_with(&[0xFF, 0xD8]) && std::fs::write(&jpeg, &out.stdout).is_ok()
    });
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width",
            "-of",
            "csv=p=0",
        ])
        .arg(&jpeg)
        .output()
        .expect("ffprobe");
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "mjpeg,640");

    // And deactivates it: the clip is closed, recording goes off.
    mqtt_publish(mqtt_port, "vigil/yard/ha/active/set", "OFF");
    wait_until("Inactive", Duration::from_secs(30), || {
        state_of(http_port, "yard") == "Inactive"
    });
    wait_for(&states_file, "vigil/yard/ha/active", "OFF", "switch off");
    let seen = messages(&states_file);
    let last_recording = seen
        .iter()
        .rev()
        .find(|(t, _)| t == "vigil/yard/ha/recording")
        .map(|(_, p)| p.as_str());
    assert_eq!(last_recording, Some("OFF"), "{seen:?}");
    // A payload other than ON or OFF is ignored.
    mqtt_publish(mqtt_port, "vigil/yard/ha/active/set", "maybe");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state_of(http_port, "yard"), "Inactive");

    // Deleted: its entities are removed (empty retained config).
    let (status, _) = call(
        http_port,
        "livePipelineDelete",
        &serde_json::json!({"@apiVersion": "1.1", "name": "yard"}),
    );
    assert_eq!(status, 200);
    wait_until("discovery removed", Duration::from_secs(10), || {
        let out = Command::new("mosquitto_sub")
            .args(["-p", &mqtt_port.to_string(), "-t", &wanted[3]])
            .args(["-C", "1", "-W", "1"])
            .output()
            .expect("mosquitto_sub");
        // A removed retained message is no longer sent to new subscribers.
        out.stdout.is_empty()
    });

    // Killed: the broker tells HA the service is gone (its last will).
    vigil.kill9();
    wait_for(
        &states_file,
        &availability,
        "offline",
        "offline by the will",
    );
}
