//! Keeps an Active live pipeline running: runs it ([`crate::pipeline::live::run`]) as a task of
//! its own; when it cannot start or crashes (a panic included), reports a `RuntimeError`
//! diagnostics event and runs it again after a back-off (1 s doubling to 60 s, reset after a
//! minute of running). Other pipelines are never touched. Stopping waits for its clips to close.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::bus::event::{Event, EventClass};
use crate::nodes::rtsp_source::wall_now;
use crate::pipeline::live::{LiveContext, RunError, run};
use crate::pipeline::plan::PipelinePlan;

/// First wait before a failed pipeline runs again.
const MIN_RESTART: Duration = Duration::from_secs(1);
/// Longest wait before a failed pipeline runs again.
const MAX_RESTART: Duration = Duration::from_secs(60);
/// A run this long resets the back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What a pipeline's supervisor reports.
#[derive(Debug, Default)]
pub struct PipelineStatus {
    running: AtomicBool,
    restarts: AtomicU32,
    last_fault: Mutex<Option<(String, String)>>,
}

impl PipelineStatus {
    /// True while a run of the pipeline is going.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// How often it was started again after a fault.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// `{running, restarts, lastFault: {time, detail}}`.
    pub fn to_json(&self) -> Value {
        let fault = self
            .last_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map(|(time, detail)| json!({"time": time, "detail": detail}));
        json!({"running": self.is_running(), "restarts": self.restarts(), "lastFault": fault})
    }

    fn fault(&self, detail: String) {
        *self.last_fault.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((wall_now().to_string(), detail));
    }
}

/// A supervised pipeline.
pub struct Supervised {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Stops it: its clips close and its threads end before this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts supervising the pipeline of `plan` on the current runtime.
pub fn supervise(
    plan: PipelinePlan,
    context: LiveContext,
    status: std::sync::Arc<PipelineStatus>,
) -> Supervised {
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(keep_running(plan, context, status, stop_rx));
    Supervised { stop, task }
}

/// Forgets a pipeline's swapped modules when its supervision ends (deactivated or deleted).
struct ForgetSwaps(String);

impl Drop for ForgetSwaps {
    fn drop(&mut self) {
        crate::nodes::module_swap::forget(&self.0);
    }
}

async fn keep_running(
    plan: PipelinePlan,
    context: LiveContext,
    status: std::sync::Arc<PipelineStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let bus = context.bus.for_pipeline(&plan.pipeline);
    let subject = format!("/livePipelines/{}", plan.pipeline);
    let mut backoff = MIN_RESTART;
    // A new activation runs the topology's modules; a restart, the modules swapped in since.
    crate::nodes::module_swap::forget(&plan.pipeline);
    let _forget_at_the_end = ForgetSwaps(plan.pipeline.clone());
    loop {
        let started = Instant::now();
        status.running.store(true, Ordering::Relaxed);
        let mut this_run = plan.clone();
        for (node, module) in crate::nodes::module_swap::swapped(&plan.pipeline) {
            this_run.use_module(&node, module);
        }
        let task = tokio::spawn(run(this_run, context.clone(), stop.clone()));
        let outcome = match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(join) => Err(RunError::Crashed(if join.is_panic() {
                format!(
                    "the pipeline's event loop panicked: {}",
                    crate::pipeline::faults::panic_text(join.into_panic().as_ref())
                )
            } else {
                "the pipeline's event loop was cancelled".to_string()
            })),
        };
        status.running.store(false, Ordering::Relaxed);
        if *stop.borrow() {
            return;
        }
        let (code, detail) = match outcome {
            Ok(()) => (
                "pipelineEnded",
                "the pipeline stopped by itself".to_string(),
            ),
            Err(e @ RunError::Start(_)) => ("pipelineStartFailed", e.to_string()),
            Err(e @ RunError::Crashed(_)) => ("pipelineCrashed", e.to_string()),
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = MIN_RESTART;
        }
        status.fault(detail.clone());
        bus.emit(Event::new(
            EventClass::Diagnostics,
            "RuntimeError",
            subject.clone(),
            wall_now(),
            json!({"code": code, "detail": detail, "retryInSeconds": backoff.as_secs_f64(), "restarts": status.restarts()}),
        ));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        status.restarts.fetch_add(1, Ordering::Relaxed);
        bus.metrics().pipeline_restarts(&plan.pipeline).inc();
        backoff = (backoff * 2).min(MAX_RESTART);
    }
}
