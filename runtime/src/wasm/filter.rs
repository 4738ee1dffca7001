//! Running one node's component: a sandboxed instance with a call deadline and a memory limit.
//! A trap, an overrun deadline or a memory fault costs that call only: the instance is dropped
//! and the next call gets a fresh one (its `init` runs again); after three faults in a row calls
//! are skipped for a backoff that doubles up to a minute. `swap` replaces the module between two
//! calls and keeps the old one when the new one fails to start. Components of either contract
//! version run here: a 0.2.0 one as a `filter` resource created from the typed configuration, a
//! 0.1.0 one through its `init` and bare functions, its values converted by [`super::v1`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::{Event, Frame, FrameRequest, Inference, v1, v2};
use super::convert::{FilterConfig, config_text, config_typed};
use super::engine::{EPOCH_TICK, engine};
use super::module::LoadedModule;
use super::state::GuestState;
use super::worlds::Prepared;

/// Per-node limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest a single call may run.
    pub call_deadline: Duration,
    /// Longest instantiation plus `init` may run. Apart from the call deadline: it includes
    /// the host's own instantiation work, which a loaded machine can slow far past a call's
    /// budget, and it runs once per instance, not per frame.
    pub init_deadline: Duration,
    /// Most linear memory an instance may have. The default, 128 MiB, leaves room for a
    /// JavaScript guest's garbage: ComponentizeJS's collector lets its heap reach ~70 MiB
    /// before it collects (measured with a no-op frame filter at 320×180).
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_deadline: Duration::from_millis(250),
            init_deadline: Duration::from_secs(5),
            memory_bytes: 128 << 20,
        }
    }
}

/// What a call gave.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The guest answered.
    Done(T),
    /// Not called: the module is backing off after repeated faults.
    Skipped,
    /// The call failed (trap, deadline, memory); the words say which.
    Fault(String),
}

enum Bound {
    FrameV1(v1::frame::FrameFilter),
    EventV1(v1::event::EventFilter),
    /// The bindings and the node's `filter` resource.
    FrameV2(v2::frame::FrameFilter, ResourceAny),
    EventV2(v2::event::EventFilter, ResourceAny),
}

struct Live {
    store: Store<GuestState>,
    bound: Bound,
}

/// A node's component and its current instance.
pub struct FilterHost {
    node: String,
    module: Arc<LoadedModule>,
    config: FilterConfig,
    limits: Limits,
    live: Option<Live>,
    request: Option<FrameRequest>,
    failures: u32,
    backoff_until_ns: i64,
    calls: Option<crate::bus::metrics::Histogram>,
}

const FAULTS_BEFORE_BACKOFF: u32 = 3;
const MAX_BACKOFF_SECS: i64 = 60;

impl FilterHost {
    /// Instantiates `module` for `node` and runs its `init` with `config`.
    pub fn new(
        node: &str,
        module: Arc<LoadedModule>,
        config: FilterConfig,
        limits: Limits,
    ) -> Result<Self> {
        let mut host = Self {
            node: node.to_string(),
            module,
            config,
            limits,
            live: None,
            request: None,
            failures: 0,
            backoff_until_ns: i64::MIN,
            calls: None,
        };
        let (live, request) = host.instantiate(&host.module.clone())?;
        host.live = Some(live);
        host.request = request;
        Ok(host)
    }

    /// Times every call into the component in `histogram` (seconds).
    pub fn time_calls(&mut self, histogram: crate::bus::metrics::Histogram) {
        self.calls = Some(histogram);
    }

    /// The module running now.
    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    /// What a frame filter asked for in `init`.
    pub fn frame_request(&self) -> Option<FrameRequest> {
        self.request
    }

    /// Instantiates `module` and runs its `init`, off any tokio runtime (see
    /// [`super::sandbox::off_runtime`]).
    fn instantiate(&self, module: &Arc<LoadedModule>) -> Result<(Live, Option<FrameRequest>)> {
        let (node, config, limits, module) = (
            self.node.clone(),
            self.config.clone(),
            self.limits,
            module.clone(),
        );
        super::sandbox::off_runtime(move || instantiate(&node, &config, limits, &module))
    }

