//! Why a clip exists: the events that opened and extended its gate activation, the gate timing
//! that applied, the pre-roll asked and given, and how it ended. A FileSink writes it beside
//! each file (`<file>.json`); a VideoSink keeps it in the archive's catalog; `vigil explain`
//! prints it for a person.

use serde::{Deserialize, Serialize};

use crate::bus::event::Event;
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::signal_gate::{EndReason, GateTiming};

/// At most this many events are listed per clip (the rest are counted in `eventsTotal`).
pub const MAX_LISTED_EVENTS: usize = 256;

/// What an event did to the activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The first event: it opened the gate.
    Opened,
    /// A later event: it kept the gate open (or moved the start earlier, in the evaluation
    /// window).
    Extended,
}

/// One event that counted for a clip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipReason {
    /// Opened or extended.
    pub role: Role,
    /// `Microsoft.VideoAnalyzer.<Class>.<Type>`.
    pub event_type: String,
    /// The node that sent it (its subject).
    pub node: String,
    /// Its media time (UTC).
    pub media_time: String,
    /// Its correlation id, when it carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The WebAssembly module that produced it (content hash), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_hash: Option<String>,
    /// The labels of its inferences (entity tags), sorted, once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The boxes of its inferences (drawn on the clip's snapshot; not written).
    #[serde(skip)]
    pub boxes: Vec<crate::media::snapshot::RelativeBox>,
    /// The region of interest of the node that sent it (drawn on the clip's snapshot; not
    /// written).
    #[serde(skip)]
    pub region: Option<crate::media::snapshot::RelativeBox>,
    /// Its message id (not written: it differs from run to run).
    #[serde(skip)]
    pub message_id: String,
    /// The snapshot of the picture it was decided on, when one was made: a file beside the
    /// clip's (FileSink) or in the archive's `snapshots/<video>/` (VideoSink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

