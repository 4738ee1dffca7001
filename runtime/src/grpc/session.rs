//! One GrpcExtension node's `ProcessMediaStream` sessions with its server, on a thread of their
//! own (a current-thread tokio runtime), so neither the decoder nor the camera ever waits for the
//! network.
//!
//! A session opens when a frame is due and none is open: connect, our descriptor (graph
//! identifier, `extensionConfiguration`, timescale 90000, the frame format, the shared-memory
//! file), the server's descriptor back; then samples, each numbered, each acknowledging the
//! server's newest message. Several frames may be in flight ([`SessionSettings::max_in_flight`]);
//! a reply is matched to its frame by `ack_sequence_number` (or, for a server that sends results
//! apart from acks, by the echoed timestamp). A session ends, its frames in flight reported lost,
//! when the server closes it, fails, answers something that is not the contract, or acknowledges
//! nothing for [`ACK_TIMEOUT`]; the next due frame opens a new one. A frame of another size or
//! format than the session's (the camera changed) opens a new session too.
//!
//! Every frame handed to the session ends in exactly one [`Outcome`] with its id.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::contract::Inference;
use super::session_worker::Worker;
use crate::media::image::ImageLayout;
use crate::media::time::MediaTime;
use crate::topology::model::Endpoint;

/// Ticks per second of the timestamps we send (AVA's).
pub const TIMESCALE: u32 = 90_000;

/// How long the server may take to answer our descriptor.
pub const DESCRIPTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the oldest frame in flight may wait for its acknowledgement before the session is
/// given up.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping node waits for the answers to its frames in flight.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What one node's sessions are.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// The server.
    pub endpoint: Endpoint,
    /// `graph_instance_name`: the live pipeline.
    pub pipeline: String,
    /// `graph_node_name`: the node.
    pub node: String,
    /// `extension_configuration`, passed through.
    pub extension_configuration: Option<String>,
    /// Size of the shared-memory file; none = frames embedded in the messages.
    pub shared_memory_bytes: Option<u64>,
    /// Frames in flight at most (sent, not yet acknowledged).
    pub max_in_flight: usize,
}

/// The frame format of a session's descriptor (`video_frame_sample_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFormat {
    /// `Encoding` value (BMP 0, JPG 1, PNG 2, RAW 3).
    pub encoding: i32,
    /// `PixelFormat` value (NONE 0 for encoded frames).
    pub pixel_format: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row for RAW (0 otherwise).
    pub stride: u32,
}

/// One frame to send.
#[derive(Debug)]
pub struct FrameJob {
    /// Matches the job with its [`Outcome`].
    pub id: u64,
    /// Media time of the frame.
    pub pts: MediaTime,
    /// Where the frame is in the image.
    pub layout: ImageLayout,
    /// The image's format.
    pub format: FrameFormat,
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Inferences the frame carries from upstream, sent with it.
    pub inferences: Vec<Inference>,
    /// Close the open session first (the camera was away): this frame opens a new one.
    pub new_session: bool,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The server could not be reached, went away, or did not answer in time.
    Network,
    /// The server answered something outside the contract, or ended the call with an error.
    Protocol,
    /// The shared-memory file could not be made or written.
    SharedMemory,
}

/// A session that failed, and what it cost.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The kind of failure.
    pub kind: FaultKind,
    /// A short code (`connectionFailed`, `timeout`, `sessionEnded`, a gRPC status name, ...).
    pub code: String,
    /// What happened.
    pub detail: String,
    /// Frames that were in flight and will not be answered.
    pub frames_lost: usize,
}

impl Fault {
    /// A fault that lost no frame yet (the session counts them when it ends).
    pub fn new(kind: FaultKind, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            detail: detail.into(),
            frames_lost: 0,
        }
    }
}

/// Why a frame handed to the session was not sent, or not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// No shared-memory region free: the server holds them all (unacknowledged).
    SharedMemoryFull,
    /// The frame is larger than the whole shared memory.
    FrameTooLarge,
    /// The session's outgoing queue is full.
    QueueFull,
    /// The session ended before the server answered it.
    SessionEnded,
}

