//! What the service knows: pipeline topologies (templates) and live pipelines (a topology plus
//! parameter values, a desired state and a current one), as AVA's methods read and write them;
//! binding a live pipeline to its topology gives the plan that runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::supervisor::PipelineStatus;
use crate::pipeline::plan::{PipelinePlan, runtime_errors};
use crate::topology::params::ParameterType;
use crate::topology::{
    ErrorKind, LivePipeline, LoadOptions, ParameterValue, Topology, TopologyError, ValueOrigin,
    load_topology,
};

/// AVA's live-pipeline states (ava-spec §1.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PipelineState {
    /// Set, not running.
    #[default]
    Inactive,
    /// Starting.
    Activating,
    /// Running (also while its camera is unreachable and it retries).
    Active,
    /// Closing its clips and flushing uploads.
    Deactivating,
}

impl PipelineState {
    /// The name AVA's module answered with (PascalCase, ava-spec §1.5).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "Inactive",
            Self::Activating => "Activating",
            Self::Active => "Active",
            Self::Deactivating => "Deactivating",
        }
    }
}

/// `systemData`: when a resource was created and last changed (UTC, ISO 8601).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemData {
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub last_modified_at: String,
}

impl SystemData {
    /// Reads `systemData` of a stored document, else now.
    pub fn read(doc: &Value) -> Self {
        let now = now_text();
        let field = |k: &str| {
            doc.get("systemData")
                .and_then(|s| s.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| now.clone())
        };
        Self {
            created_at: field("createdAt"),
            last_modified_at: field("lastModifiedAt"),
        }
    }

    fn to_json(&self) -> Value {
        json!({"createdAt": self.created_at, "lastModifiedAt": self.last_modified_at})
    }
}

/// The current UTC time as AVA wrote it.
pub fn now_text() -> String {
    crate::nodes::rtsp_source::wall_now().to_string()
}

/// A pipeline topology.
#[derive(Clone, Debug)]
pub struct TopologyEntry {
    /// Its name.
    pub name: String,
    /// `@apiVersion`, `name` and `properties` as they were set.
    pub document: Value,
    /// Names of its `secretString` parameters (never echoed back).
    pub secrets: Vec<String>,
    /// Times.
    pub system: SystemData,
}

impl TopologyEntry {
    /// The document as `pipelineTopologyGet` answers and the data directory keeps it.
    pub fn to_json(&self) -> Value {
        let mut doc = self.document.clone();
        doc["systemData"] = self.system.to_json();
        doc
    }

    /// Its `properties` without `description`, to tell a description-only update.
    pub fn shape(&self) -> Value {
        shape_of(&self.document)
    }
}

/// A document's `properties` without `description`.
pub fn shape_of(document: &Value) -> Value {
    let mut props = document.get("properties").cloned().unwrap_or(Value::Null);
    if let Some(map) = props.as_object_mut() {
        map.remove("description");
    }
    props
}

/// A live pipeline.
#[derive(Clone, Debug)]
pub struct PipelineEntry {
    /// Its name (`${System.PipelineName}`).
    pub name: String,
    /// The topology it binds.
    pub topology: String,
    /// `properties.description`.
    pub description: Option<String>,
    /// Parameter values, in the order given.
    pub parameters: Vec<(String, String)>,
    /// Whether it should run (kept across restarts).
    pub desired_active: bool,
    /// Where it is now.
    pub state: PipelineState,
    /// Times.
    pub system: SystemData,
    /// What its supervisor reports (restarts, last fault).
    pub status: Arc<PipelineStatus>,
}

