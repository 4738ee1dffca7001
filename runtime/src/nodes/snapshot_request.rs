//! A sink asks for its clip's snapshot: queued for the snapshot thread, announced when written
//! (`SnapshotAvailable`) or reported when it cannot be made (`SnapshotFailed`).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::snapshot::{SnapshotJob, SnapshotSource, queue_full, submit};

/// Who asks: the sink's subject (`/livePipelines/<pipeline>/sinks/<node>`), its events, and the
/// clip's correlation id.
pub struct Requester<'a> {
    /// The sink's subject.
    pub subject: &'a str,
    /// Where its events go.
    pub events: &'a EventBus,
    /// The clip's correlation id.
    pub correlation_id: &'a str,
}

/// Queues the snapshot of `source` to `path`, for the recording `recording` (a file, or a
/// video's clip).
pub fn request(who: &Requester<'_>, source: Arc<SnapshotSource>, path: PathBuf, recording: String) {
    let pipeline = crate::bus::event::pipeline_of(who.subject).to_string();
    let (subject, events, correlation) = (
        who.subject.to_string(),
        who.events.clone(),
        who.correlation_id.to_string(),
    );
    let frame = source.frame;
    let failed = {
        let (subject, events, correlation, recording) = (
            subject.clone(),
            events.clone(),
            correlation.clone(),
            recording.clone(),
        );
        move |detail: String| {
            events.emit(
                Event::new(
                    EventClass::Diagnostics,
                    "SnapshotFailed",
                    subject,
                    frame,
                    json!({"recording": recording, "detail": detail}),
                )
                .correlated(Some(correlation)),
            );
        }
    };
    let on_failure = failed.clone();
    let job = SnapshotJob {
        source,
        path,
        pipeline,
        done: Box::new(move |outcome| {
            match outcome {
            Ok(made) => events.emit(
                Event::new(
                    EventClass::Operational,
                    "SnapshotAvailable",
                    subject,
                    made.frame,
                    json!({"outputLocation": made.path, "recording": recording,
                           "frameTime": made.frame.to_string(), "width": made.width, "height": made.height}),
                )
                .correlated(Some(correlation)),
            ),
            Err(e) => on_failure(format!("{e:#}")),
        }
        }),
    };
    if !submit(job) {
        failed(queue_full());
    }
}
