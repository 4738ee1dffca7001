//! Reading a topology document: the envelope (AVA, AVA cloud/ARM or LVA), then every node with its
//! inputs and type-specific configuration.

use serde_json::{Map, Value};

use super::error::ErrorSink;
use super::model::{
    Dialect, MediaType, Node, NodeConfig, NodeInput, OutputSelector, SelectorOperator,
};
use super::node_config::read_node_config;
use super::node_type::{NodeRole, resolve_type};
use super::props::Props;

/// The envelope of a topology, before its nodes are read.
pub struct Envelope<'a> {
    /// Topology name.
    pub name: Option<String>,
    /// `@apiVersion`.
    pub api_version: Option<String>,
    /// Format.
    pub dialect: Dialect,
    /// The `properties` object.
    pub properties: Option<Props<'a>>,
}

/// Reads the top level of a topology document.
pub fn read_envelope<'a>(root: &'a Map<String, Value>, errors: &'a ErrorSink) -> Envelope<'a> {
    let top = Props::new(root, "$".to_string(), None, errors);
    let api_version = top.string("@apiVersion");
    if let Some(v) = &api_version
        && !matches!(v.trim(), "1.0" | "1.1" | "2.0")
    {
        top.error(
            "@apiVersion",
            format!("API version '{v}' is not supported (1.0, 1.1, 2.0)"),
        );
    }
    let is_cloud = root.keys().any(|k| k == "Kind" || k == "Sku");
    if is_cloud {
        top.enumeration("kind", &["live", "batch"]);
        if let Some(sku) = top.object("sku") {
            sku.ignore(&["name", "tier"]);
            sku.report_unknown();
        }
    }
    let name = top.required_string("name");
    if let Some(n) = &name {
        check_resource_name(&top, "name", n);
    }
    let properties = top.required_object("properties");
    top.ignore(&["systemData"]);
    top.report_unknown();
    let lva = properties.as_ref().is_some_and(|p| {
        ["sources", "processors", "sinks"].iter().any(|arr| {
            p.array(arr).iter().any(|(_, n)| {
                n.get("@type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.to_ascii_lowercase().starts_with("#microsoft.media."))
            })
        })
    });
    let dialect = if is_cloud {
        Dialect::AvaCloud
    } else if lva {
        Dialect::Lva
    } else {
        Dialect::Ava
    };
    Envelope {
        name,
        api_version,
        dialect,
        properties,
    }
}

/// AVA resource names: letters, digits and '-', not at either end; we allow up to 64 characters
/// and '_' and '.' too, since published topologies use them.
pub fn check_resource_name(p: &Props<'_>, property: &str, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        p.error(
            property,
            format!(
                "'{name}' is not a valid name: use letters, digits, '-', '_' or '.', at most 64"
            ),
        );
    }
}

/// Reads the nodes of `sources`, `processors` and `sinks`.
pub fn read_nodes(properties: &Props<'_>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for role in [NodeRole::Source, NodeRole::Processor, NodeRole::Sink] {
        for (path, value) in properties.array(role.array_name()) {
            if let Some(node) = read_node(properties.errors(), &path, value, role) {
                nodes.push(node);
            }
        }
    }
    nodes
}

fn read_node(errors: &ErrorSink, path: &str, value: &Value, role: NodeRole) -> Option<Node> {
    let Value::Object(map) = value else {
        errors.invalid(path, None, "a node must be a JSON object");
        return None;
    };
    let name = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("name"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let p = Props::new(map, path.to_string(), name.as_deref(), errors);
    let name = p.required_string("name")?;
    check_resource_name(&p, "name", &name);
    let type_name = p.required_string("@type")?;
    let Some(resolved) = resolve_type(&type_name) else {
        p.error("@type", format!("unknown node type '{type_name}'"));
        return None;
    };
    if resolved.role != role {
        p.error(
            "@type",
            format!(
                "{} is a {:?} node and belongs in properties.{}",
                resolved.node_type.short_name(),
                resolved.role,
                resolved.role.array_name()
            ),
        );
    }
    let inputs = read_inputs(&p, resolved.role);
    let config = if resolved.supported {
        let config = read_node_config(resolved.node_type, &p);
        p.report_unknown();
        config.unwrap_or(NodeConfig::Invalid)
    } else {
        errors.not_supported(path, Some(&name), format!("node type {type_name}"));
        NodeConfig::NotSupported
    };
    Some(Node {
        name,
        node_type: resolved.node_type,
        role,
        path: path.to_string(),
        inputs,
        config,
    })
}

fn read_inputs(p: &Props<'_>, role: NodeRole) -> Vec<NodeInput> {
    let items = p.array("inputs");
    if role == NodeRole::Source {
        if !items.is_empty() {
            p.error("inputs", "a source node takes no inputs");
        }
        return Vec::new();
    }
    if items.is_empty() {
        p.error("inputs", "a processor or sink needs at least one input");
    }
    let mut inputs = Vec::new();
    for (path, item) in items {
        let Value::Object(map) = item else {
            p.errors()
                .invalid(&path, p.node(), "an input must be an object");
            continue;
        };
        let input = Props::new(map, path, p.node(), p.errors());
        let node_name = input.required_string("nodeName");
        let selectors = read_selectors(&input);
        input.report_unknown();
        if let Some(node_name) = node_name {
            inputs.push(NodeInput {
                node_name,
                selectors,
            });
        }
    }
    inputs
}

fn read_selectors(input: &Props<'_>) -> Vec<OutputSelector> {
    let mut selectors = Vec::new();
    for (path, item) in input.array("outputSelectors") {
        let Value::Object(map) = item else {
            input
                .errors()
                .invalid(&path, input.node(), "an output selector must be an object");
            continue;
        };
        let s = Props::new(map, path, input.node(), input.errors());
        let property = s.required_string("property");
        if let Some(property) = &property
            && !property.eq_ignore_ascii_case("mediaType")
        {
            s.error(
                "property",
                format!("'{property}' is not a selector property (only mediaType)"),
            );
        }
        let operator = s.enumeration("operator", &["is", "isNot"]);
        if s.raw("operator").is_none() {
            s.error("operator", "required property 'operator' is missing");
        }
        let value = s.enumeration("value", &["video", "audio", "application"]);
        if s.raw("value").is_none() {
            s.error("value", "required property 'value' is missing");
        }
        s.report_unknown();
        if let (Some(operator), Some(value)) = (operator, value) {
            selectors.push(OutputSelector {
                operator: if operator == "is" {
                    SelectorOperator::Is
                } else {
                    SelectorOperator::IsNot
                },
                media_type: match value {
                    "video" => MediaType::Video,
                    "audio" => MediaType::Audio,
                    _ => MediaType::Application,
                },
            });
        }
    }
    selectors
}
