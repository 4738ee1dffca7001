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

/// A camera whose pictures stop for 16 s while its session stays up (RTCP reports and keep-alive
/// answers go on, as when an encoder hangs) is a stalled camera: after 10 s without a picture the
/// session is reported as a NetworkError that says so, then dropped and tried again until the
/// pictures are back. (Before, RTCP reports counted as media: the stream froze and nothing was
/// reported.)
#[test]
fn a_camera_that_stops_sending_pictures_is_reported_stalled_and_retried() {
    let dir = temp_dir("camera-frozen");
    let (cam_port, http_port) = (free_port(), free_port());
    let clip = clips().join("camera-h264.mp4");
    let _cam = support::peers::camera_with(
        &clip,
        cam_port,
        "vigil",
        "vigil",
        &["--freeze-after", "4", "--freeze-for", "16"],
    );
    let args = door_run_args(&dir, "door", cam_port, http_port);
    let mut vigil = vigil_run(&dir, &args);
    let events = wait_for_event(
        &event_log(&dir),
        "MediaSessionEstablished",
        2,
        Duration::from_secs(60),
    );
    vigil.interrupt();
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    let stalls: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, _, _)| k == "NetworkError")
        .map(|(_, b, _)| b)
        .collect();
    assert!(!stalls.is_empty(), "{kinds:?}");
    assert_eq!(
        stalls[0]["detail"], "stalled: no media for 10 s",
        "{}",
        stalls[0]
    );
    let first = kinds
        .iter()
        .position(|k| *k == "MediaSessionEstablished")
        .expect("established");
    let stall = kinds
        .iter()
        .position(|k| *k == "NetworkError")
        .expect("stall");
    assert!(first < stall, "{kinds:?}");
}
