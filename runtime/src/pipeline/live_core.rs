//! The state of a running pipeline that media, events and the clock act on: its gates, the
//! queues to its sinks, the feeds to its frame analysis and its event filters. The camera's thread
//! drives it with each burst it reads (so that recording wakes no other thread until a sink has
//! a fragment to write), the event loop with triggers, analysis results and, while the camera is
//! quiet, the clock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;

use super::engine::{Engine, SinkFeed};
use super::faults::{Fault, FaultSender, panic_text};
use super::plan::PipelinePlan;
use super::routing::EventRouter;
use super::sink_queue::SinkQueueSender;
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::InputMessage;
use crate::media::sample::{MediaItem, VideoSample};
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::gate_node::ClipCommand;
use crate::nodes::rtsp_source::{MediaOut, wall_now};

/// Media that stops for this long lets an open gate close on the wall clock.
const MEDIA_STALL: Duration = Duration::from_secs(1);
/// How often the pipeline looks at the wall clock (media stalls, queued commands) and for new
/// versions of its modules: when a burst arrives while the camera is read at a steady pace, else
/// on a timer of the event loop.
pub const TICK: Duration = Duration::from_secs(1);
/// Samples queued for a sink go out once they span this much media, even without a key frame:
/// the longest fragment a sink writes.
const QUEUE_SPAN: MediaDuration = crate::media::fmp4::MAX_FRAGMENT;

/// A frame-analysis thread's input: its subject (for events), its queue, and whether it is
/// skipping to the next key frame because it fell behind.
pub struct FrameFeed {
    /// Subject of the node whose frames these are.
    pub subject: String,
    /// The analysis thread's queue.
    pub queue: std_mpsc::SyncSender<VideoSample>,
    /// True while frames are dropped until the next key frame.
    pub skipping: bool,
    /// Frames dropped (`va_data_dropped_total`).
    pub dropped: crate::bus::metrics::Counter,
}

/// The pipeline's shared state; see the module's doc.
pub struct LiveCore {
    engine: Engine,
    bus: EventBus,
    feeds: SinkFeeds,
    frame_feeds: Vec<FrameFeed>,
    last_sample: Option<(MediaTime, Instant)>,
    last_housekeeping: Instant,
    source_keeps_clock: bool,
    finished: bool,
}

/// The core as the camera's thread and the event loop share it.
pub type SharedCore = Arc<Mutex<LiveCore>>;

/// Locks the core; a panic while it was held leaves it as it was, not locked for ever.
pub fn lock(core: &SharedCore) -> MutexGuard<'_, LiveCore> {
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LiveCore {
    /// A core for `plan`: one gate per plan gate, its sinks fed through `senders` (per gate, one
    /// per sink), frames for analysis through `frame_feeds`.
    pub fn new(
        plan: PipelinePlan,
        bus: EventBus,
        senders: Vec<Vec<SinkQueueSender>>,
        frame_feeds: Vec<FrameFeed>,
        router: EventRouter,
    ) -> Self {
        let queued = senders.iter().map(|_| Vec::new()).collect();
        let counters = plan
            .gates
            .iter()
            .map(|g| GateCounters::new(bus.metrics(), &plan.pipeline, &g.name))
            .collect();
        Self {
            engine: Engine::new(plan, bus.clone(), router)
                .with_live_view(crate::media::live_view::of(bus.pipeline())),
            bus,
            feeds: SinkFeeds {
                senders,
                queued,
                counters,
            },
            frame_feeds,
            last_sample: None,
            last_housekeeping: Instant::now(),
            source_keeps_clock: false,
            finished: false,
        }
    }

    /// When the event loop must next look at the clock; `None` while the camera's thread does it.
    pub fn next_housekeeping(&self) -> Option<Instant> {
        (!self.source_keeps_clock).then(|| self.last_housekeeping + TICK)
    }

    /// Media read in one burst (maybe none). `paced`: the camera's thread calls again within its
    /// read interval, and so keeps the pipeline's clock.
    pub fn on_burst(&mut self, burst: Vec<MediaItem>, paced: bool) {
        self.source_keeps_clock = paced;
        for item in burst {
            match item {
                MediaItem::Video(sample) => self.on_video(sample),
                MediaItem::Audio(sample) => self.engine.on_audio(&sample, &mut self.feeds),
            }
        }
        self.settle();
    }

    fn on_video(&mut self, sample: VideoSample) {
        self.last_sample = Some((sample.pts, Instant::now()));
        for feed in self.frame_feeds.iter_mut() {
            // A detector that falls behind skips to the next key frame (it cannot decode a
            // P-frame whose reference it missed).
            let was_skipping = feed.skipping;
            if was_skipping && !sample.key_frame {
                feed.dropped.inc();
                continue;
            }
            feed.skipping = feed.queue.try_send(sample.clone()).is_err();
            if feed.skipping {
                feed.dropped.inc();
            }
            if feed.skipping && !was_skipping {
                self.bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "DataDropped",
                    feed.subject.clone(),
                    sample.pts,
                    json!({"dataType": "video", "detail": "frame analysis is behind; skipping to the next key frame"}),
                ));
            }
        }
        self.engine.on_video(&sample, &mut self.feeds);
    }

    /// A message on one of the pipeline's inputs (MQTT or HTTP); it arrives now on the gates'
    /// media clock (the wall clock before any media came).
    pub fn on_input(&mut self, message: InputMessage) {
        let arrival = self.media_now();
        self.engine.on_input(&message, arrival, &mut self.feeds);
        self.settle();
    }

    /// An event from the processor at `processor` (frame analysis, an extension's result).
    pub fn on_analytics(&mut self, processor: usize, event: Event) {
        self.engine.on_analytics(processor, event, &mut self.feeds);
        self.settle();
    }

    /// Looks at the clock if a tick has passed since the last look.
    pub fn on_clock(&mut self) {
        self.settle();
    }

    /// Closes every open clip; later bursts are refused.
    pub fn finish(&mut self) {
        self.finished = true;
        self.engine.finish(&mut self.feeds);
        self.feeds.flush_all();
    }

    /// Drops the queues to the sinks and to frame analysis, which ends their threads.
    pub fn close(&mut self) {
        self.feeds = SinkFeeds::default();
        self.frame_feeds.clear();
    }

    /// The gates' media clock, else the wall clock.
    fn media_now(&self) -> MediaTime {
        self.engine.clock().unwrap_or_else(wall_now)
    }

    /// After any input: the clock's work if a tick has passed, then the queues that are due.
    fn settle(&mut self) {
        if self.last_housekeeping.elapsed() >= TICK {
            self.last_housekeeping = Instant::now();
            self.housekeeping();
        }
        self.feeds.flush();
    }

    fn housekeeping(&mut self) {
        let now = self.media_now();
        self.engine.check_for_new_modules(now);
        let Some((pts, at)) = self.last_sample else {
            return;
        };
        let idle = at.elapsed();
        if idle > MEDIA_STALL {
            let now = pts + MediaDuration::from_nanos(idle.as_nanos() as i64);
            self.engine.on_clock(now, &mut self.feeds);
            // No key frame is coming to carry what is queued.
            self.feeds.flush_all();
        }
    }
}

