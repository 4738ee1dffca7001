//! `vigil replay`: a recorded MP4 file through the same gate and sinks as a live run, as fast as
//! the CPU allows, with external events from a JSON-lines file. Deterministic: the same input and
//! events always give the same clips.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;

use super::plan::{GatePlan, PipelinePlan, ProcessorKind};
use super::routing::EventRouter;
use super::sinks::MediaSink;
use crate::bus::event::{Event, EventClass, node_subject};
use crate::bus::event_log::EventBus;
use crate::media::mp4_reader::Mp4Video;
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::frame_hub::{FrameConsumer, FrameHub, HubNode};
use crate::nodes::gate_node::{ClipCommand, GateNode};
use crate::nodes::http_extension::HttpExtensionNode;
use crate::nodes::motion_detection::MotionNode;

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
    let mut gates: Vec<GateNode> = plan.gates.iter().map(GatePlan::node).collect();
    let archive = plan.archive.clone().unwrap_or_default();
    if plan.archive.is_some() {
        crate::archive::open_archive(&archive, bus, start)?;
    }
    let mut sinks: Vec<Vec<MediaSink>> = plan
        .gates
        .iter()
        .map(|g| {
            g.sinks
                .iter()
                .map(|s| MediaSink::new(s, &archive, bus))
                .collect()
        })
        .collect();
    let mut hub = frame_hub(plan, bus, None)?;
    let mut router = EventRouter::new(plan, bus)?;
    let mut report = ReplayReport::default();
    let mut pending = events.iter().peekable();
    let mut state = Replayed {
        gates: &mut gates,
        sinks: &mut sinks,
        router: &mut router,
    };
    for sample in video.samples(start) {
        let sample = sample?;
        let pts = sample.pts;
        report.samples += 1;
        for g in 0..state.gates.len() {
            let commands = state.gates[g].on_sample(sample.clone());
            state.send(plan, g, commands, bus);
        }
        // A processor's event arrives at the media time of the frame it was computed from.
        for (p, event) in hub.on_sample(&sample) {
            state.route(plan, &plan.processors[p].name, event, true, bus);
        }
        while let Some(e) = pending.next_if(|e| start + secs(e.at) <= pts) {
            state.trigger(plan, e, start + secs(e.at), bus);
            report.events += 1;
        }
    }
    for e in pending {
        state.trigger(plan, e, start + secs(e.at), bus);
        report.events += 1;
    }
    for g in 0..state.gates.len() {
        let commands = state.gates[g].finish();
        state.send(plan, g, commands, bus);
    }
    for sink in state.sinks.iter_mut().flatten() {
        sink.shutdown();
    }
    Ok(report)
}

/// The replay's gates, sinks and event filters.
struct Replayed<'a> {
    gates: &'a mut Vec<GateNode>,
    sinks: &'a mut Vec<Vec<MediaSink>>,
    router: &'a mut EventRouter,
}

impl Replayed<'_> {
    /// Routes an event of `node` and opens the gates it reaches.
    fn route(
        &mut self,
        plan: &PipelinePlan,
        node: &str,
        event: Event,
        publish: bool,
        bus: &EventBus,
    ) {
        for (g, time, correlation) in self.router.route(plan, node, event, publish, bus) {
            let commands = self.gates[g].on_event(time, &correlation);
            self.send(plan, g, commands, bus);
        }
    }

    /// Hands gate `g`'s commands to its sinks.
    fn send(&mut self, plan: &PipelinePlan, g: usize, commands: Vec<ClipCommand>, bus: &EventBus) {
        dispatch(
            &mut self.sinks[g],
            commands,
            bus,
            &plan.gates[g].name,
            &plan.pipeline,
        );
    }

    /// A line of the events file reaches its IotHubMessageSource at media time `at`.
    fn trigger(&mut self, plan: &PipelinePlan, e: &ReplayEvent, at: MediaTime, bus: &EventBus) {
        let Some(input) = plan.inputs.iter().find(|i| i.input_name == e.input) else {
            return;
        };
        let correlation = e
            .body
            .get("messageId")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let subject = node_subject(&plan.pipeline, "sources", &input.node);
        let trigger =
            crate::bus::trigger::received(bus, subject, &e.input, at, &e.body, correlation);
        self.route(plan, &input.node, trigger, false, bus);
    }
}

