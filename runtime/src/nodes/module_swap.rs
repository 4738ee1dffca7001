//! Swaps asked for through the control API (`livePipelineModuleSwap`): every running node with a
//! filter component registers here under its pipeline and node name; a request reaches the node's
//! [`super::module_watch::ModuleWatch`], which loads the module off the node's thread and swaps it
//! between two calls, then answers. Process-wide, as the WebAssembly engine is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::wasm::module::ModuleSource;

/// What a swap did: the module now running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swapped {
    /// Where it came from.
    pub module: String,
    /// Its content hash.
    pub hash: String,
    /// The hash of the module it replaced.
    pub previous_hash: String,
    /// `frame-filter` or `event-filter`.
    pub world: &'static str,
    /// The contract version it was built against.
    pub contract: &'static str,
}

/// Why a swap was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwapError {
    /// No running node of that name runs a module.
    #[error(
        "pipeline '{pipeline}' has no running node '{node}' with a module (nodes with one: {known})"
    )]
    NoNode {
        /// The pipeline.
        pipeline: String,
        /// The node asked for.
        node: String,
        /// The pipeline's nodes that run a module, comma-separated (empty: none running).
        known: String,
    },
    /// The new module did not load or start; the old one keeps running.
    #[error("{0}; the previous module keeps running")]
    Refused(String),
    /// The node went away before it answered (its pipeline stopped).
    #[error("the node stopped before the swap was made")]
    Gone,
}

/// A request to a node: the module to run, and where to answer.
pub struct SwapRequest {
    /// The new module.
    pub source: ModuleSource,
    /// The answer.
    pub reply: tokio::sync::oneshot::Sender<Result<Swapped, SwapError>>,
}

struct Slot {
    id: u64,
    requests: mpsc::Sender<SwapRequest>,
}

static BOARD: Mutex<Option<HashMap<(String, String), Slot>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A node's place on the board; leaving it (drop) takes the node off.
pub struct Registration {
    key: (String, String),
    id: u64,
    /// Requests for this node.
    pub requests: mpsc::Receiver<SwapRequest>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registration({}/{})", self.key.0, self.key.1)
    }
}

/// Puts `node` of `pipeline` on the board (replacing an earlier registration of the same node).
pub fn register(pipeline: &str, node: &str) -> Registration {
    let (tx, rx) = mpsc::channel();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let key = (pipeline.to_string(), node.to_string());
    let mut board = BOARD.lock().unwrap_or_else(|p| p.into_inner());
    board
        .get_or_insert_with(HashMap::new)
        .insert(key.clone(), Slot { id, requests: tx });
    Registration {
        key,
        id,
        requests: rx,
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut board = BOARD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = board.as_mut()
            && map.get(&self.key).is_some_and(|s| s.id == self.id)
        {
            map.remove(&self.key);
        }
    }
}

/// Asks `node` of `pipeline` to run `source`; the answer arrives on the returned receiver once
/// the node has swapped (or refused).
pub fn request(
    pipeline: &str,
    node: &str,
    source: ModuleSource,
) -> Result<tokio::sync::oneshot::Receiver<Result<Swapped, SwapError>>, SwapError> {
    let board = BOARD.lock().unwrap_or_else(|p| p.into_inner());
    let key = (pipeline.to_string(), node.to_string());
    let no_node = || {
        let mut known: Vec<&str> = board
            .iter()
            .flat_map(|m| m.keys())
            .filter(|(p, _)| p == pipeline)
            .map(|(_, n)| n.as_str())
            .collect();
        known.sort_unstable();
        SwapError::NoNode {
            pipeline: pipeline.to_string(),
            node: node.to_string(),
            known: known.join(", "),
        }
    };
    let Some(slot) = board.as_ref().and_then(|m| m.get(&key)) else {
        return Err(no_node());
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    slot.requests
        .send(SwapRequest { source, reply })
        .map_err(|_| no_node())?;
    Ok(answer)
}

/// Modules swapped in through the control API, by (pipeline, node): a pipeline the supervisor
/// restarts after a crash runs them again, not the modules its topology names.
static SWAPPED: Mutex<Option<HashMap<(String, String), ModuleSource>>> = Mutex::new(None);

/// Remembers that `node` of `pipeline` now runs `source`.
pub fn remember(pipeline: &str, node: &str, source: ModuleSource) {
    let mut swapped = SWAPPED.lock().unwrap_or_else(|p| p.into_inner());
    swapped
        .get_or_insert_with(HashMap::new)
        .insert((pipeline.to_string(), node.to_string()), source);
}

/// The modules swapped into `pipeline`'s nodes since it was activated: (node, module).
pub fn swapped(pipeline: &str) -> Vec<(String, ModuleSource)> {
    let swapped = SWAPPED.lock().unwrap_or_else(|p| p.into_inner());
    let mut list: Vec<(String, ModuleSource)> = swapped
        .iter()
        .flat_map(|m| m.iter())
        .filter(|((p, _), _)| p == pipeline)
        .map(|((_, n), s)| (n.clone(), s.clone()))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// Forgets `pipeline`'s swaps (it was deactivated: its next activation runs its topology's
/// modules).
pub fn forget(pipeline: &str) {
    let mut swapped = SWAPPED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = swapped.as_mut() {
        m.retain(|(p, _), _| p != pipeline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_registered_node_and_only_while_it_runs() {
        let reg = register("swap-test-p", "filter");
        let _answer =
            request("swap-test-p", "filter", ModuleSource::parse("x.wasm")).expect("sent");
        assert!(reg.requests.try_recv().is_ok());
        match request("swap-test-p", "other", ModuleSource::parse("x.wasm")) {
            Err(SwapError::NoNode { known, .. }) => assert_eq!(known, "filter"),
            other => panic!("{other:?}"),
        }
        // A newer registration of the same node replaces the old; dropping the old keeps it.
        let newer = register("swap-test-p", "filter");
        drop(reg);
        assert!(request("swap-test-p", "filter", ModuleSource::parse("y.wasm")).is_ok());
        assert!(newer.requests.try_recv().is_ok());
        drop(newer);
        assert!(matches!(
            request("swap-test-p", "filter", ModuleSource::parse("y.wasm")),
            Err(SwapError::NoNode { .. })
        ));
    }

    #[test]
    fn swaps_are_remembered_per_pipeline_until_forgotten() {
        remember("swap-keep-a", "filter", ModuleSource::parse("new.wasm"));
        remember("swap-keep-a", "motion", ModuleSource::parse("motion.wasm"));
        remember("swap-keep-b", "filter", ModuleSource::parse("other.wasm"));
        remember("swap-keep-a", "filter", ModuleSource::parse("newer.wasm"));
        let names = |p: &str| -> Vec<String> {
            swapped(p)
                .into_iter()
                .map(|(n, s)| format!("{n}={s:?}"))
                .collect()
        };
        assert_eq!(
            names("swap-keep-a"),
            [
                format!("filter={:?}", ModuleSource::parse("newer.wasm")),
                format!("motion={:?}", ModuleSource::parse("motion.wasm")),
            ]
        );
        forget("swap-keep-a");
        assert!(swapped("swap-keep-a").is_empty());
        assert_eq!(swapped("swap-keep-b").len(), 1);
        forget("swap-keep-b");
    }
}
