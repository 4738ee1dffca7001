//! The pre-roll buffer: the most recent compressed video of one source, so a gate with a negative
//! `activationSignalOffset` can start a clip before the event that opened it. It keeps at least
//! `lookback` of media plus the GOP that reaches back past it, and never more than a byte budget.

use std::collections::VecDeque;

use super::sample::{AudioSample, VideoSample};
use super::time::{MediaDuration, MediaTime};

/// Recent samples of one stream, oldest first, always starting at a key frame once one was seen.
#[derive(Debug)]
pub struct PrerollBuffer {
    samples: VecDeque<VideoSample>,
    audio: VecDeque<AudioSample>,
    lookback: MediaDuration,
    max_bytes: usize,
    bytes: usize,
    dropped_for_budget: u64,
}

impl PrerollBuffer {
    /// A buffer that keeps `lookback` of media (plus one GOP), within `max_bytes`.
    pub fn new(lookback: MediaDuration, max_bytes: usize) -> Self {
        Self {
            samples: VecDeque::new(),
            audio: VecDeque::new(),
            lookback,
            max_bytes,
            bytes: 0,
            dropped_for_budget: 0,
        }
    }

    /// Adds the newest sample and drops what is no longer needed.
    pub fn push(&mut self, sample: VideoSample) {
        if sample.discontinuity {
            // Media before a gap cannot continue the decode chain after it: a clip's pre-roll
            // starts at the first key frame after the gap.
            self.clear();
        }
        self.bytes += sample.len();
        let newest = sample.pts;
        self.samples.push_back(sample);
        self.trim(newest);
    }

    fn trim(&mut self, newest: MediaTime) {
        let horizon = newest - self.lookback;
        // Drop whole GOPs while the next GOP still starts at or before the horizon.
        loop {
            let next_key = self
                .samples
                .iter()
                .skip(1)
                .position(|s| s.key_frame)
                .map(|i| i + 1);
            let Some(k) = next_key else { break };
            let over_budget = self.bytes > self.max_bytes;
            if self.samples[k].pts <= horizon || over_budget {
                if over_budget && self.samples[k].pts > horizon {
                    self.dropped_for_budget += 1;
                }
                for s in self.samples.drain(..k) {
                    self.bytes -= s.len();
                }
            } else {
                break;
            }
        }
        // Leading samples before any key frame cannot start a clip.
        while self.samples.front().is_some_and(|s| !s.key_frame) {
            if let Some(s) = self.samples.pop_front() {
                self.bytes -= s.len();
            }
        }
    }

    /// Adds an audio frame; audio older than the oldest video held is dropped.
    pub fn push_audio(&mut self, sample: AudioSample) {
        self.bytes += sample.data.len();
        self.audio.push_back(sample);
        let oldest = self.oldest();
        while let Some(a) = self.audio.front() {
            if oldest.is_some_and(|o| a.pts >= o) {
                break;
            }
            self.bytes -= a.data.len();
            self.audio.pop_front();
        }
    }

    /// The buffered audio frames in `[start, end)`.
    pub fn audio_range(&self, start: MediaTime, end: Option<MediaTime>) -> Vec<AudioSample> {
        self.audio
            .iter()
            .filter(|a| a.pts >= start && end.is_none_or(|e| a.pts < e))
            .cloned()
            .collect()
    }

    /// The buffered samples whose presentation time is in `[start, end)`, starting at the first
    /// key frame at or after `start`.
    pub fn range(&self, start: MediaTime, end: Option<MediaTime>) -> Vec<VideoSample> {
        self.samples
            .iter()
            .skip_while(|s| s.pts < start || !s.key_frame)
            .take_while(|s| end.is_none_or(|e| s.pts < e))
            .cloned()
            .collect()
    }

    /// What decoding the frame at `target` needs: the samples from the last key frame at or
    /// before it up to it (empty when no key frame is held before it).
    pub fn gop_until(&self, target: MediaTime) -> Vec<VideoSample> {
        let Some(key) = self
            .samples
            .iter()
            .rposition(|s| s.key_frame && s.pts <= target)
        else {
            return Vec::new();
        };
        self.samples
            .iter()
            .skip(key)
            .take_while(|s| s.pts <= target)
            .cloned()
            .collect()
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.audio.clear();
        self.bytes = 0;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Media time of the oldest sample held.
    pub fn oldest(&self) -> Option<MediaTime> {
        self.samples.front().map(|s| s.pts)
    }

    /// How many times the byte budget forced a GOP out before its time.
    pub fn dropped_for_budget(&self) -> u64 {
        self.dropped_for_budget
    }
}