impl SkipReason {
    /// The name events give (`reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SharedMemoryFull => "sharedMemoryFull",
            Self::FrameTooLarge => "frameTooLarge",
            Self::QueueFull => "queueFull",
            Self::SessionEnded => "sessionEnded",
        }
    }

    /// What it means, for a person.
    pub fn detail(self) -> &'static str {
        match self {
            Self::SharedMemoryFull => {
                "no shared-memory region is free: the server has not acknowledged the frames that hold them"
            }
            Self::FrameTooLarge => {
                "the frame is larger than the whole shared memory: raise dataTransfer.sharedMemorySizeMiB"
            }
            Self::QueueFull => "the session's outgoing queue is full",
            Self::SessionEnded => "the session ended before the server answered the frame",
        }
    }
}

/// What became of a frame, or of the session.
#[derive(Debug)]
pub enum Outcome {
    /// The server answered frame `id`; `inferences` may be empty (nothing found).
    Answered {
        /// The job.
        id: u64,
        /// Media time of the frame.
        pts: MediaTime,
        /// Where the frame was in the image.
        layout: ImageLayout,
        /// The server's inferences about it.
        inferences: Vec<Inference>,
    },
    /// Frame `id` was not sent, or its session ended before the answer.
    Skipped {
        /// The job.
        id: u64,
        /// Media time of the frame.
        pts: MediaTime,
        /// Why.
        reason: SkipReason,
    },
    /// The session failed at frame `id`'s media time (frame `id` itself is lost too, counted in
    /// `frames_lost`).
    Failed {
        /// The job that saw the failure.
        id: u64,
        /// Its media time.
        pts: MediaTime,
        /// What failed.
        fault: Fault,
    },
    /// A session is open (after a failure: the server is back).
    Opened {
        /// Media time of the frame that opened it.
        pts: MediaTime,
        /// The server's `extension_identifier`, if it gave one.
        extension_identifier: Option<String>,
    },
}

/// The node's side of its session thread. Dropping it closes the session as a client should
/// and waits for that, at most [`CLOSE_WAIT`] and a second.
pub struct SessionHandle {
    jobs: Option<mpsc::Sender<FrameJob>>,
    pending: Arc<AtomicUsize>,
    clock: Arc<AtomicI64>,
    /// Disconnected when the session thread has ended.
    ended: std::sync::mpsc::Receiver<()>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        drop(self.jobs.take());
        let _ = self.ended.recv_timeout(CLOSE_WAIT + Duration::from_secs(1));
    }
}

impl SessionHandle {
    /// Starts the session thread; every outcome goes to `outcomes`, on that thread.
    pub fn start(
        settings: SessionSettings,
        outcomes: Box<dyn Fn(Outcome) + Send>,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel(settings.max_in_flight.max(1));
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = pending.clone();
        let clock = Arc::new(AtomicI64::new(i64::MIN));
        let media_clock = clock.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("grpc {}", settings.node))
            .spawn(move || {
                let _ended = ended_tx;
                let mut worker = Worker {
                    settings,
                    outcomes,
                    pending: counter,
                    clock: media_clock,
                };
                runtime.block_on(worker.run(rx));
            })?;
        Ok(Self {
            jobs: Some(jobs),
            pending,
            clock,
            ended,
        })
    }

    /// The node saw a frame at `pts`: faults the session finds later are reported at the
    /// newest such time (the pipeline's media clock), not at the last frame sent.
    pub fn saw(&self, pts: MediaTime) {
        self.clock.store(pts.as_nanos(), Ordering::Release);
    }

    /// Frames handed over and not yet ended in an [`Outcome`].
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Hands `job` to the session; gives it back when the session thread has ended.
    pub fn send(&self, job: FrameJob) -> Result<(), FrameJob> {
        let Some(jobs) = &self.jobs else {
            return Err(job);
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        match jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                Err(e.into_inner())
            }
        }
    }
}
