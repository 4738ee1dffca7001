//! `livePipelineModuleSwap`, Vigil's own method: points a running node's filter component at a
//! new module and answers once the node runs it (or refused it, the old one still running).
//!
//! Payload: `{"name": PIPELINE, "properties": {"nodeName": NODE, "module": PATH_OR_BUILTIN}}`.
//! The swap lasts until the pipeline is deactivated, a restart after a crash included: its
//! topology still names the module it starts with (set the topology to make a change last). A
//! file swapped in is watched from then on.

use std::time::Duration;

use serde_json::{Value, json};

use super::Service;
use super::methods::{Detail, Request, Response};
use super::registry::PipelineState;
use crate::nodes::module_swap::{SwapError, remember, request};
use crate::wasm::module::ModuleSource;

/// Longest the method waits for the node: compiling a large component on a loaded machine.
pub const SWAP_TIMEOUT: Duration = Duration::from_secs(300);

impl Service {
    /// Runs `livePipelineModuleSwap`.
    pub async fn module_swap(&self, call: &Request) -> Response {
        let name = match call.name() {
            Ok(n) => n,
            Err(answer) => return answer,
        };
        let property = |key: &str| {
            call.payload
                .get("properties")
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    Response::error(
                        400,
                        "BadRequest",
                        &format!(
                            "livePipelineModuleSwap: the payload needs properties.{key} (a non-empty string)"
                        ),
                        vec![Detail::at(
                            "InvalidResource",
                            &format!("required property '{key}' is missing"),
                            &format!("$.properties.{key}"),
                        )],
                    )
                })
        };
        let (node, module) = match (property("nodeName"), property("module")) {
            (Ok(n), Ok(m)) => (n, m),
            (Err(answer), _) | (_, Err(answer)) => return answer,
        };
        let state = self.registry().pipelines.get(&name).map(|p| p.state);
        match state {
            None => return Response::not_found("live pipeline", &name),
            Some(PipelineState::Active) => {}
            Some(other) => {
                return Response::conflict(
                    "OperationNotAllowedInState",
                    format!(
                        "live pipeline '{name}' is {other:?}; a module is swapped while it is Active"
                    ),
                );
            }
        }
        let source = ModuleSource::parse(&module);
        let answer = match request(&name, &node, source.clone()) {
            Ok(a) => a,
            Err(e) => return Response::error(404, "NotFound", &e.to_string(), Vec::new()),
        };
        match tokio::time::timeout(SWAP_TIMEOUT, answer).await {
            Ok(Ok(Ok(done))) => {
                remember(&name, &node, source);
                Response::ok(
                    200,
                    json!({"name": name, "properties": {
                    "nodeName": node, "module": done.module, "hash": done.hash,
                    "previousHash": done.previous_hash, "world": done.world,
                    "contract": done.contract}}),
                )
            }
            Ok(Ok(Err(e @ SwapError::Refused(_)))) => Response::error(
                400,
                "InvalidModule",
                &e.to_string(),
                vec![Detail::at(
                    "InvalidModule",
                    &e.to_string(),
                    "$.properties.module",
                )],
            ),
            Ok(Ok(Err(e))) => Response::error(404, "NotFound", &e.to_string(), Vec::new()),
            Ok(Err(_)) => {
                Response::error(404, "NotFound", &SwapError::Gone.to_string(), Vec::new())
            }
            Err(_) => Response::error(
                504,
                "Timeout",
                &format!(
                    "node '{node}' did not finish the swap within {} s; it will still swap once the module is ready",
                    SWAP_TIMEOUT.as_secs()
                ),
                Vec::new(),
            ),
        }
    }
}
