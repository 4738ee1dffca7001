//! AVA live-pipeline documents (ava-spec §1.5): a pipeline name, its topology, and parameter values.

use serde_json::Value;

use super::error::{ErrorSink, TopologyErrors, json_error};
use super::params::{ParameterValue, ValueOrigin};
use super::props::Props;

/// The parts of a live-pipeline document the runtime uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivePipeline {
    /// Pipeline name (`${System.PipelineName}`).
    pub name: String,
    /// `properties.topologyName`.
    pub topology_name: Option<String>,
    /// `properties.parameters`.
    pub values: Vec<ParameterValue>,
}

/// Parses an AVA live-pipeline document, or the body of a `livePipelineSet` direct method, which
/// has the same shape (`@apiVersion`, `name`, `properties{topologyName, parameters[]}`).
pub fn parse_live_pipeline(text: &str) -> Result<LivePipeline, TopologyErrors> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| TopologyErrors(vec![json_error(&e)]))?;
    let errors = ErrorSink::default();
    let Value::Object(map) = &root else {
        errors.invalid("$", None, "a live pipeline must be a JSON object");
        return Err(errors.into_errors());
    };
    let top = Props::new(map, "$".to_string(), None, &errors);
    top.ignore(&["@apiVersion", "systemData"]);
    let name = top.required_string("name").unwrap_or_default();
    let mut live = LivePipeline {
        name,
        ..LivePipeline::default()
    };
    if let Some(props) = top.required_object("properties") {
        live.topology_name = props.required_string("topologyName");
        props.ignore(&["description", "state", "bitrateKbps"]);
        for (path, item) in props.array("parameters") {
            let Value::Object(m) = item else {
                errors.invalid(
                    &path,
                    None,
                    "a parameter value must be an object {name, value}",
                );
                continue;
            };
            let p = Props::new(m, path, None, &errors);
            let name = p.required_string("name");
            let value = p.string("value");
            if p.raw("value").is_none() {
                p.error("value", "required property 'value' is missing");
            }
            p.report_unknown();
            if let (Some(name), Some(value)) = (name, value) {
                live.values.push(ParameterValue {
                    name,
                    value,
                    origin: ValueOrigin::LivePipeline,
                });
            }
        }
        props.report_unknown();
    }
    top.report_unknown();
    if errors.is_empty() {
        Ok(live)
    } else {
        Err(errors.into_errors())
    }
}
