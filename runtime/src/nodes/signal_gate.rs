//! The signal gate as a pure, deterministic state machine on the media timeline (ava-spec §3.2,
//! with the choices of design.md).
//!
//! The gate sees two inputs in arrival order: media samples (their UTC media time, and whether each
//! is a key frame) and events (their media time, and a correlation id). Its clock is the media time
//! of the newest sample seen; an event "arrives" at that clock. It answers with decisions:
//!
//! * [`GateDecision::ClipStart`] once the start of an activation is final, i.e. when the clock has
//!   passed `first arrival + activationEvaluationWindow` (events arriving in that window with an
//!   earlier media time may still move the start earlier). The start is the key frame at or
//!   before `earliest event + activationSignalOffset`.
//! * [`GateDecision::ClipEnd`] when the clock reaches the activation's deadline: `last arrival +
//!   minimumActivationTime`, capped at `first arrival + maximumActivationTime`. A clip covers the
//!   samples with `start <= t < end`.
//! * [`GateDecision::LateEventDropped`] for an event whose media time is earlier than the
//!   activation's first event and that arrived after the evaluation window.
//!
//! Deadlines are exclusive: at the exact instant of a deadline the gate is already closed, so an
//! event arriving at `first arrival + maximumActivationTime` starts a new activation.

use std::collections::VecDeque;

use crate::media::time::{MediaDuration, MediaTime};

/// The four timing properties of a SignalGateProcessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateTiming {
    /// `activationEvaluationWindow`: how long late events may still move the start earlier.
    pub evaluation_window: MediaDuration,
    /// `activationSignalOffset`: clip start relative to the earliest event (negative = pre-roll).
    pub signal_offset: MediaDuration,
    /// `minimumActivationTime`: the gate stays open this long after each event.
    pub minimum_activation: MediaDuration,
    /// `maximumActivationTime`: the gate never stays open longer than this after the first event.
    pub maximum_activation: MediaDuration,
}

impl Default for GateTiming {
    /// design.md's defaults: window 1 s, offset 0, minimum 10 s, maximum 30 s.
    fn default() -> Self {
        Self {
            evaluation_window: MediaDuration::from_secs(1),
            signal_offset: MediaDuration::ZERO,
            minimum_activation: MediaDuration::from_secs(10),
            maximum_activation: MediaDuration::from_secs(30),
        }
    }
}

impl GateTiming {
    /// How much media before the clock a clip may need: the pre-roll plus the evaluation window.
    pub fn lookback(&self) -> MediaDuration {
        let preroll = if self.signal_offset.is_negative() {
            self.signal_offset.abs()
        } else {
            MediaDuration::ZERO
        };
        preroll + self.evaluation_window
    }
}

/// What ended an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// No event for `minimumActivationTime`.
    Minimum,
    /// `maximumActivationTime` reached.
    Maximum,
    /// The pipeline stopped.
    Shutdown,
}

/// A decision of the gate; the media router and the sinks act on these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    /// The start of activation `activation` is final: forward samples from `start` on.
    ClipStart {
        /// Sequence number of the activation, from 1.
        activation: u64,
        /// Media time of the clip's first sample (a key frame when one was known).
        start: MediaTime,
        /// Media time of the earliest accepted event.
        first_event: MediaTime,
        /// Correlation id of the event that opened the gate.
        correlation_id: String,
    },
    /// Activation `activation` is over: samples at or after `end` are not part of it.
    ClipEnd {
        /// Sequence number of the activation.
        activation: u64,
        /// Exclusive end of the clip.
        end: MediaTime,
        /// Why it ended.
        reason: EndReason,
        /// Number of events the activation accepted.
        events: u32,
    },
    /// An event too old to be taken into account (arrived after the evaluation window).
    LateEventDropped {
        /// The event's media time.
        media_time: MediaTime,
        /// Its correlation id.
        correlation_id: String,
    },
}

#[derive(Clone, Debug)]
struct Activation {
    id: u64,
    first_arrival: MediaTime,
    earliest_event: MediaTime,
    open_until: MediaTime,
    hard_stop: MediaTime,
    correlation_id: String,
    started: bool,
    events: u32,
}

/// The gate's state machine. Feed it samples and events in arrival order.
#[derive(Clone, Debug)]
pub struct SignalGate {
    timing: GateTiming,
    clock: Option<MediaTime>,
    key_frames: VecDeque<MediaTime>,
    key_frame_horizon: MediaDuration,
    open: Option<Activation>,
    next_id: u64,
}

impl SignalGate {
    /// A closed gate with the given timing. Key frames are remembered for the pre-roll plus the
    /// evaluation window plus `latency_slack` (events computed from older frames).
    pub fn new(timing: GateTiming, latency_slack: MediaDuration) -> Self {
        Self {
            timing,
            clock: None,
            key_frames: VecDeque::new(),
            key_frame_horizon: timing.lookback() + latency_slack,
            open: None,
            next_id: 1,
        }
    }

