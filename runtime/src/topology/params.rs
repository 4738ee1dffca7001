//! Topology parameters: declarations with types and defaults, values from the command line or an
//! AVA live-pipeline document, and `${name}` substitution inside every string of the topology.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ErrorSink;
use super::props::{DEFERRED_VARIABLE_MARK, Props, RESERVED, UNBOUND_MARK};

/// Declared type of a parameter (ava-spec §1.2), matched case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterType {
    /// Any text.
    String,
    /// Text that is never echoed back (passwords).
    SecretString,
    /// A whole number.
    Int,
    /// A decimal number.
    Double,
    /// `true` or `false`.
    Bool,
}

/// One entry of `properties.parameters`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterDeclaration {
    /// Name used in `${name}` references.
    pub name: String,
    /// Declared type.
    pub kind: ParameterType,
    /// Free text.
    pub description: Option<String>,
    /// Value used when the pipeline gives none.
    pub default: Option<String>,
}

/// Where a parameter's value came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueOrigin {
    /// `--set name=value` on the command line.
    CommandLine,
    /// An AVA live-pipeline document.
    LivePipeline,
}

/// A value given for a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterValue {
    /// The parameter's name.
    pub name: String,
    /// The value, always text (as in AVA).
    pub value: String,
    /// Where it was given.
    pub origin: ValueOrigin,
}

/// Most parameters a topology may declare.
pub const MAX_PARAMETERS: usize = 1000;
/// Longest a string may grow to by substitution.
pub const MAX_EXPANDED_STRING: usize = 64 * 1024;
/// Most bytes substitution may add to a whole topology.
pub const MAX_EXPANSION: usize = 4 * 1024 * 1024;

/// `text` for an error message: at most 120 characters, with its length when longer.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(120) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
    }
}

/// Reads `properties.parameters` (at most [`MAX_PARAMETERS`]).
pub fn read_declarations(props: &Props<'_>) -> Vec<ParameterDeclaration> {
    let mut declarations: Vec<ParameterDeclaration> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (n, (path, item)) in props.array("parameters").into_iter().enumerate() {
        if n == MAX_PARAMETERS {
            props.errors().invalid(
                &path,
                None,
                format!("a topology may declare at most {MAX_PARAMETERS} parameters; the rest are not read"),
            );
            break;
        }
        let Value::Object(map) = item else {
            props
                .errors()
                .invalid(&path, None, "a parameter declaration must be an object");
            continue;
        };
        let p = Props::new(map, path.clone(), None, props.errors());
        let name = p.required_string("name");
        let kind = p
            .enumeration("type", &["string", "secretString", "int", "double", "bool"])
            .map(|t| match t {
                "secretString" => ParameterType::SecretString,
                "int" => ParameterType::Int,
                "double" => ParameterType::Double,
                "bool" => ParameterType::Bool,
                _ => ParameterType::String,
            });
        if p.raw("type").is_none() {
            p.error("type", "required property 'type' is missing");
        }
        let description = p.string("description");
        let default = p.string("default");
        p.report_unknown();
        let Some(name) = name else { continue };
        if name.len() > 64 {
            p.error(
                "name",
                format!(
                    "parameter name '{}' is longer than 64 characters",
                    shorten(&name)
                ),
            );
        }
        if !names.insert(name.clone()) {
            p.error("name", format!("parameter '{name}' is declared twice"));
            continue;
        }
        if let (Some(kind), Some(default)) = (kind, &default)
            && let Err(why) = check_type(kind, default)
        {
            p.error("default", format!("default of '{name}': {why}"));
        }
        declarations.push(ParameterDeclaration {
            name,
            kind: kind.unwrap_or(ParameterType::String),
            description,
            default,
        });
    }
    declarations
}

/// Checks that `value` fits the declared type.
pub fn check_type(kind: ParameterType, value: &str) -> Result<(), String> {
    let ok = match kind {
        ParameterType::String | ParameterType::SecretString => true,
        ParameterType::Int => value.trim().parse::<i64>().is_ok(),
        ParameterType::Double => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
        ParameterType::Bool => {
            value.trim().eq_ignore_ascii_case("true") || value.trim().eq_ignore_ascii_case("false")
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a valid {}",
            format!("{kind:?}").to_lowercase()
        ))
    }
}

