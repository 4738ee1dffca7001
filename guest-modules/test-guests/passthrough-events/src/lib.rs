//! Test guest: an event filter that passes every event on unchanged (hot-swap tests).

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "event-filter", path: "../../../wit" });

struct Passthrough;

impl Guest for Passthrough {
    fn init(_config: Config) -> Result<(), String> {
        Ok(())
    }

    fn process_event(event: Event) -> Vec<Event> {
        vec![event]
    }
}

export!(Passthrough);
