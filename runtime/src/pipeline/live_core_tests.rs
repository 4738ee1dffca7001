//! The core's hand-over of queued commands and of the clock between the camera's thread and the
//! event loop.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;

use super::*;
use crate::media::sample::{VideoCodec, VideoParams};
use crate::pipeline::sink_queue::{SinkQueueReceiver, sink_queue};
use crate::topology::{LoadOptions, load_topology, parse_set_argument};

const T0: i64 = 1_700_000_000;

/// A core for the door-sensor topology (5 s pre-roll), its sink queue, and its camera input.
fn core() -> (SharedCore, SinkQueueReceiver, CoreInput) {
    let text = include_str!("../../../topologies/door-sensor-to-files.json");
    let options = LoadOptions {
        values: vec![parse_set_argument("outputDirectory=/nonexistent").expect("a --set value")],
        ..LoadOptions::default()
    };
    let topology = load_topology(text, &options).expect("the topology loads");
    let plan = PipelinePlan::from_topology(&topology).expect("a plan");
    let bus = EventBus::new(&plan.pipeline, None).expect("an event bus");
    let router = EventRouter::new(&plan, &bus).expect("a router");
    let (tx, rx) = sink_queue();
    let core = Arc::new(Mutex::new(LiveCore::new(
        plan,
        bus,
        vec![vec![tx]],
        Vec::new(),
        router,
    )));
    let input = CoreInput {
        core: core.clone(),
        clock_released: Arc::new(Notify::new()),
        faults: tokio::sync::mpsc::unbounded_channel().0,
    };
    (core, rx, input)
}

/// Frame `n` of a 30 fps stream, a key frame every `gop` frames.
fn frame(n: i64, gop: i64) -> MediaItem {
    let params = Arc::new(VideoParams {
        codec: VideoCodec::H264,
        width: 320,
        height: 180,
        rfc6381_codec: "avc1.64001e".into(),
        sample_entry: Vec::new(),
    });
    let pts = MediaTime::from_secs(T0) + MediaDuration::from_nanos(n * 1_000_000_000 / 30);
    MediaItem::Video(VideoSample {
        pts,
        dts: pts,
        key_frame: n % gop == 0,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        params,
        discontinuity: false,
    })
}

fn frames(range: std::ops::Range<i64>) -> Vec<MediaItem> {
    range.map(|n| frame(n, 5)).collect()
}

/// What the sink has received: "start", the frame numbers of samples, "end".
fn received(rx: &SinkQueueReceiver) -> Vec<String> {
    rx.take_now()
        .iter()
        .map(|c| match c {
            ClipCommand::Start { .. } => "start".to_string(),
            ClipCommand::Sample(s) => {
                let nanos = (s.pts - MediaTime::from_secs(T0)).as_nanos();
                let n = (nanos * 30 + 500_000_000) / 1_000_000_000;
                n.to_string()
            }
            ClipCommand::End { .. } => "end".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn trigger() -> InputMessage {
    InputMessage {
        input: "recordingTrigger".into(),
        payload: b"{}".to_vec(),
    }
}

fn numbers(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}

#[test]
fn samples_wait_for_the_key_frame_that_ends_their_fragment() {
    let (core, rx, mut input) = core();
    assert!(input.deliver(frames(0..7), true));
    assert_eq!(received(&rx), Vec::<String>::new(), "the gate is closed");
    // The trigger at frame 6 opens the clip once the evaluation window (1 s) has passed, with
    // its pre-roll from the key frame at 0: the start is due at once, and takes the burst along.
    lock(&core).on_input(trigger());
    assert!(input.deliver(frames(7..41), true));
    let mut expected = vec!["start".to_string()];
    expected.extend(numbers(0..41));
    assert_eq!(received(&rx), expected);
    assert!(input.deliver(frames(41..45), true));
    assert_eq!(received(&rx), Vec::<String>::new(), "no key frame yet");
    assert!(input.deliver(frames(45..47), true));
    assert_eq!(received(&rx), numbers(41..47));
    lock(&core).finish();
    assert_eq!(received(&rx), ["end"]);
    assert!(
        !input.deliver(frames(47..48), true),
        "bursts after finish are refused"
    );
    assert_eq!(received(&rx), Vec::<String>::new());
}

#[test]
fn the_clock_is_the_event_loops_until_the_camera_is_read_at_a_pace() {
    let (core, _rx, mut input) = core();
    assert!(
        lock(&core).next_housekeeping().is_some(),
        "before any burst"
    );
    assert!(input.deliver(frames(0..3), true));
    assert_eq!(lock(&core).next_housekeeping(), None, "while paced");
    assert!(
        input.clock_released.notified().now_or_never().is_none(),
        "nothing to tell yet"
    );
    // The camera goes away (or is read packet by packet): the event loop is told.
    assert!(input.deliver(Vec::new(), false));
    assert!(lock(&core).next_housekeeping().is_some());
    assert!(input.clock_released.notified().now_or_never().is_some());
    // A source whose thread dies while paced keeps no clock either.
    assert!(input.deliver(frames(3..4), true));
    let released = input.clock_released.clone();
    drop(input);
    assert!(lock(&core).next_housekeeping().is_some());
    assert!(released.notified().now_or_never().is_some());
}
