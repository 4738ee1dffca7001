//! A live pipeline, as the service runs it: the camera's thread reads in bursts and hands each
//! one to the pipeline's core itself ([`super::live_core`]); triggers arrive from the service's
//! one HTTP listener and one MQTT connection; each media sink runs on its own thread (blocking
//! file I/O and fsyncs); an event loop task takes analysis results, triggers and (while the
//! camera is away) the clock. [`run`] returns when asked to stop, after every clip is closed, or
//! with an error when one of the pipeline's threads failed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use tokio::sync::{Notify, mpsc, watch};

use super::analytics_queue::{ANALYTICS_QUEUE, AnalyticsReceiver, analytics_queue};
use super::engine::{ExtensionEvents, frame_hub};
use super::faults::{Fault, panic_text, spawn_guarded};
use super::live_core::{CoreInput, FrameFeed, LiveCore, SharedCore, TICK, lock};
use super::plan::{PipelinePlan, SinkPlan};
use super::routing::EventRouter;
use super::sink_queue::sink_queue_with_depth;
use super::sinks::MediaSink;
use crate::bus::event::Event as BusEvent;
use crate::bus::event::EventClass;
use crate::bus::event::node_subject;
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::InputMessage;
use crate::nodes::rtsp_source::{DEFAULT_READ_INTERVAL, LIVE_PLAYBACK_READ_INTERVAL};
use crate::service::archives::Archives;
use crate::service::cameras::{CameraSubscription, Cameras, Subscriber};
use crate::service::inputs::InputRouter;

/// Settings that apply to every live pipeline of a process.
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    /// Pause between two reads of a TCP session; default 500 ms, 40 ms with a VideoSink.
    pub read_interval: Option<Duration>,
    /// Longest time between two fsyncs of a file a FileSink writes; default 5 s.
    pub sync_interval: Option<Duration>,
    /// The VideoSinks' archive directory, instead of their `localMediaCachePath`.
    pub archive: Option<PathBuf>,
    /// Longest wait, when a pipeline stops, for its VideoSinks' segments to reach the store.
    pub upload_wait: Duration,
}

/// The process-wide services a live pipeline uses.
#[derive(Clone)]
pub struct LiveContext {
    /// The service's event handle; each pipeline takes one naming it.
    pub bus: EventBus,
    /// Archive directories and their keepers.
    pub archives: Archives,
    /// Where triggers for running pipelines are delivered.
    pub inputs: InputRouter,
    /// The camera sessions, shared by pipelines that read the same camera.
    pub cameras: Cameras,
    /// Settings.
    pub options: LiveOptions,
}

/// How a pipeline's run ended when it was not asked to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not start (a thread, an archive, a module); it may start on a later try.
    #[error("cannot start: {0:#}")]
    Start(anyhow::Error),
    /// One of its threads crashed while it ran.
    #[error("crashed: {0}")]
    Crashed(String),
}

