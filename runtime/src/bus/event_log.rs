//! Where events go: a JSON-lines log file, the process log, and (when a broker is configured) an
//! MQTT publisher. Cloneable; every node gets a handle.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::event::{Event, EventClass};
use super::metrics::Metrics;

/// An event with the MQTT topic it belongs on.
#[derive(Clone, Debug)]
pub struct Publication {
    /// MQTT topic.
    pub topic: String,
    /// The event.
    pub event: Event,
}

#[derive(Default)]
struct Outputs {
    log: Option<Box<dyn Write + Send>>,
    mqtt: Option<UnboundedSender<Publication>>,
    memory: Option<Vec<Event>>,
    recent: std::collections::VecDeque<Event>,
}

/// Events kept for `GET /api/events`.
const RECENT_EVENTS: usize = 1000;

/// A handle to the event outputs of one pipeline.
#[derive(Clone)]
pub struct EventBus {
    pipeline: String,
    outputs: Arc<Mutex<Outputs>>,
    metrics: Metrics,
}

impl EventBus {
    /// A bus for `pipeline` that writes JSON lines to `log` (appending), or to standard output
    /// when no file is given.
    pub fn new(pipeline: &str, log: Option<&Path>) -> std::io::Result<Self> {
        let log: Box<dyn Write + Send> = match log {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
            None => Box::new(std::io::stdout()),
        };
        let log = Some(log);
        Ok(Self {
            pipeline: pipeline.to_string(),
            outputs: Arc::new(Mutex::new(Outputs {
                log,
                ..Outputs::default()
            })),
            metrics: Metrics::default(),
        })
    }

    /// A bus that only remembers events (tests, replay summaries).
    pub fn in_memory(pipeline: &str) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            outputs: Arc::new(Mutex::new(Outputs {
                memory: Some(Vec::new()),
                ..Outputs::default()
            })),
            metrics: Metrics::default(),
        }
    }

    /// The last `limit` events (at most 1000), oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let Ok(o) = self.outputs.lock() else {
            return Vec::new();
        };
        let skip = o.recent.len().saturating_sub(limit);
        o.recent.iter().skip(skip).cloned().collect()
    }

    /// The pipeline's counters (served on `GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Also publishes every event to MQTT through `sender`.
    pub fn attach_mqtt(&self, sender: UnboundedSender<Publication>) {
        if let Ok(mut o) = self.outputs.lock() {
            o.mqtt = Some(sender);
        }
    }

    /// The pipeline name.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// Emits an operational or diagnostics event on `vigil/<pipeline>/events`.
    pub fn emit(&self, event: Event) {
        let topic = format!("vigil/{}/events", self.pipeline);
        self.publish(event, &[topic]);
    }

    /// Writes `event` to the log once and publishes it on each MQTT topic (none: log only).
    pub fn publish(&self, event: Event, topics: &[String]) {
        match event.class {
            EventClass::Diagnostics if event.kind != "MediaSessionEstablished" => {
                tracing::warn!(subject = %event.subject, body = %event.body, "{}", event.kind)
            }
            EventClass::Analytics => {
                tracing::debug!(subject = %event.subject, body = %event.body, "{}", event.kind)
            }
            _ => tracing::info!(subject = %event.subject, body = %event.body, "{}", event.kind),
        }
        let Ok(mut o) = self.outputs.lock() else {
            return;
        };
        if let Some(file) = &mut o.log {
            let mut line = event.to_json().to_string();
            line.push('\n');
            if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                tracing::error!("cannot write the event log: {e}");
            }
        }
        if let Some(tx) = &o.mqtt {
            for topic in topics {
                let _ = tx.send(Publication {
                    topic: topic.clone(),
                    event: event.clone(),
                });
            }
        }
        if o.recent.len() >= RECENT_EVENTS {
            o.recent.pop_front();
        }
        o.recent.push_back(event.clone());
        if let Some(mem) = &mut o.memory {
            mem.push(event);
        }
    }

    /// Events remembered by an in-memory bus.
    pub fn remembered(&self) -> Vec<Event> {
        self.outputs
            .lock()
            .ok()
            .and_then(|o| o.memory.clone())
            .unwrap_or_default()
    }
}
