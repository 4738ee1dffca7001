//! What every node running a filter component shares: hot swap and the `ModuleFault` report of
//! a failed call. A new module comes from a new version of the module file (watched) or from the
//! control API (`livePipelineModuleSwap`, see [`super::module_swap`]). It is read and compiled
//! on a thread of its own, so that compiling a large component (a Python one is ~30 MB) never
//! holds the node's thread, and swapped into the node's [`FilterHost`] between two calls once
//! ready: reported as `ModuleSwapped`, or `ModuleLoadError` while the old one keeps running.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::json;

use super::module_swap::{Registration, SwapError, SwapRequest, Swapped};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;
use crate::wasm::filter::FilterHost;
use crate::wasm::module::{LoadedModule, ModuleSource, World};

type Reply = tokio::sync::oneshot::Sender<Result<Swapped, SwapError>>;

/// A module being loaded off the node's thread.
struct Loading {
    source: ModuleSource,
    result: mpsc::Receiver<Result<Arc<LoadedModule>>>,
    /// Who asked, through the control API.
    reply: Option<Reply>,
}

/// A node's module source, the version of its file in use, and the swap in progress.
pub struct ModuleWatch {
    source: ModuleSource,
    modified: Option<SystemTime>,
    loading: Option<Loading>,
    registration: Registration,
}

impl ModuleWatch {
    /// Watches `source` from its current version on, for `node` of `pipeline`.
    pub fn new(source: ModuleSource, pipeline: &str, node: &str) -> Self {
        Self {
            modified: source.modified(),
            source,
            loading: None,
            registration: super::module_swap::register(pipeline, node),
        }
    }

    /// Swaps a module that finished loading into `host`, or starts loading one (a new version
    /// of the file, or one the control API asked for); reports as `subject` at media time `at`.
    pub fn check(
        &mut self,
        host: &mut FilterHost,
        subject: &str,
        events: &EventBus,
        at: MediaTime,
    ) {
        if let Some(loading) = &self.loading {
            let result = match loading.result.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return,
                Ok(result) => result,
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err(anyhow::anyhow!("the module's loader stopped"))
                }
            };
            if let Some(loading) = self.loading.take() {
                self.finish(loading, result, host, subject, events, at);
            }
            return;
        }
        if let Ok(SwapRequest { source, reply }) = self.registration.requests.try_recv() {
            self.start(source, Some(reply));
            return;
        }
        let modified = self.source.modified();
        if modified.is_none() || modified == self.modified {
            return;
        }
        self.modified = modified;
        self.start(self.source.clone(), None);
    }

    fn start(&mut self, source: ModuleSource, reply: Option<Reply>) {
        let (tx, rx) = mpsc::channel();
        let loader = source.clone();
        let spawned = std::thread::Builder::new()
            .name("module load".into())
            .spawn(move || {
                let _ = tx.send(loader.load());
            });
        if let Err(e) = spawned {
            if let Some(reply) = reply {
                let _ = reply.send(Err(SwapError::Refused(format!("no loader thread: {e}"))));
            }
            return;
        }
        self.loading = Some(Loading {
            source,
            result: rx,
            reply,
        });
    }

    fn finish(
        &mut self,
        loading: Loading,
        result: Result<Arc<LoadedModule>>,
        host: &mut FilterHost,
        subject: &str,
        events: &EventBus,
        at: MediaTime,
    ) {
        let previous_hash = host.module().hash.clone();
        let outcome = result.and_then(|m| host.swap(m));
        let event = match &outcome {
            Ok(()) => {
                let m = host.module();
                Event::new(
                    EventClass::Operational,
                    "ModuleSwapped",
                    subject.to_string(),
                    at,
                    json!({"module": m.origin, "hash": m.hash, "previousHash": previous_hash,
                           "contract": m.contract.version()}),
                )
            }
            Err(e) => Event::new(
                EventClass::Diagnostics,
                "ModuleLoadError",
                subject.to_string(),
                at,
                json!({"detail": format!("{e:#}; the previous module keeps running")}),
            ),
        };
        events.emit(event);
        if outcome.is_ok() && loading.reply.is_some() {
            // The control API's module is watched from now on.
            self.modified = loading.source.modified();
            self.source = loading.source;
        }
        if let Some(reply) = loading.reply {
            let m = host.module();
            let _ = reply.send(match outcome {
                Ok(()) => Ok(Swapped {
                    module: m.origin.clone(),
                    hash: m.hash.clone(),
                    previous_hash,
                    world: match m.world {
                        World::Frame => "frame-filter",
                        World::Event => "event-filter",
                    },
                    contract: m.contract.version(),
                }),
                Err(e) => Err(SwapError::Refused(format!("{e:#}"))),
            });
        }
    }
}

/// Reports a failed call of `host`'s module on the frame or event at `at`; `time_key` names
/// what `at` was (`frameTime`, `eventTime`).
pub fn report_fault(
    host: &FilterHost,
    subject: &str,
    events: &EventBus,
    at: MediaTime,
    time_key: &str,
    why: String,
) {
    let m = host.module();
    let mut body = json!({"module": m.origin, "hash": m.hash, "detail": why});
    body[time_key] = json!(at.to_string());
    events.emit(Event::new(
        EventClass::Diagnostics,
        "ModuleFault",
        subject.to_string(),
        at,
        body,
    ));
}
