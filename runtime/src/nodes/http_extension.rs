//! The HttpExtension node: picks frames (uniform decimation to `maximumSamplesPerSecond`, only
//! annotated frames with `skipSamplesWithoutAnnotation`), has the [`FrameHub`] scale them as
//! `image.scale` says, encodes them as `image.format` says, POSTs them to the inference service
//! and turns 200 answers into `Analytics.Inference` events (boxes with the padding removed) at the
//! frame's media time.
//!
//! Live, requests run on the node's own thread, at most one in flight: frames due while it is
//! busy are skipped and counted, so a slow service never stalls the video or the recording. In
//! replay the request runs inline, so a slow service changes how long a replay takes, never its
//! result. After a 503 the node waits `Retry-After`; after a network error it waits
//! [`RETRY_EVERY`] (1 s); both on the media clock, which live runs at wall-clock pace.
//!
//! [`FrameHub`]: super::frame_hub::FrameHub

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::extension_client::{ExtensionClient, Reply};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::bus::metrics::Counter;
use crate::media::image::{EncodedImage, ImageLayout, encode_image};
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::HttpExtensionConfig;

/// Pause after a network error before the next due frame is sent: a service that is back is
/// used within it (an attempt is one connection; a growing back-off left a service that was
/// back unused for up to 30 s).
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How often a repeated fault is reported again (the count of repeats goes with it).
const REPORT_EVERY: MediaDuration = MediaDuration::from_secs(10);

/// Uniform decimation to at most `rate` frames per second on a grid anchored at the first frame.
#[derive(Clone, Debug)]
pub struct Sampler {
    period: Option<MediaDuration>,
    next_due: Option<MediaTime>,
}

impl Sampler {
    /// At most `rate` samples per second (none: every frame).
    pub fn new(rate: Option<f64>) -> Self {
        Self {
            period: rate.map(|r| MediaDuration::from_nanos((1e9 / r).round() as i64)),
            next_due: None,
        }
    }

    /// True when a frame at `pts` is due.
    pub fn is_due(&self, pts: MediaTime) -> bool {
        match (self.period, self.next_due) {
            // Earlier than the last sample taken: the stream went back (a replayed loop).
            (Some(period), Some(due)) => pts >= due || pts < due - period,
            _ => true,
        }
    }

    /// Records that the frame at `pts` was taken.
    pub fn take(&mut self, pts: MediaTime) {
        let Some(period) = self.period else {
            return;
        };
        self.next_due = Some(match self.next_due {
            // Stay on the grid unless the stream jumped (a gap, a loop of a replayed file).
            Some(due) if pts >= due && pts - due < period => due + period,
            _ => pts + period,
        });
    }
}

/// Counters of one node (also on `GET /metrics`).
#[derive(Clone, Debug)]
struct NodeCounters {
    dropped: Counter,
    sent: Counter,
    skipped_busy: Counter,
    skipped_backoff: Counter,
    inferences: Counter,
    failures: Counter,
}

/// What the node knows about its service, shared with its request thread.
#[derive(Debug, Default)]
struct CallState {
    busy: bool,
    blocked_until: Option<MediaTime>,
    failures_in_a_row: u32,
    last_report: Option<(String, MediaTime)>,
    suppressed: u64,
}

impl CallState {
    /// One more failure in a row: no request before the back-off from `at` has passed.
    fn back_off(&mut self, at: MediaTime) -> Duration {
        self.failures_in_a_row += 1;
        let wait = backoff(self.failures_in_a_row);
        self.blocked_until = Some(at + duration(wait));
        wait
    }
}

/// One frame to send.
struct Job {
    image: EncodedImage,
    pts: MediaTime,
}

/// Makes requests and turns their answers into events; used inline or from the request thread.
struct Caller {
    subject: String,
    bus: EventBus,
    client: ExtensionClient,
    counters: NodeCounters,
    state: Arc<Mutex<CallState>>,
}

