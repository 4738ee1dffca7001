//! Signal gate timing tests: AVA's worked example and the edge cases of ava-spec §3.2.

use super::*;

const T0: i64 = 1_700_000_000; // a UTC second, far from zero
const FPS: i64 = 30;

fn secs(s: f64) -> MediaDuration {
    MediaDuration::from_nanos((s * 1e9).round() as i64)
}

fn at(s: f64) -> MediaTime {
    MediaTime::from_secs(T0) + secs(s)
}

fn timing(w: f64, o: f64, min: f64, max: f64) -> GateTiming {
    GateTiming {
        evaluation_window: secs(w),
        signal_offset: secs(o),
        minimum_activation: secs(min),
        maximum_activation: secs(max),
    }
}

/// An event injected after the sample at `arrival` (seconds), stamped with media time `media`.
struct Ev {
    arrival: f64,
    media: f64,
    id: &'static str,
}

fn ev(arrival: f64) -> Ev {
    Ev {
        arrival,
        media: arrival,
        id: "e",
    }
}

#[derive(Debug, PartialEq)]
struct Clip {
    start: f64,
    end: f64,
    frames: usize,
    reason: EndReason,
    correlation: String,
}

struct Run {
    clips: Vec<Clip>,
    decisions: Vec<GateDecision>,
}

/// Runs a 30 fps stream from 0 to `until` seconds with a key frame every `gop` seconds.
fn run(t: GateTiming, gop: f64, until: f64, events: &[Ev]) -> Run {
    let mut gate = SignalGate::new(t, MediaDuration::from_secs(5));
    let mut decisions = Vec::new();
    let mut samples = Vec::new();
    let frames = (until * FPS as f64) as i64;
    let gop_frames = (gop * FPS as f64).round() as i64;
    for i in 0..frames {
        let time = MediaTime::from_secs(T0) + MediaDuration::from_nanos(i * 1_000_000_000 / FPS);
        samples.push(time);
        decisions.extend(gate.on_sample(time, i % gop_frames == 0));
        for e in events.iter().filter(|e| at(e.arrival) == time) {
            decisions.extend(gate.on_event(at(e.media), e.id));
        }
    }
    decisions.extend(gate.finish());
    let rel = |t: MediaTime| (t - MediaTime::from_secs(T0)).as_secs_f64();
    let mut clips = Vec::new();
    let mut open: Option<(MediaTime, String)> = None;
    for d in &decisions {
        match d {
            GateDecision::ClipStart {
                start,
                correlation_id,
                ..
            } => open = Some((*start, correlation_id.clone())),
            GateDecision::ClipEnd { end, reason, .. } => {
                if let Some((start, correlation)) = open.take() {
                    clips.push(Clip {
                        start: rel(start),
                        end: rel(*end),
                        frames: samples.iter().filter(|&&s| s >= start && s < *end).count(),
                        reason: *reason,
                        correlation,
                    });
                }
            }
            GateDecision::LateEventDropped { .. } => {}
        }
    }
    Run { clips, decisions }
}

fn spans(r: &Run) -> Vec<(f64, f64)> {
    r.clips.iter().map(|c| (c.start, c.end)).collect()
}

#[test]
fn worked_example_single_event_gives_25_seconds_from_5_before() {
    let r = run(timing(1.0, -5.0, 20.0, 40.0), 1.0, 200.0, &[ev(100.0)]);
    assert_eq!(spans(&r), vec![(95.0, 120.0)]);
    assert_eq!(r.clips[0].frames, 25 * 30);
    assert_eq!(r.clips[0].reason, EndReason::Minimum);
}

