//! The pipeline engine that `vigil run`, `vigil serve` and `vigil replay` share: the gates, the
//! routing of events (IotHubMessageSinks, event filters, gates) and the one way a trigger message
//! is read. What differs between live and replay stays outside:
//!
//! * **the clock**: the caller says when a trigger arrived (live: the gates' media clock, else the
//!   wall clock; replay: the events file's time) and when media has stalled (live only);
//! * **how sinks are fed**: through a [`SinkFeed`]; live queues commands for the sinks' threads
//!   ([`super::live_core`]), replay hands them to the sinks inline ([`super::replay`]).

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use super::plan::{PipelinePlan, ProcessorKind, ProcessorPlan};
use super::routing::EventRouter;
use crate::bus::event::{Event, EventClass, node_subject};
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::InputMessage;
use crate::bus::trigger::{parse_trigger, received};
use crate::media::sample::{AudioSample, VideoSample};
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::frame_hub::{FrameConsumer, FrameHub, HubNode};
use crate::nodes::gate_node::{ClipCommand, GateNode, LateEvent, ShortPreroll};
use crate::nodes::grpc_extension::GrpcExtensionNode;
use crate::nodes::http_extension::HttpExtensionNode;
use crate::nodes::motion_detection::MotionNode;

/// Where a gate's clip commands go.
pub trait SinkFeed {
    /// Hands the commands of gate `gate` (its index in the plan) to its sinks.
    fn feed(&mut self, gate: usize, commands: Vec<ClipCommand>);
}

/// The gates and event routing of one pipeline.
pub struct Engine {
    plan: PipelinePlan,
    bus: EventBus,
    gates: Vec<GateNode>,
    router: EventRouter,
    /// The pipeline's live view, fed every video sample (live pipelines).
    live_view: Option<Arc<crate::media::live_view::LiveView>>,
}

impl Engine {
    /// An engine for `plan`, its event filters in `router`, reporting on `bus`.
    pub fn new(plan: PipelinePlan, bus: EventBus, router: EventRouter) -> Self {
        let gates = plan.gates.iter().map(|g| g.node(&plan.pipeline)).collect();
        Self {
            plan,
            bus,
            gates,
            router,
            live_view: None,
        }
    }

    /// The gates' media clock (the newest sample seen), if any media has come.
    pub fn clock(&self) -> Option<MediaTime> {
        self.gates.iter().find_map(|g| g.clock())
    }

    /// Feeds the pipeline's live view (live pipelines; a replay has none).
    pub fn with_live_view(mut self, view: Arc<crate::media::live_view::LiveView>) -> Self {
        self.live_view = Some(view);
        self
    }

    /// A video sample from the camera.
    pub fn on_video(&mut self, sample: &VideoSample, feed: &mut dyn SinkFeed) {
        if let Some(view) = &self.live_view {
            view.on_sample(sample);
        }
        for g in 0..self.gates.len() {
            let commands = self.gates[g].on_sample(sample.clone());
            self.hand_over(g, commands, feed);
        }
    }

    /// An audio frame from the camera.
    pub fn on_audio(&mut self, sample: &AudioSample, feed: &mut dyn SinkFeed) {
        for g in 0..self.gates.len() {
            let commands = self.gates[g].on_audio(sample.clone());
            self.hand_over(g, commands, feed);
        }
    }

    /// A message on one of the pipeline's inputs, arrived at media time `arrival`: reported as
    /// `TriggerReceived` (or `InvalidMessage`) and routed to the gates and filters that read its
    /// IotHubMessageSource. The one place a trigger is read, live and in replay.
    pub fn on_input(
        &mut self,
        message: &InputMessage,
        arrival: MediaTime,
        feed: &mut dyn SinkFeed,
    ) {
        let Some(input) = self
            .plan
            .inputs
            .iter()
            .find(|i| i.input_name == message.input)
        else {
            return;
        };
        let node = input.node.clone();
        let subject = node_subject(&self.plan.pipeline, "sources", &node);
        match parse_trigger(&message.payload) {
            Err(e) => self.bus.emit(Event::new(
                EventClass::Diagnostics,
                "InvalidMessage",
                subject,
                arrival,
                json!({"input": message.input, "detail": e, "payload": String::from_utf8_lossy(&message.payload[..message.payload.len().min(512)])}),
            )),
            Ok(trigger) => {
                let event = received(
                    &self.bus,
                    subject,
                    &message.input,
                    trigger.event_time.unwrap_or(arrival),
                    &trigger.body,
                    trigger.correlation_id,
                );
                self.route(&node, event, false, feed);
            }
        }
    }

    /// An event of the processor at index `processor` (frame analysis, an extension's answer).
    pub fn on_analytics(&mut self, processor: usize, event: Event, feed: &mut dyn SinkFeed) {
        if let Some(p) = self.plan.processors.get(processor) {
            let node = p.name.clone();
            self.route(&node, event, true, feed);
        }
    }

