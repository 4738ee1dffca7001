//! Where events go: a JSON-lines log file, the process log, and (when a broker is configured) an
//! MQTT publisher. One set of outputs per process, shared by every pipeline: each pipeline (and
//! the service itself) holds a handle naming it ([`EventBus::for_pipeline`]). Cloneable; every
//! node gets a handle. An event is serialised once, outside the bus's lock; the log file is
//! written by its own thread ([`super::log_writer`]), so emitting never waits for a disk.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::log_writer::LogWriter;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::Sender;

use super::event::{Event, EventClass};
use super::metrics::Metrics;

/// A message for the broker: an event on one of its topics, or a method's response.
#[derive(Clone, Debug)]
pub struct Publication {
    /// MQTT topic.
    pub topic: String,
    /// The payload (an event's AVA envelope as JSON, or a response body).
    pub payload: Vec<u8>,
    /// Kept by the broker for later subscribers (states and discovery for Home Assistant).
    pub retain: bool,
}

/// Something told of every event, with the pipeline whose handle emitted it (called after the
/// event is logged, outside the bus's lock; it must not block).
pub type Observer = Arc<dyn Fn(&str, &Event) + Send + Sync>;

#[derive(Default)]
struct Outputs {
    log: Option<LogWriter>,
    mqtt: Option<Sender<Publication>>,
    /// Publications refused because the MQTT queue was full, not yet reported.
    mqtt_dropped: u64,
    memory: Option<Vec<Event>>,
    /// The last events, with the pipeline whose handle emitted them.
    recent: std::collections::VecDeque<(String, Event)>,
    /// Told of every event.
    observers: Vec<Observer>,
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

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
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
        let log = Some(LogWriter::start(log)?);
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

    /// A handle on the same outputs and metrics for `pipeline`: its events go to the same log and
    /// broker, on its own topics.
    pub fn for_pipeline(&self, pipeline: &str) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            outputs: self.outputs.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The last `limit` events of every pipeline (at most 1000), oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        self.recent_of(None, limit)
    }

    /// The last `limit` events (at most 1000) of `pipeline`, or of every pipeline, oldest first.
    pub fn recent_of(&self, pipeline: Option<&str>, limit: usize) -> Vec<Event> {
        let Ok(o) = self.outputs.lock() else {
            return Vec::new();
        };
        let mut picked: Vec<Event> = o
            .recent
            .iter()
            .rev()
            .filter(|(p, _)| pipeline.is_none_or(|want| want == p))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect();
        picked.reverse();
        picked
    }

    /// The newest event of `pipeline` still kept (the last 1000 of the process) that `matches`.
    pub fn last_of(&self, pipeline: &str, matches: impl Fn(&Event) -> bool) -> Option<Event> {
        let o = self.outputs.lock().ok()?;
        o.recent
            .iter()
            .rev()
            .find(|(p, e)| p == pipeline && matches(e))
            .map(|(_, e)| e.clone())
    }

    /// The pipeline's counters (served on `GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sends `payload` to the broker on `topic`, if one is attached (a method's response).
    pub fn publish_raw(&self, topic: String, payload: Vec<u8>) {
        self.send(Publication {
            topic,
            payload,
            retain: false,
        });
    }

    /// Sends `payload` to the broker on `topic` as a retained message.
    pub fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        self.send(Publication {
            topic,
            payload,
            retain: true,
        });
    }

    fn send(&self, publication: Publication) {
        if let Ok(mut o) = self.outputs.lock()
            && let Some(tx) = &o.mqtt
            && tx.try_send(publication).is_err()
        {
            o.mqtt_dropped += 1;
        }
    }

    /// Tells `observer` of every event from now on (every pipeline's: the outputs are shared).
    pub fn observe(&self, observer: Observer) {
        if let Ok(mut o) = self.outputs.lock() {
            o.observers.push(observer);
        }
    }

    /// How many publications the full MQTT queue refused since the last call.
    pub fn take_mqtt_dropped(&self) -> u64 {
        self.outputs
            .lock()
            .map(|mut o| std::mem::take(&mut o.mqtt_dropped))
            .unwrap_or(0)
    }

    /// Also publishes every event to MQTT through `sender` (bounded: what does not fit is
    /// counted, see [`Self::take_mqtt_dropped`]).
    pub fn attach_mqtt(&self, sender: Sender<Publication>) {
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
        let json = event.to_json().to_string();
        let Ok(mut o) = self.outputs.lock() else {
            return;
        };
        if let Some(log) = &o.log {
            log.write(format!("{json}\n"));
        }
        if let Some(tx) = &o.mqtt
            && !topics.is_empty()
        {
            let payload = json.into_bytes();
            let mut refused = 0;
            for topic in topics {
                let publication = Publication {
                    topic: topic.clone(),
                    payload: payload.clone(),
                    retain: false,
                };
                if tx.try_send(publication).is_err() {
                    refused += 1;
                }
            }
            o.mqtt_dropped += refused;
        }
        if o.recent.len() >= RECENT_EVENTS {
            o.recent.pop_front();
        }
        o.recent.push_back((self.pipeline.clone(), event.clone()));
        let observers = o.observers.clone();
        if let Some(mem) = &mut o.memory {
            mem.push(event.clone());
        }
        drop(o);
        for observer in observers {
            observer(&self.pipeline, &event);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::event::EventClass;
    use crate::media::time::MediaTime;

    #[test]
    fn a_full_mqtt_queue_counts_what_it_refuses() {
        let bus = EventBus::in_memory("p");
        let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
        bus.attach_mqtt(sender);
        for i in 0..5 {
            bus.emit(Event::new(
                EventClass::Operational,
                "TriggerReceived",
                "/s".into(),
                MediaTime::from_secs(i),
                serde_json::json!({}),
            ));
        }
        bus.publish_raw("vigil/methods/res/200/?$rid=1".into(), b"{}".to_vec());
        assert_eq!(
            bus.take_mqtt_dropped(),
            4,
            "two fit, three events and one answer do not"
        );
        assert_eq!(bus.take_mqtt_dropped(), 0, "each drop is reported once");
        assert!(receiver.try_recv().is_ok());
        assert_eq!(bus.remembered().len(), 5, "every event is still kept");
    }
}
