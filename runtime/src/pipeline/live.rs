//! `vigil run`: the live pipeline. The camera's thread reads in bursts and hands each one to
//! the pipeline's core itself ([`super::live_core`]); triggers arrive over HTTP and MQTT on the
//! event loop; each media sink runs on its own thread (blocking file I/O and fsyncs). SIGINT and
//! SIGTERM close open files cleanly.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::{Notify, mpsc, watch};

use super::live_core::{CoreInput, FrameFeed, LiveCore, SharedCore, TICK, lock};
use super::plan::PipelinePlan;
use super::replay::frame_hub;
use super::routing::EventRouter;
use super::sink_queue::sink_queue;
use super::sinks::MediaSink;
use crate::bus::event::Event as BusEvent;
use crate::bus::event::node_subject;
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::{InputMessage, parse_broker, run_mqtt};
use crate::cli::RunArgs;
use crate::nodes::rtsp_source::{
    DEFAULT_READ_INTERVAL, LIVE_PLAYBACK_READ_INTERVAL, RtspSource, spawn_rtsp_source, wall_now,
};
use crate::topology::Topology;

/// Runs `topology` until SIGINT or SIGTERM.
pub fn run_until_signal(topology: &Topology, args: &RunArgs) -> Result<()> {
    let mut plan = PipelinePlan::from_topology(topology)?;
    plan.override_archive(args.storage.archive.as_deref());
    plan.override_sync_interval(args.sync_interval_ms.map(Duration::from_millis));
    // One thread is plenty for a pipeline's network I/O; file sinks have their own threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The store's blocking HTTP client must be made, and dropped last, outside the runtime.
    let store = crate::archive::open_store(args.storage.store.as_deref())?;
    // The pipeline runs as a spawned task, not as block_on's own future: a task woken by one of
    // its timers is queued directly, where block_on's future would be woken through the
    // runtime's eventfd (one more wake-up for every tick).
    let task = runtime.spawn(run(plan, args.clone(), store.clone()));
    let result = runtime
        .block_on(task)
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the pipeline's task failed: {e}")));
    drop(runtime);
    drop(store);
    result
}