    /// Replaces the module. The new one is instantiated and initialised first; if that fails,
    /// the old one keeps running and the error is returned.
    pub fn swap(&mut self, module: Arc<LoadedModule>) -> Result<()> {
        if module.world != self.module.world {
            bail!(
                "{} implements the {:?} world, this node needs {:?}",
                module.origin,
                module.world,
                self.module.world
            );
        }
        let (live, request) = self.instantiate(&module)?;
        self.live = Some(live);
        self.request = request;
        self.module = module;
        self.failures = 0;
        self.backoff_until_ns = i64::MIN;
        Ok(())
    }

    /// Calls `process-frame`.
    pub fn process_frame(&mut self, frame: Frame) -> Outcome<Vec<Inference>> {
        self.call(frame.timestamp_ns, move |live| match &live.bound {
            Bound::FrameV2(f, filter) => f
                .vigil_filter_frame_processor()
                .filter()
                .call_process_frame(&mut live.store, *filter, &frame),
            Bound::FrameV1(f) => match super::v1::old_frame(frame) {
                Some(old) => f
                    .call_process_frame(&mut live.store, &old)
                    .map(|found| found.into_iter().map(super::v1::inference).collect()),
                None => Ok(Vec::new()),
            },
            Bound::EventV1(_) | Bound::EventV2(..) => {
                Err(wasmtime::Error::msg("not a frame filter"))
            }
        })
    }

    /// Calls `process-event`.
    pub fn process_event(&mut self, event: Event) -> Outcome<Vec<Event>> {
        self.call(event.timestamp_ns, move |live| match &live.bound {
            Bound::EventV2(f, filter) => f
                .vigil_filter_event_processor()
                .filter()
                .call_process_event(&mut live.store, *filter, &event),
            Bound::EventV1(f) => f
                .call_process_event(&mut live.store, &super::v1::old_event(event))
                .map(|out| out.into_iter().map(super::v1::event).collect()),
            Bound::FrameV1(_) | Bound::FrameV2(..) => {
                Err(wasmtime::Error::msg("not an event filter"))
            }
        })
    }

    fn call<T>(
        &mut self,
        now_ns: i64,
        f: impl FnOnce(&mut Live) -> wasmtime::Result<T> + Send,
    ) -> Outcome<T>
    where
        T: Send,
    {
        if now_ns < self.backoff_until_ns {
            return Outcome::Skipped;
        }
        if self.live.is_none() {
            match self.instantiate(&self.module.clone()) {
                Ok((live, request)) => {
                    self.live = Some(live);
                    self.request = request;
                }
                Err(e) => return self.fault(now_ns, format!("{e:#}")),
            }
        }
        let deadline_ticks = ticks_for(self.limits.call_deadline);
        let Some(live) = self.live.as_mut() else {
            return Outcome::Skipped;
        };
        live.store.data_mut().set_now(now_ns);
        live.store.set_epoch_deadline(deadline_ticks);
        let started = std::time::Instant::now();
        let result = super::sandbox::off_runtime(|| f(live));
        if let Some(calls) = &self.calls {
            calls.observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(v) => {
                self.failures = 0;
                Outcome::Done(v)
            }
            Err(e) => {
                self.live = None;
                self.fault(now_ns, describe_fault(&e, &self.limits))
            }
        }
    }

    fn fault<T>(&mut self, now_ns: i64, message: String) -> Outcome<T> {
        self.failures += 1;
        if self.failures >= FAULTS_BEFORE_BACKOFF {
            let secs = 1i64 << (self.failures - FAULTS_BEFORE_BACKOFF).min(6);
            self.backoff_until_ns =
                now_ns.saturating_add(secs.min(MAX_BACKOFF_SECS) * 1_000_000_000);
            return Outcome::Fault(format!(
                "{message}; {} faults in a row, calls paused for {}s",
                self.failures,
                secs.min(MAX_BACKOFF_SECS)
            ));
        }
        Outcome::Fault(message)
    }
}

