//! AVA's module methods (ava-spec §9): their names (AVA's and LVA's), how a call's payload is
//! read, and the `{status, payload}` answers with OData-style errors.

use serde_json::{Value, json};

use crate::topology::TopologyError;

/// A module method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `pipelineTopologyList` (LVA `GraphTopologyList`).
    TopologyList,
    /// `pipelineTopologyGet`.
    TopologyGet,
    /// `pipelineTopologySet`.
    TopologySet,
    /// `pipelineTopologyDelete`.
    TopologyDelete,
    /// `livePipelineList` (LVA `GraphInstanceList`).
    PipelineList,
    /// `livePipelineGet`.
    PipelineGet,
    /// `livePipelineSet`.
    PipelineSet,
    /// `livePipelineActivate`.
    PipelineActivate,
    /// `livePipelineDeactivate`.
    PipelineDeactivate,
    /// `livePipelineDelete`.
    PipelineDelete,
    /// `livePipelineModuleSwap` (Vigil's own): a running node's filter component replaced.
    ModuleSwap,
}

/// Every method with its AVA and LVA names.
const NAMES: &[(Method, &str, &str)] = &[
    (
        Method::TopologyList,
        "pipelineTopologyList",
        "GraphTopologyList",
    ),
    (
        Method::TopologyGet,
        "pipelineTopologyGet",
        "GraphTopologyGet",
    ),
    (
        Method::TopologySet,
        "pipelineTopologySet",
        "GraphTopologySet",
    ),
    (
        Method::TopologyDelete,
        "pipelineTopologyDelete",
        "GraphTopologyDelete",
    ),
    (
        Method::PipelineList,
        "livePipelineList",
        "GraphInstanceList",
    ),
    (Method::PipelineGet, "livePipelineGet", "GraphInstanceGet"),
    (Method::PipelineSet, "livePipelineSet", "GraphInstanceSet"),
    (
        Method::PipelineActivate,
        "livePipelineActivate",
        "GraphInstanceActivate",
    ),
    (
        Method::PipelineDeactivate,
        "livePipelineDeactivate",
        "GraphInstanceDeactivate",
    ),
    (
        Method::PipelineDelete,
        "livePipelineDelete",
        "GraphInstanceDelete",
    ),
    // No LVA name: the same one.
    (
        Method::ModuleSwap,
        "livePipelineModuleSwap",
        "livePipelineModuleSwap",
    ),
];

/// API versions AVA's methods accept, and LVA's.
const AVA_VERSIONS: &[&str] = &["1.0", "1.1"];
const LVA_VERSIONS: &[&str] = &["1.0", "2.0"];

impl Method {
    /// The method called `name` (AVA's or LVA's name, any case), and whether it is LVA's.
    pub fn from_name(name: &str) -> Option<(Method, bool)> {
        NAMES.iter().find_map(|(m, ava, lva)| {
            if ava.eq_ignore_ascii_case(name) {
                Some((*m, false))
            } else if lva.eq_ignore_ascii_case(name) {
                Some((*m, true))
            } else {
                None
            }
        })
    }

    /// AVA's name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(m, _, _)| *m == self)
            .map(|(_, ava, _)| *ava)
            .unwrap_or("")
    }
}

/// A call, read.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The payload (a JSON object).
    pub payload: serde_json::Map<String, Value>,
}

impl Request {
    /// Reads a call of `name` with `payload`; the error is the answer to send.
    pub fn parse(name: &str, payload: &[u8]) -> Result<Self, Response> {
        let Some((method, lva)) = Method::from_name(name) else {
            return Err(Response::error(
                501,
                "NotImplemented",
                &format!(
                    "unknown method '{name}'; methods: {}",
                    NAMES
                        .iter()
                        .map(|(_, a, _)| *a)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Vec::new(),
            ));
        };
        let text = if payload.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            payload
        };
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            Response::error(
                400,
                "BadRequest",
                &format!("the payload is not JSON: {e}"),
                Vec::new(),
            )
        })?;
        let Value::Object(payload) = value else {
            return Err(Response::error(
                400,
                "BadRequest",
                "the payload must be a JSON object",
                Vec::new(),
            ));
        };
        let supported = if lva { LVA_VERSIONS } else { AVA_VERSIONS };
        if let Some(version) = payload.get("@apiVersion") {
            let text = version.as_str().unwrap_or_default();
            if !supported.contains(&text) {
                return Err(Response::error(
                    400,
                    "InvalidVersion",
                    "The request is invalid",
                    vec![Detail::new(
                        "ApiVersionNotSupported",
                        format!(
                            "The API version '{}' is not supported. Supported version(s): {}.",
                            version
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| version.to_string()),
                            supported.join(", ")
                        ),
                    )],
                ));
            }
        }
        Ok(Self { method, payload })
    }

    /// The payload's `name`; the error is a 400 naming what is missing.
    pub fn name(&self) -> Result<String, Response> {
        match self.payload.get("name") {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(Response::error(
                400,
                "BadRequest",
                &format!(
                    "{}: the payload needs a 'name' (a non-empty string)",
                    self.method.name()
                ),
                vec![Detail::at(
                    "InvalidResource",
                    "required property 'name' is missing",
                    "$.name",
                )],
            )),
        }
    }
}