impl Caller {
    /// The call state; a panic while it was held leaves it as it was, not locked for ever.
    fn lock_state(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn call(&self, job: Job) -> Option<Event> {
        self.counters.sent.inc();
        let reply = self.client.post(&job.image, job.pts);
        let mut state = self.lock_state();
        state.busy = false;
        match reply {
            Reply::Inferences(body) => {
                state.failures_in_a_row = 0;
                drop(state);
                let event = inference_event(&self.subject, body, &job.image.layout, job.pts);
                if event.is_some() {
                    self.counters.inferences.inc();
                }
                event
            }
            Reply::Nothing => {
                state.failures_in_a_row = 0;
                None
            }
            Reply::Busy(wait) => {
                state.blocked_until = Some(job.pts + duration(wait));
                let detail = format!(
                    "the service is busy (503); next request after {:.1} s",
                    wait.as_secs_f64()
                );
                self.report(
                    &mut state,
                    job.pts,
                    "ProtocolError",
                    json!({"protocol": "http", "errorCode": "503", "retryAfterSeconds": wait.as_secs_f64(), "detail": detail}),
                );
                None
            }
            Reply::NetworkError { code, detail } => {
                self.counters.failures.inc();
                let wait = state.back_off(job.pts);
                self.report(
                    &mut state,
                    job.pts,
                    "NetworkError",
                    json!({"errorCode": code, "retryInSeconds": wait.as_secs_f64(), "detail": detail}),
                );
                None
            }
            Reply::ProtocolError { status, detail } => {
                self.counters.failures.inc();
                if status >= 500 {
                    state.back_off(job.pts);
                }
                self.report(
                    &mut state,
                    job.pts,
                    "ProtocolError",
                    json!({"protocol": "http", "errorCode": status.to_string(), "detail": detail}),
                );
                None
            }
        }
    }

    /// A request (or the delivery of its event) failed in a way no answer explains (a bug): the
    /// node is free again and the failure reported.
    fn request_failed(&self, at: MediaTime, detail: &str) {
        self.counters.failures.inc();
        let mut state = self.lock_state();
        state.busy = false;
        self.report(
            &mut state,
            at,
            "InternalError",
            json!({"errorCode": "requestFailed", "detail": detail}),
        );
    }

    /// Emits a diagnostics event, at most one per kind and [`REPORT_EVERY`] (with the number of
    /// reports held back since the last one).
    fn report(&self, state: &mut CallState, at: MediaTime, kind: &str, mut body: Value) {
        let key = format!("{kind}/{}", body["errorCode"]);
        if let Some((last, when)) = &state.last_report
            && *last == key
            && at >= *when
            && at - *when < REPORT_EVERY
        {
            state.suppressed += 1;
            return;
        }
        body["repeatsNotReported"] = json!(state.suppressed);
        state.suppressed = 0;
        state.last_report = Some((key, at));
        self.bus.emit(Event::new(
            EventClass::Diagnostics,
            kind,
            self.subject.clone(),
            at,
            body,
        ));
    }
}

fn duration(d: Duration) -> MediaDuration {
    MediaDuration::from_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// The pause after `failures_in_a_row` network errors: always [`RETRY_EVERY`].
fn backoff(_failures_in_a_row: u32) -> Duration {
    RETRY_EVERY
}

/// Where requests run.
enum Mode {
    /// In the caller's thread (replay).
    Inline,
    /// On the node's request thread (live), one at a time.
    Thread(SyncSender<Job>),
}

/// One HttpExtension.
pub struct HttpExtensionNode {
    config: HttpExtensionConfig,
    caller: Arc<Caller>,
    sampler: Sampler,
    mode: Mode,
}

impl HttpExtensionNode {
    /// A node whose requests run inline, each answer returned by [`Self::on_image`] (replay).
    pub fn inline(config: &HttpExtensionConfig, subject: String, bus: EventBus) -> Result<Self> {
        let caller = Self::caller(config, subject, bus)?;
        Ok(Self {
            sampler: Sampler::new(config.sampling.maximum_samples_per_second),
            config: config.clone(),
            caller: Arc::new(caller),
            mode: Mode::Inline,
        })
    }

    /// A node whose requests run on their own thread; each inference event goes to `deliver`.
    pub fn threaded(
        config: &HttpExtensionConfig,
        subject: String,
        bus: EventBus,
        deliver: Box<dyn Fn(Event) + Send>,
    ) -> Result<Self> {
        let mut node = Self::inline(config, subject, bus)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1);
        let caller = node.caller.clone();
        std::thread::Builder::new()
            .name("http-extension".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let pts = job.pts;
                    // A panic here must not end the thread and leave the node busy for ever.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if let Some(event) = caller.call(job) {
                            deliver(event);
                        }
                    }));
                    if outcome.is_err() {
                        caller.request_failed(
                            pts,
                            "the request or its event failed unexpectedly; the next frame is sent as usual",
                        );
                    }
                }
            })?;
        node.mode = Mode::Thread(tx);
        Ok(node)
    }

    fn caller(config: &HttpExtensionConfig, subject: String, bus: EventBus) -> Result<Caller> {
        let node = subject.rsplit('/').next().unwrap_or_default().to_string();
        let m = bus.metrics();
        let pipeline = bus.pipeline().to_string();
        let skipped = |reason: &str| {
            m.counter(
                "vigil_extension_samples_skipped_total",
                "Sampled frames an HttpExtension did not send, by reason.",
                &[("pipeline", &pipeline), ("node", &node), ("reason", reason)],
            )
        };
        let counters = NodeCounters {
            dropped: m.data_dropped(&pipeline, &node, "video"),
            sent: m.counter(
                "vigil_extension_requests_total",
                "Requests an HttpExtension sent.",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
            skipped_busy: skipped("busy"),
            skipped_backoff: skipped("backoff"),
            inferences: m.counter(
                "vigil_extension_inference_events_total",
                "Inference events an HttpExtension produced.",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
            failures: m.counter(
                "vigil_extension_failures_total",
                "Requests that failed (network error, timeout, bad answer).",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
        };
        Ok(Caller {
            client: ExtensionClient::new(&config.endpoint)?,
            subject,
            bus,
            counters,
            state: Arc::default(),
        })
    }

    /// Where a frame of `source_width`×`source_height` at `pts` goes in the image to send, when
    /// this frame is to be sent (`annotated`: it carries upstream inferences, e.g. motion).
    pub fn wants(
        &mut self,
        pts: MediaTime,
        annotated: bool,
        source_width: u32,
        source_height: u32,
    ) -> Option<ImageLayout> {
        if self.config.sampling.skip_samples_without_annotation && !annotated {
            return None;
        }
        if !self.sampler.is_due(pts) {
            return None;
        }
        let mut state = self.caller.lock_state();
        if state.blocked_until.is_some_and(|until| pts < until) {
            self.caller.counters.skipped_backoff.inc();
            self.caller.counters.dropped.inc();
            return None;
        }
        state.blocked_until = None;
        if state.busy {
            self.caller.counters.skipped_busy.inc();
            self.caller.counters.dropped.inc();
            let skipped = self.caller.counters.skipped_busy.get();
            if skipped % 100 == 1 {
                self.caller.bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "DataDropped",
                    self.caller.subject.clone(),
                    pts,
                    json!({"dataType": "video", "skippedSamples": skipped, "detail": "the inference service is still answering the previous frame; frames due meanwhile are skipped"}),
                ));
            }
            return None;
        }
        drop(state);
        self.sampler.take(pts);
        Some(ImageLayout::new(
            source_width,
            source_height,
            self.config.image.scale.as_ref(),
        ))
    }

    /// Encodes and sends the content (packed RGB24 of `layout`'s content size) of the frame at
    /// `pts`. Inline, returns the inference event; threaded, the event is delivered later.
    pub fn on_image(&mut self, pts: MediaTime, rgb: &[u8], layout: ImageLayout) -> Option<Event> {
        let image = match encode_image(rgb, layout, &self.config.image.format) {
            Ok(i) => i,
            Err(e) => {
                self.caller.bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "MediaFormatError",
                    self.caller.subject.clone(),
                    pts,
                    json!({"detail": format!("cannot encode the image: {e:#}")}),
                ));
                return None;
            }
        };
        let job = Job { image, pts };
        match &self.mode {
            Mode::Inline => self.caller.call(job),
            Mode::Thread(tx) => {
                self.caller.lock_state().busy = true;
                match tx.try_send(job) {
                    Ok(()) => {}
                    // The previous frame is still queued: this one is skipped.
                    Err(TrySendError::Full(_)) => {
                        self.caller.counters.skipped_busy.inc();
                        self.caller.counters.dropped.inc();
                    }
                    Err(TrySendError::Disconnected(_)) => self
                        .caller
                        .request_failed(pts, "the node's request thread has stopped"),
                }
                None
            }
        }
    }
}

