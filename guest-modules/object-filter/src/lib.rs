//! Vigil's object filter as an `event-filter` component: custom decision logic in-process
//! ("record only when a truck is detected"). It reads inference events (from an HttpExtension or
//! any upstream node), keeps the detections its [`rule`] accepts, and drops events with none;
//! with `output: trigger` it passes one named event instead, ready to open a signal gate. The
//! rule is plain Rust with native unit tests; the component is written with the `vigil-guest`
//! SDK.

pub mod rule;

use vigil_guest::{Event, EventFilter, Inference, Payload, Settings};

use crate::rule::{Area, Output, Rule};

/// One node's rule.
pub struct ObjectFilter {
    rule: Rule,
}

impl EventFilter for ObjectFilter {
    fn new(settings: &Settings) -> Result<Self, String> {
        let rule = Rule::parse(&settings.text_pairs())?;
        vigil_guest::log::info(&format!("object-filter: {rule:?}"));
        Ok(Self { rule })
    }

    fn process_event(&mut self, event: Event) -> Vec<Event> {
        let rule = &self.rule;
        let kept: Vec<Inference> = event
            .inferences
            .into_iter()
            .filter(|i| match &i.payload {
                Payload::Entity(e) => rule.matches(
                    &e.tag.value,
                    e.tag.confidence,
                    &Area {
                        l: e.box_.l,
                        t: e.box_.t,
                        w: e.box_.w,
                        h: e.box_.h,
                    },
                ),
                _ => false,
            })
            .collect();
        if kept.is_empty() {
            return Vec::new();
        }
        let inferences = match rule.output {
            Output::Detections => kept,
            Output::Trigger => {
                let best = kept
                    .iter()
                    .filter_map(|i| i.as_entity().map(|e| &e.tag))
                    .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
                let mut properties = vec![("count", kept.len().to_string())];
                if let Some(tag) = best {
                    properties.push(("label", tag.value.clone()));
                    properties.push(("confidence", format!("{:.3}", tag.confidence)));
                }
                vec![Inference::event(&rule.event_name, &properties)]
            }
        };
        vec![Event::new(event.timestamp_ns, inferences)]
    }
}

#[cfg(target_arch = "wasm32")]
vigil_guest::export_event_filter!(ObjectFilter);
