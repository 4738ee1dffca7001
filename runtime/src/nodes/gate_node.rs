//! The SignalGateProcessor node: the gate state machine plus the pre-roll buffer, turning media
//! and events into clip commands for the sinks behind it.

use crate::media::preroll::PrerollBuffer;
use std::sync::Arc;

use crate::nodes::clip_explanation::{
    ClipExplanation, ClipOpening, ClipReason, MAX_LISTED_EVENTS, Role, explain,
};

use crate::media::sample::{AudioParams, AudioSample, VideoSample};
use crate::media::snapshot::SnapshotSource;
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
        /// What the clip's snapshot is made from: the frame it was decided on (at its earliest
        /// event) and the opening event's boxes; none when no key frame before it is held.
        snapshot: Option<Arc<SnapshotSource>>,
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
        /// Why the clip exists (what opened and extended it), for the sink to keep with it.
        explanation: Arc<ClipExplanation>,
    },
}

impl ClipCommand {
    /// The end of activation `activation`, explained as a clip no event is known for (a sink's
    /// own tests; a clip closed from outside the gate).
    pub fn end(activation: u64, end: MediaTime, reason: EndReason) -> Self {
        let opening = ClipOpening {
            asked: end,
            first: None,
            first_event: end,
        };
        Self::End {
            activation,
            end,
            reason,
            explanation: Arc::new(explain(
                "",
                "",
                activation,
                false,
                GateTiming::default(),
                &opening,
                end,
                reason,
                0,
                Vec::new(),
            )),
        }
    }
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
    /// The pipeline and the gate's node name, for explanations.
    pipeline: String,
    name: String,
    /// The events of the activation under way (its number, the first ones).
    reasons: Option<(u64, Vec<ClipReason>)>,
    /// How the activation under way started.
    opening: Option<(u64, ClipOpening)>,
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
            pipeline: String::new(),
            name: String::new(),
            reasons: None,
            opening: None,
        }
    }

    /// Names the gate's pipeline and node (its clips' explanations say them).
    pub fn named(mut self, pipeline: &str, name: &str) -> Self {
        self.pipeline = pipeline.to_string();
        self.name = name.to_string();
        self
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
            out.extend(self.on_event(pts, "continuous", None));
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
    /// `reason`: what the event was, for the clip's explanation (none for the continuous gate's
    /// own openings).
    pub fn on_event(
        &mut self,
        media_time: MediaTime,
        correlation_id: &str,
        reason: Option<ClipReason>,
    ) -> Vec<ClipCommand> {
        let millis = MediaTime::from_millis(media_time.as_nanos().div_euclid(1_000_000));
        let decisions = self.gate.on_event(millis, correlation_id);
        let dropped = decisions
            .iter()
            .any(|d| matches!(d, GateDecision::LateEventDropped { .. }));
        if let (Some(mut reason), Some(id), false) = (reason, self.gate.open_activation(), dropped)
        {
            let list = match &mut self.reasons {
                Some((open, list)) if *open == id => list,
                other => {
                    reason.role = Role::Opened;
                    &mut other.insert((id, Vec::new())).1
                }
            };
            if list.len() < MAX_LISTED_EVENTS {
                list.push(reason);
            }
        }
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
                    let snapshot = self.snapshot_source(*activation, *first_event);
                    out.push(ClipCommand::Start {
                        activation: *activation,
                        start: *start,
                        first_event: *first_event,
                        correlation_id: correlation_id.clone(),
                        audio: self.audio.clone(),
                        snapshot,
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
                    self.opening = Some((
                        *activation,
                        ClipOpening {
                            asked: *start,
                            first,
                            first_event: *first_event,
                        },
                    ));
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
                    events,
                } => {
                    let explanation = self.explanation(*activation, *end, *reason, *events);
                    out.push(ClipCommand::End {
                        activation: *activation,
                        end: *end,
                        reason: *reason,
                        explanation: Arc::new(explanation),
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

    /// The frame activation `activation` was decided on (its earliest event's), the opening
    /// event's boxes and the region of interest of the node that sent it.
    fn snapshot_source(&self, activation: u64, at: MediaTime) -> Option<Arc<SnapshotSource>> {
        let samples = self.buffer.gop_until(at);
        let frame = samples.last()?.pts;
        let opening = match &self.reasons {
            Some((id, list)) if *id == activation => list.first(),
            _ => None,
        };
        Some(Arc::new(SnapshotSource {
            samples,
            frame,
            boxes: opening.map(|r| r.boxes.clone()).unwrap_or_default(),
            region: opening.and_then(|r| r.region),
        }))
    }

    /// The explanation of activation `activation`, ending at `end`.
    fn explanation(
        &mut self,
        activation: u64,
        end: MediaTime,
        reason: EndReason,
        events: u32,
    ) -> ClipExplanation {
        let listed = match self.reasons.take() {
            Some((id, list)) if id == activation => list,
            other => {
                self.reasons = other;
                Vec::new()
            }
        };
        let opening = match self.opening.take() {
            Some((id, o)) if id == activation => o,
            _ => ClipOpening {
                asked: end,
                first: None,
                first_event: end,
            },
        };
        explain(
            &self.pipeline,
            &self.name,
            activation,
            self.continuous,
            self.gate.timing(),
            &opening,
            end,
            reason,
            if self.continuous { 0 } else { events },
            listed,
        )
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
        gate.on_event(at(2), "door", None);
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
        gate.on_event(at(8), "door", None);
        assert!(gate.take_short_prerolls().is_empty());
    }

    #[test]
    fn a_pre_roll_the_memory_budget_cannot_hold_is_reported_as_such() {
        let mut gate = GateNode::new(timing(), MediaDuration::ZERO);
        // 20 MiB key frames: the 64 MiB budget holds three seconds, not the five asked.
        feed(&mut gate, 0..10, 20 << 20);
        gate.on_event(at(10), "truck", None);
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
        let mut out = gate.on_event(at(9), "truck", None);
        assert!(gate.take_short_prerolls().is_empty(), "the buffer held it");
        let first = out.drain(..).find_map(|c| match c {
            ClipCommand::Sample(s) => Some(s.pts),
            _ => None,
        });
        assert_eq!(first, Some(at(4)), "5 s before the analysed frame");
    }

    fn reason(node: &str, second: i64) -> ClipReason {
        ClipReason {
            role: Role::Extended,
            event_type: "Microsoft.VideoAnalyzer.Analytics.Trigger".into(),
            node: node.into(),
            media_time: at(second).to_string(),
            correlation_id: None,
            module_hash: None,
            labels: Vec::new(),
            boxes: Vec::new(),
            region: None,
            message_id: String::new(),
            snapshot: None,
        }
    }

    #[test]
    fn a_clip_end_explains_the_events_of_its_activation_and_no_other() {
        let mut gate = GateNode::new(timing(), MediaDuration::ZERO).named("p", "g");
        feed(&mut gate, 0..8, 1000);
        gate.on_event(at(8), "a", Some(reason("first", 8)));
        feed(&mut gate, 8..12, 1000);
        gate.on_event(at(12), "b", Some(reason("second", 12)));
        // Older than the activation's first event, after its evaluation window: dropped, and
        // not part of the explanation.
        gate.on_event(at(5), "late", Some(reason("late", 5)));
        assert_eq!(gate.take_late_events().len(), 1);
        let mut ends = Vec::new();
        for i in 12 * 30..30 * 30 {
            let t = MediaTime::from_secs(1_800_000_000) + MediaDuration::from_millis(i * 1000 / 30);
            for c in gate.on_sample(VideoSample {
                pts: t,
                dts: t,
                key_frame: i % 30 == 0,
                data: Bytes::from(vec![0u8; 100]),
                params: Arc::new(VideoParams {
                    codec: VideoCodec::H264,
                    width: 64,
                    height: 64,
                    rfc6381_codec: "avc1.42C00A".into(),
                    sample_entry: Vec::new(),
                }),
                discontinuity: false,
            }) {
                if let ClipCommand::End { explanation, .. } = c {
                    ends.push(explanation);
                }
            }
        }
        assert_eq!(ends.len(), 1);
        let e = &ends[0];
        assert_eq!(
            (e.pipeline.as_str(), e.gate.as_str(), e.activation),
            ("p", "g", 1)
        );
        assert_eq!(e.events_total, 2);
        let listed: Vec<(Role, &str)> =
            e.events.iter().map(|r| (r.role, r.node.as_str())).collect();
        assert_eq!(
            listed,
            [(Role::Opened, "first"), (Role::Extended, "second")]
        );
        assert_eq!(e.end_reason, "minimumActivationTime");
        assert_eq!(e.timing.activation_signal_offset, "-PT5S");
        // The event counted at the newest frame before it (7.967 s); 5 s before, the key frame
        // at 2 s; all of it was held.
        assert_eq!(e.preroll.asked_start, at(2).to_string());
        assert_eq!(e.preroll.start, Some(at(2).to_string()));
    }
}