/// Runs the pipeline of `plan` until `stop` turns true (then closes every clip and returns
/// `Ok`), or until one of its threads fails.
pub async fn run(
    mut plan: PipelinePlan,
    context: LiveContext,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    plan.override_archive(context.options.archive.as_deref());
    plan.override_sync_interval(context.options.sync_interval);
    let bus = context.bus.for_pipeline(&plan.pipeline);
    let parts = start(&plan, &context, &bus).map_err(RunError::Start)?;
    let Started {
        core,
        mut input_rx,
        mut analytics_rx,
        mut faults,
        clock_released,
        threads,
        camera_session,
        archive,
    } = parts;
    let mut crash = None;
    while crash.is_none() {
        // While the camera is read at a steady pace, its thread looks at the clock and this
        // loop sleeps until a trigger or a result arrives. A panic in the core is caught here
        // too, so that the pipeline is torn down in order (no thread of it outlives it).
        let clock = lock(&core).next_housekeeping();
        crash = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            Some(message) = input_rx.recv() => guarded(|| lock(&core).on_input(message)),
            Some((p, event)) = analytics_rx.recv() => {
                report_analytics_dropped(&bus, &plan.pipeline, analytics_rx.take_dropped());
                guarded(|| lock(&core).on_analytics(p, event))
            }
            Some(Fault(why)) = faults.recv() => Some(why),
            _ = clock_released.notified() => None,
            _ = sleep_until(clock) => guarded(|| lock(&core).on_clock()),
        };
    }
    context.inputs.unregister(&plan.pipeline);
    if let Some(why) = guarded(|| lock(&core).finish()) {
        crash.get_or_insert(why);
    }
    // No burst reaches the core once this returns; the session's last pipeline waits for the
    // session's thread (within one read pace).
    let _ = tokio::task::spawn_blocking(move || camera_session.end()).await;
    lock(&core).close();
    let videos = video_names(&plan);
    let upload_wait = context.options.upload_wait;
    let waited = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
        archive.map(|lease| (lease.wait_for_uploads(&videos, upload_wait), lease))
    })
    .await;
    let unfinished = match &waited {
        Ok(Some((Ok(pending), _lease))) if *pending > 0 => Some(format!(
            "{pending} segment(s) still wait for the object store after {} s; they stay in the cache and are uploaded later",
            upload_wait.as_secs()
        )),
        Ok(Some((Err(e), _lease))) => Some(format!(
            "cannot tell whether the segments reached the object store: {e:#}"
        )),
        _ => None,
    };
    if let Some(detail) = unfinished {
        bus.emit(BusEvent::new(
            crate::bus::event::EventClass::Diagnostics,
            "StorageError",
            format!("/livePipelines/{}", plan.pipeline),
            crate::nodes::rtsp_source::wall_now(),
            serde_json::json!({ "detail": detail }),
        ));
    }
    match crash {
        Some(why) => Err(RunError::Crashed(why)),
        None => Ok(()),
    }
}

/// What [`start`] set running.
struct Started {
    core: SharedCore,
    input_rx: mpsc::Receiver<InputMessage>,
    analytics_rx: AnalyticsReceiver,
    faults: mpsc::UnboundedReceiver<Fault>,
    clock_released: Arc<Notify>,
    threads: Vec<std::thread::JoinHandle<()>>,
    camera_session: CameraSubscription,
    archive: Option<crate::service::archives::ArchiveLease>,
}