impl PipelineEntry {
    /// The document as `livePipelineGet` answers: the current state, secret values left out,
    /// and our `status` (restarts, last fault) beside AVA's fields.
    pub fn to_json(&self, secrets: &[String]) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .map(|(name, value)| {
                if secrets.contains(name) {
                    json!({"name": name})
                } else {
                    json!({"name": name, "value": value})
                }
            })
            .collect();
        let mut doc = self.document(self.state.as_str(), parameters);
        doc["status"] = self.status.to_json();
        doc
    }

    /// The document the data directory keeps: every value, and the desired state.
    pub fn to_stored_json(&self) -> Value {
        let parameters = self
            .parameters
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let state = if self.desired_active {
            PipelineState::Active
        } else {
            PipelineState::Inactive
        };
        self.document(state.as_str(), parameters)
    }

    fn document(&self, state: &str, parameters: Vec<Value>) -> Value {
        let mut properties = json!({
            "topologyName": self.topology,
            "parameters": parameters,
            "state": state,
        });
        if let Some(d) = &self.description {
            properties["description"] = json!(d);
        }
        json!({
            "@apiVersion": "1.1",
            "name": self.name,
            "properties": properties,
            "systemData": self.system.to_json(),
        })
    }

    /// Everything but the description and state, to tell a description-only update.
    pub fn shape(&self) -> (String, Vec<(String, String)>) {
        (self.topology.clone(), self.parameters.clone())
    }
}

/// Checks a topology template (`pipelineTopologySet`): what can be checked without a live
/// pipeline's values; returns the topology's `secretString` parameters.
pub fn check_template(document: &Value) -> Result<Vec<String>, Vec<TopologyError>> {
    let options = LoadOptions {
        template: true,
        ..LoadOptions::default()
    };
    let topology = load_topology(&document.to_string(), &options).map_err(|e| e.0)?;
    Ok(topology
        .parameters
        .iter()
        .filter(|d| d.kind == ParameterType::SecretString)
        .map(|d| d.name.clone())
        .collect())
}

/// Binds `pipeline` to `topology` and checks everything running it would check: parameter
/// values, every node's properties, modules, endpoints. Every problem is returned.
pub fn bind(
    topology: &TopologyEntry,
    pipeline: &PipelineEntry,
) -> Result<PipelinePlan, Vec<TopologyError>> {
    let live = LivePipeline {
        name: pipeline.name.clone(),
        topology_name: Some(pipeline.topology.clone()),
        values: pipeline
            .parameters
            .iter()
            .map(|(name, value)| ParameterValue {
                name: name.clone(),
                value: value.clone(),
                origin: ValueOrigin::LivePipeline,
            })
            .collect(),
    };
    let options = LoadOptions {
        pipeline_name: Some(pipeline.name.clone()),
        live_pipeline: Some(live),
        ..LoadOptions::default()
    };
    let bound: Topology =
        load_topology(&topology.document.to_string(), &options).map_err(|e| e.0)?;
    let refused = runtime_errors(&bound);
    if !refused.is_empty() {
        return Err(refused);
    }
    PipelinePlan::from_topology(&bound).map_err(|e| {
        vec![TopologyError {
            kind: ErrorKind::Invalid,
            path: "$".into(),
            node: None,
            message: format!("{e:#}"),
        }]
    })
}

/// Reads a live pipeline's parameters from its `properties.parameters`.
pub fn parameters_of(live: &LivePipeline) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in &live.values {
        out.retain(|(n, _)| n != &v.name);
        out.push((v.name.clone(), v.value.clone()));
    }
    out
}

/// The resources of a service.
#[derive(Default)]
pub struct Registry {
    /// Topologies by name.
    pub topologies: BTreeMap<String, TopologyEntry>,
    /// Live pipelines by name.
    pub pipelines: BTreeMap<String, PipelineEntry>,
}

impl Registry {
    /// Names of the live pipelines that bind topology `name`.
    pub fn users_of(&self, name: &str) -> Vec<&PipelineEntry> {
        self.pipelines
            .values()
            .filter(|p| p.topology == name)
            .collect()
    }

    /// The `secretString` parameters of the topology of `pipeline`.
    pub fn secrets_of(&self, pipeline: &PipelineEntry) -> Vec<String> {
        self.topologies
            .get(&pipeline.topology)
            .map(|t| t.secrets.clone())
            .unwrap_or_default()
    }
}

/// Checks a resource name: 1–64 letters, digits, `-`, `_` or `.`, not starting with `.` or `-`
/// (AVA allowed `[A-Za-z0-9-]`, at most 32; names become file names in the data directory).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name.starts_with(['.', '-']) {
        return Err(format!(
            "'{name}' is not a valid name: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.' or '-'"
        ));
    }
    Ok(())
}
