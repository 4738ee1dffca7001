//! Topologies: parse AVA/LVA JSON, substitute parameters, validate, and give one typed model.
//!
//! ```text
//! text ─► JSON (line/column errors) ─► parameters resolved ─► ${…} substituted ─► nodes read
//!      ─► graph checked ─► Topology          (every error collected, none fatal on its own)
//! ```

pub mod document;
pub mod duration;
pub mod endpoint;
pub mod error;
pub mod graph;
pub mod live_pipeline;
pub mod model;
pub mod node_config;
pub mod node_type;
pub mod params;
pub mod props;

use serde_json::Value;

pub use error::{ErrorKind, TopologyError, TopologyErrors};
pub use live_pipeline::LivePipeline;
pub use model::{Node, NodeConfig, Topology};
pub use params::{ParameterValue, ValueOrigin};

use error::{ErrorSink, json_error};
use params::{SystemVariables, resolve_values, substitute};
use props::Props;

/// What the caller supplies besides the topology text.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Live pipeline name (`${System.PipelineName}`); defaults to the live-pipeline document's
    /// name, else the topology name.
    pub pipeline_name: Option<String>,
    /// An AVA live-pipeline document whose parameter values apply first.
    pub live_pipeline: Option<LivePipeline>,
    /// `--set` values; they override the live-pipeline document.
    pub values: Vec<ParameterValue>,
    /// Check the topology as a template (`pipelineTopologySet`): a parameter without a default
    /// needs no value, and what depends on such a parameter is checked when a live pipeline
    /// gives it one.
    pub template: bool,
}

/// Largest topology document read.
pub const MAX_TOPOLOGY_BYTES: usize = 1024 * 1024;

/// Parses and validates a topology, reporting every error found.
pub fn load_topology(text: &str, options: &LoadOptions) -> Result<Topology, TopologyErrors> {
    if text.len() > MAX_TOPOLOGY_BYTES {
        return Err(TopologyErrors(vec![TopologyError {
            kind: ErrorKind::Invalid,
            path: "$".into(),
            node: None,
            message: format!(
                "the document is {} bytes; a topology may have at most {} MiB",
                text.len(),
                MAX_TOPOLOGY_BYTES / (1024 * 1024)
            ),
        }]));
    }
    let mut root: Value =
        serde_json::from_str(text).map_err(|e| TopologyErrors(vec![json_error(&e)]))?;
    let errors = ErrorSink::default();
    let Value::Object(map) = &root else {
        errors.invalid("$", None, "a topology must be a JSON object");
        return Err(errors.into_errors());
    };

    // Pass 1: the envelope and the parameter declarations, on the text as written.
    let pristine = map.clone();
    let envelope = document::read_envelope(&pristine, &errors);
    let declarations = envelope
        .properties
        .as_ref()
        .map(params::read_declarations)
        .unwrap_or_default();
    let topology_name = envelope.name.clone().unwrap_or_default();
    let pipeline_name = options
        .pipeline_name
        .clone()
        .or_else(|| options.live_pipeline.as_ref().map(|l| l.name.clone()))
        .unwrap_or_else(|| topology_name.clone());
    let mut values: Vec<ParameterValue> = Vec::new();
    if let Some(live) = &options.live_pipeline {
        if let Some(t) = &live.topology_name
            && !t.eq_ignore_ascii_case(&topology_name)
        {
            errors.invalid(
                "live pipeline: properties.topologyName",
                None,
                format!("the live pipeline is for topology '{t}', not '{topology_name}'"),
            );
        }
        values.extend(live.values.iter().cloned());
    }
    values.extend(options.values.iter().cloned());
    let resolved = resolve_values(&declarations, &values, !options.template, &errors);

    // Pass 2: substitute every string outside the declarations, then read the nodes.
    let system = SystemVariables {
        declared: &declarations,
        topology_name: &topology_name,
        pipeline_name: &pipeline_name,
        budget: std::cell::Cell::new(params::MAX_EXPANSION),
    };
    if let Some(Value::Object(props)) = root
        .as_object_mut()
        .and_then(|m| {
            m.iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case("properties"))
        })
        .map(|(_, v)| v)
    {
        for (key, value) in props.iter_mut() {
            if key.eq_ignore_ascii_case("parameters") {
                continue;
            }
            let path = format!("$.properties.{key}");
            match value {
                // Node arrays: each node's errors carry the node's name.
                Value::Array(nodes) => {
                    for (i, node) in nodes.iter_mut().enumerate() {
                        let name = node_name(node);
                        let path = format!("{path}[{i}]");
                        substitute(node, &path, name.as_deref(), &resolved, &system, &errors);
                    }
                }
                other => substitute(other, &path, None, &resolved, &system, &errors),
            }
        }
    }
    let nodes = match root
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("properties")))
        .map(|(_, v)| v)
    {
        Some(Value::Object(props)) => {
            let p = Props::new(props, "$.properties".to_string(), None, &errors);
            p.ignore(&["parameters", "description"]);
            let nodes = document::read_nodes(&p);
            p.report_unknown();
            nodes
        }
        _ => Vec::new(),
    };
    if nodes.is_empty() && envelope.properties.is_some() {
        errors.invalid("$.properties", None, "the topology has no nodes");
    }
    graph::check_graph(&nodes, &errors);

    let mut found = errors.take();
    if options.template {
        // Values that still hold a reference to a parameter without a value are checked when a
        // live pipeline binds the template.
        let mut unbound = Vec::new();
        unbound_paths(&root, "$", &mut unbound);
        found
            .0
            .retain(|e| !unbound.iter().any(|p| is_at_or_below(&e.path, p)));
    }
    if !found.0.is_empty() {
        // Errors quote values: never a secret's, nor a password written in a URL.
        let secrets: Vec<&str> = declarations
            .iter()
            .filter(|d| d.kind == params::ParameterType::SecretString)
            .filter_map(|d| resolved.get(&d.name).map(String::as_str))
            .collect();
        for e in &mut found.0 {
            e.message = error::scrub(&e.message, &secrets);
        }
        return Err(found);
    }
    let description = envelope
        .properties
        .as_ref()
        .and_then(|p| p.raw("description"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Topology {
        name: topology_name,
        pipeline_name,
        api_version: envelope.api_version,
        dialect: envelope.dialect,
        description,
        parameters: declarations,
        values: resolved,
        nodes,
    })
}

/// Whether JSON path `path` is `at` or a value inside it (`$.a.b` is below `$.a`, `$.ab` is not).
fn is_at_or_below(path: &str, at: &str) -> bool {
    path.strip_prefix(at)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// JSON paths of the strings that still reference a parameter (`${name}`, not a per-clip
/// `${System.Runtime.…}` variable).
fn unbound_paths(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains(props::UNBOUND_MARK) => out.push(path.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unbound_paths(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                unbound_paths(item, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

fn node_name(node: &Value) -> Option<String> {
    node.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("name"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Parses a `--set NAME=VALUE` argument.
pub fn parse_set_argument(arg: &str) -> Result<ParameterValue, String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("'{arg}' is not NAME=VALUE"))?;
    if name.trim().is_empty() {
        return Err(format!("'{arg}' has an empty parameter name"));
    }
    Ok(ParameterValue {
        name: name.trim().to_string(),
        value: value.to_string(),
        origin: ValueOrigin::CommandLine,
    })
}
