//! `#Vigil.WasmProcessor` with an event-filter component: each event from the node's inputs
//! (inferences, or a trigger's body) goes through the component; what it returns is passed on
//! as `Analytics.Inference` events of this node, correlated with the event they came from.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::module_watch::{ModuleWatch, report_fault};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;
use crate::wasm::bindings::Event as WitEvent;
use crate::wasm::convert::{inference_from_json, inference_json};
use crate::wasm::filter::{FilterHost, Limits, Outcome};
use crate::wasm::module::{ModuleSource, World};

/// One event-filter node.
pub struct EventFilterNode {
    subject: String,
    events: EventBus,
    host: FilterHost,
    watch: ModuleWatch,
}

impl EventFilterNode {
    /// Loads `source` (an event-filter component) and initialises it with `settings`.
    pub fn new(
        name: &str,
        source: &ModuleSource,
        settings: crate::wasm::convert::FilterConfig,
        subject: String,
        events: EventBus,
    ) -> Result<Self> {
        let module = source.load().with_context(|| format!("node '{name}'"))?;
        anyhow::ensure!(
            module.world == World::Event,
            "node '{name}': {} is not an event filter",
            module.origin
        );
        let mut host = FilterHost::new(name, module, settings, Limits::default())
            .with_context(|| format!("node '{name}'"))?;
        host.time_calls(events.metrics().guest_calls(events.pipeline(), name));
        let watch = ModuleWatch::new(source.clone(), events.pipeline(), name);
        Ok(Self {
            subject,
            events,
            host,
            watch,
        })
    }

    /// Swaps in a new version of the module file, between two events; a module that fails to
    /// load is reported and the old one keeps running.
    pub fn check_for_new_module(&mut self, at: MediaTime) {
        self.watch
            .check(&mut self.host, &self.subject, &self.events, at);
    }

    /// Filters one event; returns the events to pass on.
    pub fn on_event(&mut self, event: &Event) -> Vec<Event> {
        let inferences = event
            .body
            .get("inferences")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(inference_from_json).collect())
            .unwrap_or_default();
        let input = WitEvent {
            timestamp_ns: event.time.as_nanos(),
            inferences,
        };
        match self.host.process_event(input) {
            Outcome::Done(out) => out
                .into_iter()
                .map(|e| {
                    let at = MediaTime::from_nanos(e.timestamp_ns);
                    let list: Vec<Value> = e.inferences.iter().map(inference_json).collect();
                    Event::new(
                        EventClass::Analytics,
                        "Inference",
                        self.subject.clone(),
                        at,
                        json!({"timestamp": at.as_90khz_ticks(), "inferences": list}),
                    )
                    .correlated(Some(event.message_id.clone()))
                    .from_module(&self.host.module().hash)
                })
                .collect(),
            Outcome::Skipped => Vec::new(),
            Outcome::Fault(why) => {
                let (host, subject) = (&self.host, &self.subject);
                report_fault(host, subject, &self.events, event.time, "eventTime", why);
                Vec::new()
            }
        }
    }
}
