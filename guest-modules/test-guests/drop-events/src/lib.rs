//! Test guest: an event filter that drops every event (hot-swap tests).

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "event-filter", path: "../../../wit" });

struct Drop;

impl Guest for Drop {
    fn init(_config: Config) -> Result<(), String> {
        Ok(())
    }

    fn process_event(_event: Event) -> Vec<Event> {
        Vec::new()
    }
}

export!(Drop);