/// Resolves each declared parameter to its value: a given value, else the default. Records an
/// error for a parameter with neither, for a value of the wrong type, and for a value given to a
/// parameter the topology does not declare.
pub fn resolve_values(
    declarations: &[ParameterDeclaration],
    values: &[ParameterValue],
    missing_is_error: bool,
    errors: &ErrorSink,
) -> BTreeMap<String, String> {
    let mut resolved = BTreeMap::new();
    let declared: std::collections::HashSet<&str> =
        declarations.iter().map(|d| d.name.as_str()).collect();
    // The last value given wins, so `--set` can override a live-pipeline document.
    let mut last_given: std::collections::HashMap<&str, &ParameterValue> = Default::default();
    let mut undeclared = 0;
    for v in values {
        last_given.insert(v.name.as_str(), v);
        if declared.contains(v.name.as_str()) {
            continue;
        }
        undeclared += 1;
        if undeclared > 20 {
            continue;
        }
        let mut known: Vec<&str> = declarations
            .iter()
            .take(20)
            .map(|d| d.name.as_str())
            .collect();
        if declarations.len() > 20 {
            known.push("…");
        }
        errors.invalid(
            &origin_path(v),
            None,
            format!(
                "parameter '{}' is not declared by the topology (declared: {})",
                shorten(&v.name),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
    if undeclared > 20 {
        errors.invalid(
            "live pipeline: properties.parameters",
            None,
            format!("{undeclared} values name parameters the topology does not declare (the first 20 are listed)"),
        );
    }
    for (i, d) in declarations.iter().enumerate() {
        let given = last_given.get(d.name.as_str()).copied();
        let value = match (given, &d.default) {
            (Some(v), _) => {
                if let Err(why) = check_type(d.kind, &v.value) {
                    errors.invalid(
                        &origin_path(v),
                        None,
                        format!("parameter '{}': {}", d.name, shorten(&why)),
                    );
                }
                v.value.clone()
            }
            (None, Some(default)) => default.clone(),
            (None, None) if !missing_is_error => continue,
            (None, None) => {
                errors.invalid(
                    &format!("$.properties.parameters[{i}]"),
                    None,
                    format!(
                        "parameter '{}' has no default and no value; give one with --set {}=VALUE or in a live-pipeline file",
                        d.name, d.name
                    ),
                );
                continue;
            }
        };
        resolved.insert(d.name.clone(), value);
    }
    resolved
}

fn origin_path(v: &ParameterValue) -> String {
    match v.origin {
        ValueOrigin::CommandLine => format!("--set {}", v.name),
        ValueOrigin::LivePipeline => format!("live pipeline: parameter '{}'", v.name),
    }
}

/// Names the runtime resolves itself, and what they resolve to.
pub struct SystemVariables<'a> {
    /// Every declared parameter name: a declared parameter without a value was already
    /// reported, so its references are left in place without a second error.
    pub declared: &'a [ParameterDeclaration],
    /// `${System.TopologyName}` (LVA: `${System.GraphTopologyName}`).
    pub topology_name: &'a str,
    /// `${System.PipelineName}` (LVA: `${System.GraphInstanceName}`).
    pub pipeline_name: &'a str,
    /// Bytes substitution may still add to the topology (from [`MAX_EXPANSION`]).
    pub budget: std::cell::Cell<usize>,
}

/// Replaces `${name}` references in every string below `value`, recording unknown names.
/// Per-clip variables (`System.Runtime.DateTime`, `System.Runtime.PreciseDateTime`, LVA's
/// `System.DateTime`) are left in place, normalised to their AVA spelling, for the sink.
pub fn substitute(
    value: &mut Value,
    path: &str,
    node: Option<&str>,
    params: &BTreeMap<String, String>,
    system: &SystemVariables<'_>,
    errors: &ErrorSink,
) {
    match value {
        Value::String(s) if s.contains(RESERVED) => errors.invalid(
            path,
            node,
            "holds the reserved character U+E000 (private use); remove it",
        ),
        Value::String(s) if s.contains("${") => match substitute_str(s, params, system) {
            Ok(out) => *s = out,
            Err(why) => {
                errors.invalid(path, node, why);
                *s = super::props::FAILED_MARK.to_string();
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), node, params, system, errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute(item, &format!("{path}.{key}"), node, params, system, errors);
            }
        }
        _ => {}
    }
}

fn substitute_str(
    text: &str,
    params: &BTreeMap<String, String>,
    system: &SystemVariables<'_>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("'{}' has '${{' without a closing '}}'", shorten(text)))?;
        let name = &after[..end];
        out.push_str(&resolve_name(name, params, system)?);
        if out.len() > MAX_EXPANDED_STRING {
            return Err(format!(
                "'{}' expands to more than {} KiB",
                shorten(text),
                MAX_EXPANDED_STRING / 1024
            ));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let added = out.len().saturating_sub(text.len());
    let left = system.budget.get();
    if added > left {
        system.budget.set(0);
        return Err(format!(
            "substitution would make the topology grow by more than {} MiB; this string and the rest are left unexpanded",
            MAX_EXPANSION / (1024 * 1024)
        ));
    }
    system.budget.set(left - added);
    Ok(out)
}

fn resolve_name(
    name: &str,
    params: &BTreeMap<String, String>,
    system: &SystemVariables<'_>,
) -> Result<String, String> {
    if let Some(value) = params.get(name) {
        if value.contains(RESERVED) {
            return Err(format!(
                "the value of parameter '{name}' holds the reserved character U+E000 (private use)"
            ));
        }
        // Inserted as it is: a value holding `${` stays a plain value.
        return Ok(value.clone());
    }
    if system.declared.iter().any(|d| d.name == name) {
        return Ok(format!("{UNBOUND_MARK}{name}}}"));
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "system.topologyname" | "system.graphtopologyname" => Ok(system.topology_name.to_string()),
        "system.pipelinename" | "system.graphinstancename" => Ok(system.pipeline_name.to_string()),
        "system.runtime.datetime" | "system.datetime" => {
            Ok(format!("{DEFERRED_VARIABLE_MARK}DateTime}}"))
        }
        "system.runtime.precisedatetime" => {
            Ok(format!("{DEFERRED_VARIABLE_MARK}PreciseDateTime}}"))
        }
        _ if lower.starts_with("system.") => Err(format!(
            "unknown system variable '${{{name}}}' (known: System.TopologyName, System.PipelineName, System.Runtime.DateTime, System.Runtime.PreciseDateTime)"
        )),
        _ => Err(format!(
            "'${{{}}}' refers to a parameter that is not declared in properties.parameters",
            shorten(name)
        )),
    }
}

/// A file-name pattern with its per-clip variables as markers, whether they came through
/// [`substitute`] or are written out (`${System.Runtime.DateTime}`, e.g. in a parameter's value).
pub fn deferred_form(pattern: &str) -> String {
    pattern.replace("${System.Runtime.", DEFERRED_VARIABLE_MARK)
}

/// Renders the per-clip variables left by [`substitute`] for a clip starting at `start`:
/// `yyyyMMddTHHmmssZ` and `yyyyMMddTHHmmss.fffZ`, UTC (ava-spec §1.2).
pub fn render_runtime_variables(pattern: &str, start: crate::media::time::MediaTime) -> String {
    let ts = jiff::Timestamp::from_nanosecond(i128::from(start.as_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    deferred_form(pattern)
        .replace(
            &format!("{DEFERRED_VARIABLE_MARK}DateTime}}"),
            &ts.strftime("%Y%m%dT%H%M%SZ").to_string(),
        )
        .replace(
            &format!("{DEFERRED_VARIABLE_MARK}PreciseDateTime}}"),
            &ts.strftime("%Y%m%dT%H%M%S%.3fZ").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::time::MediaTime;

    fn system() -> SystemVariables<'static> {
        SystemVariables {
            declared: &[],
            topology_name: "topo",
            pipeline_name: "pipe",
            budget: std::cell::Cell::new(MAX_EXPANSION),
        }
    }

    #[test]
    fn expansion_is_bounded_and_errors_quote_values_short() {
        let big = "x".repeat(40 * 1024);
        let params = BTreeMap::from([("big".to_string(), big)]);
        let two = substitute_str("${big}${big}", &params, &system()).expect_err("too long");
        assert!(two.contains("expands to more than 64 KiB"), "{two}");
        let sys = system();
        let mut refused = None;
        for _ in 0..200 {
            if let Err(e) = substitute_str("${big}", &params, &sys) {
                refused = Some(e);
                break;
            }
        }
        let refused = refused.expect("the budget runs out");
        assert!(refused.contains("more than 4 MiB"), "{refused}");
        let open = format!("{}${{open", "y".repeat(10_000));
        let e = substitute_str(&open, &params, &system()).expect_err("unterminated");
        assert!(e.len() < 300, "{} bytes of error", e.len());
    }

    #[test]
    fn substitutes_parameters_and_system_variables() {
        let params = BTreeMap::from([("out".to_string(), "x".to_string())]);
        let got = substitute_str(
            "a-${System.TopologyName}-${System.PipelineName}-${out}-${System.Runtime.DateTime}",
            &params,
            &system(),
        );
        let written = |r: Result<String, String>| r.map(|s| super::super::props::as_written(&s));
        assert_eq!(
            written(got).as_deref(),
            Ok("a-topo-pipe-x-${System.Runtime.DateTime}")
        );
        let lva = substitute_str("${System.DateTime}", &params, &system());
        assert_eq!(written(lva).as_deref(), Ok("${System.Runtime.DateTime}"));
    }

    #[test]
    fn reports_unknown_and_unterminated() {
        let params = BTreeMap::new();
        assert!(substitute_str("${nope}", &params, &system()).is_err());
        assert!(substitute_str("${System.Nope}", &params, &system()).is_err());
        assert!(substitute_str("abc${open", &params, &system()).is_err());
    }

    #[test]
    fn a_value_holding_dollar_brace_stays_a_plain_value() {
        let params = BTreeMap::from([("password".to_string(), "pa${ss}word".to_string())]);
        assert_eq!(
            substitute_str("${password}", &params, &system()).as_deref(),
            Ok("pa${ss}word")
        );
        let sneaky = BTreeMap::from([("p".to_string(), "a\u{E000}unbound:x}".to_string())]);
        assert!(substitute_str("${p}", &sneaky, &system()).is_err());
    }

    #[test]
    fn renders_clip_times() {
        let start = MediaTime::from_millis(1_582_392_720_123); // 2020-02-22T17:32:00.123Z
        let out = render_runtime_variables(
            "a-${System.Runtime.DateTime}-${System.Runtime.PreciseDateTime}",
            start,
        );
        assert_eq!(out, "a-20200222T173200Z-20200222T173200.123Z");
    }
}