#[test]
fn worked_example_continuous_events_give_45_seconds_then_a_new_activation() {
    let events: Vec<Ev> = (0..200).map(|i| ev(100.0 + i as f64 * 0.5)).collect();
    let r = run(timing(1.0, -5.0, 20.0, 40.0), 1.0, 300.0, &events);
    // Capped at first event + 40 s; the event at exactly 140 s finds the gate closed and opens
    // the next activation with its own 5 s pre-roll, and so on every 40 s.
    assert_eq!(r.clips[0].start, 95.0);
    assert_eq!(r.clips[0].end, 140.0);
    assert_eq!(r.clips[0].frames, 45 * 30);
    assert_eq!(r.clips[0].reason, EndReason::Maximum);
    assert_eq!(r.clips[1].start, 135.0);
    assert_eq!(r.clips[1].end, 180.0);
    assert_eq!(r.clips[2].start, 175.0);
    // Events stop at 199.5 s: the third activation (opened at 180 s) ends 20 s after that.
    assert_eq!(r.clips[2].end, 219.5);
    assert_eq!(r.clips[2].reason, EndReason::Minimum);
    assert_eq!(r.clips.len(), 3);
}

#[test]
fn two_events_inside_the_window_extend_by_their_distance() {
    let r = run(
        timing(1.0, -5.0, 20.0, 40.0),
        1.0,
        200.0,
        &[ev(100.0), ev(110.0)],
    );
    // −O + (t2 − t1) + MIN = 5 + 10 + 20.
    assert_eq!(spans(&r), vec![(95.0, 130.0)]);
    assert_eq!(r.clips[0].frames, 35 * 30);
}

#[test]
fn event_exactly_at_the_deadline_starts_a_new_activation() {
    let r = run(
        timing(1.0, 0.0, 20.0, 40.0),
        1.0,
        200.0,
        &[ev(100.0), ev(120.0)],
    );
    assert_eq!(spans(&r), vec![(100.0, 120.0), (120.0, 140.0)]);
    assert_eq!(r.clips[0].frames + r.clips[1].frames, 40 * 30);
}

#[test]
fn event_just_before_the_deadline_retriggers() {
    let r = run(
        timing(1.0, 0.0, 20.0, 40.0),
        1.0,
        200.0,
        &[ev(100.0), ev(119.9)],
    );
    assert_eq!(r.clips.len(), 1);
    assert!((r.clips[0].end - 139.9).abs() < 1e-6);
}

#[test]
fn late_arrival_is_dropped_and_does_not_move_the_start() {
    let late = Ev {
        arrival: 102.0,
        media: 99.0,
        id: "late",
    };
    let r = run(
        timing(1.0, -5.0, 20.0, 40.0),
        1.0,
        200.0,
        &[ev(100.0), late],
    );
    assert_eq!(spans(&r), vec![(95.0, 120.0)]);
    assert!(r.decisions.iter().any(|d| matches!(
        d,
        GateDecision::LateEventDropped { correlation_id, .. } if correlation_id == "late"
    )));
}

#[test]
fn earlier_event_inside_the_window_moves_the_start_earlier() {
    let early = Ev {
        arrival: 100.5,
        media: 98.0,
        id: "early",
    };
    let first = Ev {
        arrival: 100.0,
        media: 100.0,
        id: "first",
    };
    let r = run(timing(1.0, -5.0, 20.0, 40.0), 1.0, 200.0, &[first, early]);
    // Start = 98 − 5; the deadline follows arrivals: 100.5 + 20.
    assert_eq!(r.clips[0].start, 93.0);
    assert!((r.clips[0].end - 120.5).abs() < 1e-6);
    assert_eq!(
        r.clips[0].correlation, "first",
        "the opening event names the activation"
    );
}

#[test]
fn event_after_the_cap_opens_a_second_file() {
    let events: Vec<Ev> = (0..=45).map(|i| ev(100.0 + i as f64)).collect();
    let r = run(timing(1.0, 0.0, 10.0, 30.0), 1.0, 200.0, &events);
    assert_eq!(spans(&r), vec![(100.0, 130.0), (130.0, 155.0)]);
    assert_eq!(r.clips[0].reason, EndReason::Maximum);
}