impl ClipReason {
    /// The reason `event` gives (its role is set when the gate has taken it).
    pub fn of(event: &Event) -> Self {
        let mut labels: Vec<String> = event
            .body
            .get("inferences")
            .and_then(serde_json::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|i| i["entity"]["tag"]["value"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        labels.dedup();
        Self {
            role: Role::Extended,
            event_type: event.event_type(),
            node: event.subject.clone(),
            media_time: event.time.to_string(),
            correlation_id: event.correlation_id.clone(),
            module_hash: event.module_hash.clone(),
            labels,
            boxes: crate::media::snapshot::boxes_of(&event.body),
            region: event.region_of_interest,
            message_id: event.message_id.clone(),
            snapshot: None,
        }
    }

    /// The id its inference snapshot is kept under, if one is kept or being made: its own, or
    /// (an event filter's verdict) that of the event it came from.
    pub fn snapshot_id(&self) -> Option<&str> {
        use crate::media::inference_snapshot::is_known;
        std::iter::once(self.message_id.as_str())
            .chain(self.correlation_id.as_deref())
            .find(|id| !id.is_empty() && is_known(id))
    }
}

impl ClipExplanation {
    /// Names the inference snapshots of its events after `stem` (`<stem>.event-<n>.jpg`, `n`
    /// from 1 in the list's order) and returns what to copy where: (event id, file name).
    pub fn name_event_snapshots(&mut self, stem: &str) -> Vec<(String, String)> {
        let mut copies = Vec::new();
        for (n, r) in self.events.iter_mut().enumerate() {
            if let Some(id) = r.snapshot_id().map(str::to_string) {
                let name = format!("{stem}.event-{}.jpg", n + 1);
                r.snapshot = Some(name.clone());
                copies.push((id, name));
            }
        }
        copies
    }
}

/// Whether `name` is an event snapshot named after `stem` by
/// [`ClipExplanation::name_event_snapshots`].
pub fn is_event_snapshot_of(name: &str, stem: &str) -> bool {
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix(".event-"))
        .and_then(|rest| rest.strip_suffix(".jpg"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the event snapshots named after `stem` in `dir`.
pub fn remove_event_snapshots(dir: &std::path::Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_event_snapshot_of(n, stem))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The gate timing, as the topology's ISO 8601 durations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimingText {
    /// `activationEvaluationWindow`.
    pub activation_evaluation_window: String,
    /// `activationSignalOffset`.
    pub activation_signal_offset: String,
    /// `minimumActivationTime`.
    pub minimum_activation_time: String,
    /// `maximumActivationTime`.
    pub maximum_activation_time: String,
}

impl From<GateTiming> for TimingText {
    fn from(t: GateTiming) -> Self {
        Self {
            activation_evaluation_window: iso_duration(t.evaluation_window),
            activation_signal_offset: iso_duration(t.signal_offset),
            minimum_activation_time: iso_duration(t.minimum_activation),
            maximum_activation_time: iso_duration(t.maximum_activation),
        }
    }
}

/// The pre-roll: where the clip should have started and where it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preroll {
    /// The key frame at or before the earliest event plus `activationSignalOffset`.
    pub asked_start: String,
    /// The clip's first sample; none when nothing was held yet.
    pub start: Option<String>,
    /// Seconds of media before the earliest event asked for.
    pub asked_seconds: f64,
    /// Seconds of media before the earliest event given.
    pub given_seconds: f64,
}

/// Why a clip exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipExplanation {
    /// The live pipeline.
    pub pipeline: String,
    /// The SignalGateProcessor.
    pub gate: String,
    /// The gate's activation number in this run, from 1.
    pub activation: u64,
    /// True for a continuous recording (the gate opens itself; no event).
    pub continuous: bool,
    /// The timing that applied.
    pub timing: TimingText,
    /// The media time of the earliest event.
    pub first_event: String,
    /// Pre-roll asked and given.
    pub preroll: Preroll,
    /// The clip's exclusive end.
    pub end: String,
    /// `minimumActivationTime` (no event for that long), `maximumActivationTime` or `shutdown`.
    pub end_reason: String,
    /// How many events counted for the clip.
    pub events_total: u32,
    /// The first [`MAX_LISTED_EVENTS`] of them, in arrival order.
    pub events: Vec<ClipReason>,
}

/// What the gate knew when the clip started.
#[derive(Clone, Debug)]
pub struct ClipOpening {
    /// Where it should have started.
    pub asked: MediaTime,
    /// Its first sample held, if any.
    pub first: Option<MediaTime>,
    /// The earliest event.
    pub first_event: MediaTime,
}

/// Builds a clip's explanation as the gate closes it.
#[allow(clippy::too_many_arguments)]
pub fn explain(
    pipeline: &str,
    gate: &str,
    activation: u64,
    continuous: bool,
    timing: GateTiming,
    opening: &ClipOpening,
    end: MediaTime,
    reason: EndReason,
    events_total: u32,
    events: Vec<ClipReason>,
) -> ClipExplanation {
    let secs_before = |t: MediaTime| (opening.first_event - t).as_secs_f64().max(0.0);
    ClipExplanation {
        pipeline: pipeline.to_string(),
        gate: gate.to_string(),
        activation,
        continuous,
        timing: timing.into(),
        first_event: opening.first_event.to_string(),
        preroll: Preroll {
            asked_start: opening.asked.to_string(),
            start: opening.first.map(|t| t.to_string()),
            asked_seconds: round_ms(secs_before(opening.asked)),
            given_seconds: round_ms(opening.first.map(secs_before).unwrap_or(0.0)),
        },
        end: end.to_string(),
        end_reason: match reason {
            EndReason::Minimum => "minimumActivationTime",
            EndReason::Maximum => "maximumActivationTime",
            EndReason::Shutdown => "shutdown",
        }
        .to_string(),
        events_total,
        events,
    }
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// `PT1.5S`, `-PT5S`: a duration as ISO 8601 seconds.
pub fn iso_duration(d: MediaDuration) -> String {
    let text = d.abs().to_string();
    let secs = text.trim_end_matches('s');
    let sign = if d.is_negative() { "-" } else { "" };
    format!("{sign}PT{secs}S")
}

/// The sidecar file of a recording: `<file>.json`.
pub fn sidecar_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".json");
    std::path::PathBuf::from(name)
}

/// Writes `explanation` beside `file` (through a temporary file and a rename, so a reader never
/// sees half of it).
pub fn write_sidecar(file: &std::path::Path, explanation: &ClipExplanation) -> std::io::Result<()> {
    let path = sidecar_path(file);
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        std::path::PathBuf::from(name)
    };
    let text = serde_json::to_vec_pretty(explanation).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// The explanation for a person: what opened the clip, what kept it open, the timing, the
