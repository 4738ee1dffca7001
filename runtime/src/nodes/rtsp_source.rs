//! The RtspSource node: pulls H.264/H.265 from a camera with retina, stamps each access unit with
//! a UTC media time, and never gives up: a lost camera is reported and tried again every second
//! (the first time after 0.5 s), its failure reported once per outage and then every 10 s.
//!
//! Timestamps: the RTP timestamp of each frame, anchored to the wall clock when the session's
//! first frame arrives (RTCP sender reports are not used). After a reconnect the next sample is
//! marked as a discontinuity and the timeline shows the gap as it was, never stretched.
//!
//! Reading: a camera sends a few hundred RTP packets a second, and waking for each frame or
//! packet costs more CPU than everything done with the video. Over TCP the source therefore reads
//! in bursts: it takes everything the socket holds, hands it downstream as one batch, and sleeps
//! for the read interval ([`DEFAULT_READ_INTERVAL`], [`LIVE_PLAYBACK_READ_INTERVAL`] with a
//! VideoSink, `vigil run --read-interval-ms`) while the
//! kernel queues the next packets (TCP flow control holds the camera back if the socket buffer
//! ever fills). Until the clocks are anchored the session is read as packets arrive, so that the
//! anchor is the true arrival time. The source runs on a thread of its own, so the pause holds up
//! nothing else. Over UDP every packet is read as it comes: a burst could overflow the socket
//! buffer and lose packets.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use retina::client::{
    Credentials as RtspCredentials, InitialSequenceNumberPolicy, PlayOptions, SessionOptions,
    SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};
use serde_json::json;
use tokio::sync::watch;

use super::camera_fault::{CameraFault, classify};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::nal::is_random_access;
use crate::media::sample::{
    AudioParams, AudioSample, MediaItem, VideoCodec, VideoParams, VideoSample,
};
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::{Credentials, RtspSourceConfig, RtspTransport};

/// Pause before the first attempt after a failure, and between attempts while the camera cannot
/// be reached at all (`NetworkError`: refused, reset, unreachable, timed out): an attempt then
/// costs one TCP connection, and a camera that is back is recording again within a second of
/// it (the pause, DESCRIBE/SETUP/PLAY, then the next key frame).
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Pause between two attempts after the camera answered with a refusal (its password, a
/// protocol error, media it cannot give): slower, so a camera that locks accounts after failed
/// logins is not hammered. A back-off that grows would widen every outage by up to its length.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The pause before the next attempt after the `failures_in_a_row`-th failure in a row, of
/// `kind` (an event kind from [`classify`]).
pub fn retry_after(kind: &str, failures_in_a_row: u64) -> Duration {
    if failures_in_a_row <= 1 || kind == "NetworkError" {
        MIN_BACKOFF
    } else {
        RETRY_EVERY
    }
}
/// While a camera stays away, its failure is reported again at most this often (with the
/// attempts not reported), and at once when the failure changes.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// A session that delivers no frame for this long is treated as lost.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two reads of a TCP session: at most this much latency is added, and the
/// source wakes twice a second instead of once per frame or packet. Recording does not need
/// less latency: clips are cut on media time, and pre-roll covers what came before an event.
pub const DEFAULT_READ_INTERVAL: Duration = Duration::from_millis(500);
/// The read interval when the pipeline serves live playback (a VideoSink): the live edge of the
/// archive's playlist lags by up to one fragment plus this.
pub const LIVE_PLAYBACK_READ_INTERVAL: Duration = Duration::from_millis(40);

/// Media time now, from the system clock.
pub fn wall_now() -> MediaTime {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    MediaTime::from_nanos(nanos)
}

/// Where a source's media goes: each burst is handed over on the source's thread.
pub trait MediaOut: Send {
    /// Takes the items read in one burst, in order (maybe none). `paced`: the source reads at a
    /// steady pace and calls again within its read interval, so downstream may do its clock's
    /// work on these calls; `false` means downstream must watch the clock itself until a paced
    /// call comes. Returns false once downstream wants no more media.
    fn deliver(&mut self, burst: Vec<MediaItem>, paced: bool) -> bool;

    /// The read interval downstream wants now, if it has changed since the source started
    /// (a shared session reads at the pace of its most demanding pipeline).
    fn pace(&self) -> Option<Duration> {
        None
    }
}

/// Where a source's session events (`MediaSessionEstablished`, `NetworkError`, …) go: the
/// source names the class, type and body; the receiver gives the subject(s).
pub trait SourceReport: Send {
    /// Reports one session event.
    fn report(&self, class: EventClass, kind: &str, body: serde_json::Value);
}

/// Reports a source's events as one node's, on `bus` under `subject`.
pub struct NodeReport {
    /// Where events go.
    pub bus: EventBus,
    /// The node's subject, `/livePipelines/<p>/sources/<node>`.
    pub subject: String,
}

impl SourceReport for NodeReport {
    fn report(&self, class: EventClass, kind: &str, body: serde_json::Value) {
        self.bus.emit(Event::new(
            class,
            kind,
            self.subject.clone(),
            wall_now(),
            body,
        ));
    }
}

/// One camera's source: what it reads, how, and where its media and events go.
pub struct RtspSource {
    /// The node's configuration.
    pub config: RtspSourceConfig,
    /// Pause between two reads of a TCP session (zero: read packets as they arrive).
    pub read_interval: Duration,
    /// Receive the camera's AAC stream too, when it has one.
    pub audio: bool,
    /// Where its session events go.
    pub report: Box<dyn SourceReport>,
    /// Where the media goes.
    pub out: Box<dyn MediaOut>,
}

/// Runs [`run_rtsp_source`] on a thread of its own (with its own single-threaded runtime), so
/// that its paced reads never hold up the pipeline.
pub fn spawn_rtsp_source(
    source: RtspSource,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rtsp-source".to_string())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run_rtsp_source(source, shutdown)),
                Err(e) => tracing::error!("cannot start the RTSP source's runtime: {e}"),
            }
        })
}

