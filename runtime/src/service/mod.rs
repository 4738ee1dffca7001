//! The service: many live pipelines in one process under AVA's control API, on one set of
//! process-wide services (event log, MQTT connection, HTTP listener, archives and their keepers,
//! object store, WebAssembly engine). `vigil serve` runs it with a data directory (or a folder of
//! documents to reconcile); `vigil run` runs it holding one pipeline.
//!
//! * [`methods`]: AVA's method names, payloads and answers;
//! * [`control`]: what each method does to the [`registry`], with AVA's states and rules;
//! * [`documents`]: the data directory, written atomically;
//! * [`config_folder`], [`declarative`]: declarative mode, a folder of documents followed;
//! * [`supervisor`]: keeps each Active pipeline running, restarting it after a fault;
//! * [`archives`], [`cameras`], [`inputs`]: the shared archive keepers, camera sessions and
//!   trigger routes;
//! * [`process`]: the process around it (runtime, listener, broker, signals).

pub mod archives;
pub mod cameras;
pub mod clustered;
pub mod config_folder;
pub mod control;
pub mod declarative;
pub mod documents;
pub mod held_triggers;
pub mod home_assistant;
pub mod inputs;
pub mod memory;
pub mod methods;
pub mod module_swap;
pub mod process;
pub mod registry;
pub mod review;
pub mod supervisor;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::bus::event::{Event, EventClass};
use crate::nodes::rtsp_source::wall_now;
use crate::pipeline::live::LiveContext;
use documents::{Documents, Kind};
use registry::{PipelineEntry, Registry, SystemData, TopologyEntry};
use supervisor::Supervised;

/// How many resources a service holds at most (AVA: 1000 live pipelines, 50 topologies).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Live pipelines.
    pub pipelines: usize,
    /// Topologies.
    pub topologies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pipelines: 1000,
            topologies: 50,
        }
    }
}

/// The service's state; share it as `Arc<Service>`.
pub struct Service {
    context: LiveContext,
    documents: Option<Documents>,
    /// In a cluster: the desired state lives there, and leases say which node runs what.
    cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    limits: Limits,
    registry: Mutex<Registry>,
    running: Mutex<HashMap<String, Supervised>>,
}