async fn run(
    plan: PipelinePlan,
    args: RunArgs,
    store: Option<std::sync::Arc<crate::archive::store::ObjectStore>>,
) -> Result<()> {
    let Some((camera_name, camera)) = plan.camera.clone() else {
        bail!("the topology has no RtspSource");
    };
    let bus = EventBus::new(&plan.pipeline, args.event_log.as_deref())
        .context("cannot open the event log")?;
    let archive = plan.archive.clone().unwrap_or_default();
    let keeper_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut keeper = None;
    if plan.archive.is_some() {
        crate::archive::open_archive(&archive, &bus, wall_now())?;
        let k = crate::archive::keeper::Keeper::new(
            &archive,
            store.clone(),
            plan.archive_budget,
            bus.clone(),
        )?;
        keeper = Some(k.spawn(keeper_stop.clone()));
    }
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (input_tx, mut input_rx) = mpsc::channel::<InputMessage>(64);

    let mut tasks = Vec::new();
    if let Some(broker) = &args.mqtt {
        let broker = parse_broker(broker).map_err(anyhow::Error::msg)?;
        let (pub_tx, pub_rx) = mpsc::unbounded_channel();
        bus.attach_mqtt(pub_tx);
        tasks.push(tokio::spawn(run_mqtt(
            broker,
            bus.clone(),
            input_tx.clone(),
            pub_rx,
            shutdown.clone(),
        )));
    }
    let listener = tokio::net::TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    tracing::info!("HTTP listener on http://{}", listener.local_addr()?);
    let input_names = plan.inputs.iter().map(|i| i.input_name.clone()).collect();
    let http = tokio::spawn(crate::api::http::serve(
        listener,
        plan.pipeline.clone(),
        input_names,
        input_tx.clone(),
        bus.metrics().clone(),
        crate::api::playback::routes(crate::api::playback::PlaybackState::new(
            plan.archive.clone(),
            bus.clone(),
            crate::archive::remote_reader(store.clone()),
        )?),
        shutdown.clone(),
    ));

    // Media sinks: a thread each.
    let mut sink_threads = Vec::new();
    let mut senders = Vec::new();
    for gate in &plan.gates {
        let mut gate_senders = Vec::new();
        for sink in &gate.sinks {
            let (tx, rx) = sink_queue();
            let (sink, archive, bus) = (sink.clone(), archive.clone(), bus.clone());
            sink_threads.push(std::thread::spawn(move || {
                let mut sink = MediaSink::new(&sink, &archive, &bus);
                while let Some(commands) = rx.recv_all() {
                    for c in commands {
                        sink.handle(c);
                    }
                }
                sink.shutdown();
            }));
            gate_senders.push(tx);
        }
        senders.push(gate_senders);
    }

    let camera_subject = node_subject(&plan.pipeline, "sources", &camera_name);
    // Pixels: one thread decodes the camera once for every node that needs frames.
    let (analytics_tx, mut analytics_rx) = mpsc::unbounded_channel::<(usize, BusEvent)>();
    let mut frame_feeds = Vec::new();
    if plan.processors.iter().any(|p| p.needs_frames()) {
        let (tx, rx) = std_mpsc::sync_channel::<crate::media::sample::VideoSample>(120);
        let out = analytics_tx.clone();
        let deliver = analytics_tx.clone();
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<()>>();
        let (thread_plan, bus) = (plan.clone(), bus.clone());
        sink_threads.push(std::thread::spawn(move || {
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
                if last_check.elapsed() > TICK {
                    last_check = Instant::now();
                    hub.check_for_new_modules(sample.pts);
                }
                for event in hub.on_sample(&sample) {
                    let _ = out.send(event);
                }
            }
        }));
        ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the decoding thread died"))??;
        frame_feeds.push(FrameFeed {
            subject: camera_subject.clone(),
            queue: tx,
            skipping: false,
        });
    }
    drop(analytics_tx);
    let router = EventRouter::new(&plan, &bus)?;
    let core: SharedCore = Arc::new(Mutex::new(LiveCore::new(
        plan.clone(),
        bus.clone(),
        senders,
        frame_feeds,
        router,
    )));

    // The camera: its thread hands each burst to the core itself.
    let read_interval = match (args.read_interval_ms, &plan.archive) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Some(_)) => LIVE_PLAYBACK_READ_INTERVAL,
        (None, None) => DEFAULT_READ_INTERVAL,
    };
    let clock_released = Arc::new(Notify::new());
    let source = RtspSource {
        config: camera,
        read_interval,
        audio: plan.record_audio,
        subject: camera_subject,
        events: bus.clone(),
        out: Box::new(CoreInput {
            core: core.clone(),
            clock_released: clock_released.clone(),
        }),
    };
    let source_thread = spawn_rtsp_source(source, shutdown.clone())
        .context("cannot start the RTSP source's thread")?;

    let mut signals = Signals::new()?;
    loop {
        // While the camera is read at a steady pace, its thread looks at the clock and this
        // loop sleeps until a trigger or a result arrives.
        let clock = lock(&core).next_housekeeping();
        tokio::select! {
            _ = signals.recv() => break,
            Some(message) = input_rx.recv() => lock(&core).on_input(message),
            Some((p, event)) = analytics_rx.recv() => lock(&core).on_analytics(p, event),
            _ = clock_released.notified() => {}
            _ = sleep_until(clock) => lock(&core).on_clock(),
        }
    }
    tracing::info!("stopping: closing open files");
    lock(&core).finish();
    let _ = shutdown_tx.send(true);
    // The source sees the shutdown within one read pace.
    let _ = tokio::task::spawn_blocking(move || source_thread.join()).await;
    lock(&core).close();
    for t in sink_threads {
        let _ = t.join();
    }
    keeper_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(k) = keeper {
        let _ = k.join();
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), http).await;
    Ok(())
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

/// SIGINT and SIGTERM.
struct Signals {
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        Ok(Self {
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.term.recv() => {}
        }
    }
}
