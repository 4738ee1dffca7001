//! The Home Assistant bridge (`--ha-discovery`): publishes each live pipeline's discovery
//! messages (see [`crate::bus::home_assistant`]) and keeps its entities' states on the broker:
//! recording from `RecordingStarted` / `RecordingStopped`, motion and labels from inferences, the
//! camera from each new snapshot, the switch from the pipeline's state. The states are retained,
//! so Home Assistant has them whenever it (re)connects; after each new connection of Vigil's the
//! discovery is published again (a broker without persistence forgets retained messages).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::Service;
use super::registry::PipelineState;
use crate::bus::event::Event;
use crate::bus::event_log::EventBus;
use crate::bus::home_assistant::{Discovery, label_topic, state_topic};

/// How often the pipelines' states are compared with what was published.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The motion detector's node type.
const MOTION_NODE: &str = "#Microsoft.VideoAnalyzer.MotionDetectionProcessor";

/// What was published for one pipeline.
#[derive(Default)]
struct Published {
    active: Option<bool>,
    motion: bool,
    labels: HashSet<String>,
}

/// The bridge.
pub struct Bridge {
    discovery: Discovery,
    bus: EventBus,
    published: Mutex<HashMap<String, Published>>,
}

impl Bridge {
    /// Starts the bridge for `service`: it observes every event and syncs the pipelines' states
    /// every second (and publishes everything again after each new broker connection), until
    /// `shutdown`.
    pub fn start(
        service: Arc<Service>,
        discovery: Discovery,
        connections: Arc<AtomicU64>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let bus = service.context().bus.clone();
        let bridge = Arc::new(Bridge {
            discovery,
            bus: bus.clone(),
            published: Mutex::new(HashMap::new()),
        });
        let observer = bridge.clone();
        bus.observe(Arc::new(move |pipeline: &str, event: &Event| {
            observer.on_event(pipeline, event)
        }));
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let now = connections.load(Ordering::Acquire);
                if now != seen {
                    seen = now;
                    bridge.forget_all();
                }
                if seen > 0 {
                    bridge.sync(&service);
                }
                tokio::select! {
                    _ = tokio::time::sleep(SYNC_EVERY) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<String, Published>> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retain(&self, topic: String, payload: impl Into<Vec<u8>>) {
        self.bus.publish_retained(topic, payload.into());
    }

    /// A new connection: everything is published again at the next sync.
    fn forget_all(&self) {
        self.published().clear();
    }

    /// Publishes discovery for new pipelines, the switch state of changed ones, and removes the
    /// entities of deleted ones.
    fn sync(&self, service: &Service) {
        let pipelines: Vec<(String, bool, bool)> = {
            let registry = service.registry();
            registry
                .pipelines
                .values()
                .map(|p| {
                    let motion = registry.topologies.get(&p.topology).is_some_and(|t| {
                        t.document["properties"]["processors"]
                            .as_array()
                            .is_some_and(|list| list.iter().any(|n| n["@type"] == MOTION_NODE))
                    });
                    (p.name.clone(), p.state == PipelineState::Active, motion)
                })
                .collect()
        };
        let mut published = self.published();
        let names: HashSet<&String> = pipelines.iter().map(|(n, _, _)| n).collect();
        let gone: Vec<String> = published
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            let was = published.remove(&name).unwrap_or_default();
            let mut topics = self.discovery.pipeline_config_topics(&name);
            for label in &was.labels {
                topics.push(self.discovery.label_config(&name, label).0);
            }
            for topic in topics {
                self.retain(topic, Vec::new());
            }
        }
        for (name, active, motion) in pipelines {
            let entry = published.entry(name.clone()).or_default();
            if entry.active.is_none() || entry.motion != motion {
                for (topic, payload) in self.discovery.pipeline_configs(&name, motion) {
                    self.retain(topic, payload.to_string());
                }
                for label in &entry.labels {
                    let (topic, payload) = self.discovery.label_config(&name, label);
                    self.retain(topic, payload.to_string());
                }
                entry.motion = motion;
                if let Some((_, jpeg)) = crate::media::snapshot::latest_of(&name) {
                    self.retain(state_topic(&name, "snapshot"), jpeg.as_ref().clone());
                }
            }
            if entry.active != Some(active) {
                self.retain(
                    state_topic(&name, "active"),
                    if active { "ON" } else { "OFF" },
                );
                if !active {
                    self.retain(state_topic(&name, "recording"), "OFF");
                }
                entry.active = Some(active);
            }
        }
    }

    /// Maps an event of `pipeline` to its entities' states.
    fn on_event(&self, pipeline: &str, event: &Event) {
        match event.kind.as_str() {
            "RecordingStarted" => self.retain(state_topic(pipeline, "recording"), "ON"),
            "RecordingStopped" => self.retain(state_topic(pipeline, "recording"), "OFF"),
            "SnapshotAvailable" => {
                if let Some((_, jpeg)) = crate::media::snapshot::latest_of(pipeline) {
                    self.retain(state_topic(pipeline, "snapshot"), jpeg.as_ref().clone());
                }
            }
            "Inference" => {
                let Some(list) = event.body["inferences"].as_array() else {
                    return;
                };
                if list.iter().any(|i| i["type"] == "motion") {
                    self.bus
                        .publish_raw(state_topic(pipeline, "motion"), b"ON".to_vec());
                }
                let labels: HashSet<&str> = list
                    .iter()
                    .filter_map(|i| i["entity"]["tag"]["value"].as_str())
                    .collect();
                for label in labels {
                    let new = self
                        .published()
                        .get_mut(pipeline)
                        .is_some_and(|p| p.labels.insert(label.to_string()));
                    if new {
                        let (topic, payload) = self.discovery.label_config(pipeline, label);
                        self.retain(topic, payload.to_string());
                    }
                    self.bus
                        .publish_raw(label_topic(pipeline, label), b"ON".to_vec());
                }
            }
            _ => {}
        }
    }
}
