//! `vigil replay`: a recorded MP4 file through the same engine as a live run ([`super::engine`]),
//! as fast as the CPU allows, with external events from a JSON-lines file, each read as the live
//! pipeline would read the same message. Sinks are fed inline and HTTP extensions answer inline,
//! so the same input and events always give the same clips.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::engine::{Engine, SinkFeed, frame_hub};
use super::plan::PipelinePlan;
use super::routing::EventRouter;
use super::sinks::MediaSink;
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::InputMessage;
use crate::media::mp4_reader::Mp4Video;
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::gate_node::ClipCommand;

/// One line of the events file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayEvent {
    /// Seconds from the file's first sample.
    pub at: f64,
    /// `hubInputName` of the IotHubMessageSource it arrives at.
    pub input: String,
    /// Message body.
    #[serde(default)]
    pub body: serde_json::Value,
}

/// Reads an events file: one JSON object per line, blank lines and `#` comments skipped.
pub fn read_events(path: &Path) -> Result<Vec<ReplayEvent>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let e: ReplayEvent = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not an event {{\"at\": seconds, \"input\": name, \"body\": {{…}}}}",
                path.display(),
                i + 1
            )
        })?;
        if !e.at.is_finite() || e.at < 0.0 {
            bail!(
                "{}:{}: 'at' must be a number of seconds ≥ 0",
                path.display(),
                i + 1
            );
        }
        events.push(e);
    }
    events.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(events)
}

/// What a replay produced.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Samples read from the input.
    pub samples: usize,
    /// Events delivered.
    pub events: usize,
}

/// Runs `video` through the plan's gates and sinks; the first sample is at UTC `start`.
pub fn replay(
    plan: &PipelinePlan,
    video: &Mp4Video,
    start: MediaTime,
    events: &[ReplayEvent],
    bus: &EventBus,
) -> Result<ReplayReport> {
    for e in events {
        if !plan.inputs.iter().any(|i| i.input_name == e.input) {
            let known: Vec<&str> = plan.inputs.iter().map(|i| i.input_name.as_str()).collect();
            bail!(
                "event input '{}' is not a hubInputName of this topology (known: {})",
                e.input,
                known.join(", ")
            );
        }
    }
    let archive = plan.archive.clone().unwrap_or_default();
    if plan.archive.is_some() {
        crate::archive::open_archive(&archive, bus, start)?;
    }
    let mut sinks = InlineSinks(
        plan.gates
            .iter()
            .map(|g| {
                g.sinks
                    .iter()
                    .map(|s| MediaSink::new(s, &archive, bus))
                    .collect()
            })
            .collect(),
    );
    let mut hub = frame_hub(plan, bus, None)?;
    let mut engine = Engine::new(plan.clone(), bus.clone(), EventRouter::new(plan, bus)?);
    let mut report = ReplayReport::default();
    let mut pending = events.iter().peekable();
    for sample in video.samples(start) {
        let sample = sample?;
        let pts = sample.pts;
        report.samples += 1;
        engine.on_video(&sample, &mut sinks);
        // A processor's event arrives at the media time of the frame it was computed from.
        for (p, event) in hub.on_sample(&sample) {
            engine.on_analytics(p, event, &mut sinks);
        }
        while let Some(e) = pending.next_if(|e| start + secs(e.at) <= pts) {
            engine.on_input(&e.message(), start + secs(e.at), &mut sinks);
            report.events += 1;
        }
    }
    for e in pending {
        engine.on_input(&e.message(), start + secs(e.at), &mut sinks);
        report.events += 1;
    }
    engine.finish(&mut sinks);
    for sink in sinks.0.iter_mut().flatten() {
        sink.shutdown();
    }
    Ok(report)
}

impl ReplayEvent {
    /// The line as the message a live pipeline would receive on that input (no body: `{}`).
    fn message(&self) -> InputMessage {
        let body = match &self.body {
            serde_json::Value::Null => serde_json::json!({}),
            other => other.clone(),
        };
        InputMessage {
            input: self.input.clone(),
            payload: body.to_string().into_bytes(),
        }
    }
}

/// Replay's sinks, per gate, fed inline.
struct InlineSinks(Vec<Vec<MediaSink>>);

impl SinkFeed for InlineSinks {
    fn feed(&mut self, gate: usize, commands: Vec<ClipCommand>) {
        let Some(sinks) = self.0.get_mut(gate) else {
            return;
        };
        for c in commands {
            for s in sinks.iter_mut() {
                s.handle(c.clone());
            }
        }
    }
}

fn secs(s: f64) -> MediaDuration {
    MediaDuration::from_nanos((s * 1e9).round() as i64)
}
