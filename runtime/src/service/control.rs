//! What each of AVA's methods does (ava-spec §1.6, §9): the rules of the live-pipeline state
//! machine, which updates each state allows, the limits, and the answers.
//!
//! * A topology can be changed freely while no live pipeline binds it; while only inactive ones
//!   do, every one of them must still bind; while one is active, only its description may change.
//! * A live pipeline can be changed freely while Inactive; otherwise only its description.
//! * Activate: allowed unless Deactivating; an Active pipeline answers at once. Deactivate: not
//!   while Activating; returns after its clips closed and its uploads are done (or timed out).
//! * Delete: a topology only when no live pipeline binds it (`PipelineTopologyInUse`), a live
//!   pipeline only when Inactive (`OperationNotAllowedInState`); a missing one answers 204.

use serde_json::{Value, json};

use super::Service;
use super::documents::Kind;
use super::methods::{Method, Request, Response};
use super::registry::{
    PipelineEntry, PipelineState, SystemData, TopologyEntry, bind, check_name, check_template,
    now_text, parameters_of, shape_of,
};
use super::supervisor::supervise;
use crate::bus::event::{Event, EventClass};
use crate::nodes::rtsp_source::wall_now;
use crate::topology::live_pipeline::parse_live_pipeline;

impl Service {
    /// Runs the method `name` with `payload` and answers as AVA's module did.
    pub async fn call(&self, name: &str, payload: &[u8]) -> Response {
        let request = match Request::parse(name, payload) {
            Ok(r) => r,
            Err(answer) => return answer,
        };
        if let Some(cluster) = &self.cluster
            && !cluster.catch_up().await
        {
            return Response::error(
                503,
                "ServiceUnavailable",
                "this node cannot reach the cluster's state now; try again or call another node",
                Vec::new(),
            );
        }
        match request.method {
            Method::PipelineActivate => match request.name() {
                Ok(name) => self.activate(&name).await,
                Err(answer) => answer,
            },
            Method::PipelineDeactivate => match request.name() {
                Ok(name) => self.deactivate(&name).await,
                Err(answer) => answer,
            },
            Method::ModuleSwap => self.module_swap(&request).await,
            // Validation compiles modules and the data directory is fsync'd: blocking work.
            _ => tokio::task::block_in_place(|| self.call_blocking(&request)),
        }
    }

    fn call_blocking(&self, request: &Request) -> Response {
        let name = || request.name();
        let result = match request.method {
            Method::TopologyList => Ok(self.topology_list()),
            Method::PipelineList => Ok(self.pipeline_list()),
            Method::TopologyGet => name().map(|n| self.topology_get(&n)),
            Method::PipelineGet => name().map(|n| self.pipeline_get(&n)),
            Method::TopologySet => name().map(|n| self.topology_set(&n, &request.payload)),
            Method::PipelineSet => name().map(|n| self.pipeline_set(&n, &request.payload)),
            Method::TopologyDelete => name().map(|n| self.topology_delete(&n)),
            Method::PipelineDelete => name().map(|n| self.pipeline_delete(&n)),
            Method::PipelineActivate | Method::PipelineDeactivate | Method::ModuleSwap => {
                Err(Response::internal("activation runs asynchronously".into()))
            }
        };
        result.unwrap_or_else(|answer| answer)
    }

    fn topology_list(&self) -> Response {
        let registry = self.registry();
        let value: Vec<Value> = registry
            .topologies
            .values()
            .map(TopologyEntry::to_json)
            .collect();
        Response::ok(200, json!({ "value": value }))
    }

    fn pipeline_list(&self) -> Response {
        let registry = self.registry();
        let value: Vec<Value> = registry
            .pipelines
            .values()
            .map(|p| p.to_json(&registry.secrets_of(p)))
            .collect();
        Response::ok(200, json!({ "value": value }))
    }

    fn topology_get(&self, name: &str) -> Response {
        match self.registry().topologies.get(name) {
            Some(t) => Response::ok(200, t.to_json()),
            None => Response::not_found("pipeline topology", name),
        }
    }

    fn pipeline_get(&self, name: &str) -> Response {
        let registry = self.registry();
        match registry.pipelines.get(name) {
            Some(p) => Response::ok(200, p.to_json(&registry.secrets_of(p))),
            None => Response::not_found("live pipeline", name),
        }
    }

