//! Where a processor's (or a trigger's) event goes: published on the IotHubMessageSinks that read
//! its node, through the event filters that read it (recursively: the graph is acyclic), and to
//! the gates it opens. Shared by the live runner and replay.

use anyhow::Result;

use super::plan::{PipelinePlan, ProcessorKind};
use crate::bus::event::Event;
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;
use crate::nodes::clip_explanation::ClipReason;
use crate::nodes::event_filter::EventFilterNode;

/// A gate to open: its index, the event's media time and correlation id, and what the event was
/// (for the clip's explanation).
pub type Opening = (usize, MediaTime, String, ClipReason);

/// The event filters of a pipeline, by processor index.
pub struct EventRouter {
    filters: Vec<Option<EventFilterNode>>,
}

impl EventRouter {
    /// Instantiates the pipeline's event filters.
    pub fn new(plan: &PipelinePlan, bus: &EventBus) -> Result<Self> {
        let filters = plan
            .processors
            .iter()
            .map(|p| match &p.kind {
                ProcessorKind::EventFilter { module, settings } => EventFilterNode::new(
                    &p.name,
                    module,
                    settings.clone(),
                    p.subject.clone(),
                    bus.clone(),
                )
                .map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(Self { filters })
    }

    /// Lets each event filter swap in a new version of its module file.
    pub fn check_for_new_modules(&mut self, at: MediaTime) {
        for f in self.filters.iter_mut().flatten() {
            f.check_for_new_module(at);
        }
    }

    /// Routes `event`, emitted by `node`; `publish` says whether to log/publish it (a trigger is
    /// logged already). Returns the gates to open.
    pub fn route(
        &mut self,
        plan: &PipelinePlan,
        node: &str,
        event: Event,
        publish: bool,
        bus: &EventBus,
    ) -> Vec<Opening> {
        let mut openings: Vec<Opening> = plan
            .gates_fed_by(node)
            .map(|g| {
                (
                    g,
                    event.time,
                    event
                        .correlation_id
                        .clone()
                        .unwrap_or_else(|| event.message_id.clone()),
                    ClipReason::of(&event),
                )
            })
            .collect();
        let filters: Vec<usize> = plan.filters_fed_by(node).collect();
        let mut passed = Vec::new();
        for f in filters {
            if let Some(filter) = self.filters[f].as_mut() {
                for out in filter.on_event(&event) {
                    passed.push((f, out));
                }
            }
        }
        if publish {
            let topics: Vec<String> = plan.topics_fed_by(node).collect();
            bus.publish(event, &topics);
        }
        for (f, out) in passed {
            let name = plan.processors[f].name.clone();
            openings.extend(self.route(plan, &name, out, true, bus));
        }
        openings
    }
}
