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
    /// Its `regionOfInterest` setting, drawn on the snapshots of its events.
    region: Option<[u16; 4]>,
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
        let region = region_of_interest(&settings);
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
            region,
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
                    .in_region(self.region)
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

/// A filter's `regionOfInterest` setting (`"l,t,w,h"`, each 0–1, as Vigil's object filter takes
/// it), in ten-thousandths of the frame; none when absent, the whole frame or not four numbers
/// (the module itself refuses those).
pub fn region_of_interest(settings: &crate::wasm::convert::FilterConfig) -> Option<[u16; 4]> {
    let value = settings
        .iter()
        .find(|(k, _)| k == "regionOfInterest")?
        .1
        .as_str()?;
    let parts: Vec<f64> = value
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [l, t, w, h] = parts.as_slice() else {
        return None;
    };
    let rel = |x: f64| (x.clamp(0.0, 1.0) * 10_000.0).round() as u16;
    let region = [rel(*l), rel(*t), rel(*w), rel(*h)];
    (region != [0, 0, 10_000, 10_000]).then_some(region)
}

#[cfg(test)]
mod region_tests {
    use super::region_of_interest;
    use serde_json::json;

    #[test]
    fn a_region_of_interest_is_read_from_the_settings() {
        let with = |v: serde_json::Value| vec![("regionOfInterest".to_string(), v)];
        assert_eq!(
            region_of_interest(&with(json!("0.5, 0.25,0.5,0.75"))),
            Some([5000, 2500, 5000, 7500])
        );
        assert_eq!(
            region_of_interest(&with(json!("0,0,1,1"))),
            None,
            "the whole frame"
        );
        assert_eq!(region_of_interest(&with(json!("0.5,0.5"))), None);
        assert_eq!(region_of_interest(&with(json!("a,b,c,d"))), None);
        assert_eq!(region_of_interest(&Vec::new()), None);
    }
}