/// Where a live pipeline's HTTP extensions deliver their events (with the processor index);
/// replay runs requests inline instead.
pub type ExtensionEvents = tokio::sync::mpsc::UnboundedSender<(usize, Event)>;

/// The decoder and frame nodes of a pipeline (none decode when no node needs pixels). With
/// `deliver`, HTTP extensions send from their own threads; without, inline.
pub fn frame_hub(
    plan: &PipelinePlan,
    bus: &EventBus,
    deliver: Option<ExtensionEvents>,
) -> Result<FrameHub> {
    let nodes = plan
        .processors
        .iter()
        .enumerate()
        .filter(|(_, p)| p.needs_frames())
        .map(|(i, p)| {
            let input = p.inputs.iter().find_map(|name| {
                plan.processors
                    .iter()
                    .position(|q| &q.name == name && q.needs_frames())
            });
            let consumer = match &p.kind {
                ProcessorKind::HttpExtension(c) => FrameConsumer::Extension(match &deliver {
                    Some(tx) => {
                        let tx = tx.clone();
                        HttpExtensionNode::threaded(
                            c,
                            p.subject.clone(),
                            bus.clone(),
                            Box::new(move |e| {
                                let _ = tx.send((i, e));
                            }),
                        )?
                    }
                    None => HttpExtensionNode::inline(c, p.subject.clone(), bus.clone())?,
                }),
                _ => FrameConsumer::Filter(frame_node(p, bus)?),
            };
            Ok(HubNode {
                index: i,
                input,
                consumer,
            })
        })
        .collect::<Result<_>>()?;
    let subject = plan
        .camera
        .as_ref()
        .map(|(name, _)| node_subject(&plan.pipeline, "sources", name))
        .unwrap_or_default();
    Ok(FrameHub::new(nodes, subject, bus.clone()))
}

/// The node that runs a frame-filter processor (motion detection or a frame-filter WasmProcessor).
pub fn frame_node(p: &super::plan::ProcessorPlan, bus: &EventBus) -> Result<MotionNode> {
    match &p.kind {
        ProcessorKind::Motion(c) => MotionNode::new(&p.name, c, p.subject.clone(), bus.clone()),
        ProcessorKind::FrameFilter { module, settings } => MotionNode::with_module(
            &p.name,
            module.clone(),
            settings.clone(),
            MediaDuration::ZERO,
            p.subject.clone(),
            bus.clone(),
        ),
        _ => anyhow::bail!("node '{}' is not a frame filter", p.name),
    }
}

fn secs(s: f64) -> MediaDuration {
    MediaDuration::from_nanos((s * 1e9).round() as i64)
}

/// Hands a gate's commands to its sinks, and reports dropped late events.
pub fn dispatch(
    sinks: &mut [MediaSink],
    commands: Vec<ClipCommand>,
    bus: &EventBus,
    gate: &str,
    pipeline: &str,
) {
    for c in commands {
        if let ClipCommand::LateEventDropped {
            media_time,
            correlation_id,
        } = &c
        {
            bus.emit(
                Event::new(
                    EventClass::Diagnostics,
                    "LateEventDropped",
                    node_subject(pipeline, "processors", gate),
                    *media_time,
                    json!({"detail": "the event's media time is earlier than the activation's first event and it arrived after activationEvaluationWindow"}),
                )
                .correlated(Some(correlation_id.clone())),
            );
            continue;
        }
        for s in sinks.iter_mut() {
            s.handle(c.clone());
        }
    }
}