/// The camera thread's way into the core: each burst is handled on that thread, and the event
/// loop is told (`clock_released`) when the camera stops keeping the clock. A panic in the core
/// is caught here, reported on `faults`, and ends the camera's thread.
pub struct CoreInput {
    /// The core.
    pub core: SharedCore,
    /// Notified when the source stops calling at a steady pace.
    pub clock_released: Arc<Notify>,
    /// Where a panic in the core is reported.
    pub faults: FaultSender,
}

impl MediaOut for CoreInput {
    fn deliver(&mut self, burst: Vec<MediaItem>, paced: bool) -> bool {
        let handled = catch_unwind(AssertUnwindSafe(|| {
            let mut core = lock(&self.core);
            if core.finished {
                return None;
            }
            let released = core.source_keeps_clock && !paced;
            core.on_burst(burst, paced);
            Some(released)
        }));
        match handled {
            Ok(Some(released)) => {
                if released {
                    self.clock_released.notify_one();
                }
                true
            }
            Ok(None) => false,
            Err(panic) => {
                let _ = self.faults.send(Fault(format!(
                    "the pipeline's core panicked on the camera's thread: {}",
                    panic_text(panic.as_ref())
                )));
                false
            }
        }
    }
}

impl Drop for CoreInput {
    /// A source that is gone (its thread ended or panicked) keeps no clock.
    fn drop(&mut self) {
        lock(&self.core).source_keeps_clock = false;
        self.clock_released.notify_one();
    }
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
    /// Per gate, its metrics.
    counters: Vec<GateCounters>,
}

/// A gate's metrics: openings, and the frames and bytes it passed to its sinks.
struct GateCounters {
    openings: crate::bus::metrics::Counter,
    frames: crate::bus::metrics::Counter,
    bytes: crate::bus::metrics::Counter,
}

impl GateCounters {
    fn new(metrics: &crate::bus::metrics::Metrics, pipeline: &str, gate: &str) -> Self {
        Self {
            openings: metrics.gate_openings(pipeline, gate),
            frames: metrics.node_frames(pipeline, gate),
            bytes: metrics.node_bytes(pipeline, gate),
        }
    }

    fn count(&self, commands: &[ClipCommand]) {
        for c in commands {
            match c {
                ClipCommand::Start { .. } => {
                    self.openings.inc();
                }
                ClipCommand::Sample(s) => {
                    self.frames.inc();
                    self.bytes.inc_by(s.data.len() as u64);
                }
                _ => {}
            }
        }
    }
}

impl SinkFeed for SinkFeeds {
    fn feed(&mut self, gate: usize, commands: Vec<ClipCommand>) {
        if let Some(counters) = self.counters.get(gate) {
            counters.count(&commands);
        }
        if let Some(queued) = self.queued.get_mut(gate) {
            queued.extend(commands);
        }
    }
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

#[cfg(test)]
#[path = "live_core_tests.rs"]
mod tests;
