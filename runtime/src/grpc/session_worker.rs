//! The session thread of a GrpcExtension node ([`super::session`]): its loop over frames,
//! replies and the acknowledgement deadline; opening a session (connection, descriptors);
//! sending a frame (embedded or through the shared-memory ring); matching replies to frames;
//! ending a session, on a fault or as a client should when the node stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::mpsc;
use tonic::Streaming;

use super::channel::{self, error_chain};
use super::contract::media_graph_extension_client::MediaGraphExtensionClient;
use super::contract::{
    ContentBytes, ContentReference, Dimensions, GraphIdentifier, MediaDescriptor, MediaSample,
    MediaStreamDescriptor, MediaStreamMessage, SharedMemoryBufferTransferProperties,
    VideoFrameSampleFormat, media_descriptor, media_sample, media_stream_descriptor,
    media_stream_message,
};
use super::session::{
    ACK_TIMEOUT, CLOSE_WAIT, DESCRIPTOR_TIMEOUT, Fault, FaultKind, FrameFormat, FrameJob, Outcome,
    SessionSettings, SkipReason, TIMESCALE,
};
use super::shared_memory::SharedMemoryRing;
use crate::media::image::ImageLayout;
use crate::media::time::MediaTime;
use crate::topology::model::Credentials;

/// Answered frames remembered for results that come apart from their acknowledgement.
const RECENT: usize = 32;

/// The job a failure ends.
#[derive(Clone, Copy, Debug)]
struct JobRef {
    id: u64,
    pts: MediaTime,
}

impl JobRef {
    fn of(job: &FrameJob) -> Self {
        Self {
            id: job.id,
            pts: job.pts,
        }
    }
}

/// A frame sent and not yet acknowledged.
#[derive(Debug)]
struct InFlight {
    id: u64,
    sequence: u64,
    timestamp: u64,
    pts: MediaTime,
    layout: ImageLayout,
    sent: Instant,
}

/// An open session.
struct Open {
    outgoing: mpsc::Sender<MediaStreamMessage>,
    replies: Streaming<MediaStreamMessage>,
    next_sequence: u64,
    newest_server_sequence: u64,
    in_flight: VecDeque<InFlight>,
    recent: VecDeque<(u64, MediaTime, ImageLayout)>,
    ring: Option<SharedMemoryRing>,
    format: FrameFormat,
    /// Media time of the newest frame sent (faults are reported at it).
    newest_pts: MediaTime,
}

/// The session thread's state.
pub(super) struct Worker {
    /// What the sessions are.
    pub(super) settings: SessionSettings,
    /// Where every outcome goes.
    pub(super) outcomes: Box<dyn Fn(Outcome) + Send>,
    /// Frames handed over and not yet ended (shared with the node).
    pub(super) pending: Arc<AtomicUsize>,
    /// The newest media time the node saw, in nanoseconds.
    pub(super) clock: Arc<AtomicI64>,
}

impl Worker {
    /// The media time a fault found now is reported at: the newest frame the node saw (or
    /// sent, when later).
    fn now(&self, sent: MediaTime) -> MediaTime {
        MediaTime::from_nanos(self.clock.load(Ordering::Acquire).max(sent.as_nanos()))
    }

