//! What every node running a filter component shares: hot swap (the module file is watched and a
//! new version swapped into the node's [`FilterHost`] between two calls, reported as
//! `ModuleSwapped`, or `ModuleLoadError` while the old one keeps running) and the `ModuleFault`
//! report of a failed call.

use std::time::SystemTime;

use serde_json::json;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;
use crate::wasm::filter::FilterHost;
use crate::wasm::module::ModuleSource;

/// A node's module source and the version of its file in use.
pub struct ModuleWatch {
    source: ModuleSource,
    modified: Option<SystemTime>,
}

impl ModuleWatch {
    /// Watches `source` from its current version on.
    pub fn new(source: ModuleSource) -> Self {
        Self {
            modified: source.modified(),
            source,
        }
    }

    /// Swaps a new version of the file into `host`, if there is one, and reports the outcome
    /// as `subject` at media time `at`.
    pub fn check(
        &mut self,
        host: &mut FilterHost,
        subject: &str,
        events: &EventBus,
        at: MediaTime,
    ) {
        let modified = self.source.modified();
        if modified.is_none() || modified == self.modified {
            return;
        }
        self.modified = modified;
        let event = match self.source.load().and_then(|m| host.swap(m)) {
            Ok(()) => {
                let m = host.module();
                Event::new(
                    EventClass::Operational,
                    "ModuleSwapped",
                    subject.to_string(),
                    at,
                    json!({"module": m.origin, "hash": m.hash}),
                )
            }
            Err(e) => Event::new(
                EventClass::Diagnostics,
                "ModuleLoadError",
                subject.to_string(),
                at,
                json!({"detail": format!("{e:#}; the previous module keeps running")}),
            ),
        };
        events.emit(event);
    }
}

/// Reports a failed call of `host`'s module on the frame or event at `at`; `time_key` names
/// what `at` was (`frameTime`, `eventTime`).
pub fn report_fault(
    host: &FilterHost,
    subject: &str,
    events: &EventBus,
    at: MediaTime,
    time_key: &str,
    why: String,
) {
    let m = host.module();
    let mut body = json!({"module": m.origin, "hash": m.hash, "detail": why});
    body[time_key] = json!(at.to_string());
    events.emit(Event::new(
        EventClass::Diagnostics,
        "ModuleFault",
        subject.to_string(),
        at,
        body,
    ));
}
