//! What the HttpExtension and the GrpcExtension share: which frames are due (uniform
//! decimation), the node's counters, fault reports that repeat at most every
//! [`REPORT_EVERY`], and the `Analytics.Inference` event made of a service's answer.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::bus::metrics::Counter;
use crate::media::image::{Content, EncodedImage, ImageLayout, encode_image};
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::{ImageFormat, SamplingOptions};

/// Pause after a network error before the next due frame is sent: a service that is back is
/// used within it (an attempt is one connection; a growing back-off left a service that was
/// back unused for up to 30 s).
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How often a repeated fault is reported again (the count of repeats goes with it).
pub const REPORT_EVERY: MediaDuration = MediaDuration::from_secs(10);

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

    /// True when a frame at `pts` is due: at its point of the grid, or up to a millisecond
    /// before it (frame times rounded to the millisecond come up to 0.33 ms early at 30
    /// frames/s, and a rate equal to the frame rate must take every frame).
    pub fn is_due(&self, pts: MediaTime) -> bool {
        match (self.period, self.next_due) {
            // Earlier than the last sample taken: the stream went back (a replayed loop).
            (Some(period), Some(due)) => pts >= due - slack(period) || pts < due - period,
            _ => true,
        }
    }

    /// Records that the frame at `pts` was taken.
    pub fn take(&mut self, pts: MediaTime) {
        let Some(period) = self.period else {
            return;
        };
        self.next_due = Some(match self.next_due {
            // Stay on the grid, after a gap or a back-off too (the next point after `pts`),
            // unless the stream went back (a loop of a replayed file).
            Some(due) if pts >= due - slack(period) => {
                let behind = (pts - due).as_nanos().max(0);
                let steps = behind / period.as_nanos().max(1) + 1;
                due + MediaDuration::from_nanos(period.as_nanos().saturating_mul(steps))
            }
            _ => pts + period,
        });
    }
}

/// How early a frame may come and still count for its point of the grid: a millisecond (frame
/// times rounded to the millisecond), never more than half a period.
fn slack(period: MediaDuration) -> MediaDuration {
    MediaDuration::from_nanos((period.as_nanos() / 2).min(1_000_000))
}

/// Counters of one extension node (also on `GET /metrics`).
#[derive(Clone, Debug)]
pub struct ExtensionCounters {
    /// Frames not sent or not answered (AVA's `va_data_dropped_total`).
    pub dropped: Counter,
    /// Frames sent.
    pub sent: Counter,
    /// Frames skipped: the service was still busy with earlier ones.
    pub skipped_busy: Counter,
    /// Frames skipped: waiting after a failure.
    pub skipped_backoff: Counter,
    /// Frames skipped: no free shared-memory region, or a session ended with them in flight.
    pub skipped_session: Counter,
    /// Inference events produced.
    pub inferences: Counter,
    /// Requests or sessions that failed.
    pub failures: Counter,
}