    fn topology_set(&self, name: &str, payload: &serde_json::Map<String, Value>) -> Response {
        if let Err(why) = check_name(name) {
            return Response::error(400, "InvalidResource", &why, Vec::new());
        }
        let mut document = Value::Object(payload.clone());
        if let Some(map) = document.as_object_mut() {
            map.remove("systemData");
        }
        let secrets = match check_template(&document) {
            Ok(s) => s,
            Err(errors) => {
                return Response::invalid(
                    &format!("pipeline topology '{name}' is invalid"),
                    &errors,
                );
            }
        };
        let mut registry = self.registry();
        let existing = registry.topologies.get(name).cloned();
        if existing.is_none() && registry.topologies.len() >= self.limits.topologies {
            return Response::conflict(
                "ResourceLimitExceeded",
                format!(
                    "the service holds {} pipeline topologies, its limit",
                    self.limits.topologies
                ),
            );
        }
        let mut entry = TopologyEntry {
            name: name.to_string(),
            document,
            secrets,
            system: existing
                .as_ref()
                .map(|t| t.system.clone())
                .unwrap_or(SystemData {
                    created_at: now_text(),
                    last_modified_at: String::new(),
                }),
        };
        entry.system.last_modified_at = now_text();
        if let Some(old) = &existing {
            let users = registry.users_of(name);
            let running: Vec<&str> = users
                .iter()
                .filter(|p| p.state != PipelineState::Inactive)
                .map(|p| p.name.as_str())
                .collect();
            if !running.is_empty() && shape_of(&entry.document) != old.shape() {
                return Response::conflict(
                    "PipelineTopologyInUse",
                    format!(
                        "pipeline topology '{name}' is used by live pipeline(s) that are not inactive ({}); only its description can change until they are deactivated",
                        running.join(", ")
                    ),
                );
            }
            // Every inactive user must still bind the new version.
            let mut errors = Vec::new();
            for p in &users {
                if let Err(e) = bind(&entry, p) {
                    errors.extend(e.into_iter().map(|mut e| {
                        e.message = format!("live pipeline '{}': {}", p.name, e.message);
                        e
                    }));
                }
            }
            if !errors.is_empty() {
                return Response::invalid(
                    &format!(
                        "the new version of '{name}' does not fit the live pipelines that use it"
                    ),
                    &errors,
                );
            }
        }
        if let Err(answer) = self.store(Kind::Topology, name, &entry.to_json()) {
            return answer;
        }
        let answer = entry.to_json();
        registry.topologies.insert(name.to_string(), entry);
        Response::ok(if existing.is_some() { 200 } else { 201 }, answer)
    }