/// Instantiates `module` for `node` in a fresh sandboxed store and creates its filter (0.2.0)
/// or runs its `init` (0.1.0).
fn instantiate(
    node: &str,
    config: &FilterConfig,
    limits: Limits,
    module: &Arc<LoadedModule>,
) -> Result<(Live, Option<FrameRequest>)> {
    let engine = engine()?;
    let mut store = Store::new(engine, GuestState::new(node, limits.memory_bytes));
    store.limiter(|s| &mut s.limits);
    let budget = limits.init_deadline.max(limits.call_deadline);
    store.set_epoch_deadline(ticks_for(budget));
    store.epoch_deadline_trap();
    let cannot = |e: wasmtime::Error| startup_fault(module, "cannot instantiate", &e, budget);
    let trapped = |e: wasmtime::Error| startup_fault(module, "start-up trapped", &e, budget);
    let refused = |e: String| anyhow!("{}: refused the configuration: {e}", module.origin);
    let (bound, request) = match &module.prepared {
        Prepared::FrameV2(pre) => {
            let bound = pre.instantiate(&mut store).map_err(cannot)?;
            let api = bound.vigil_filter_frame_processor().filter();
            let filter = api
                .call_create(&mut store, &config_typed(config))
                .map_err(trapped)?
                .map_err(refused)?;
            let request = api
                .call_frame_request(&mut store, filter)
                .map_err(trapped)?;
            (Bound::FrameV2(bound, filter), Some(request))
        }
        Prepared::EventV2(pre) => {
            let bound = pre.instantiate(&mut store).map_err(cannot)?;
            let filter = bound
                .vigil_filter_event_processor()
                .filter()
                .call_create(&mut store, &config_typed(config))
                .map_err(trapped)?
                .map_err(refused)?;
            (Bound::EventV2(bound, filter), None)
        }
        Prepared::FrameV1(pre) => {
            let bound = pre.instantiate(&mut store).map_err(cannot)?;
            let r = bound
                .call_init(&mut store, &config_text(config))
                .map_err(trapped)?
                .map_err(refused)?;
            let request = FrameRequest {
                width: r.width,
                luma: true,
                rgb: r.rgb,
            };
            (Bound::FrameV1(bound), Some(request))
        }
        Prepared::EventV1(pre) => {
            let bound = pre.instantiate(&mut store).map_err(cannot)?;
            bound
                .call_init(&mut store, &config_text(config))
                .map_err(trapped)?
                .map_err(refused)?;
            (Bound::EventV1(bound), None)
        }
    };
    Ok((Live { store, bound }, request))
}

/// An instantiation or `init` failure, saying so when it was the init deadline.
fn startup_fault(
    module: &LoadedModule,
    what: &str,
    e: &wasmtime::Error,
    budget: Duration,
) -> anyhow::Error {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => anyhow!(
            "{}: {what}: instantiation and init ran longer than {} ms",
            module.origin,
            budget.as_millis()
        ),
        _ => anyhow!("{}: {what}: {e:#}", module.origin),
    }
}

/// Epoch ticks in `budget`, at least one.
fn ticks_for(budget: Duration) -> u64 {
    u64::try_from(budget.as_millis() / EPOCH_TICK.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn describe_fault(e: &wasmtime::Error, limits: &Limits) -> String {
    let text = format!("{e:#}");
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "deadline: the call ran longer than {} ms",
            limits.call_deadline.as_millis()
        ),
        _ if text.contains("memory") && (text.contains("grow") || text.contains("limit")) => {
            format!(
                "memory: the instance hit its {} MiB limit ({text})",
                limits.memory_bytes >> 20
            )
        }
        _ => format!("trap: {text}"),
    }
}
