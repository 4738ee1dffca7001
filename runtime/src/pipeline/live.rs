//! `vigil run`: the live pipeline. The camera thread feeds the gate task in bursts; triggers
//! arrive over HTTP and MQTT; each file sink runs on its own thread (blocking file I/O, one fsync
//! per fragment). SIGINT/SIGTERM close open files cleanly.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::plan::{GatePlan, PipelinePlan};
use super::replay::{dispatch, frame_hub};
use super::routing::EventRouter;
use super::sink_queue::{SinkQueueSender, sink_queue};
use super::sinks::MediaSink;
use crate::bus::event::Event as BusEvent;
use crate::bus::event::{Event, EventClass, node_subject};
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::{InputMessage, parse_broker, run_mqtt};
use crate::bus::trigger::parse_trigger;
use crate::cli::RunArgs;
use crate::media::sample::MediaItem;
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::gate_node::{ClipCommand, GateNode};
use crate::nodes::rtsp_source::{
    DEFAULT_READ_INTERVAL, LIVE_PLAYBACK_READ_INTERVAL, RtspSource, spawn_rtsp_source, wall_now,
};
use crate::topology::Topology;

/// Media that stops for this long lets an open gate close on the wall clock.
const MEDIA_STALL: Duration = Duration::from_secs(1);
/// How often the pipeline looks at the wall clock (media stalls, queued commands) and for new
/// versions of its modules. While media flows this is done when a burst arrives; a timer wakes
/// the pipeline only when the camera has been quiet for this long.
const TICK: Duration = Duration::from_secs(1);
/// Samples queued for a sink go out once they span this much media, even without a key frame:
/// the longest fragment a sink writes.
const QUEUE_SPAN: MediaDuration = crate::media::fmp4::MAX_FRAGMENT;

