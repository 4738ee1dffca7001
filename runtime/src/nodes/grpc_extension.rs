//! The GrpcExtension node (ava-spec §2.3, §6): picks frames as the HttpExtension does (uniform
//! decimation to `maximumSamplesPerSecond`, only annotated frames with
//! `skipSamplesWithoutAnnotation`), has the [`FrameHub`] scale them as `image.scale` says,
//! encodes them as `image.format` says and sends them through its `ProcessMediaStream` session
//! ([`crate::grpc::session`]), embedded or through shared memory. Answers become
//! `Analytics.Inference` events at the frame's media time (boxes with the padding removed).
//!
//! Live, up to [`MAX_IN_FLIGHT`] frames are in flight; frames due while that many wait for their
//! answers are skipped and counted, so a slow or silent server never stalls the video or the
//! recording. In replay each frame waits for its answer, so a replay's clips do not depend on
//! how fast the server is. After a failed session the node waits [`RETRY_EVERY`] of media
//! before the next session.
//!
//! [`FrameHub`]: super::frame_hub::FrameHub

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::extension_common::{
    ExtensionCounters, FaultReports, RETRY_EVERY, Sampler, duration, encode_or_report,
    inference_event, is_due,
};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::grpc::contract::video_frame_sample_format::{Encoding, PixelFormat};
use crate::grpc::inferences::{inference_proto, inferences_json};
use crate::grpc::session::{
    ACK_TIMEOUT, DESCRIPTOR_TIMEOUT, FaultKind, FrameFormat, FrameJob, Outcome, SessionHandle,
    SessionSettings,
};
use crate::media::image::{Content, ImageLayout, raw_row_bytes};
use crate::media::inference_snapshot::{self, Picture, SharedPacer};
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::{DataTransfer, GrpcExtensionConfig, ImageFormat};

/// Frames in flight at most in a live pipeline (replay: one).
pub const MAX_IN_FLIGHT: usize = 4;

/// A jump of the media clock larger than this (or backwards) between two frames sent means the
/// camera was away: the next frame opens a new session, as AVA did.
const NEW_SESSION_AFTER: MediaDuration = MediaDuration::from_secs(10);

/// What the node knows about its server, shared with the session thread.
#[derive(Debug, Default)]
struct State {
    blocked_until: Option<MediaTime>,
    reports: FaultReports,
    failing: bool,
}

/// Turns the session's outcomes into events and reports.
struct Outcomes {
    subject: String,
    bus: EventBus,
    counters: ExtensionCounters,
    state: Mutex<State>,
    /// The frames in flight, by job id, as sent (their events' snapshots are drawn on them).
    pictures: Mutex<VecDeque<(u64, Picture)>>,
    /// When the next inference snapshot is due.
    snapshots: SharedPacer,
}

/// Frames in flight held for their snapshots; an older one is let go (its event gets none).
const HELD_PICTURES: usize = 4;