/// pre-roll and the end.
pub fn describe(e: &ClipExplanation, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "pipeline {}, gate {}, activation {}",
        e.pipeline, e.gate, e.activation
    );
    if e.continuous {
        let _ = writeln!(
            out,
            "continuous recording: the gate opens itself at every key frame"
        );
    }
    let t = &e.timing;
    let _ = writeln!(
        out,
        "timing: evaluation window {}, signal offset {}, minimum {}, maximum {}",
        t.activation_evaluation_window,
        t.activation_signal_offset,
        t.minimum_activation_time,
        t.maximum_activation_time
    );
    let p = &e.preroll;
    let _ = writeln!(
        out,
        "pre-roll: {:.3} s asked (from {}), {:.3} s given{}",
        p.asked_seconds,
        p.asked_start,
        p.given_seconds,
        match &p.start {
            Some(s) if p.given_seconds + 0.0005 < p.asked_seconds =>
                format!(" (the clip starts at {s})"),
            Some(_) => String::new(),
            None => " (nothing was held yet)".to_string(),
        }
    );
    let listed = e.events.len();
    let _ = writeln!(
        out,
        "events: {}{}",
        e.events_total,
        if (listed as u32) < e.events_total {
            format!(" (the first {listed} listed)")
        } else {
            String::new()
        }
    );
    for r in &e.events {
        let kind = r.event_type.rsplit('.').next().unwrap_or(&r.event_type);
        let _ = write!(
            out,
            "  {} {} {} from {}",
            r.media_time,
            match r.role {
                Role::Opened => "opened ",
                Role::Extended => "extended",
            },
            kind,
            r.node
        );
        if !r.labels.is_empty() {
            let _ = write!(out, " [{}]", r.labels.join(", "));
        }
        if let Some(h) = &r.module_hash {
            let _ = write!(out, " module {}", &h[..h.len().min(12)]);
        }
        if let Some(c) = &r.correlation_id {
            let _ = write!(out, " correlation {c}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "ended {} ({})", e.end, e.end_reason);
}

fn file_name(path: &std::path::Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Writes `explanation` beside `file`, its events' inference snapshots named after the file
/// (`<file>.event-<n>.jpg`) and copied there once made.
pub fn write_sidecar_with_event_snapshots(
    file: &std::path::Path,
    explanation: &ClipExplanation,
) -> std::io::Result<()> {
    let (Some(dir), Some(stem)) = (file.parent(), file_name(file)) else {
        return write_sidecar(file, explanation);
    };
    let mut explanation = explanation.clone();
    let copies = explanation.name_event_snapshots(&stem);
    write_sidecar(file, &explanation)?;
    crate::media::inference_snapshot::copy_to(
        copies
            .into_iter()
            .map(|(id, name)| (id, dir.join(name)))
            .collect(),
    );
    Ok(())
}

/// Deletes the event snapshots of a FileSink's `file` (`<file>.event-<n>.jpg`).
pub fn remove_event_snapshots_of(file: &std::path::Path) {
    if let (Some(dir), Some(stem)) = (file.parent(), file_name(file)) {
        remove_event_snapshots(dir, &stem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_topology_writes_them() {
        assert_eq!(iso_duration(MediaDuration::from_secs(-5)), "-PT5S");
        assert_eq!(iso_duration(MediaDuration::from_millis(1500)), "PT1.5S");
        assert_eq!(iso_duration(MediaDuration::ZERO), "PT0S");
    }

    #[test]
    fn a_reason_names_the_event_its_node_labels_and_module() {
        let e = Event::new(
            crate::bus::event::EventClass::Analytics,
            "Inference",
            "/livePipelines/p/processors/trucks".into(),
            MediaTime::from_millis(1_800_000_000_000),
            serde_json::json!({"inferences": [
                {"type": "entity", "entity": {"tag": {"value": "truck"}}},
                {"type": "entity", "entity": {"tag": {"value": "car"}}},
                {"type": "entity", "entity": {"tag": {"value": "truck"}}}]}),
        )
        .from_module("abc123");
        let r = ClipReason::of(&e);
        assert_eq!(r.labels, vec!["car", "truck"]);
        assert_eq!(r.module_hash.as_deref(), Some("abc123"));
        assert_eq!(r.event_type, "Microsoft.VideoAnalyzer.Analytics.Inference");
        assert_eq!(r.media_time, "2027-01-15T08:00:00.000Z");
    }
}
