//! Events in AVA's envelope (ava-spec §8.1): `body`, `properties` (topic, subject, eventType,
//! eventTime, dataVersion) and `systemProperties` (messageId, correlationId).

use serde_json::{Value, json};

use crate::media::time::MediaTime;

/// The three event classes of AVA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventClass {
    /// Inference results (motion, extensions, filters).
    Analytics,
    /// Problems: camera unreachable, bad messages, storage errors.
    Diagnostics,
    /// Lifecycle: recordings started/stopped/available, module swaps.
    Operational,
}

impl EventClass {
    fn name(self) -> &'static str {
        match self {
            EventClass::Analytics => "Analytics",
            EventClass::Diagnostics => "Diagnostics",
            EventClass::Operational => "Operational",
        }
    }
}

/// One event, as published on MQTT and written to the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Class.
    pub class: EventClass,
    /// Type within the class, e.g. `RecordingStarted`.
    pub kind: String,
    /// Emitting entity: `/livePipelines/<pipeline>/<sources|processors|sinks>/<node>`.
    pub subject: String,
    /// When it happened, on the media timeline (UTC).
    pub time: MediaTime,
    /// Unique id.
    pub message_id: String,
    /// Id of the event that caused it (e.g. the trigger that opened the gate).
    pub correlation_id: Option<String>,
    /// Event-specific body.
    pub body: Value,
    /// The content hash of the WebAssembly module that produced it, if one did (not published:
    /// a clip's explanation names it).
    pub module_hash: Option<String>,
    /// The region of interest of the node that made it, in ten-thousandths of the frame
    /// (`l`, `t`, `w`, `h`), when it has one (not published: drawn on snapshots).
    pub region_of_interest: Option<[u16; 4]>,
}

impl Event {
    /// A new event with a fresh message id.
    pub fn new(
        class: EventClass,
        kind: &str,
        subject: String,
        time: MediaTime,
        body: Value,
    ) -> Self {
        Self {
            class,
            kind: kind.to_string(),
            subject,
            time,
            message_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: None,
            body,
            module_hash: None,
            region_of_interest: None,
        }
    }

    /// Names the module that produced the event.
    pub fn from_module(mut self, hash: &str) -> Self {
        self.module_hash = Some(hash.to_string());
        self
    }

    /// The event with the region of interest of the node that made it.
    pub fn in_region(mut self, region: Option<[u16; 4]>) -> Self {
        self.region_of_interest = region;
        self
    }

    /// Sets the correlation id.
    pub fn correlated(mut self, id: Option<String>) -> Self {
        self.correlation_id = id;
        self
    }

    /// `Microsoft.VideoAnalyzer.<Class>.<Type>`.
    pub fn event_type(&self) -> String {
        format!(
            "Microsoft.VideoAnalyzer.{}.{}",
            self.class.name(),
            self.kind
        )
    }

    /// The AVA envelope as JSON.
    pub fn to_json(&self) -> Value {
        let mut system = json!({
            "messageId": self.message_id,
            "contentType": "application/json",
            "contentEncoding": "utf-8",
        });
        if let Some(c) = &self.correlation_id {
            system["correlationId"] = json!(c);
        }
        json!({
            "body": self.body,
            "properties": {
                "topic": "/vigil",
                "subject": self.subject,
                "eventType": self.event_type(),
                "eventTime": self.time.to_string(),
                "dataVersion": "1.0",
            },
            "systemProperties": system,
        })
    }
}

/// The pipeline a node's subject (`/livePipelines/<pipeline>/...`) names; empty for another.
pub fn pipeline_of(subject: &str) -> &str {
    subject
        .strip_prefix("/livePipelines/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

/// Subject of a node: `/livePipelines/<pipeline>/<array>/<node>`.
pub fn node_subject(pipeline: &str, array: &str, node: &str) -> String {
    format!("/livePipelines/{pipeline}/{array}/{node}")
}