impl Outcomes {
    fn pictures(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Picture)>> {
        self.pictures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds the content of frame `id` until its outcome.
    fn hold(&self, id: u64, picture: Picture) {
        let mut held = self.pictures();
        if held.len() >= HELD_PICTURES {
            held.pop_front();
        }
        held.push_back((id, picture));
    }

    /// The content of frame `id`, if still held.
    fn release(&self, id: u64) -> Option<Picture> {
        let mut held = self.pictures();
        let at = held.iter().position(|(i, _)| *i == id)?;
        held.remove(at).map(|(_, p)| p)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The event `outcome` gives, if any; faults and skips are reported here.
    fn handle(&self, outcome: Outcome) -> Option<Event> {
        let picture = outcome_id(&outcome).and_then(|id| self.release(id));
        match outcome {
            Outcome::Answered {
                pts,
                layout,
                inferences,
                ..
            } => {
                if inferences.is_empty() {
                    return None;
                }
                match inferences_json(&inferences) {
                    Ok(list) => {
                        let mut body = serde_json::Map::new();
                        body.insert("inferences".into(), Value::Array(list));
                        let event = inference_event(&self.subject, body, &layout, pts);
                        if let Some(e) = &event {
                            self.counters.inferences.inc();
                            if let Some(picture) = picture.filter(|_| self.snapshots.take(pts)) {
                                inference_snapshot::request(e, picture, &self.bus);
                            }
                        }
                        event
                    }
                    Err(e) => {
                        self.counters.failures.inc();
                        let mut state = self.lock();
                        state.reports.report(
                            &self.bus,
                            &self.subject,
                            pts,
                            "ProtocolError",
                            json!({"protocol": "grpc", "errorCode": "invalidInference", "detail": format!("the server's answer breaks the inference schema: {e}")}),
                        );
                        None
                    }
                }
            }
            Outcome::Skipped { pts, reason, .. } => {
                self.counters.skip_reported(
                    &self.counters.skipped_session,
                    &self.bus,
                    &self.subject,
                    pts,
                    reason.as_str(),
                    reason.detail(),
                );
                None
            }
            Outcome::Failed { pts, fault, .. } => {
                self.counters.failures.inc();
                let mut state = self.lock();
                state.failing = true;
                state.blocked_until = Some(pts + duration(RETRY_EVERY));
                let kind = match fault.kind {
                    FaultKind::Network => "NetworkError",
                    FaultKind::Protocol => "ProtocolError",
                    FaultKind::SharedMemory => "StorageError",
                };
                state.reports.report(
                    &self.bus,
                    &self.subject,
                    pts,
                    kind,
                    json!({
                        "protocol": "grpc",
                        "errorCode": fault.code,
                        "framesLost": fault.frames_lost,
                        "retryInSeconds": RETRY_EVERY.as_secs_f64(),
                        "detail": fault.detail,
                    }),
                );
                None
            }
            Outcome::Opened {
                pts,
                extension_identifier,
            } => {
                let recovered = std::mem::take(&mut self.lock().failing);
                self.bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "ExtensionSessionEstablished",
                    self.subject.clone(),
                    pts,
                    json!({"protocol": "grpc", "extensionIdentifier": extension_identifier, "afterFailure": recovered}),
                ));
                None
            }
        }
    }
}

/// Where answers go.
enum Mode {
    /// Each inference event to the pipeline, from the session thread (live).
    Threaded,
    /// Back to [`GrpcExtensionNode::on_image`], which waits for them (replay).
    Inline(Receiver<Outcome>),
}

/// One GrpcExtension.
pub struct GrpcExtensionNode {
    config: GrpcExtensionConfig,
    outcomes: Arc<Outcomes>,
    session: SessionHandle,
    sampler: Sampler,
    mode: Mode,
    max_in_flight: usize,
    next_id: u64,
    last_sent: Option<MediaTime>,
}