    fn pipeline_set(&self, name: &str, payload: &serde_json::Map<String, Value>) -> Response {
        if let Err(why) = check_name(name) {
            return Response::error(400, "InvalidResource", &why, Vec::new());
        }
        let live = match parse_live_pipeline(&Value::Object(payload.clone()).to_string()) {
            Ok(l) => l,
            Err(errors) => {
                return Response::invalid(&format!("live pipeline '{name}' is invalid"), &errors.0);
            }
        };
        let topology_name = live.topology_name.clone().unwrap_or_default();
        let mut registry = self.registry();
        let Some(topology) = registry.topologies.get(&topology_name).cloned() else {
            return Response::conflict(
                "ResourceValidationError",
                format!(
                    "live pipeline '{name}' names pipeline topology '{topology_name}', which does not exist; set it first"
                ),
            );
        };
        let existing = registry.pipelines.get(name).cloned();
        if existing.is_none() && registry.pipelines.len() >= self.limits.pipelines {
            return Response::conflict(
                "ResourceLimitExceeded",
                format!(
                    "the service holds {} live pipelines, its limit",
                    self.limits.pipelines
                ),
            );
        }
        let description = payload
            .get("properties")
            .and_then(|p| p.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut entry = PipelineEntry {
            name: name.to_string(),
            topology: topology_name,
            description,
            parameters: parameters_of(&live),
            desired_active: existing.as_ref().is_some_and(|p| p.desired_active),
            state: existing
                .as_ref()
                .map(|p| p.state)
                .unwrap_or(PipelineState::Inactive),
            system: existing
                .as_ref()
                .map(|p| p.system.clone())
                .unwrap_or(SystemData {
                    created_at: now_text(),
                    last_modified_at: String::new(),
                }),
            status: existing
                .as_ref()
                .map(|p| p.status.clone())
                .unwrap_or_default(),
        };
        entry.system.last_modified_at = now_text();
        if let Some(old) = &existing
            && old.state != PipelineState::Inactive
            && old.shape() != entry.shape()
        {
            return Response::conflict(
                "OperationNotAllowedInState",
                format!(
                    "live pipeline '{name}' is {}; only its description can change until it is deactivated",
                    old.state.as_str()
                ),
            );
        }
        if let Err(errors) = bind(&topology, &entry) {
            return Response::invalid(&format!("live pipeline '{name}' is invalid"), &errors);
        }
        if let Err(answer) = self.store(Kind::LivePipeline, name, &entry.to_stored_json()) {
            return answer;
        }
        let answer = entry.to_json(&topology.secrets);
        registry.pipelines.insert(name.to_string(), entry);
        Response::ok(if existing.is_some() { 200 } else { 201 }, answer)
    }

    fn topology_delete(&self, name: &str) -> Response {
        let mut registry = self.registry();
        if !registry.topologies.contains_key(name) {
            return Response::ok(204, Value::Null);
        }
        let users: Vec<String> = registry
            .users_of(name)
            .iter()
            .map(|p| p.name.clone())
            .collect();
        if !users.is_empty() {
            return Response::conflict(
                "PipelineTopologyInUse",
                format!(
                    "pipeline topology '{name}' is used by live pipeline(s) {}; delete them first",
                    users.join(", ")
                ),
            );
        }
        if let Err(answer) = self.unstore(Kind::Topology, name) {
            return answer;
        }
        registry.topologies.remove(name);
        Response::ok(200, Value::Null)
    }

    fn pipeline_delete(&self, name: &str) -> Response {
        let mut registry = self.registry();
        let Some(p) = registry.pipelines.get(name) else {
            return Response::ok(204, Value::Null);
        };
        if p.state != PipelineState::Inactive {
            return Response::conflict(
                "OperationNotAllowedInState",
                format!(
                    "live pipeline '{name}' is {}; deactivate it first",
                    p.state.as_str()
                ),
            );
        }
        if let Err(answer) = self.unstore(Kind::LivePipeline, name) {
            return answer;
        }
        registry.pipelines.remove(name);
        self.context.bus.metrics().forget_pipeline(name);
        Response::ok(200, Value::Null)
    }

    /// `livePipelineActivate`: binds the pipeline, records that it should run, and starts it.
    pub async fn activate(&self, name: &str) -> Response {
        let prepared = tokio::task::block_in_place(|| {
            let mut registry = self.registry();
            let Some(p) = registry.pipelines.get(name).cloned() else {
                return Err(Response::not_found("live pipeline", name));
            };
            match p.state {
                PipelineState::Deactivating => {
                    return Err(Response::conflict(
                        "OperationNotAllowedInState",
                        format!(
                            "live pipeline '{name}' is Deactivating; activate it when it is Inactive"
                        ),
                    ));
                }
                PipelineState::Active => return Ok(None),
                PipelineState::Inactive | PipelineState::Activating => {}
            }
            let Some(topology) = registry.topologies.get(&p.topology) else {
                return Err(Response::conflict(
                    "ResourceValidationError",
                    format!("pipeline topology '{}' does not exist", p.topology),
                ));
            };
            let plan = bind(topology, &p).map_err(|errors| {
                Response::invalid(
                    &format!("live pipeline '{name}' cannot be activated"),
                    &errors,
                )
            })?;
            let mut updated = p.clone();
            updated.desired_active = true;
            updated.state = PipelineState::Activating;
            if !p.desired_active {
                self.store(Kind::LivePipeline, name, &updated.to_stored_json())?;
            }
            let status = updated.status.clone();
            registry.pipelines.insert(name.to_string(), updated);
            Ok(Some((plan, status)))
        });
        let (plan, status) = match prepared {
            Ok(Some(p)) => p,
            Ok(None) => return Response::ok(200, Value::Null),
            Err(answer) => return answer,
        };
        if self.cluster.is_some() {
            // The node that takes its lease runs it (this one, maybe).
            if let Some(p) = self.registry().pipelines.get_mut(name) {
                p.state = PipelineState::Active;
            }
            return Response::ok(200, Value::Null);
        }
        self.start_supervised(name, plan, status);
        if let Some(p) = self.registry().pipelines.get_mut(name) {
            p.state = PipelineState::Active;
        }
        Response::ok(200, Value::Null)
    }

    /// `livePipelineDeactivate`: records that it should not run, stops it and waits for its
    /// clips to close and its uploads to finish.
    pub async fn deactivate(&self, name: &str) -> Response {
        let prepared = tokio::task::block_in_place(|| {
            let mut registry = self.registry();
            let Some(p) = registry.pipelines.get_mut(name) else {
                return Err(Response::not_found("live pipeline", name));
            };
            match p.state {
                PipelineState::Inactive => return Ok(false),
                PipelineState::Activating | PipelineState::Deactivating => {
                    return Err(Response::conflict(
                        "OperationNotAllowedInState",
                        format!(
                            "live pipeline '{name}' is {}; try again when it is Active",
                            p.state.as_str()
                        ),
                    ));
                }
                PipelineState::Active => {}
            }
            let mut stored = p.clone();
            stored.desired_active = false;
            self.store(Kind::LivePipeline, name, &stored.to_stored_json())?;
            p.desired_active = false;
            p.state = PipelineState::Deactivating;
            Ok(true)
        });
        match prepared {
            Ok(true) => {}
            Ok(false) => return Response::ok(200, Value::Null),
            Err(answer) => return answer,
        }
        if let Some(cluster) = &self.cluster {
            // Its owner stops it and gives its lease up.
            let stopped = crate::cluster::ownership::wait_released(cluster, name).await;
            if let Some(p) = self.registry().pipelines.get_mut(name) {
                p.state = PipelineState::Inactive;
            }
            if !stopped {
                return Response::internal(format!(
                    "live pipeline '{name}' is to stop, but the node recording it has not confirmed within {} s",
                    crate::cluster::ownership::RELEASE_WAIT.as_secs()
                ));
            }
            return Response::ok(200, Value::Null);
        }
        let supervised = self.running().remove(name);
        if let Some(s) = supervised {
            s.stop().await;
        }
        if let Some(p) = self.registry().pipelines.get_mut(name) {
            p.state = PipelineState::Inactive;
        }
        self.lifecycle_event(name, "LivePipelineDeactivated");
        Response::ok(200, Value::Null)
    }

    /// Writes document `name` to the cluster's desired state or the data directory (if any);
    /// the error is a 500 answer.
    fn store(&self, kind: Kind, name: &str, document: &Value) -> Result<(), Response> {
        if let Some(cluster) = &self.cluster {
            let write = crate::cluster::desired::write(&cluster.desired, kind, name, document);
            return tokio::runtime::Handle::current()
                .block_on(write)
                .map_err(|e| Response::internal(format!("{e:#}")));
        }
        let Some(docs) = &self.documents else {
            return Ok(());
        };
        docs.write(kind, name, document).map_err(|e| {
            Response::internal(format!("cannot store {} '{name}': {e:#}", kind.what()))
        })
    }

    /// Deletes document `name` from the cluster or the data directory (if any); the error is a
    /// 500 answer.
    fn unstore(&self, kind: Kind, name: &str) -> Result<(), Response> {
        if let Some(cluster) = &self.cluster {
            let delete = crate::cluster::desired::delete(&cluster.desired, kind, name);
            return tokio::runtime::Handle::current()
                .block_on(delete)
                .map_err(|e| Response::internal(format!("{e:#}")));
        }
        let Some(docs) = &self.documents else {
            return Ok(());
        };
        docs.delete(kind, name).map_err(|e| {
            Response::internal(format!("cannot delete {} '{name}': {e:#}", kind.what()))
        })
    }

    /// Starts pipeline `name` here under its supervisor (`LivePipelineActivated` first: a
    /// camera session it joins reports itself at once).
    pub(super) fn start_supervised(
        &self,
        name: &str,
        plan: crate::pipeline::plan::PipelinePlan,
        status: std::sync::Arc<super::supervisor::PipelineStatus>,
    ) {
        self.lifecycle_event(name, "LivePipelineActivated");
        let supervised = supervise(plan, self.context.clone(), status);
        self.running().insert(name.to_string(), supervised);
    }

    pub(super) fn lifecycle_event(&self, name: &str, kind: &str) {
        self.context.bus.for_pipeline(name).emit(Event::new(
            EventClass::Operational,
            kind,
            format!("/livePipelines/{name}"),
            wall_now(),
            json!({}),
        ));
    }
}