/// Runs the source until `shutdown` turns true, sending samples downstream.
pub async fn run_rtsp_source(mut source: RtspSource, mut shutdown: watch::Receiver<bool>) {
    let mut failures_in_a_row = 0u64;
    let mut after_gap = false;
    // The outage's last report: its kind, when, and the attempts since.
    let mut reported: Option<(String, tokio::time::Instant, u64)> = None;
    loop {
        let outcome = tokio::select! {
            r = session(&mut source, after_gap) => r,
            _ = shutdown.changed() => return,
        };
        // Downstream watches the clock while the camera is away.
        let open = source.out.deliver(Vec::new(), false);
        if *shutdown.borrow() || !open {
            return;
        }
        let (kind, detail, delivered) = match outcome {
            Ok(delivered) => (
                "MediaSessionEnded",
                "the camera ended the session".to_string(),
                delivered,
            ),
            Err(SessionError { error, delivered }) => {
                (classify(&error), format!("{error:#}"), delivered)
            }
        };
        if delivered {
            failures_in_a_row = 0;
            reported = None;
        }
        failures_in_a_row += 1;
        let backoff = retry_after(kind, failures_in_a_row);
        after_gap = true;
        let due = match &mut reported {
            Some((last, at, repeats)) if *last == kind && at.elapsed() < REPORT_EVERY => {
                *repeats += 1;
                None
            }
            Some((_, _, repeats)) => Some(std::mem::take(repeats)),
            None => Some(0),
        };
        if let Some(repeats) = due {
            let mut body = json!({"url": redact(&source.config.endpoint.url), "detail": detail, "retryInSeconds": backoff.as_secs_f64()});
            if repeats > 0 {
                body["repeatsNotReported"] = json!(repeats);
            }
            source.report.report(EventClass::Diagnostics, kind, body);
            reported = Some((kind.to_string(), tokio::time::Instant::now(), 0));
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
    }
}

struct SessionError {
    error: anyhow::Error,
    delivered: bool,
}

/// The URL without a password, for events.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

async fn session(source: &mut RtspSource, after_gap: bool) -> Result<bool, SessionError> {
    let mut delivered = false;
    let r = session_inner(source, after_gap, &mut delivered).await;
    r.map(|()| delivered)
        .map_err(|error| SessionError { error, delivered })
}

async fn session_inner(
    source: &mut RtspSource,
    after_gap: bool,
    delivered: &mut bool,
) -> Result<()> {
    let RtspSource {
        config,
        read_interval,
        audio,
        report,
        out,
    } = source;
    let mut url = url::Url::parse(&config.endpoint.url).context("bad RTSP URL")?;
    let mut creds = match &config.endpoint.credentials {
        Some(Credentials::UsernamePassword { username, password }) => Some(RtspCredentials {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    };
    if creds.is_none() && !url.username().is_empty() {
        creds = Some(RtspCredentials {
            username: url.username().to_string(),
            password: url.password().unwrap_or_default().to_string(),
        });
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent("vigil".to_string());
    let mut described = tokio::time::timeout(
        STALL_TIMEOUT,
        retina::client::Session::describe(url, options),
    )
    .await
    .map_err(|_| {
        CameraFault::Network(format!(
            "connect timed out: no answer to DESCRIBE within {} s",
            STALL_TIMEOUT.as_secs()
        ))
    })??;
    let sdp = String::from_utf8_lossy(described.sdp()).to_string();
    let video_index = described
        .streams()
        .iter()
        .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
        .ok_or_else(|| {
            let found: Vec<String> = described
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            CameraFault::MediaFormat(format!(
                "no H.264 or H.265 video stream (unsupported codec; the camera offers {})",
                found.join(", ")
            ))
        })?;
    let transport = match config.transport {
        RtspTransport::Udp => Transport::Udp(Default::default()),
        _ => Transport::Tcp(Default::default()),
    };
    let audio_index = described
        .streams()
        .iter()
        .position(|s| s.media() == "audio" && s.encoding_name() == "mpeg4-generic")
        .filter(|_| *audio);
    // Every request has a deadline: a camera that never answers, or answers without end, is
    // a lost camera.
    let timed = |what: &'static str| {
        move |_| {
            CameraFault::Network(format!(
                "{what} timed out after {} s",
                STALL_TIMEOUT.as_secs()
            ))
        }
    };
    tokio::time::timeout(
        STALL_TIMEOUT,
        described.setup(
            video_index,
            SetupOptions::default()
                .transport(transport.clone())
                .frame_format(FrameFormat::MP4),
        ),
    )
    .await
    .map_err(timed("SETUP"))??;
    if let Some(i) = audio_index {
        tokio::time::timeout(
            STALL_TIMEOUT,
            described.setup(
                i,
                SetupOptions::default()
                    .transport(transport)
                    .frame_format(FrameFormat::MP4),
            ),
        )
        .await
        .map_err(timed("SETUP"))??;
    }
    // The first packet's sequence number is taken as it comes: a camera whose stream already
    // plays for others may announce in RTP-Info one its next packet does not carry (seen
    // against the GStreamer server: a session refused as "out of order" on its first packet).
    let play = PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore);
    let playing = tokio::time::timeout(STALL_TIMEOUT, described.play(play))
        .await
        .map_err(timed("PLAY"))??;
    report.report(
        EventClass::Diagnostics,
        "MediaSessionEstablished",
        sdp_body(&sdp),
    );
    let mut demuxed = playing.demuxed()?;
    let mut params: Option<Arc<VideoParams>> = None;
    let mut anchor: Option<(i64, u32, MediaTime)> = None;
    let mut audio_params: Option<Arc<AudioParams>> = None;
    let mut audio_anchor: Option<(i64, MediaTime)> = None;
    let mut first = true;
    let paced_transport = config.transport != RtspTransport::Udp;
    let mut batch: Vec<MediaItem> = Vec::new();
    // When the last video frame arrived (the session's start until the first).
    let mut last_video = Instant::now();
    // Whether the last hand-over was paced (downstream relies on the next one coming soon).
    let mut was_paced = false;
    loop {
        let next = match demuxed.next().now_or_never() {
            Some(next) => next,
            None => {
                // The clocks are anchored on arrival: until then, no pause.
                let anchored =
                    anchor.is_some() && (audio_index.is_none() || audio_anchor.is_some());
                let pace = out.pace().unwrap_or(*read_interval);
                let paced = Some(pace).filter(|d| anchored && paced_transport && !d.is_zero());
                // Nothing more is buffered: the burst goes downstream (an empty one too, while
                // paced: downstream keeps its clock on it), then we wait for more.
                if (!batch.is_empty() || paced.is_some() || was_paced)
                    && !hand_over(out.as_mut(), &mut batch, paced.is_some(), delivered)
                {
                    return Ok(());
                }
                was_paced = paced.is_some();
                // Only video counts: a camera that keeps its session (RTCP reports, keep-alives,
                // audio) but sends no picture has stalled all the same.
                match paced {
                    None => tokio::time::timeout(
                        STALL_TIMEOUT.saturating_sub(last_video.elapsed()),
                        demuxed.next(),
                    )
                    .await
                    .map_err(|_| stalled())?,
                    Some(pace) => {
                        if last_video.elapsed() > STALL_TIMEOUT {
                            return Err(stalled());
                        }
                        // A blocking sleep on purpose: the runtime must not wait in epoll, which
                        // would wake for every packet. This thread runs nothing else (see the
                        // module's doc).
                        std::thread::sleep(pace);
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
            }
        };
        let item = match next {
            Some(Ok(item)) => item,
            end => {
                // The session ended or failed: what was read still goes downstream.
                hand_over(out.as_mut(), &mut batch, false, delivered);
                match end {
                    Some(Err(e)) => return Err(e.into()),
                    _ => return Ok(()),
                }
            }
        };
        let frame = match item {
            CodecItem::VideoFrame(f) => {
                last_video = Instant::now();
                f
            }
            // Audio starts once video has; both clocks are anchored to the wall clock on arrival.
            CodecItem::AudioFrame(a) if !first => {
                if audio_params.is_none() {
                    let stream = &demuxed.streams()[a.stream_id()];
                    audio_params = aac_params(stream.parameters()).map(Arc::new);
                }
                let Some(p) = audio_params.clone() else {
                    continue;
                };
                let ts = a.timestamp();
                let (ats0, awall0) = *audio_anchor.get_or_insert((ts.timestamp(), wall_now()));
                let offset = i128::from(ts.timestamp() - ats0) * 1_000_000_000
                    / i128::from(p.clock_rate.max(1));
                let sample = AudioSample {
                    pts: awall0 + MediaDuration::from_nanos(offset as i64),
                    frames: a.frame_length().get(),
                    data: Bytes::copy_from_slice(a.data()),
                    params: p,
                };
                batch.push(MediaItem::Audio(sample));
                continue;
            }
            _ => continue,
        };
        if params.is_none() || frame.has_new_parameters() {
            let stream = &demuxed.streams()[frame.stream_id()];
            params = Some(Arc::new(video_params(stream.parameters())?));
        }
        let Some(p) = params.clone() else { continue };
        let ts = frame.timestamp();
        let clock = ts.clock_rate().get();
        let (ts0, rate, wall0) = *anchor.get_or_insert((ts.timestamp(), clock, wall_now()));
        let offset = i128::from(ts.timestamp() - ts0) * 1_000_000_000 / i128::from(rate);
        let time = wall0 + MediaDuration::from_nanos(offset as i64);
        let lost = frame.loss() > 0;
        let data = Bytes::from(frame.into_data());
        let key_frame = is_random_access(p.codec, &data);
        if first && !key_frame {
            // Nothing before the session's first key frame can be decoded.
            continue;
        }
        let sample = VideoSample {
            pts: time,
            dts: time,
            key_frame,
            data,
            params: p,
            discontinuity: (first && after_gap) || lost,
        };
        first = false;
        batch.push(MediaItem::Video(sample));
    }
}

/// Most of a camera's SDP an event carries.
pub const MAX_SDP_IN_EVENT: usize = 4096;

/// `MediaSessionEstablished`'s body: the SDP, cut at [`MAX_SDP_IN_EVENT`] bytes (then with
/// `sdpBytes`, its whole length).
fn sdp_body(sdp: &str) -> serde_json::Value {
    if sdp.len() <= MAX_SDP_IN_EVENT {
        return json!({ "sdp": sdp });
    }
    let mut cut = MAX_SDP_IN_EVENT;
    while !sdp.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({ "sdp": &sdp[..cut], "sdpTruncated": true, "sdpBytes": sdp.len() })
}

/// Hands `batch` downstream and notes whether it held media; false when downstream is gone.
fn hand_over(
    out: &mut dyn MediaOut,
    batch: &mut Vec<MediaItem>,
    paced: bool,
    delivered: &mut bool,
) -> bool {
    *delivered |= !batch.is_empty();
    out.deliver(std::mem::take(batch), paced)
}

fn stalled() -> anyhow::Error {
    CameraFault::Network(format!(
        "stalled: no media for {} s",
        STALL_TIMEOUT.as_secs()
    ))
    .into()
}

fn aac_params(p: Option<ParametersRef<'_>>) -> Option<AudioParams> {
    let Some(ParametersRef::Audio(a)) = p else {
        return None;
    };
    Some(AudioParams {
        clock_rate: a.clock_rate(),
        rfc6381_codec: a.rfc6381_codec().unwrap_or("mp4a.40.2").to_string(),
        sample_entry: a.mp4_sample_entry().build().ok()?,
    })
}

fn video_params(p: Option<ParametersRef<'_>>) -> Result<VideoParams> {
    let Some(ParametersRef::Video(v)) = p else {
        return Err(
            CameraFault::MediaFormat("the video stream has no parameters yet".to_string()).into(),
        );
    };
    let codec = match v.codec_params() {
        VideoParametersCodec::H264 { .. } => VideoCodec::H264,
        VideoParametersCodec::H265 { .. } => VideoCodec::H265,
        _ => {
            return Err(CameraFault::MediaFormat(format!(
                "unsupported codec {}",
                v.rfc6381_codec()
            ))
            .into());
        }
    };
    let (width, height) = v.pixel_dimensions();
    Ok(VideoParams {
        codec,
        width,
        height,
        rfc6381_codec: v.rfc6381_codec().to_string(),
        sample_entry: v.mp4_sample_entry().build()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_sdp_is_cut_in_events() {
        let short = super::sdp_body("v=0\r\n");
        assert_eq!(short, serde_json::json!({"sdp": "v=0\r\n"}));
        let long = "é".repeat(5000);
        let cut = super::sdp_body(&long);
        let sdp = cut["sdp"].as_str().unwrap_or("");
        assert!(sdp.len() <= super::MAX_SDP_IN_EVENT && sdp.len() >= super::MAX_SDP_IN_EVENT - 1);
        assert_eq!(cut["sdpTruncated"], true);
        assert_eq!(cut["sdpBytes"], 10_000);
    }

    #[test]
    fn an_unreachable_camera_is_tried_every_half_second_a_refusing_one_every_second() {
        use super::{MIN_BACKOFF, RETRY_EVERY, retry_after};
        assert_eq!(retry_after("NetworkError", 1), MIN_BACKOFF);
        assert_eq!(retry_after("NetworkError", 40), MIN_BACKOFF);
        assert_eq!(retry_after("AuthenticationError", 1), MIN_BACKOFF);
        assert_eq!(retry_after("AuthenticationError", 2), RETRY_EVERY);
        assert_eq!(retry_after("ProtocolError", 9), RETRY_EVERY);
    }
}
