//! The SignalGateProcessor node: the gate state machine plus the pre-roll buffer, turning media
//! and events into clip commands for the sinks behind it.

use crate::media::preroll::PrerollBuffer;
use std::sync::Arc;

use crate::media::sample::{AudioParams, AudioSample, VideoSample};
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::signal_gate::{EndReason, GateDecision, GateTiming, SignalGate};

/// What a media sink behind a gate is told to do.
#[derive(Clone, Debug)]
pub enum ClipCommand {
    /// A new clip (activation) begins; its samples follow.
    Start {
        /// Activation number, from 1.
        activation: u64,
        /// Media time the clip starts at.
        start: MediaTime,
        /// Media time of the earliest event.
        first_event: MediaTime,
        /// Correlation id of the opening event.
        correlation_id: String,
        /// The audio stream's parameters, when the source carries audio to this gate.
        audio: Option<Arc<AudioParams>>,
    },
    /// A sample of the open clip.
    Sample(VideoSample),
    /// An audio frame of the open clip.
    Audio(AudioSample),
    /// The clip is over.
    End {
        /// Activation number.
        activation: u64,
        /// Exclusive end on the media timeline.
        end: MediaTime,
        /// Why it ended.
        reason: EndReason,
    },
}

/// An event the gate dropped as a late arrival (reported as a `LateEventDropped` diagnostics
/// event; no sink hears of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateEvent {
    /// The event's media time.
    pub media_time: MediaTime,
    /// Its correlation id.
    pub correlation_id: String,
}

/// A clip whose pre-roll the buffer could not give in full (reported as a `PrerollIncomplete`
/// diagnostics event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortPreroll {
    /// Where the clip should have started (the key frame at or before its pre-roll).
    pub asked: MediaTime,
    /// Where it starts: the first sample held at or after `asked`; none: nothing held yet.
    pub first: Option<MediaTime>,
    /// The buffer's memory budget forced media out before its time (else the camera's media
    /// began, or began again after a gap, later than asked).
    pub budget: bool,
    /// The activation's correlation id.
    pub correlation_id: String,
}

/// Memory budget of one source's pre-roll buffer.
pub const PREROLL_MAX_BYTES: usize = 64 * 1024 * 1024;

/// A gate and its buffer.
pub struct GateNode {
    gate: SignalGate,
    buffer: PrerollBuffer,
    open: Option<u64>,
    open_start: MediaTime,
    audio: Option<Arc<AudioParams>>,
    continuous: bool,
    late: Vec<LateEvent>,
    short: Vec<ShortPreroll>,
    /// The buffer's budget drops when the last clip started.
    budget_drops_seen: u64,
}

impl GateNode {
    /// A closed gate. `latency_slack` is how old an event's media time may be and still find
    /// its media in the buffer (processor latency).
    pub fn new(timing: GateTiming, latency_slack: MediaDuration) -> Self {
        Self {
            gate: SignalGate::new(timing, latency_slack),
            // |offset| + window + the latency slack (+ the GOP reaching back past it): what a
            // clip can ask for, its event computed from a frame up to the slack old (a slow
            // inference answer). Events older than that still open a clip, from the oldest key
            // frame held, and the shortfall is reported.
            buffer: PrerollBuffer::new(timing.lookback() + latency_slack, PREROLL_MAX_BYTES),
            open: None,
            open_start: MediaTime::default(),
            audio: None,
            continuous: false,
            late: Vec::new(),
            short: Vec::new(),
            budget_drops_seen: 0,
        }
    }

    /// A gate that opens itself at every key frame, so it never closes (continuous recording);
    /// clips are cut at the timing's maximum.
    pub fn continuous(timing: GateTiming, latency_slack: MediaDuration) -> Self {
        Self {
            continuous: true,
            ..Self::new(timing, latency_slack)
        }
    }

    /// The media clock (newest sample).
    pub fn clock(&self) -> Option<MediaTime> {
        self.gate.clock()
    }

    /// The clips that started with less pre-roll than asked, since the last call.
    pub fn take_short_prerolls(&mut self) -> Vec<ShortPreroll> {
        std::mem::take(&mut self.short)
    }

    /// The events dropped as late arrivals since the last call.
    pub fn take_late_events(&mut self) -> Vec<LateEvent> {
        std::mem::take(&mut self.late)
    }