    /// Media stopped flowing and the wall clock says media time `now` has passed: open gates
    /// whose deadline passed close.
    pub fn on_clock(&mut self, now: MediaTime, feed: &mut dyn SinkFeed) {
        for g in 0..self.gates.len() {
            let commands = self.gates[g].on_clock(now);
            self.hand_over(g, commands, feed);
        }
    }

    /// The pipeline stops: every open clip ends.
    pub fn finish(&mut self, feed: &mut dyn SinkFeed) {
        for g in 0..self.gates.len() {
            let commands = self.gates[g].finish();
            self.hand_over(g, commands, feed);
        }
    }

    /// Lets each event filter swap in a new version of its module file.
    pub fn check_for_new_modules(&mut self, at: MediaTime) {
        self.router.check_for_new_modules(at);
    }

    /// Routes `event` of `node`; `publish`: log and publish it (a trigger is logged already).
    fn route(&mut self, node: &str, event: Event, publish: bool, feed: &mut dyn SinkFeed) {
        let openings = self
            .router
            .route(&self.plan, node, event, publish, &self.bus);
        for (g, time, correlation, reason) in openings {
            let commands = self.gates[g].on_event(time, &correlation, Some(reason));
            self.hand_over(g, commands, feed);
        }
    }

    fn hand_over(&mut self, g: usize, commands: Vec<ClipCommand>, feed: &mut dyn SinkFeed) {
        for short in self.gates[g].take_short_prerolls() {
            report_short_preroll(
                &self.bus,
                &self.plan.pipeline,
                &self.plan.gates[g].name,
                short,
            );
        }
        for late in self.gates[g].take_late_events() {
            report_late_event(
                &self.bus,
                &self.plan.pipeline,
                &self.plan.gates[g].name,
                late,
            );
        }
        if !commands.is_empty() {
            feed.feed(g, commands);
        }
    }
}

/// Reports a clip of the gate `gate` that starts later than its pre-roll asked.
fn report_short_preroll(bus: &EventBus, pipeline: &str, gate: &str, short: ShortPreroll) {
    let (missing, detail) = match short.first {
        Some(first) => (
            (first - short.asked).as_secs_f64(),
            if short.budget {
                format!(
                    "the clip starts {:.3} s later than its pre-roll asked: the pre-roll buffer's {} MiB memory budget could not hold the whole pre-roll",
                    (first - short.asked).as_secs_f64(),
                    crate::nodes::gate_node::PREROLL_MAX_BYTES >> 20
                )
            } else {
                format!(
                    "the clip starts {:.3} s later than its pre-roll asked: the camera's media began (or began again after a gap) only then",
                    (first - short.asked).as_secs_f64()
                )
            },
        ),
        None => (
            0.0,
            "no media is held for the pre-roll (the camera has sent none yet): the clip starts with the next key frame it sends".to_string(),
        ),
    };
    bus.emit(
        Event::new(
            EventClass::Diagnostics,
            "PrerollIncomplete",
            node_subject(pipeline, "processors", gate),
            short.asked,
            json!({
                "askedStart": short.asked.to_string(),
                "start": short.first.map(|f| f.to_string()),
                "missingSeconds": missing,
                "cause": if short.first.is_none() { "noMedia" } else if short.budget { "memoryBudget" } else { "mediaBegan" },
                "detail": detail,
            }),
        )
        .correlated(Some(short.correlation_id)),
    );
}

/// Reports an event the gate `gate` dropped as a late arrival.
fn report_late_event(bus: &EventBus, pipeline: &str, gate: &str, late: LateEvent) {
    bus.emit(
        Event::new(
            EventClass::Diagnostics,
            "LateEventDropped",
            node_subject(pipeline, "processors", gate),
            late.media_time,
            json!({"detail": "the event's media time is earlier than the activation's first event and it arrived after activationEvaluationWindow"}),
        )
        .correlated(Some(late.correlation_id)),
    );
}

/// Where a live pipeline's HTTP and gRPC extensions deliver their events (with the processor index);
/// replay runs requests inline instead.
pub type ExtensionEvents = std::sync::Arc<dyn Fn(usize, Event) + Send + Sync>;

/// The decoder and frame nodes of a pipeline (none decode when no node needs pixels). With
/// `deliver`, extensions send from their own threads; without, inline.
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
            // An extension node sending from its own threads (live) or inline (replay).
            macro_rules! extension {
                ($node:ty, $config:expr) => {
                    FrameConsumer::Extension(match &deliver {
                        Some(deliver) => {
                            let deliver = deliver.clone();
                            Box::new(<$node>::threaded(
                                $config,
                                p.subject.clone(),
                                bus.clone(),
                                Box::new(move |e| deliver(i, e)),
                            )?)
                        }
                        None => Box::new(<$node>::inline($config, p.subject.clone(), bus.clone())?),
                    })
                };
            }
            let consumer = match &p.kind {
                ProcessorKind::HttpExtension(c) => extension!(HttpExtensionNode, c),
                ProcessorKind::GrpcExtension(c) => extension!(GrpcExtensionNode, c),
                _ => FrameConsumer::Filter(Box::new(frame_node(p, bus)?)),
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
pub fn frame_node(p: &ProcessorPlan, bus: &EventBus) -> Result<MotionNode> {
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