    fn finish(&self, outcome: Outcome) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        (self.outcomes)(outcome);
    }

    /// Runs sessions for the frames that come in `jobs` until it closes.
    pub(super) async fn run(&mut self, mut jobs: mpsc::Receiver<FrameJob>) {
        let mut session: Option<Open> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(open) = session.as_mut() else {
                let Some(job) = jobs.recv().await else {
                    return;
                };
                session = self.open_and_send(job).await;
                continue;
            };
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else {
                        self.close(session.take()).await;
                        return;
                    };
                    if job.format != open.format || job.new_session {
                        // The camera changed or was away: a new descriptor, a new session; the
                        // old one is closed as a client should (its answers taken first).
                        self.close(session.take()).await;
                        session = self.open_and_send(job).await;
                    } else if let Err((job, fault)) = self.send_frame(open, job) {
                        let lost = self.end(session.take(), job.pts, None);
                        self.fail(job, fault, lost);
                    }
                }
                reply = open.replies.message() => {
                    if let Err(fault) = self.on_reply(open, reply) {
                        let at = self.now(open.newest_pts);
                        self.end(session.take(), at, Some(fault));
                    }
                }
                _ = tick.tick() => {
                    if open.in_flight.front().is_some_and(|f| f.sent.elapsed() > ACK_TIMEOUT) {
                        let pts = self.now(open.newest_pts);
                        let fault = Fault::new(FaultKind::Network, "timeout", format!("the server acknowledged no frame for {} s; the session is closed and a new one opened at the next due frame", ACK_TIMEOUT.as_secs()));
                        self.end(session.take(), pts, Some(fault));
                    }
                }
            }
        }
    }

    /// Ends `session` as a client should (the node is stopping): our side of the stream closed,
    /// the answers to frames in flight and the server's end of the call awaited for up to
    /// [`CLOSE_WAIT`], then the call dropped.
    async fn close(&self, session: Option<Open>) {
        let Some(mut open) = session else { return };
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut open.outgoing, tx));
        // The server answers what it has and ends the call (OK); wait for that end, so the call
        // is not cancelled under it.
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        while let Ok(reply) = tokio::time::timeout_at(deadline, open.replies.message()).await {
            if self.on_reply(&mut open, reply).is_err() {
                break;
            }
        }
        let at = open.newest_pts;
        self.end(Some(open), at, None);
    }

    /// Opens a session for `job`'s format and sends it; `None` when either failed (reported).
    async fn open_and_send(&mut self, job: FrameJob) -> Option<Open> {
        match self.open(job.format).await {
            Ok((mut open, extension_identifier)) => {
                (self.outcomes)(Outcome::Opened {
                    pts: job.pts,
                    extension_identifier,
                });
                match self.send_frame(&mut open, job) {
                    Ok(()) => Some(open),
                    Err((job, fault)) => {
                        let lost = self.end(Some(open), job.pts, None);
                        self.fail(job, fault, lost);
                        None
                    }
                }
            }
            Err(fault) => {
                self.fail(JobRef::of(&job), fault, 0);
                None
            }
        }
    }

    /// Reports `job` lost with `fault`.
    fn fail(&self, job: JobRef, mut fault: Fault, lost_before: usize) {
        fault.frames_lost = lost_before + 1;
        self.finish(Outcome::Failed {
            id: job.id,
            pts: job.pts,
            fault,
        });
    }

    /// Closes `session`. With `fault`, reports it at `pts` (a `Failed` outcome with id 0) with
    /// the number of frames it lost; every frame in flight then ends as skipped
    /// (`sessionEnded`). Returns that number.
    fn end(&self, session: Option<Open>, pts: MediaTime, fault: Option<Fault>) -> usize {
        let Some(open) = session else { return 0 };
        let lost = open.in_flight.len();
        if let Some(mut fault) = fault {
            fault.frames_lost = lost;
            (self.outcomes)(Outcome::Failed { id: 0, pts, fault });
        }
        for frame in open.in_flight {
            self.finish(Outcome::Skipped {
                id: frame.id,
                pts: frame.pts,
                reason: SkipReason::SessionEnded,
            });
        }
        lost
    }

    async fn open(&self, format: FrameFormat) -> Result<(Open, Option<String>), Fault> {
        let network = |code: &str, detail: String| Fault::new(FaultKind::Network, code, detail);
        let protocol = |code: &str, detail: String| Fault::new(FaultKind::Protocol, code, detail);
        let ring =
            match self.settings.shared_memory_bytes {
                Some(size) => Some(SharedMemoryRing::create(size).map_err(|e| {
                    Fault::new(FaultKind::SharedMemory, "sharedMemory", e.to_string())
                })?),
                None => None,
            };
        let channel = channel::connect(&self.settings.endpoint)
            .await
            .map_err(|e| network("connectionFailed", e.to_string()))?;
        // A reply larger than --max-reply-kib ends the call (OutOfRange), as an HTTP one is
        // refused; frames we send are bounded by the image size.
        let mut client = MediaGraphExtensionClient::new(channel)
            .max_decoding_message_size(crate::limits::get().reply_bytes);
        let (outgoing, rx) = mpsc::channel::<MediaStreamMessage>(self.settings.max_in_flight + 2);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut request = tonic::Request::new(stream);
        if let Some(Credentials::UsernamePassword { username, password }) =
            &self.settings.endpoint.credentials
        {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            let value = format!("Basic {token}").parse().map_err(|_| {
                protocol(
                    "credentials",
                    "the credentials cannot be sent as a header value".into(),
                )
            })?;
            request.metadata_mut().insert("x-ms-authentication", value);
        }
        let descriptor = MediaStreamMessage {
            sequence_number: 1,
            ack_sequence_number: 0,
            payload: Some(media_stream_message::Payload::MediaStreamDescriptor(
                self.descriptor(format, ring.as_ref()),
            )),
        };
        // Queued before the call starts: the server reads it first.
        let _ = outgoing.try_send(descriptor);
        let answered = async {
            let response = client.process_media_stream(request).await?;
            let mut replies = response.into_inner();
            let first = replies.message().await?;
            Ok::<_, tonic::Status>((replies, first))
        };
        let (replies, first) = match tokio::time::timeout(DESCRIPTOR_TIMEOUT, answered).await {
            Err(_) => {
                return Err(network(
                    "timeout",
                    format!(
                        "the server did not answer the session's descriptor within {} s",
                        DESCRIPTOR_TIMEOUT.as_secs()
                    ),
                ));
            }
            Ok(Err(status)) => return Err(status_fault(&status)),
            Ok(Ok(answer)) => answer,
        };
        let Some(first) = first else {
            return Err(protocol(
                "sessionEnded",
                "the server ended the session before sending its descriptor".into(),
            ));
        };
        let Some(media_stream_message::Payload::MediaStreamDescriptor(theirs)) = first.payload
        else {
            return Err(protocol(
                "noDescriptor",
                "the server's first message is not a media_stream_descriptor".into(),
            ));
        };
        let extension_identifier = match theirs.stream_identifier {
            Some(media_stream_descriptor::StreamIdentifier::ExtensionIdentifier(id))
                if !id.is_empty() =>
            {
                Some(id)
            }
            _ => None,
        };
        Ok((
            Open {
                outgoing,
                replies,
                next_sequence: 2,
                newest_server_sequence: first.sequence_number,
                in_flight: VecDeque::new(),
                recent: VecDeque::new(),
                ring,
                format,
                newest_pts: MediaTime::from_nanos(0),
            },
            extension_identifier,
        ))
    }

    fn descriptor(&self, f: FrameFormat, ring: Option<&SharedMemoryRing>) -> MediaStreamDescriptor {
        MediaStreamDescriptor {
            stream_identifier: Some(media_stream_descriptor::StreamIdentifier::GraphIdentifier(
                GraphIdentifier {
                    media_services_arm_id: String::new(),
                    graph_instance_name: self.settings.pipeline.clone(),
                    graph_node_name: self.settings.node.clone(),
                },
            )),
            extension_configuration: self
                .settings
                .extension_configuration
                .clone()
                .unwrap_or_default(),
            media_descriptor: Some(MediaDescriptor {
                timescale: TIMESCALE,
                media_sample_format: Some(
                    media_descriptor::MediaSampleFormat::VideoFrameSampleFormat(
                        VideoFrameSampleFormat {
                            encoding: f.encoding,
                            pixel_format: f.pixel_format,
                            dimensions: Some(Dimensions {
                                width: f.width,
                                height: f.height,
                            }),
                            stride_bytes: f.stride,
                        },
                    ),
                ),
            }),
            data_transfer_properties: ring.map(|r| {
                media_stream_descriptor::DataTransferProperties::SharedMemoryBufferTransferProperties(
                    SharedMemoryBufferTransferProperties {
                        handle_name: r.handle_name().to_string(),
                        length_bytes: r.size(),
                    },
                )
            }),
        }
    }

    /// Sends `job` in `open`: a skip when there is no room for it (reported), a fault when the
    /// session cannot take it.
    fn send_frame(&self, open: &mut Open, mut job: FrameJob) -> Result<(), (JobRef, Fault)> {
        let sequence = open.next_sequence;
        let timestamp = job.pts.as_90khz_ticks().max(0) as u64;
        let content = match open.ring.as_mut() {
            Some(ring) => match ring.put(sequence, &job.bytes) {
                Ok(Some(offset)) => media_sample::Content::ContentReference(ContentReference {
                    address_offset: offset,
                    length_bytes: job.bytes.len() as u64,
                }),
                Ok(None) => {
                    let reason = if job.bytes.len() as u64 > ring.size() {
                        SkipReason::FrameTooLarge
                    } else {
                        SkipReason::SharedMemoryFull
                    };
                    self.finish(Outcome::Skipped {
                        id: job.id,
                        pts: job.pts,
                        reason,
                    });
                    return Ok(());
                }
                Err(e) => {
                    let fault = Fault::new(FaultKind::SharedMemory, "sharedMemory", e.to_string());
                    return Err((JobRef::of(&job), fault));
                }
            },
            None => media_sample::Content::ContentBytes(ContentBytes {
                bytes: std::mem::take(&mut job.bytes),
            }),
        };
        let message = MediaStreamMessage {
            sequence_number: sequence,
            ack_sequence_number: open.newest_server_sequence,
            payload: Some(media_stream_message::Payload::MediaSample(MediaSample {
                timestamp,
                content: Some(content),
                inferences: std::mem::take(&mut job.inferences),
            })),
        };
        match open.outgoing.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Some(ring) = open.ring.as_mut() {
                    ring.release(sequence);
                }
                self.finish(Outcome::Skipped {
                    id: job.id,
                    pts: job.pts,
                    reason: SkipReason::QueueFull,
                });
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let fault = Fault::new(
                    FaultKind::Network,
                    "sessionEnded",
                    "the session's stream to the server has ended",
                );
                return Err((JobRef::of(&job), fault));
            }
        }
        open.next_sequence += 1;
        open.newest_pts = job.pts;
        open.in_flight.push_back(InFlight {
            id: job.id,
            sequence,
            timestamp,
            pts: job.pts,
            layout: job.layout,
            sent: Instant::now(),
        });
        Ok(())
    }

    /// Handles one message (or the end) of the server's stream.
    fn on_reply(
        &self,
        open: &mut Open,
        reply: Result<Option<MediaStreamMessage>, tonic::Status>,
    ) -> Result<(), Fault> {
        let message = match reply {
            Err(status) => return Err(status_fault(&status)),
            Ok(None) => {
                return Err(Fault::new(
                    FaultKind::Network,
                    "sessionEnded",
                    "the server ended the session",
                ));
            }
            Ok(Some(m)) => m,
        };
        open.newest_server_sequence = open.newest_server_sequence.max(message.sequence_number);
        let (timestamp, mut inferences) = match message.payload {
            Some(media_stream_message::Payload::MediaSample(s)) => (s.timestamp, s.inferences),
            // A descriptor again, or nothing: only its ack counts.
            _ => (0, Vec::new()),
        };
        if let Some(frame) = take_acknowledged(open, message.ack_sequence_number) {
            // A server that does not echo timestamps (0) answers the frame it acknowledges.
            let own = timestamp == 0 || timestamp == frame.timestamp;
            self.finish(Outcome::Answered {
                id: frame.id,
                pts: frame.pts,
                layout: frame.layout,
                inferences: if own {
                    std::mem::take(&mut inferences)
                } else {
                    Vec::new()
                },
            });
        }
        if !inferences.is_empty() && timestamp != 0 {
            // Results sent apart from their ack: the frame they name by timestamp.
            let frame = open
                .in_flight
                .iter()
                .find(|f| f.timestamp == timestamp)
                .map(|f| (f.pts, f.layout))
                .or_else(|| {
                    open.recent
                        .iter()
                        .find(|(t, _, _)| *t == timestamp)
                        .map(|(_, pts, layout)| (*pts, *layout))
                });
            if let Some((pts, layout)) = frame {
                (self.outcomes)(Outcome::Answered {
                    id: 0,
                    pts,
                    layout,
                    inferences,
                });
            }
        }
        Ok(())
    }
}

