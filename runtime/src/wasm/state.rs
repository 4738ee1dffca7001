//! What a guest instance can reach: logging, the stream clock, and a WASI context that can do
//! no harm (see [`super::sandbox`]), within a memory limit.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings;

/// Core instances one guest component may create. A Rust component has 1-3; a componentize-py
/// one links CPython, libc and its adapters as a dozen or so.
const MAX_CORE_INSTANCES: usize = 64;
/// Tables one guest component may create.
const MAX_TABLES: usize = 64;
/// Linear memories one guest component may create (each within the memory limit).
const MAX_MEMORIES: usize = 8;

/// Per-instance host state.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory limit of the instance.
    pub limits: StoreLimits,
    /// The node the instance belongs to (log prefix).
    pub node: String,
    /// The stream clock for `now-ns`: UTC ns of the frame or event being processed.
    pub now_ns: i64,
    /// The same clock, as WASI's wall and monotonic clocks read it.
    clock: super::sandbox::StreamClock,
}

impl GuestState {
    /// A sandboxed state with a memory limit of `memory_bytes`.
    pub fn new(node: &str, memory_bytes: usize) -> Self {
        let clock = super::sandbox::StreamClock::default();
        let wasi = WasiCtxBuilder::new()
            .allow_blocking_current_thread(false)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(super::sandbox::GuestOutput::new(node, "stdout"))
            .stderr(super::sandbox::GuestOutput::new(node, "stderr"))
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(MAX_CORE_INSTANCES)
                .tables(MAX_TABLES)
                .memories(MAX_MEMORIES)
                .trap_on_grow_failure(true)
                .build(),
            node: node.to_string(),
            now_ns: 0,
            clock,
        }
    }

    /// Sets the stream clock before a call.
    pub fn set_now(&mut self, now_ns: i64) {
        self.now_ns = now_ns;
        self.clock.set(now_ns);
    }

    fn log(&self, level: &str, message: &str) {
        let message: String = message.chars().take(2000).collect();
        match level {
            "error" => tracing::error!(node = %self.node, "guest: {message}"),
            "warn" => tracing::warn!(node = %self.node, "guest: {message}"),
            "info" => tracing::info!(node = %self.node, "guest: {message}"),
            _ => tracing::debug!(node = %self.node, "guest: {message}"),
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `host` and `types` interfaces of one contract version: both versions' are the same
/// functions, generated as different types.
macro_rules! host_interfaces {
    ($version:ident) => {
        impl bindings::$version::frame::vigil::filter::host::Host for GuestState {
            fn log(
                &mut self,
                level: bindings::$version::frame::vigil::filter::host::Level,
                message: String,
            ) {
                use bindings::$version::frame::vigil::filter::host::Level;
                let l = match level {
                    Level::Debug => "debug",
                    Level::Info => "info",
                    Level::Warn => "warn",
                    Level::Error => "error",
                };
                GuestState::log(self, l, &message);
            }

            fn now_ns(&mut self) -> i64 {
                self.now_ns
            }
        }

        impl bindings::$version::frame::vigil::filter::types::Host for GuestState {}
    };
}

host_interfaces!(v2);
host_interfaces!(v1);