fn start(plan: &PipelinePlan, context: &LiveContext, bus: &EventBus) -> Result<Started> {
    let Some((camera_name, camera)) = plan.camera.clone() else {
        bail!("the topology has no RtspSource");
    };
    let archive = match &plan.archive {
        Some(dir) => Some(context.archives.acquire(dir, plan.archive_budget)?),
        None => None,
    };
    let archive_dir = plan.archive.clone().unwrap_or_default();
    let (faults_tx, faults) = mpsc::unbounded_channel::<Fault>();

    // Media sinks: a thread each.
    let mut threads = Vec::new();
    let mut senders = Vec::new();
    for gate in &plan.gates {
        let mut gate_senders = Vec::new();
        for sink in &gate.sinks {
            let metrics = bus.metrics();
            let depth = metrics.queue_depth(&plan.pipeline, sink_name(sink));
            let (tx, rx) = sink_queue_with_depth(Some(depth));
            let mut counted = SinkCounters::new(&plan.pipeline, sink_name(sink), metrics);
            let (sink, dir, bus) = (sink.clone(), archive_dir.clone(), bus.clone());
            threads.push(spawn_guarded(
                format!("sink {}", sink_name(&sink)),
                faults_tx.clone(),
                move || {
                    let subject = sink_subject(&sink).to_string();
                    let mut sink = MediaSink::new(&sink, &dir, &bus);
                    while let Some((commands, dropped)) = rx.recv_all() {
                        if dropped.samples > 0 {
                            report_sink_behind(&bus, &subject, &dropped);
                        }
                        for c in commands {
                            counted.count(&c);
                            sink.handle(c);
                        }
                    }
                    sink.shutdown();
                },
            )?);
            gate_senders.push(tx);
        }
        senders.push(gate_senders);
    }

    let camera_subject = node_subject(&plan.pipeline, "sources", &camera_name);
    // Pixels: one thread decodes the camera once for every node that needs frames.
    let (analytics_tx, analytics_rx) = analytics_queue();
    let mut frame_feeds = Vec::new();
    if plan.processors.iter().any(|p| p.needs_frames()) {
        let (tx, rx) = std_mpsc::sync_channel::<crate::media::sample::VideoSample>(120);
        let out = analytics_tx.clone();
        let deliver = analytics_tx.clone();
        let deliver: ExtensionEvents = Arc::new(move |i, e| deliver.send(i, e));
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<()>>();
        let dropped = bus
            .metrics()
            .data_dropped(&plan.pipeline, &camera_name, "video");
        let decoded = bus.metrics().decoded_frames(&plan.pipeline, &camera_name);
        let (thread_plan, bus) = (plan.clone(), bus.clone());
        threads.push(spawn_guarded(
            format!("decode {}", plan.pipeline),
            faults_tx.clone(),
            move || {
                // The decoder lives and dies on this thread.
                let mut hub = match frame_hub(&thread_plan, &bus, Some(deliver)) {
                    Ok(h) => {
                        let _ = ready_tx.send(Ok(()));
                        h
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut last_check = Instant::now();
                while let Ok(sample) = rx.recv() {
                    decoded.inc();
                    if last_check.elapsed() > TICK {
                        last_check = Instant::now();
                        hub.check_for_new_modules(sample.pts);
                    }
                    for (port, event) in hub.on_sample(&sample) {
                        out.send(port, event);
                    }
                }
            },
        )?);
        ready_rx
            .recv()
            .map_err(|_| anyhow!("the decoding thread died"))??;
        frame_feeds.push(FrameFeed {
            subject: camera_subject.clone(),
            queue: tx,
            skipping: false,
            dropped,
        });
    }
    drop(analytics_tx);
    let router = EventRouter::new(plan, bus)?;
    let core: SharedCore = Arc::new(Mutex::new(LiveCore::new(
        plan.clone(),
        bus.clone(),
        senders,
        frame_feeds,
        router,
    )));
    // The camera: its thread hands each burst to the core itself.
    let read_interval = match (context.options.read_interval, &plan.archive) {
        (Some(interval), _) => interval,
        (None, Some(_)) => LIVE_PLAYBACK_READ_INTERVAL,
        (None, None) => DEFAULT_READ_INTERVAL,
    };
    let clock_released = Arc::new(Notify::new());
    let subscriber = Subscriber {
        out: Box::new(CoreInput {
            core: core.clone(),
            clock_released: clock_released.clone(),
            faults: faults_tx,
        }),
        bus: bus.clone(),
        subject: camera_subject,
        read_interval,
    };
    let camera_session = context
        .cameras
        .subscribe(&camera, plan.record_audio, subscriber)?;
    // Triggers are routed here only once everything runs: a start that failed leaves no route.
    let (input_tx, input_rx) = mpsc::channel::<InputMessage>(64);
    let held = context.inputs.register(
        &plan.pipeline,
        plan.inputs.iter().map(|i| i.input_name.clone()).collect(),
        input_tx,
    );
    crate::service::held_triggers::report_delivered(bus, &plan.pipeline, held);
    Ok(Started {
        core,
        input_rx,
        analytics_rx,
        faults,
        clock_released,
        threads,
        camera_session,
        archive,
    })
}

/// A media sink's metrics: frames and bytes it was given to write, recordings it started, and
/// the latency of its frames from their arrival.
struct SinkCounters {
    frames: crate::bus::metrics::Counter,
    bytes: crate::bus::metrics::Counter,
    recordings: crate::bus::metrics::Counter,
    latency: crate::bus::metrics::MinuteWindow,
}

impl SinkCounters {
    fn new(pipeline: &str, node: &str, metrics: &crate::bus::metrics::Metrics) -> Self {
        Self {
            frames: metrics.node_frames(pipeline, node),
            bytes: metrics.node_bytes(pipeline, node),
            recordings: metrics.recordings(pipeline, node),
            latency: metrics.latency_window(pipeline, node),
        }
    }

    fn count(&mut self, command: &crate::nodes::gate_node::ClipCommand) {
        use crate::nodes::gate_node::ClipCommand;
        match command {
            ClipCommand::Start { .. } => {
                self.recordings.inc();
            }
            ClipCommand::Sample(s) => {
                self.frames.inc();
                self.bytes.inc_by(s.data.len() as u64);
                // Sample times are the wall clock at their arrival (rtsp_source's anchor).
                let age = crate::nodes::rtsp_source::wall_now() - s.pts;
                self.latency.observe(age.as_secs_f64().max(0.0));
            }
            _ => {}
        }
    }
}

fn sink_name(sink: &SinkPlan) -> &str {
    match sink {
        SinkPlan::File { name, .. } | SinkPlan::Video { name, .. } => name,
    }
}

fn sink_subject(sink: &SinkPlan) -> &str {
    match sink {
        SinkPlan::File { subject, .. } | SinkPlan::Video { subject, .. } => subject,
    }
}

/// Reports media the sink's queue dropped because the sink fell behind (a stalled disk): a
/// `DataDropped` diagnostics event with the span and the count.
fn report_sink_behind(bus: &EventBus, subject: &str, dropped: &super::sink_queue::Dropped) {
    let (from, to) = (
        dropped.from.map(|t| t.to_string()),
        dropped.to.map(|t| t.to_string()),
    );
    bus.emit(BusEvent::new(
        EventClass::Diagnostics,
        "DataDropped",
        subject.to_string(),
        dropped.from.unwrap_or_else(crate::nodes::rtsp_source::wall_now),
        serde_json::json!({
            "detail": format!("the sink fell behind (a slow or stalled disk): {} samples were dropped to keep its queue within {} MiB; the recording goes on from the next key frame", dropped.samples, super::sink_queue::MAX_QUEUED_BYTES >> 20),
            "droppedSamples": dropped.samples,
            "start": from,
            "end": to,
        }),
    ));
}

/// Reports analysis events the core could not take in time (its queue was full), if any.
fn report_analytics_dropped(bus: &EventBus, pipeline: &str, dropped: u64) {
    if dropped == 0 {
        return;
    }
    bus.emit(BusEvent::new(
        EventClass::Diagnostics,
        "DataDropped",
        format!("/livePipelines/{pipeline}"),
        crate::nodes::rtsp_source::wall_now(),
        serde_json::json!({
            "detail": format!("the pipeline fell behind its analysis: {dropped} analysis events (motion, inference answers) were dropped to keep its queue within {ANALYTICS_QUEUE} events"),
            "analyticsEventsDropped": dropped,
        }),
    ));
}

/// The videos the plan's VideoSinks append to.
fn video_names(plan: &PipelinePlan) -> Vec<String> {
    plan.gates
        .iter()
        .flat_map(|g| &g.sinks)
        .filter_map(|s| match s {
            SinkPlan::Video { config, .. } => Some(config.video_name.clone()),
            SinkPlan::File { .. } => None,
        })
        .collect()
}

/// Runs `f` (an action on the core, on the event loop); a panic becomes the crash's text.
fn guarded(f: impl FnOnce()) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f)).err().map(|panic| {
        format!(
            "the pipeline's core panicked on the event loop: {}",
            panic_text(panic.as_ref())
        )
    })
}

/// Sleeps until `deadline`, or for ever without one. A fresh timer each time round the loop,
/// not a reset one: tokio resets a timer lazily, so a reset timer would still wake the thread at
/// its old deadline.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