/// Removes the frame sent as `sequence` from those in flight (its shared-memory region free
/// again), remembering it for late results.
fn take_acknowledged(open: &mut Open, sequence: u64) -> Option<InFlight> {
    let at = open.in_flight.iter().position(|f| f.sequence == sequence)?;
    let frame = open.in_flight.remove(at)?;
    if let Some(ring) = open.ring.as_mut() {
        ring.release(sequence);
    }
    open.recent
        .push_back((frame.timestamp, frame.pts, frame.layout));
    if open.recent.len() > RECENT {
        open.recent.pop_front();
    }
    Some(frame)
}

/// A gRPC status that ended the call, as a fault. A status with a source error comes from
/// the connection (the server went away: `connectionLost`), not from the server.
fn status_fault(status: &tonic::Status) -> Fault {
    use tonic::Code;
    let mut detail = format!("{:?}: {}", status.code(), status.message());
    let source = std::error::Error::source(status);
    if let Some(source) = source {
        detail.push_str(": ");
        detail.push_str(&error_chain(source));
    }
    let network = source.is_some()
        || matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted
        );
    let code = if source.is_some() && status.code() == Code::Unknown {
        "connectionLost".to_string()
    } else {
        format!("{:?}", status.code())
    };
    let kind = if network {
        FaultKind::Network
    } else {
        FaultKind::Protocol
    };
    Fault::new(kind, &code, detail)
}
