//! Pixels for every node that needs them: one decoder per source, each frame decoded once and
//! scaled to the size each node asks for (motion detection, frame-filter WasmProcessors). Runs
//! on one thread in a live pipeline (FFmpeg's frames stay there) and inline in replay.

use serde_json::json;

use super::motion_detection::MotionNode;
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::decode::Decoder;
use crate::media::sample::VideoSample;
use crate::media::time::MediaTime;

/// The decoder and the frame nodes it feeds, by processor index.
pub struct FrameHub {
    decoder: Option<Decoder>,
    nodes: Vec<(usize, MotionNode)>,
    subject: String,
    events: EventBus,
}

impl FrameHub {
    /// A hub feeding `nodes`; diagnostics carry `subject` (the camera).
    pub fn new(nodes: Vec<(usize, MotionNode)>, subject: String, events: EventBus) -> Self {
        Self {
            decoder: None,
            nodes,
            subject,
            events,
        }
    }

    /// True when no node needs pixels (then nothing is decoded).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Decodes `sample` once and runs every node that wants a frame; returns their events with
    /// the processor index that produced each.
    pub fn on_sample(&mut self, sample: &VideoSample) -> Vec<(usize, Event)> {
        let mut out = Vec::new();
        if self.nodes.is_empty() {
            return out;
        }
        if self
            .decoder
            .as_ref()
            .is_none_or(|d| d.params() != sample.params.as_ref())
        {
            if !sample.key_frame {
                return out;
            }
            match Decoder::new(&sample.params) {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    self.diagnostic(sample.pts, format!("{e:#}"));
                    return out;
                }
            }
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return out;
        };
        let frames = match decoder.decode(sample) {
            Ok(f) => f,
            Err(e) => {
                self.decoder = None;
                let detail = format!("decode failed: {e:#}; resuming at the next key frame");
                self.diagnostic(sample.pts, detail);
                return out;
            }
        };
        for (pts, frame) in &frames {
            for (p, node) in self.nodes.iter_mut() {
                let Some((width, rgb)) = node.wants(*pts) else {
                    continue;
                };
                let Some(decoder) = self.decoder.as_mut() else {
                    return out;
                };
                match decoder.scale(frame, *pts, width, rgb) {
                    Ok(scaled) => {
                        if let Some(e) = node.on_frame(scaled) {
                            out.push((*p, e));
                        }
                    }
                    Err(e) => {
                        let detail = format!("{e:#}");
                        self.events.emit(Event::new(
                            EventClass::Diagnostics,
                            "MediaFormatError",
                            self.subject.clone(),
                            *pts,
                            json!({"detail": detail}),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Lets each node swap in a new version of its module file.
    pub fn check_for_new_modules(&mut self, at: MediaTime) {
        for (_, node) in self.nodes.iter_mut() {
            node.check_for_new_module(at);
        }
    }

    fn diagnostic(&self, at: MediaTime, detail: String) {
        self.events.emit(Event::new(
            EventClass::Diagnostics,
            "MediaFormatError",
            self.subject.clone(),
            at,
            json!({"detail": detail}),
        ));
    }
}
