//! A camera that goes away for 8 s and comes back: the outage is reported once, with the
//! attempts that failed meanwhile not reported one by one, and the session is back within about
//! a second of the camera (before: a back-off doubling to 30 s came back up to 8 s late).

mod support;

use std::time::Duration;

use support::peers::{
    camera, door_run_args, event_log, free_port, vigil_run, wait_for_event, wait_for_port,
};
use support::{clips, temp_dir};

#[test]
fn a_camera_that_comes_back_is_used_again_within_a_second() {
    let dir = temp_dir("camera-reconnect");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = clips().join("camera-h264.mp4");
    let mut cam = camera(&clip, cam_port, "vigil", "vigil");
    let args = door_run_args(&dir, "door", cam_port, http_port);
    let mut vigil = vigil_run(&dir, &args);
    wait_for_port(http_port);
    wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        1,
        Duration::from_secs(20),
    );
    cam.kill9();
    std::thread::sleep(Duration::from_secs(8));
    let _cam = camera(&clip, cam_port, "vigil", "vigil");
    let back = jiff::Timestamp::now();
    let events = wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        2,
        Duration::from_secs(20),
    );
    vigil.interrupt();
    // When the session was established again, by the event's own time.
    let log = std::fs::read_to_string(event_log(&dir)).expect("log");
    let established: Vec<jiff::Timestamp> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with("MediaSessionEstablished"))
        })
        .filter_map(|v| v["properties"]["eventTime"].as_str()?.parse().ok())
        .collect();
    let again = established[1];
    let late = back.duration_until(again).as_secs_f64();
    assert!(
        late < 2.5,
        "the session came back {late:.2} s after the camera (camera ready at {back}, session at {again})"
    );
    // Eight seconds of failed attempts, one report.
    let failures: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, b, _)| {
            matches!(k.as_str(), "NetworkError" | "MediaSessionEnded" | "ProtocolError")
                && b["url"].is_string()
                // A slow machine may pass the 10 s of a periodic report: those are not floods.
                && b["repeatsNotReported"].is_null()
        })
        .map(|(_, b, _)| b)
        .collect();
    assert!(
        (1..=2).contains(&failures.len()),
        "the outage is reported once (its first failure, and the session's end): {failures:?}"
    );
}