#[test]
fn clip_starts_on_the_key_frame_at_or_before_the_asked_start() {
    let r = run(timing(1.0, 0.0, 10.0, 30.0), 2.0, 200.0, &[ev(101.5)]);
    assert_eq!(spans(&r), vec![(100.0, 111.5)]);
    let r = run(timing(1.0, -3.0, 10.0, 30.0), 2.0, 200.0, &[ev(101.5)]);
    assert_eq!(r.clips[0].start, 98.0);
}

#[test]
fn start_is_final_only_after_the_evaluation_window() {
    let mut gate = SignalGate::new(timing(1.0, 0.0, 10.0, 30.0), MediaDuration::ZERO);
    assert!(gate.on_sample(at(0.0), true).is_empty());
    assert!(gate.on_event(at(0.0), "a").is_empty());
    assert!(gate.on_sample(at(0.5), false).is_empty());
    let d = gate.on_sample(at(1.0), false);
    assert!(matches!(
        d.as_slice(),
        [GateDecision::ClipStart { activation: 1, .. }]
    ));
}

#[test]
fn zero_window_starts_at_once() {
    let mut gate = SignalGate::new(timing(0.0, 0.0, 10.0, 30.0), MediaDuration::ZERO);
    gate.on_sample(at(0.0), true);
    let d = gate.on_event(at(0.0), "a");
    assert!(matches!(d.as_slice(), [GateDecision::ClipStart { .. }]));
}

#[test]
fn wall_clock_closes_an_open_gate_when_media_stops() {
    let mut gate = SignalGate::new(GateTiming::default(), MediaDuration::ZERO);
    gate.on_sample(at(0.0), true);
    gate.on_event(at(0.0), "a");
    let d = gate.on_clock(at(10.0));
    assert!(
        d.iter()
            .any(|d| matches!(d, GateDecision::ClipEnd { end, .. } if *end == at(10.0)))
    );
    assert!(!gate.is_open());
}

#[test]
fn shutdown_ends_the_clip_at_the_clock() {
    let r = run(GateTiming::default(), 1.0, 103.0, &[ev(100.0)]);
    assert_eq!(r.clips.len(), 1);
    assert_eq!(r.clips[0].reason, EndReason::Shutdown);
    assert_eq!(r.clips[0].start, 100.0);
    assert!((r.clips[0].end - (103.0 - 1.0 / 30.0)).abs() < 1e-6);
}

#[test]
fn future_event_time_is_clamped_to_the_clock() {
    let future = Ev {
        arrival: 100.0,
        media: 150.0,
        id: "f",
    };
    let r = run(timing(1.0, 0.0, 10.0, 30.0), 1.0, 200.0, &[future]);
    assert_eq!(spans(&r), vec![(100.0, 110.0)]);
}

/// An event stamped at the ends of the media timeline (a trigger's `eventTime` from outside)
/// neither panics nor wraps: it counts at the media clock (it cannot be later than the media)
/// or before it, and every clip stays on the media's own timeline.
#[test]
fn events_at_the_ends_of_time_neither_panic_nor_wrap() {
    let max = timing(1.0, -5.0, 10.0, 3600.0);
    for stamp in [
        MediaTime::from_nanos(i64::MAX),
        MediaTime::from_nanos(i64::MIN),
    ] {
        let mut gate = SignalGate::new(max, MediaDuration::from_secs(10));
        gate.on_sample(at(0.0), true);
        let mut decisions = gate.on_event(stamp, "far");
        for i in 1..=(15 * FPS) {
            decisions.extend(gate.on_sample(at(i as f64 / FPS as f64), i % FPS == 0));
        }
        decisions.extend(gate.on_event(stamp, "again"));
        decisions.extend(gate.finish());
        for d in &decisions {
            if let GateDecision::ClipEnd { end, .. } = d {
                assert!(
                    *end >= at(0.0) && *end <= at(16.0),
                    "{stamp:?}: {decisions:?}"
                );
            }
            if let GateDecision::ClipStart { start, .. } = d {
                assert!(
                    *start >= at(-12.0) && *start <= at(16.0),
                    "{stamp:?}: {decisions:?}"
                );
            }
        }
    }
}
