//! What WASI gives a guest, and how none of it can hurt the host.
//!
//! A component built for `wasm32-wasip2` imports WASI whether it uses it or not, so WASI is
//! linked, but every call is made harmless:
//! * **stdout, stderr**: lines go to the host's log under the node's name, at most
//!   [`LOG_LINES_PER_SECOND`] a second and [`LOG_LINE_CHARS`] characters a line (the rest is
//!   counted and reported as dropped);
//! * **stdin**: closed (reads end at once);
//! * **clocks**: the wall clock and the monotonic clock both read the stream clock (the time of
//!   the frame or event being processed), so a guest sees media time, never the host's;
//! * **sleep and timers** (`subscribe-duration`, `subscribe-instant`): ready at once, so no
//!   call can wait past its deadline (a guest that spins instead is stopped by it);
//! * **files, sockets, name lookup**: none (no preopened directory; TCP, UDP and lookups
//!   refused);
//! * **random numbers**: WASI's own (harmless).
//!
//! The synchronous WASI host functions drive futures on a runtime of their own; called on a
//! thread that is already inside a tokio runtime they would panic, so such calls are moved to a
//! thread of their own ([`off_runtime`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiView};

/// Most lines a guest may write a second on stdout and stderr together.
pub const LOG_LINES_PER_SECOND: u32 = 20;
/// Longest line kept of a guest's output.
pub const LOG_LINE_CHARS: usize = 1000;

/// The stream clock a guest reads: UTC ns of what is being processed.
#[derive(Clone, Default)]
pub struct StreamClock(Arc<AtomicI64>);

impl StreamClock {
    /// Sets the clock before a call.
    pub fn set(&self, now_ns: i64) {
        self.0.store(now_ns, Ordering::Relaxed);
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

impl HostWallClock for StreamClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos())
    }
}

impl HostMonotonicClock for StreamClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.nanos()
    }
}

/// A guest's stdout or stderr, written to the host's log.
#[derive(Clone)]
pub struct GuestOutput {
    node: String,
    stream: &'static str,
    state: Arc<Mutex<OutputState>>,
}

struct OutputState {
    line: String,
    window: Instant,
    lines: u32,
    dropped: u64,
}

impl GuestOutput {
    /// The `stream` ("stdout", "stderr") of `node`'s guest.
    pub fn new(node: &str, stream: &'static str) -> Self {
        Self {
            node: node.to_string(),
            stream,
            state: Arc::new(Mutex::new(OutputState {
                line: String::new(),
                window: Instant::now(),
                lines: 0,
                dropped: 0,
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for ch in String::from_utf8_lossy(bytes).chars() {
            if ch == '\n' {
                let line = std::mem::take(&mut state.line);
                self.emit(&mut state, &line);
            } else if state.line.chars().count() < LOG_LINE_CHARS {
                state.line.push(ch);
            }
        }
    }

    fn emit(&self, state: &mut OutputState, line: &str) {
        if state.window.elapsed() >= Duration::from_secs(1) {
            if state.dropped > 0 {
                tracing::warn!(node = %self.node, "guest {}: {} lines dropped (more than {LOG_LINES_PER_SECOND} a second)", self.stream, state.dropped);
            }
            state.window = Instant::now();
            state.lines = 0;
            state.dropped = 0;
        }
        if state.lines >= LOG_LINES_PER_SECOND {
            state.dropped += 1;
            return;
        }
        state.lines += 1;
        tracing::info!(node = %self.node, "guest {}: {line}", self.stream);
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Written synchronously: the default adapter spawns a task on a runtime for each stream.
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }
}

impl wasmtime_wasi::p2::OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A timer that has always elapsed.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

/// The WASI version whose clock functions are replaced (wasmtime-wasi 48 links 0.2.12).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Links WASI for a guest: all of it, then the timers replaced by ones that have elapsed.
pub fn link_wasi<T: WasiView>(linker: &mut Linker<T>) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker).map_err(|e| anyhow!("{e:#}"))?;
    linker.allow_shadowing(true);
    let mut clock = linker
        .instance(MONOTONIC_CLOCK)
        .map_err(|e| anyhow!("{e:#}"))?;
    clock
        .func_wrap(
            "subscribe-duration",
            |mut store, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
                elapsed(store.data_mut())
            },
        )
        .map_err(|e| anyhow!("{e:#}"))?;
    clock
        .func_wrap(
            "subscribe-instant",
            |mut store, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
                elapsed(store.data_mut())
            },
        )
        .map_err(|e| anyhow!("{e:#}"))?;
    linker.allow_shadowing(false);
    Ok(())
}

fn elapsed<T: WasiView>(state: &mut T) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let table = state.ctx().table;
    let timer = table.push(Elapsed)?;
    Ok((subscribe(table, timer)?,))
}

/// Runs `f` where the synchronous WASI host functions may run: here, unless this thread is
/// inside a tokio runtime (the camera's thread, the event loop), else on a thread of its own.
pub fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