    /// The gate's timing.
    pub fn timing(&self) -> GateTiming {
        self.timing
    }

    /// The number of the activation under way (open, or waiting out its evaluation window).
    pub fn open_activation(&self) -> Option<u64> {
        self.open.as_ref().map(|a| a.id)
    }

    /// The media time of the newest sample seen.
    pub fn clock(&self) -> Option<MediaTime> {
        self.clock
    }

    /// True while an activation is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// A media sample arrived.
    pub fn on_sample(&mut self, time: MediaTime, key_frame: bool) -> Vec<GateDecision> {
        if key_frame {
            self.key_frames.push_back(time);
        }
        let mut out = Vec::new();
        self.advance_to(time, &mut out);
        self.forget_old_key_frames();
        out
    }

    /// Moves the clock forward without a sample (the wall-clock timer when media stops flowing).
    pub fn on_clock(&mut self, time: MediaTime) -> Vec<GateDecision> {
        let mut out = Vec::new();
        self.advance_to(time, &mut out);
        out
    }

    /// An event arrived, computed at (or stamped with) `media_time`.
    pub fn on_event(&mut self, media_time: MediaTime, correlation_id: &str) -> Vec<GateDecision> {
        let mut out = Vec::new();
        let arrival = self.clock.unwrap_or(media_time);
        let timing = self.timing;
        // An event cannot be later than the media that has arrived, nor count earlier than the
        // media a clip can still reach (an `eventTime` from outside may say 1677 or 2262).
        let media_time = media_time.min(arrival).max(arrival - timing.lookback());
        match &mut self.open {
            None => {
                self.open = Some(Activation {
                    id: self.next_id,
                    first_arrival: arrival,
                    earliest_event: media_time,
                    open_until: arrival + timing.minimum_activation.min(timing.maximum_activation),
                    hard_stop: arrival + timing.maximum_activation,
                    correlation_id: correlation_id.to_string(),
                    started: false,
                    events: 1,
                });
                self.next_id += 1;
                if timing.evaluation_window <= MediaDuration::ZERO {
                    self.emit_start(&mut out);
                }
            }
            Some(a) => {
                if media_time < a.earliest_event {
                    let in_window = arrival <= a.first_arrival + timing.evaluation_window;
                    if !in_window || a.started {
                        out.push(GateDecision::LateEventDropped {
                            media_time,
                            correlation_id: correlation_id.to_string(),
                        });
                        return out;
                    }
                    a.earliest_event = media_time;
                }
                a.events += 1;
                a.open_until = (arrival + timing.minimum_activation)
                    .max(a.open_until)
                    .min(a.hard_stop);
            }
        }
        out
    }

    /// The pipeline stops: ends the open activation at the current clock.
    pub fn finish(&mut self) -> Vec<GateDecision> {
        let mut out = Vec::new();
        if self.open.is_some() {
            self.emit_start(&mut out);
            if let (Some(a), Some(clock)) = (self.open.take(), self.clock) {
                out.push(GateDecision::ClipEnd {
                    activation: a.id,
                    end: clock.min(a.open_until),
                    reason: EndReason::Shutdown,
                    events: a.events,
                });
            }
        }
        out
    }

    fn advance_to(&mut self, time: MediaTime, out: &mut Vec<GateDecision>) {
        let clock = self.clock.map_or(time, |c| c.max(time));
        self.clock = Some(clock);
        let Some(a) = &self.open else { return };
        let window_over = clock >= a.first_arrival + self.timing.evaluation_window;
        let deadline = a.open_until;
        if window_over || clock >= deadline {
            self.emit_start(out);
        }
        if clock >= deadline
            && let Some(a) = self.open.take()
        {
            let reason = if a.open_until >= a.hard_stop {
                EndReason::Maximum
            } else {
                EndReason::Minimum
            };
            out.push(GateDecision::ClipEnd {
                activation: a.id,
                end: a.open_until,
                reason,
                events: a.events,
            });
        }
    }

    fn emit_start(&mut self, out: &mut Vec<GateDecision>) {
        let Some(a) = &mut self.open else { return };
        if a.started {
            return;
        }
        a.started = true;
        let wanted = a.earliest_event + self.timing.signal_offset;
        let start = self
            .key_frames
            .iter()
            .rev()
            .find(|&&k| k <= wanted)
            .copied()
            .unwrap_or(wanted);
        out.push(GateDecision::ClipStart {
            activation: a.id,
            start,
            first_event: a.earliest_event,
            correlation_id: a.correlation_id.clone(),
        });
    }

    fn forget_old_key_frames(&mut self) {
        let Some(clock) = self.clock else { return };
        let horizon = clock - self.key_frame_horizon;
        // Keep the newest key frame at or before the horizon: a clip starting at the horizon needs it.
        while self.key_frames.len() >= 2 && self.key_frames[1] <= horizon {
            self.key_frames.pop_front();
        }
    }
}

#[cfg(test)]
#[path = "signal_gate_tests.rs"]
mod tests;