/// One entry of an error's `details`.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    /// AVA's detail code, e.g. `PipelineValidationError`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// The JSON path of the offending value, when there is one.
    pub target: Option<String>,
}

impl Detail {
    /// A detail without a path.
    pub fn new(code: &str, message: String) -> Self {
        Self {
            code: code.into(),
            message,
            target: None,
        }
    }

    /// A detail about the value at `target`.
    pub fn at(code: &str, message: &str, target: &str) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            target: Some(target.into()),
        }
    }

    /// A validation error of a topology or live pipeline: its path, node and message.
    pub fn validation(e: &TopologyError) -> Self {
        Self {
            code: "PipelineValidationError".into(),
            message: e.to_string(),
            target: (!e.path.is_empty()).then(|| e.path.clone()),
        }
    }
}

/// A method's answer: `{"status": <int>, "payload": <json|null>}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// AVA's status code.
    pub status: u16,
    /// The payload.
    pub payload: Value,
}

impl Response {
    /// Success with a payload.
    pub fn ok(status: u16, payload: Value) -> Self {
        Self { status, payload }
    }

    /// An OData-style error.
    pub fn error(status: u16, code: &str, message: &str, details: Vec<Detail>) -> Self {
        let mut error = json!({"code": code, "message": message});
        if !details.is_empty() {
            error["details"] = Value::Array(
                details
                    .into_iter()
                    .map(|d| {
                        let mut v = json!({"code": d.code, "message": d.message});
                        if let Some(t) = d.target {
                            v["target"] = json!(t);
                        }
                        v
                    })
                    .collect(),
            );
        }
        Self {
            status,
            payload: json!({ "error": error }),
        }
    }

    /// 404: no such resource.
    pub fn not_found(what: &str, name: &str) -> Self {
        Self::error(
            404,
            "NotFound",
            &format!("{what} '{name}' was not found"),
            Vec::new(),
        )
    }

    /// 409 with one detail.
    pub fn conflict(detail_code: &str, message: String) -> Self {
        Self::error(
            409,
            "Conflict",
            &message,
            vec![Detail::new(detail_code, message.clone())],
        )
    }

    /// 400 with the validation errors found.
    pub fn invalid(message: &str, errors: &[TopologyError]) -> Self {
        Self::error(
            400,
            "BadRequest",
            message,
            errors.iter().map(Detail::validation).collect(),
        )
    }

    /// 413: a method payload of `size` (e.g. "3000000 bytes") over `--max-method-kib`.
    pub fn payload_too_large(size: &str) -> Self {
        let limit = crate::limits::get().method_bytes;
        Self::error(
            413,
            "PayloadTooLarge",
            &format!(
                "a payload of {size} is over the {} KiB limit of a method call (--max-method-kib)",
                limit >> 10
            ),
            Vec::new(),
        )
    }

    /// 500: the service failed (e.g. it could not write the data directory).
    pub fn internal(message: String) -> Self {
        Self::error(500, "InternalServerError", &message, Vec::new())
    }

    /// The answer as `{"status", "payload"}`.
    pub fn to_json(&self) -> Value {
        json!({"status": self.status, "payload": self.payload})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_payloads_are_checked() {
        assert_eq!(
            Method::from_name("livePipelineActivate"),
            Some((Method::PipelineActivate, false))
        );
        assert_eq!(
            Method::from_name("GraphTopologySet"),
            Some((Method::TopologySet, true))
        );
        assert_eq!(
            Request::parse("pipelineTopologyDrop", b"{}")
                .err()
                .map(|r| r.status),
            Some(501)
        );
        assert_eq!(
            Request::parse("livePipelineGet", b"[1]")
                .err()
                .map(|r| r.status),
            Some(400)
        );
        let old = Request::parse("livePipelineList", br#"{"@apiVersion": "2.0"}"#).err();
        assert_eq!(
            old.map(|r| r.payload["error"]["details"][0]["code"].clone()),
            Some(json!("ApiVersionNotSupported"))
        );
        assert!(Request::parse("GraphInstanceList", br#"{"@apiVersion": "2.0"}"#).is_ok());
        assert!(Request::parse("livePipelineList", b"").is_ok());
    }
}