impl ExtensionCounters {
    /// The counters of the node whose event subject is `subject`.
    pub fn new(bus: &EventBus, subject: &str) -> Self {
        let node = subject.rsplit('/').next().unwrap_or_default().to_string();
        let m = bus.metrics();
        let pipeline = bus.pipeline().to_string();
        let skipped = |reason: &str| {
            m.counter(
                "vigil_extension_samples_skipped_total",
                "Sampled frames an extension (HTTP or gRPC) did not send or got no answer for, by reason.",
                &[("pipeline", &pipeline), ("node", &node), ("reason", reason)],
            )
        };
        Self {
            dropped: m.data_dropped(&pipeline, &node, "video"),
            sent: m.counter(
                "vigil_extension_requests_total",
                "Frames an extension (HTTP or gRPC) sent.",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
            skipped_busy: skipped("busy"),
            skipped_backoff: skipped("backoff"),
            skipped_session: skipped("session"),
            inferences: m.counter(
                "vigil_extension_inference_events_total",
                "Inference events an extension (HTTP or gRPC) produced.",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
            failures: m.counter(
                "vigil_extension_failures_total",
                "Requests or sessions of an extension that failed (network error, timeout, bad answer).",
                &[("pipeline", &pipeline), ("node", &node)],
            ),
        }
    }
}

impl ExtensionCounters {
    /// Counts a due frame not sent because the service is still busy; the first and every
    /// 100th such skip is reported (`DataDropped`, reason `busy`) with `detail`.
    pub fn skip_busy(&self, bus: &EventBus, subject: &str, pts: MediaTime, detail: &str) {
        self.skip_reported(&self.skipped_busy, bus, subject, pts, "busy", detail);
    }

    /// Counts a frame skipped for `reason` on `counter` (one of this node's) and as dropped;
    /// the first and every 100th skip on that counter is reported (`DataDropped`).
    pub fn skip_reported(
        &self,
        counter: &Counter,
        bus: &EventBus,
        subject: &str,
        pts: MediaTime,
        reason: &str,
        detail: &str,
    ) {
        counter.inc();
        self.dropped.inc();
        let skipped = counter.get();
        if skipped % 100 == 1 {
            bus.emit(Event::new(
                EventClass::Diagnostics,
                "DataDropped",
                subject.to_string(),
                pts,
                json!({"dataType": "video", "reason": reason, "skippedSamples": skipped, "detail": detail}),
            ));
        }
    }

    /// True (and counted) while a back-off after a failure lasts (`blocked_until`); clears
    /// the back-off once it is over.
    pub fn backing_off(&self, blocked_until: &mut Option<MediaTime>, pts: MediaTime) -> bool {
        if blocked_until.is_some_and(|until| pts < until) {
            self.skipped_backoff.inc();
            self.dropped.inc();
            return true;
        }
        *blocked_until = None;
        false
    }
}

/// True when the frame at `pts` is due under `sampling` (`annotated`: it carries upstream
/// inferences) on `sampler`'s grid.
pub fn is_due(
    sampling: &SamplingOptions,
    sampler: &Sampler,
    pts: MediaTime,
    annotated: bool,
) -> bool {
    (annotated || !sampling.skip_samples_without_annotation) && sampler.is_due(pts)
}

/// `content` (of `layout`'s content size) encoded as `format`; a failure is reported
/// (`MediaFormatError`) and gives `None`.
pub fn encode_or_report(
    content: &Content,
    layout: ImageLayout,
    format: &ImageFormat,
    bus: &EventBus,
    subject: &str,
    pts: MediaTime,
) -> Option<EncodedImage> {
    match encode_image(content, layout, format) {
        Ok(image) => Some(image),
        Err(e) => {
            bus.emit(Event::new(
                EventClass::Diagnostics,
                "MediaFormatError",
                subject.to_string(),
                pts,
                json!({"detail": format!("cannot encode the image: {e:#}")}),
            ));
            None
        }
    }
}

/// Diagnostics of one node, each kind at most once per [`REPORT_EVERY`] of media.
#[derive(Debug, Default)]
pub struct FaultReports {
    last: Option<(String, MediaTime)>,
    suppressed: u64,
}

impl FaultReports {
    /// Emits `kind` with `body` (its `errorCode` tells repeats apart) at `at`, unless the same
    /// report went out less than [`REPORT_EVERY`] ago; the next one sent says how many were held
    /// back (`repeatsNotReported`).
    pub fn report(
        &mut self,
        bus: &EventBus,
        subject: &str,
        at: MediaTime,
        kind: &str,
        mut body: Value,
    ) {
        let key = format!("{kind}/{}", body["errorCode"]);
        if let Some((last, when)) = &self.last
            && *last == key
            && at >= *when
            && at - *when < REPORT_EVERY
        {
            self.suppressed += 1;
            return;
        }
        body["repeatsNotReported"] = json!(self.suppressed);
        self.suppressed = 0;
        self.last = Some((key, at));
        bus.emit(Event::new(
            EventClass::Diagnostics,
            kind,
            subject.to_string(),
            at,
            body,
        ));
    }
}

/// A `std::time::Duration` as a media duration.
pub fn duration(d: Duration) -> MediaDuration {
    MediaDuration::from_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// The `Analytics.Inference` event for a service's answer about the frame at `pts`: AVA's
/// `timestamp` added, boxes mapped from the padded image to the frame (ones entirely in the
/// padding dropped). `None` when no inference is left.
pub fn inference_event(
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
