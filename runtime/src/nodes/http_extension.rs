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
use serde_json::json;

use super::extension_client::{ExtensionClient, Reply};
use super::extension_common::{
    ExtensionCounters, FaultReports, duration, encode_or_report, inference_event, is_due,
};
pub use super::extension_common::{RETRY_EVERY, Sampler};
use crate::bus::event::Event;
use crate::bus::event_log::EventBus;
use crate::media::image::{Content, EncodedImage, ImageLayout};
use crate::media::inference_snapshot::{self, Picture, SharedPacer};
use crate::media::time::MediaTime;
use crate::topology::model::HttpExtensionConfig;

/// What the node knows about its service, shared with its request thread.
#[derive(Debug, Default)]
struct CallState {
    busy: bool,
    blocked_until: Option<MediaTime>,
    failures_in_a_row: u32,
    reports: FaultReports,
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
    /// The frame's content as sent, when its inference event's snapshot is due (drawn on it).
    picture: Option<Picture>,
}

/// Makes requests and turns their answers into events; used inline or from the request thread.
struct Caller {
    subject: String,
    bus: EventBus,
    client: ExtensionClient,
    counters: ExtensionCounters,
    state: Arc<Mutex<CallState>>,
    /// When the next inference snapshot is due.
    snapshots: SharedPacer,
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
                if let Some(e) = &event {
                    self.counters.inferences.inc();
                    if let Some(picture) = job.picture.filter(|_| self.snapshots.take(job.pts)) {
                        inference_snapshot::request(e, picture, &self.bus);
                    }
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
                state.reports.report(
                    &self.bus,
                    &self.subject,
                    job.pts,
                    "ProtocolError",
                    json!({"protocol": "http", "errorCode": "503", "retryAfterSeconds": wait.as_secs_f64(), "detail": detail}),
                );
                None
            }
            Reply::NetworkError { code, detail } => {
                self.counters.failures.inc();
                let wait = state.back_off(job.pts);
                state.reports.report(
                    &self.bus,
                    &self.subject,
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
                state.reports.report(
                    &self.bus,
                    &self.subject,
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
        state.reports.report(
            &self.bus,
            &self.subject,
            at,
            "InternalError",
            json!({"errorCode": "requestFailed", "detail": detail}),
        );
    }
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
        let counters = ExtensionCounters::new(&bus, &subject);
        Ok(Caller {
            client: ExtensionClient::new(&config.endpoint)?,
            subject,
            bus,
            counters,
            state: Arc::default(),
            snapshots: SharedPacer::default(),
        })
    }

    /// True when the image is best made from planar YCbCr (a JPEG): see [`Content`].
    pub fn wants_yuv(&self) -> bool {
        crate::media::image::wants_yuv(&self.config.image.format)
    }

    /// False when a frame at `pts` is surely not sampled (too early for the sampling rate, or
    /// not `annotated` when only annotated samples are taken); no side effect.
    pub fn may_take(&self, pts: MediaTime, annotated: bool) -> bool {
        is_due(&self.config.sampling, &self.sampler, pts, annotated)
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
        if !is_due(&self.config.sampling, &self.sampler, pts, annotated) {
            return None;
        }
        let counters = &self.caller.counters;
        let mut state = self.caller.lock_state();
        if counters.backing_off(&mut state.blocked_until, pts) {
            return None;
        }
        if state.busy {
            counters.skip_busy(
                &self.caller.bus,
                &self.caller.subject,
                pts,
                "the inference service is still answering the previous frame; frames due meanwhile are skipped",
            );
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
    /// AVA's HTTP protocol carries only the image: `_upstream` inferences are not sent.
    pub fn on_image(
        &mut self,
        pts: MediaTime,
        content: &Content,
        layout: ImageLayout,
        _upstream: &[serde_json::Value],
    ) -> Option<Event> {
        let image = encode_or_report(
            content,
            layout,
            &self.config.image.format,
            &self.caller.bus,
            &self.caller.subject,
            pts,
        )?;
        let picture = self.caller.snapshots.due(pts).then(|| Picture {
            pixels: content.clone(),
            width: layout.content_width,
            height: layout.content_height,
        });
        let job = Job {
            image,
            pts,
            picture,
        };
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

#[cfg(test)]
#[path = "http_extension_tests.rs"]
mod tests;
