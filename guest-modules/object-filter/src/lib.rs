//! Vigil's object filter as an `event-filter` component: custom decision logic in-process
//! ("record only when a truck is detected"). It reads inference events (from an HttpExtension or
//! any upstream node), keeps the detections its [`rule`] accepts, and drops events with none;
//! with `output: trigger` it passes one named event instead, ready to open a signal gate. The
//! rule is plain Rust with native unit tests; the WIT glue is compiled for wasm only.

pub mod rule;

#[cfg(target_arch = "wasm32")]
#[allow(clippy::too_many_arguments)] // in the generated bindings
mod component {
    wit_bindgen::generate!({ world: "event-filter", path: "../../wit" });

    use std::sync::Mutex;

    use crate::rule::{Area, Output, Rule};
    use vigil::filter::host::{Level, log};
    use vigil::filter::types::{Inference, NamedEvent};

    /// The component is single-threaded; the mutex only makes the static safe to reach.
    static RULE: Mutex<Option<Rule>> = Mutex::new(None);

    struct ObjectFilter;

    impl Guest for ObjectFilter {
        fn init(config: Config) -> Result<(), String> {
            let rule = Rule::parse(&config)?;
            log(Level::Info, &format!("object-filter: {rule:?}"));
            *RULE.lock().unwrap_or_else(|e| e.into_inner()) = Some(rule);
            Ok(())
        }

        fn process_event(event: Event) -> Vec<Event> {
            let guard = RULE.lock().unwrap_or_else(|e| e.into_inner());
            let rule = guard.clone().unwrap_or_default();
            let kept: Vec<Inference> = event
                .inferences
                .into_iter()
                .filter(|i| match i {
                    Inference::Entity(e) => rule.matches(
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
                        .filter_map(|i| match i {
                            Inference::Entity(e) => Some(&e.tag),
                            _ => None,
                        })
                        .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
                    let mut properties = vec![("count".to_string(), kept.len().to_string())];
                    if let Some(tag) = best {
                        properties.push(("label".into(), tag.value.clone()));
                        properties.push(("confidence".into(), format!("{:.3}", tag.confidence)));
                    }
                    vec![Inference::Event(NamedEvent {
                        name: rule.event_name.clone(),
                        properties,
                    })]
                }
            };
            vec![Event {
                timestamp_ns: event.timestamp_ns,
                inferences,
            }]
        }
    }

    export!(ObjectFilter);
}