impl Service {
    /// A service over `context`, keeping its documents in `documents` (none: in memory only).
    pub fn new(context: LiveContext, documents: Option<Documents>, limits: Limits) -> Self {
        Self {
            context,
            documents,
            cluster: None,
            limits,
            registry: Mutex::new(Registry::default()),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The same service as a member of `cluster`: its documents are the cluster's desired
    /// state, and it runs only the pipelines it holds leases for.
    pub fn in_cluster(mut self, cluster: std::sync::Arc<crate::cluster::Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The cluster this service is a member of, if any.
    pub fn cluster(&self) -> Option<&std::sync::Arc<crate::cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// Holds `topology` and `pipeline` without the control API's checks (`vigil run`, whose
    /// command line checked them).
    pub fn insert(&self, topology: TopologyEntry, pipeline: PipelineEntry) {
        let mut registry = self.registry();
        registry.topologies.insert(topology.name.clone(), topology);
        registry.pipelines.insert(pipeline.name.clone(), pipeline);
    }

    /// The process-wide services.
    pub fn context(&self) -> &LiveContext {
        &self.context
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Supervised>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports a problem of the service itself (`/service` subject).
    fn report(&self, kind: &str, body: Value) {
        self.context.bus.emit(Event::new(
            EventClass::Diagnostics,
            kind,
            "/service".into(),
            wall_now(),
            body,
        ));
    }

    /// Reads the data directory back: every topology and live pipeline it holds. Returns the
    /// pipelines whose desired state is Active (to activate). A document that cannot be read is
    /// reported and left in place.
    pub fn restore(&self) -> anyhow::Result<Vec<String>> {
        let Some(docs) = &self.documents else {
            return Ok(Vec::new());
        };
        let (topologies, bad_topologies) = docs.read_all(Kind::Topology)?;
        let (pipelines, bad_pipelines) = docs.read_all(Kind::LivePipeline)?;
        for bad in bad_topologies.iter().chain(&bad_pipelines) {
            self.report(
                "StorageError",
                json!({"path": bad.path, "detail": format!("cannot read this document back: {}; it is ignored and left in place", bad.reason)}),
            );
        }
        let mut active = Vec::new();
        for (name, doc) in topologies {
            self.hold_topology(name, doc);
        }
        for (name, doc) in pipelines {
            if self.hold_pipeline(name.clone(), &doc) == Some(true) {
                active.push(name);
            }
        }
        Ok(active)
    }

    /// Holds topology document `doc` as stored (the data directory's or the cluster's); one that
    /// no longer validates is reported and left out.
    fn hold_topology(&self, name: String, doc: Value) {
        match registry::check_template(&doc) {
            Ok(secrets) => {
                let system = SystemData::read(&doc);
                let mut document = doc;
                if let Some(map) = document.as_object_mut() {
                    map.remove("systemData");
                }
                self.registry().topologies.insert(
                    name.clone(),
                    TopologyEntry {
                        name,
                        document,
                        secrets,
                        system,
                    },
                );
            }
            Err(errors) => self.report(
                "StorageError",
                json!({"topology": name, "detail": format!("the stored topology no longer validates: {}", crate::topology::TopologyErrors(errors))}),
            ),
        }
    }

    /// Holds live pipeline document `doc` as stored, Inactive; returns whether its desired
    /// state is Active (`None`: unreadable, reported). A pipeline already held keeps its state
    /// and status.
    fn hold_pipeline(&self, name: String, doc: &Value) -> Option<bool> {
        let live = match crate::topology::live_pipeline::parse_live_pipeline(&doc.to_string()) {
            Ok(live) => live,
            Err(errors) => {
                self.report(
                    "StorageError",
                    json!({"livePipeline": name, "detail": format!("cannot read the stored live pipeline: {errors}")}),
                );
                return None;
            }
        };
        let desired_active = doc["properties"]["state"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("active"));
        let mut registry = self.registry();
        let (state, status) = registry
            .pipelines
            .get(&name)
            .map(|p| (p.state, p.status.clone()))
            .unwrap_or_default();
        registry.pipelines.insert(
            name.clone(),
            PipelineEntry {
                name,
                topology: live.topology_name.clone().unwrap_or_default(),
                description: doc["properties"]["description"]
                    .as_str()
                    .map(str::to_string),
                parameters: registry::parameters_of(&live),
                desired_active,
                state,
                system: SystemData::read(doc),
                status,
            },
        );
        Some(desired_active)
    }

    /// Stops every running pipeline (their clips close); their desired state is kept, so a
    /// restart activates them again.
    pub async fn shutdown(&self) {
        let running: Vec<(String, Supervised)> = self.running().drain().collect();
        let stops = running.into_iter().map(|(name, s)| async move {
            s.stop().await;
            name
        });
        for name in futures::future::join_all(stops).await {
            if let Some(p) = self.registry().pipelines.get_mut(&name) {
                p.state = registry::PipelineState::Inactive;
            }
        }
    }

    /// The pipelines for the web page: name, topology, state, status, camera connection and
    /// recent events.
    pub fn overview(&self, events_per_pipeline: usize) -> Value {
        let registry = self.registry();
        let pipelines: Vec<Value> = registry
            .pipelines
            .values()
            .map(|p| {
                let events = self
                    .context
                    .bus
                    .recent_of(Some(&p.name), events_per_pipeline);
                let camera = if p.state == registry::PipelineState::Inactive {
                    "off"
                } else {
                    camera_state(&self.context.bus, &p.name)
                };
                json!({
                    "name": p.name,
                    "topologyName": p.topology,
                    "description": p.description,
                    "state": p.state.as_str(),
                    "status": p.status.to_json(),
                    "camera": camera,
                    "recentEvents": events.iter().map(Event::to_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({"pipelines": pipelines, "topologies": registry.topologies.keys().collect::<Vec<_>>()})
    }
}

impl Service {
    /// The metrics as a scrape reads them, the service's state gauges set first (pipelines by
    /// state and active ones by topology, uploads pending per archive).
    pub fn metrics_text(&self) -> String {
        let (active, by_state) = {
            let registry = self.registry();
            let mut active: std::collections::BTreeMap<String, i64> =
                registry.topologies.keys().map(|t| (t.clone(), 0)).collect();
            let mut by_state: std::collections::BTreeMap<String, i64> =
                ["Inactive", "Activating", "Active", "Deactivating"]
                    .iter()
                    .map(|s| (s.to_string(), 0))
                    .collect();
            for p in registry.pipelines.values() {
                *by_state.entry(p.state.as_str().to_string()).or_default() += 1;
                if p.state == registry::PipelineState::Active {
                    *active.entry(p.topology.clone()).or_default() += 1;
                }
            }
            (
                active.into_iter().collect::<Vec<_>>(),
                by_state.into_iter().collect::<Vec<_>>(),
            )
        };
        let pending = tokio::task::block_in_place(|| self.context.archives.uploads_pending());
        let metrics = self.context.bus.metrics();
        metrics.set_service_state(&active, &by_state, &pending);
        if let Some(heap) = memory::heap_usage() {
            metrics.set_heap_usage(&heap);
        }
        metrics.render()
    }
}

/// The camera's connection as the pipeline's last session or lifecycle event tells (among the
/// events the process still keeps): `connected`, `failed`, `connecting` (activated, no session
/// event since), `off` (deactivated; an Inactive pipeline is always `off`) or `unknown`.
fn camera_state(bus: &crate::bus::event_log::EventBus, pipeline: &str) -> &'static str {
    let own = format!("/livePipelines/{pipeline}");
    let camera_event = bus.last_of(pipeline, |e| {
        (e.subject.contains("/sources/")
            && matches!(
                e.kind.as_str(),
                "MediaSessionEstablished"
                    | "AuthenticationError"
                    | "NetworkError"
                    | "ProtocolError"
                    | "MediaFormatError"
                    | "MediaSessionEnded"
            ))
            || (e.subject == own
                && matches!(
                    e.kind.as_str(),
                    "LivePipelineActivated" | "LivePipelineDeactivated"
                ))
    });
    match camera_event.as_ref().map(|e| e.kind.as_str()) {
        Some("MediaSessionEstablished") => "connected",
        Some("LivePipelineActivated") => "connecting",
        Some("LivePipelineDeactivated") => "off",
        Some(_) => "failed",
        None => "unknown",
    }
}