/// Runs `topology` until SIGINT or SIGTERM.
pub fn run_until_signal(topology: &Topology, args: &RunArgs) -> Result<()> {
    let mut plan = PipelinePlan::from_topology(topology)?;
    plan.override_archive(args.storage.archive.as_deref());
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

    let read_interval = match (args.read_interval_ms, &plan.archive) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Some(_)) => LIVE_PLAYBACK_READ_INTERVAL,
        (None, None) => DEFAULT_READ_INTERVAL,
    };
    let (media_tx, mut media_rx) = mpsc::channel::<Vec<MediaItem>>(64);
    let subject = node_subject(&plan.pipeline, "sources", &camera_name);
    let source = RtspSource {
        config: camera,
        read_interval,
        audio: plan.record_audio,
        subject,
        events: bus.clone(),
        out: media_tx,
    };
    let source_thread = spawn_rtsp_source(source, shutdown.clone())
        .context("cannot start the RTSP source's thread")?;

    // Media sinks: a thread each.
    let mut sink_threads = Vec::new();
    let mut feeds = SinkFeeds::default();
    for gate in &plan.gates {
        let mut senders = Vec::new();
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
            senders.push(tx);
        }
        feeds.senders.push(senders);
        feeds.queued.push(Vec::new());
    }

    // Pixels: one thread decodes the camera once for every node that needs frames.
    let (analytics_tx, mut analytics_rx) = mpsc::unbounded_channel::<(usize, BusEvent)>();
    let mut motion_feeds = Vec::new();
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
                if last_check.elapsed() > Duration::from_secs(1) {
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
        let camera_subject = node_subject(&plan.pipeline, "sources", &camera_name);
        motion_feeds.push((camera_subject, tx, false));
    }
    drop(analytics_tx);
    let mut router = EventRouter::new(&plan, &bus)?;

    let mut gates: Vec<GateNode> = plan.gates.iter().map(GatePlan::node).collect();
    let mut last_sample: Option<(MediaTime, Instant)> = None;
    let mut last_burst = Instant::now();
    let mut last_housekeeping = Instant::now();
    let mut signals = Signals::new()?;
    let send = |feeds: &mut SinkFeeds, g: usize, commands: Vec<ClipCommand>| {
        for c in commands {
            if let ClipCommand::LateEventDropped { .. } = c {
                dispatch(&mut [], vec![c], &bus, &plan.gates[g].name, &plan.pipeline);
                continue;
            }
            feeds.queued[g].push(c);
        }
    };
    loop {
        tokio::select! {
            _ = signals.recv() => break,
            Some(batch) = media_rx.recv() => { last_burst = Instant::now(); for item in batch { match item {
                MediaItem::Video(sample) => {
                    last_sample = Some((sample.pts, Instant::now()));
                    for (subject, tx, skipping) in motion_feeds.iter_mut() {
                        // A detector that falls behind skips to the next key frame (it cannot decode
                        // a P-frame whose reference it missed).
                        let was_skipping = *skipping;
                        if was_skipping && !sample.key_frame {
                            continue;
                        }
                        *skipping = tx.try_send(sample.clone()).is_err();
                        if *skipping && !was_skipping {
                            bus.emit(BusEvent::new(
                                EventClass::Diagnostics,
                                "DataDropped",
                                subject.clone(),
                                sample.pts,
                                json!({"dataType": "video", "detail": "frame analysis is behind; skipping to the next key frame"}),
                            ));
                        }
                    }
                    for (g, gate) in gates.iter_mut().enumerate() {
                        send(&mut feeds, g, gate.on_sample(sample.clone()));
                    }
                }
                MediaItem::Audio(sample) => {
                    for (g, gate) in gates.iter_mut().enumerate() {
                        send(&mut feeds, g, gate.on_audio(sample.clone()));
                    }
                }
            }}},
            Some(message) = input_rx.recv() => {
                let Some(input) = plan.inputs.iter().find(|i| i.input_name == message.input) else { continue };
                let source_subject = node_subject(&plan.pipeline, "sources", &input.node);
                let arrival = gates.iter().find_map(|g| g.clock()).unwrap_or_else(wall_now);
                match parse_trigger(&message.payload) {
                    Err(e) => bus.emit(Event::new(
                        EventClass::Diagnostics,
                        "InvalidMessage",
                        source_subject,
                        arrival,
                        json!({"input": message.input, "detail": e, "payload": String::from_utf8_lossy(&message.payload[..message.payload.len().min(512)])}),
                    )),
                    Ok(trigger) => {
                        let media_time = trigger.event_time.unwrap_or(arrival);
                        bus.emit(
                            Event::new(EventClass::Operational, "TriggerReceived", source_subject, media_time, json!({"input": message.input, "body": trigger.body}))
                                .correlated(Some(trigger.correlation_id.clone())),
                        );
                        let event = BusEvent::new(EventClass::Analytics, "Trigger", node_subject(&plan.pipeline, "sources", &input.node), media_time, trigger.body.clone())
                            .correlated(Some(trigger.correlation_id.clone()));
                        for (g, time, correlation) in router.route(&plan, &input.node, event, false, &bus) {
                            let commands = gates[g].on_event(time, &correlation);
                            send(&mut feeds, g, commands);
                        }
                    }
                }
            }
            Some((p, event)) = analytics_rx.recv() => {
                let node = &plan.processors[p].name;
                for (g, time, correlation) in router.route(&plan, node, event, true, &bus) {
                    let commands = gates[g].on_event(time, &correlation);
                    send(&mut feeds, g, commands);
                }
            }
            // A fresh timer each time round, not a reset one: tokio resets a timer lazily, so a
            // reset timer would still wake the thread at its old deadline.
            _ = tokio::time::sleep_until((last_burst.max(last_housekeeping) + TICK).into()) => {}
        }
        if last_housekeeping.elapsed() >= TICK {
            last_housekeeping = Instant::now();
            router.check_for_new_modules(
                gates
                    .iter()
                    .find_map(|g| g.clock())
                    .unwrap_or_else(wall_now),
            );
            if let Some((pts, at)) = last_sample {
                let idle = at.elapsed();
                if idle > MEDIA_STALL {
                    let now = pts + MediaDuration::from_nanos(idle.as_nanos() as i64);
                    for (g, gate) in gates.iter_mut().enumerate() {
                        send(&mut feeds, g, gate.on_clock(now));
                    }
                    // No key frame is coming to carry what is queued.
                    feeds.flush_all();
                }
            }
        }
        feeds.flush();
    }
    tracing::info!("stopping: closing open files");
    for (g, gate) in gates.iter_mut().enumerate() {
        send(&mut feeds, g, gate.finish());
    }
    feeds.flush_all();
    drop(feeds);
    drop(motion_feeds);
    let _ = shutdown_tx.send(true);
    // The source sees the shutdown within one read pace.
    let _ = tokio::task::spawn_blocking(move || source_thread.join()).await;
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

/// The gates' commands on their way to the sink threads, queued and sent as one message per
/// sink, so that a sink thread wakes only when it has something to write: a sink writes a
/// fragment when the key frame that ends it arrives, so samples within a GOP wait in the queue
/// (up to [`QUEUE_SPAN`] of media) and go with the key frame, or with any other command.
#[derive(Default)]
struct SinkFeeds {
    /// Per gate, one sender per sink.
    senders: Vec<Vec<SinkQueueSender>>,
    /// Per gate, the commands not sent yet.
    queued: Vec<Vec<ClipCommand>>,
}

impl SinkFeeds {
    /// Whether a gate's queue holds something a sink acts on now.
    fn is_due(queued: &[ClipCommand]) -> bool {
        let mut first_pts = None;
        queued.iter().any(|c| match c {
            ClipCommand::Sample(s) => {
                let first = *first_pts.get_or_insert(s.pts);
                s.key_frame || s.discontinuity || s.pts - first >= QUEUE_SPAN
            }
            ClipCommand::Audio(_) => false,
            _ => true,
        })
    }

    /// Sends the queues that are due.
    fn flush(&mut self) {
        self.hand_over(false);
    }

    /// Sends every queue.
    fn flush_all(&mut self) {
        self.hand_over(true);
    }

    fn hand_over(&mut self, all: bool) {
        for (queued, senders) in self.queued.iter_mut().zip(&self.senders) {
            if queued.is_empty() || !(all || Self::is_due(queued)) {
                continue;
            }
            let commands = std::mem::take(queued);
            if let Some((last, others)) = senders.split_last() {
                for tx in others {
                    tx.send(commands.iter().cloned());
                }
                last.send(commands);
            }
        }
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