impl GrpcExtensionNode {
    /// A node whose frames wait for their answers, each returned by [`Self::on_image`] (replay).
    pub fn inline(config: &GrpcExtensionConfig, subject: String, bus: EventBus) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let outcomes = Self::outcomes(&subject, &bus);
        let session = SessionHandle::start(
            Self::settings(config, &subject, &bus, 1),
            Box::new(move |o| {
                let _ = tx.send(o);
            }),
        )?;
        Ok(Self::with(config, outcomes, session, Mode::Inline(rx), 1))
    }

    /// A node with frames in flight; each inference event goes to `deliver`.
    pub fn threaded(
        config: &GrpcExtensionConfig,
        subject: String,
        bus: EventBus,
        deliver: Box<dyn Fn(Event) + Send>,
    ) -> Result<Self> {
        let outcomes = Self::outcomes(&subject, &bus);
        let handler = outcomes.clone();
        let session = SessionHandle::start(
            Self::settings(config, &subject, &bus, MAX_IN_FLIGHT),
            Box::new(move |o| {
                // A panic here must not end the session thread and leave the node busy.
                let event =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(o)));
                if let Ok(Some(event)) = event {
                    deliver(event);
                }
            }),
        )?;
        Ok(Self::with(
            config,
            outcomes,
            session,
            Mode::Threaded,
            MAX_IN_FLIGHT,
        ))
    }

    fn with(
        config: &GrpcExtensionConfig,
        outcomes: Arc<Outcomes>,
        session: SessionHandle,
        mode: Mode,
        max_in_flight: usize,
    ) -> Self {
        Self {
            sampler: Sampler::new(config.sampling.maximum_samples_per_second),
            config: config.clone(),
            outcomes,
            session,
            mode,
            max_in_flight,
            next_id: 1,
            last_sent: None,
        }
    }

    fn outcomes(subject: &str, bus: &EventBus) -> Arc<Outcomes> {
        Arc::new(Outcomes {
            subject: subject.to_string(),
            bus: bus.clone(),
            counters: ExtensionCounters::new(bus, subject),
            state: Mutex::default(),
            pictures: Mutex::default(),
            snapshots: SharedPacer::default(),
        })
    }

    fn settings(
        config: &GrpcExtensionConfig,
        subject: &str,
        bus: &EventBus,
        max_in_flight: usize,
    ) -> SessionSettings {
        SessionSettings {
            endpoint: config.endpoint.clone(),
            pipeline: bus.pipeline().to_string(),
            node: subject.rsplit('/').next().unwrap_or_default().to_string(),
            extension_configuration: config.extension_configuration.clone(),
            shared_memory_bytes: match config.data_transfer {
                DataTransfer::Embedded => None,
                DataTransfer::SharedMemory { bytes } => Some(bytes),
            },
            max_in_flight,
        }
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
        self.session.saw(pts);
        if !is_due(&self.config.sampling, &self.sampler, pts, annotated) {
            return None;
        }
        let counters = &self.outcomes.counters;
        if counters.backing_off(&mut self.outcomes.lock().blocked_until, pts) {
            return None;
        }
        if self.session.pending() >= self.max_in_flight {
            let detail = format!(
                "the inference server has not answered the {} frames in flight; frames due meanwhile are skipped",
                self.max_in_flight
            );
            counters.skip_busy(&self.outcomes.bus, &self.outcomes.subject, pts, &detail);
            return None;
        }
        self.sampler.take(pts);
        Some(ImageLayout::new(
            source_width,
            source_height,
            self.config.image.scale.as_ref(),
        ))
    }

    /// Encodes the content (packed RGB24 of `layout`'s content size) of the frame at `pts` and
    /// sends it. Inline, waits for the answer and returns its inference event; threaded, the
    /// event is delivered later.
    /// `upstream`: the inferences the frame carries (e.g. motion), sent with it in the sample,
    /// boxes placed in the image sent.
    pub fn on_image(
        &mut self,
        pts: MediaTime,
        content: &Content,
        layout: ImageLayout,
        upstream: &[serde_json::Value],
    ) -> Option<Event> {
        let image = encode_or_report(
            content,
            layout,
            &self.config.image.format,
            &self.outcomes.bus,
            &self.outcomes.subject,
            pts,
        )?;
        let id = self.next_id;
        self.next_id += 1;
        let format = frame_format(&self.config.image.format, layout);
        let job = FrameJob {
            id,
            pts,
            layout,
            format,
            bytes: image.bytes,
            inferences: upstream
                .iter()
                .filter_map(|v| inference_proto(v, &layout))
                .collect(),
            new_session: self
                .last_sent
                .is_some_and(|last| pts < last || pts - last > NEW_SESSION_AFTER),
        };
        self.last_sent = Some(pts);
        if self.outcomes.snapshots.due(pts) {
            self.outcomes.hold(
                id,
                Picture {
                    pixels: content.clone(),
                    width: layout.content_width,
                    height: layout.content_height,
                },
            );
        }
        self.outcomes.counters.sent.inc();
        if self.session.send(job).is_err() {
            self.outcomes.counters.failures.inc();
            let mut state = self.outcomes.lock();
            state.reports.report(
                &self.outcomes.bus,
                &self.outcomes.subject,
                pts,
                "InternalError",
                json!({"errorCode": "sessionThread", "detail": "the node's session thread has stopped"}),
            );
            return None;
        }
        let Mode::Inline(answers) = &self.mode else {
            return None;
        };
        // One frame in flight: the answer, a skip or a failure for it comes within the
        // session's own deadlines.
        let deadline = DESCRIPTOR_TIMEOUT + ACK_TIMEOUT + Duration::from_secs(5);
        let mut event = None;
        loop {
            match answers.recv_timeout(deadline) {
                Ok(outcome) => {
                    let mine = outcome_id(&outcome) == Some(id);
                    if let Some(e) = self.outcomes.handle(outcome) {
                        event = Some(e);
                    }
                    if mine {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.outcomes.bus.emit(Event::new(
                        EventClass::Diagnostics,
                        "InternalError",
                        self.outcomes.subject.clone(),
                        pts,
                        json!({"errorCode": "sessionThread", "detail": "the session gave no answer for the frame"}),
                    ));
                    return event;
                }
            }
        }
    }
}