/// The `Analytics.Inference` event for a service's answer about the frame at `pts`: AVA's
/// `timestamp` added, boxes mapped from the padded image to the frame (ones entirely in the
/// padding dropped). `None` when no inference is left.
fn inference_event(
    subject: &str,
    mut body: serde_json::Map<String, Value>,
    layout: &ImageLayout,
    pts: MediaTime,
) -> Option<Event> {
    if let Some(Value::Array(items)) = body.get_mut("inferences") {
        if layout.is_padded() {
            items.retain_mut(|item| unpad_item(item, layout));
        }
        if items.is_empty() {
            return None;
        }
    }
    body.insert("timestamp".into(), json!(pts.as_90khz_ticks()));
    Some(Event::new(
        EventClass::Analytics,
        "Inference",
        subject.to_string(),
        pts,
        Value::Object(body),
    ))
}

/// Unpads the box of one inference in place; false when the box lies in the padding.
fn unpad_item(item: &mut Value, layout: &ImageLayout) -> bool {
    let Some(kind) = item.get("type").and_then(Value::as_str).map(str::to_string) else {
        return true;
    };
    let Some(b) = item.get_mut(&kind).and_then(|p| p.get_mut("box")) else {
        return true;
    };
    let get = |k: &str| b.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    match layout.unpad(get("l"), get("t"), get("w"), get("h")) {
        Some([l, t, w, h]) => {
            *b = json!({"l": l, "t": t, "w": w, "h": h});
            true
        }
        None => false,
    }
}

#[cfg(test)]
#[path = "http_extension_tests.rs"]
mod tests;