    /// Bytes held in the pre-roll buffer.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.bytes()
    }

    /// A media sample from the source.
    pub fn on_sample(&mut self, sample: VideoSample) -> Vec<ClipCommand> {
        let decisions = self.gate.on_sample(sample.pts, sample.key_frame);
        let pts = sample.pts;
        self.buffer.push(sample.clone());
        let mut out = Vec::new();
        let flushed_current = self.apply(decisions, &mut out, Some(pts));
        let key_frame = sample.key_frame;
        if self.open.is_some() && !flushed_current {
            out.push(ClipCommand::Sample(sample));
        }
        if self.continuous && key_frame {
            out.extend(self.on_event(pts, "continuous"));
        }
        out
    }

    /// An audio frame from the source (it does not move the gate's clock).
    pub fn on_audio(&mut self, sample: AudioSample) -> Vec<ClipCommand> {
        self.audio = Some(sample.params.clone());
        self.buffer.push_audio(sample.clone());
        if self.open.is_some() && sample.pts >= self.open_start {
            vec![ClipCommand::Audio(sample)]
        } else {
            Vec::new()
        }
    }

    /// An event reached the gate. Its media time counts to the millisecond (the precision of
    /// AVA's `eventTime`), so an event decided in-process and the same event sent round an MQTT
    /// trip with its `eventTime` give the same clip, frame for frame.
    pub fn on_event(&mut self, media_time: MediaTime, correlation_id: &str) -> Vec<ClipCommand> {
        let millis = MediaTime::from_millis(media_time.as_nanos().div_euclid(1_000_000));
        let decisions = self.gate.on_event(millis, correlation_id);
        let mut out = Vec::new();
        self.apply(decisions, &mut out, None);
        out
    }

    /// The wall clock says media time `now` has passed (media stopped flowing).
    pub fn on_clock(&mut self, now: MediaTime) -> Vec<ClipCommand> {
        let decisions = self.gate.on_clock(now);
        let mut out = Vec::new();
        self.apply(decisions, &mut out, None);
        out
    }

    /// The pipeline stops: ends an open clip.
    pub fn finish(&mut self) -> Vec<ClipCommand> {
        let decisions = self.gate.finish();
        let mut out = Vec::new();
        self.apply(decisions, &mut out, None);
        out
    }

    /// Applies decisions; returns true when the newest sample (`current`) was sent with a
    /// start's pre-roll flush.
    fn apply(
        &mut self,
        decisions: Vec<GateDecision>,
        out: &mut Vec<ClipCommand>,
        current: Option<MediaTime>,
    ) -> bool {
        let mut flushed_current = false;
        for (i, d) in decisions.iter().enumerate() {
            match d {
                GateDecision::ClipStart {
                    activation,
                    start,
                    first_event,
                    correlation_id,
                } => {
                    out.push(ClipCommand::Start {
                        activation: *activation,
                        start: *start,
                        first_event: *first_event,
                        correlation_id: correlation_id.clone(),
                        audio: self.audio.clone(),
                    });
                    let end = decisions[i..].iter().find_map(|d| match d {
                        GateDecision::ClipEnd {
                            activation: a, end, ..
                        } if a == activation => Some(*end),
                        _ => None,
                    });
                    let held = self.buffer.range(*start, end);
                    let first = held.first().map(|s| s.pts);
                    let budget_drops = self.buffer.dropped_for_budget();
                    if first.is_none_or(|f| f > *start) {
                        self.short.push(ShortPreroll {
                            asked: *start,
                            first,
                            budget: budget_drops > self.budget_drops_seen,
                            correlation_id: correlation_id.clone(),
                        });
                    }
                    self.budget_drops_seen = budget_drops;
                    for s in held {
                        flushed_current |= Some(s.pts) == current;
                        out.push(ClipCommand::Sample(s));
                    }
                    for a in self.buffer.audio_range(*start, end) {
                        out.push(ClipCommand::Audio(a));
                    }
                    self.open = Some(*activation);
                    self.open_start = *start;
                }
                GateDecision::ClipEnd {
                    activation,
                    end,
                    reason,
                    ..
                } => {
                    out.push(ClipCommand::End {
                        activation: *activation,
                        end: *end,
                        reason: *reason,
                    });
                    self.open = None;
                    // The sample that closed the clip lies at or after its end.
                    flushed_current = true;
                }
                GateDecision::LateEventDropped {
                    media_time,
                    correlation_id,
                } => self.late.push(LateEvent {
                    media_time: *media_time,
                    correlation_id: correlation_id.clone(),
                }),
            }
        }
        flushed_current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sample::{VideoCodec, VideoParams};
    use bytes::Bytes;

    fn timing() -> GateTiming {
        // AVA's defaults for a file sink's door sensor: 5 s of pre-roll, 10 s minimum.
        GateTiming {
            evaluation_window: MediaDuration::ZERO,
            signal_offset: MediaDuration::from_secs(-5),
            minimum_activation: MediaDuration::from_secs(10),
            maximum_activation: MediaDuration::from_secs(30),
        }
    }

    /// 30 fps, a key frame each second of `key_bytes`, other frames of 100 bytes.
    fn feed(gate: &mut GateNode, seconds: std::ops::Range<i64>, key_bytes: usize) {
        let params = Arc::new(VideoParams {
            codec: VideoCodec::H264,
            width: 64,
            height: 64,
            rfc6381_codec: "avc1.42C00A".into(),
            sample_entry: Vec::new(),
        });
        for i in seconds.start * 30..seconds.end * 30 {
            let key_frame = i % 30 == 0;
            let t = MediaTime::from_secs(1_800_000_000) + MediaDuration::from_millis(i * 1000 / 30);
            gate.on_sample(VideoSample {
                pts: t,
                dts: t,
                key_frame,
                data: Bytes::from(vec![0u8; if key_frame { key_bytes } else { 100 }]),
                params: params.clone(),
                discontinuity: false,
            });
        }
    }

    fn at(second: i64) -> MediaTime {
        MediaTime::from_secs(1_800_000_000 + second)
    }

    #[test]
    fn a_trigger_soon_after_the_camera_began_reports_the_missing_pre_roll() {
        let mut gate = GateNode::new(timing(), MediaDuration::ZERO);
        feed(&mut gate, 0..2, 1000);
        gate.on_event(at(2), "door");
        let short = gate.take_short_prerolls();
        // The event counts at the newest frame (1.967 s); 5 s before it, no key frame yet.
        let clock = gate.clock().expect("clock");
        assert_eq!(
            short,
            [ShortPreroll {
                asked: clock - MediaDuration::from_secs(5),
                first: Some(at(0)),
                budget: false,
                correlation_id: "door".into(),
            }]
        );
        // With the full pre-roll held, nothing is reported.
        let mut gate = GateNode::new(timing(), MediaDuration::ZERO);
        feed(&mut gate, 0..8, 1000);
        gate.on_event(at(8), "door");
        assert!(gate.take_short_prerolls().is_empty());
    }

    #[test]
    fn a_pre_roll_the_memory_budget_cannot_hold_is_reported_as_such() {
        let mut gate = GateNode::new(timing(), MediaDuration::ZERO);
        // 20 MiB key frames: the 64 MiB budget holds three seconds, not the five asked.
        feed(&mut gate, 0..10, 20 << 20);
        gate.on_event(at(10), "truck");
        let short = gate.take_short_prerolls();
        assert_eq!(short.len(), 1, "{short:?}");
        // 5 s before the newest frame (9.967 s): the key frame at 4 s.
        assert_eq!(short[0].asked, at(4));
        assert!(short[0].budget);
        let first = short[0].first.expect("media held");
        assert!(first > at(4) && first <= at(9), "{first:?}");
    }

    #[test]
    fn an_event_computed_from_an_older_frame_still_gets_its_whole_pre_roll() {
        // A slow inference answer: the frame it analysed is 3 s older than the newest one.
        let mut gate = GateNode::new(timing(), crate::pipeline::plan::EVENT_LATENCY_SLACK);
        feed(&mut gate, 0..12, 1000);
        let mut out = gate.on_event(at(9), "truck");
        assert!(gate.take_short_prerolls().is_empty(), "the buffer held it");
        let first = out.drain(..).find_map(|c| match c {
            ClipCommand::Sample(s) => Some(s.pts),
            _ => None,
        });
        assert_eq!(first, Some(at(4)), "5 s before the analysed frame");
    }
}