/// The job an outcome ends (none for a session's own reports).
fn outcome_id(o: &Outcome) -> Option<u64> {
    match o {
        Outcome::Answered { id, .. } | Outcome::Skipped { id, .. } | Outcome::Failed { id, .. } => {
            (*id != 0).then_some(*id)
        }
        Outcome::Opened { .. } => None,
    }
}

/// The descriptor's frame format for images of `layout` encoded as `format`.
pub fn frame_format(format: &ImageFormat, layout: ImageLayout) -> FrameFormat {
    let (encoding, pixel_format, stride) = match format {
        ImageFormat::Jpeg { .. } => (Encoding::Jpg, PixelFormat::None, 0),
        ImageFormat::Png => (Encoding::Png, PixelFormat::None, 0),
        ImageFormat::Bmp => (Encoding::Bmp, PixelFormat::None, 0),
        ImageFormat::Raw { pixel_format } => (
            Encoding::Raw,
            PixelFormat::from_str_name(&pixel_format.to_ascii_uppercase())
                .unwrap_or(PixelFormat::None),
            raw_row_bytes(pixel_format, layout.width).unwrap_or(0),
        ),
    };
    FrameFormat {
        encoding: encoding as i32,
        pixel_format: pixel_format as i32,
        width: layout.width,
        height: layout.height,
        stride,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_formats_follow_the_image_properties() {
        let layout = ImageLayout::new(1920, 1080, None);
        let raw = |name: &str| ImageFormat::Raw {
            pixel_format: name.into(),
        };
        let f = frame_format(&raw("bgr24"), layout);
        assert_eq!(
            (f.encoding, f.pixel_format, f.width, f.height, f.stride),
            (3, 61, 1920, 1080, 5760)
        );
        assert_eq!(frame_format(&raw("rgba"), layout).stride, 7680);
        assert_eq!(frame_format(&raw("yuv420p"), layout).pixel_format, 20);
        assert_eq!(frame_format(&raw("yuv420p"), layout).stride, 1920);
        assert_eq!(frame_format(&raw("rgb565le"), layout).pixel_format, 41);
        let jpeg = frame_format(&ImageFormat::Jpeg { quality: 90 }, layout);
        assert_eq!((jpeg.encoding, jpeg.pixel_format, jpeg.stride), (1, 0, 0));
        assert_eq!(frame_format(&ImageFormat::Png, layout).encoding, 2);
        assert_eq!(frame_format(&ImageFormat::Bmp, layout).encoding, 0);
    }
}
