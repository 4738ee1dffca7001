//! The VideoSink node: every gate opening appends a clip to one named video in the archive. Media
//! is cut into fragmented-MP4 segment files of `segmentLength` (at key frames), one fragment per
//! GOP (≤ 1 s); each fragment is fsync'd and then recorded in the catalog, so a fragment is
//! playable (live HLS) as soon as it is recorded. Decode times run on across the segments of a
//! clip; clips are separate (a discontinuity between them).
//!
//! Media missing inside a clip (a camera outage, a write that failed) is a gap, never stretched
//! over: the segment ends with its last frame, the gap is recorded in the catalog, and the next
//! segment starts at the first key frame after it. A clip never overlaps what the video already
//! holds: a clip whose pre-roll reaches back into the previous one starts at its first key frame
//! after the previous clip's end. A segment whose write failed is cut back to its last complete
//! fragment and closed (dropped when it has none), so playlists never list torn bytes.
//!
//! Events: `RecordingStarted` when a clip's first segment is created, `RecordingAvailable` when
//! its first fragment is playable, `RecordingStopped` when the gate closes; `outputType: video`,
//! `outputLocation: <videoName>`, correlated with the event that opened the gate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::clip_explanation::ClipExplanation;
use super::gate_node::ClipCommand;
use super::snapshot_request::{Requester, request};
use crate::archive::catalog::{Catalog, FragmentRow, GapRow, VideoRow};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::fmp4::{Fmp4Writer, Fragment};
use crate::media::sample::{AudioParams, VideoSample};
use crate::media::snapshot::SnapshotSource;
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::VideoSinkConfig;

use super::storage_retry::{FailureReports, RETRY_AFTER, RETRY_TEXT};

/// Why media is missing inside a clip when nothing else is known: the source sent none.
const GAP_NO_MEDIA: &str = "no media from the source";
/// Why media is missing after a failed write.
const GAP_STORAGE: &str = "storage error";

struct Segment {
    id: i64,
    path: std::path::PathBuf,
    init_len: i64,
    file: File,
    writer: Fmp4Writer,
    bytes: i64,
    start: MediaTime,
    fragment_start: Option<MediaTime>,
    hasher: Sha256,
}

impl Segment {
    /// Writes and fsyncs a fragment, then records it in the catalog.
    fn append(
        &mut self,
        catalog: &Catalog,
        fragment: &Fragment,
        start: MediaTime,
        end: MediaTime,
    ) -> anyhow::Result<()> {
        let row = FragmentRow {
            offset: self.bytes,
            len: fragment.len() as i64,
            start,
            end,
        };
        fragment.write_to(&mut self.file)?;
        self.file.sync_data()?;
        catalog.add_fragment(self.id, &row)?;
        self.bytes += row.len;
        for part in fragment.parts() {
            self.hasher.update(part);
        }
        Ok(())
    }
}

struct Clip {
    number: i64,
    seq: i64,
    base: Option<MediaTime>,
    correlation_id: String,
    audio: Option<Arc<AudioParams>>,
    segment: Option<Segment>,
    last_pts: Option<MediaTime>,
    frame: MediaDuration,
    started: bool,
    available: bool,
    retry_at: Option<MediaTime>,
    /// End of the last fragment of this clip in the catalog.
    recorded_end: Option<MediaTime>,
    /// Why the media after `recorded_end` is missing, if it is.
    gap_reason: &'static str,
    /// End of what the video held when the clip began: nothing earlier is written again.
    not_before: Option<MediaTime>,
    /// What the clip's snapshot is made from, until the clip has a number.
    snapshot: Option<Arc<SnapshotSource>>,
}

/// One VideoSink.
pub struct VideoSink {
    config: VideoSinkConfig,
    catalog: Option<Catalog>,
    archive: std::path::PathBuf,
    subject: String,
    events: EventBus,
    clip: Option<Clip>,
    /// Segment rows a full catalog could not close yet.
    unclosed: Vec<Unclosed>,
    failures: FailureReports,
}

/// A segment row still to be closed.
enum Unclosed {
    /// A segment without a fragment: its row goes (its file is gone).
    Empty(i64),
    /// A complete segment and its content hash.
    Finished(i64, String),
}

impl VideoSink {
    /// A sink appending to `config.video_name` in the archive at `archive`.
    pub fn new(
        config: &VideoSinkConfig,
        archive: &Path,
        subject: String,
        events: EventBus,
    ) -> Self {
        let mut sink = Self {
            config: config.clone(),
            catalog: None,
            archive: archive.to_path_buf(),
            subject,
            events,
            clip: None,
            unclosed: Vec::new(),
            failures: FailureReports::default(),
        };
        // Before any media: the event says when the video was created (UTC).
        sink.open_catalog(crate::nodes::rtsp_source::wall_now());
        sink
    }

    fn open_catalog(&mut self, at: MediaTime) -> bool {
        if self.catalog.is_some() {
            return true;
        }
        let result = Catalog::open(&self.archive).and_then(|c| {
            let created = c.ensure_video(&VideoRow {
                name: self.config.video_name.clone(),
                title: self
                    .config
                    .title
                    .clone()
                    .unwrap_or_else(|| self.config.video_name.clone()),
                description: self.config.description.clone().unwrap_or_default(),
                created: crate::nodes::rtsp_source::wall_now(),
                segment_length_ns: self.config.segment_length.as_nanos(),
                retention_ns: self.config.retention_period.map(|r| r.as_nanos()),
            })?;
            Ok((c, created))
        });
        match result {
            Ok((c, created)) => {
                if created {
                    self.events.emit(Event::new(
                        EventClass::Operational,
                        "VideoCreated",
                        self.subject.clone(),
                        at,
                        json!({"outputType": "video", "outputLocation": self.config.video_name}),
                    ));
                }
                self.catalog = Some(c);
                true
            }
            Err(e) => {
                self.storage_error(&format!("{e:#}"), at);
                false
            }
        }
    }

    /// Acts on one command from the gate.
    pub fn handle(&mut self, command: ClipCommand) {
        match command {
            ClipCommand::Start {
                correlation_id,
                audio,
                snapshot,
                ..
            } => {
                self.close_clip(None);
                let not_before = self
                    .catalog
                    .as_ref()
                    .and_then(|c| c.media_span(&self.config.video_name).ok().flatten())
                    .map(|(_, end)| end);
                self.clip = Some(Clip {
                    number: 0,
                    seq: 0,
                    base: None,
                    correlation_id,
                    audio,
                    segment: None,
                    last_pts: None,
                    frame: MediaDuration::from_nanos(33_333_333),
                    started: false,
                    available: false,
                    retry_at: None,
                    recorded_end: None,
                    gap_reason: GAP_NO_MEDIA,
                    not_before,
                    snapshot,
                });
            }
            ClipCommand::Sample(sample) => self.write_sample(sample),
            ClipCommand::Audio(sample) => {
                if let Some(s) = self.clip.as_mut().and_then(|c| c.segment.as_mut()) {
                    s.writer.push_audio(sample);
                }
            }
            ClipCommand::End {
                end, explanation, ..
            } => {
                self.keep_explanation(&explanation);
                self.close_clip(Some(end));
            }
        }
    }

    /// The pipeline stops: finishes the open segment cleanly.
    pub fn shutdown(&mut self) {
        self.close_clip(None);
        self.retry_unclosed(crate::nodes::rtsp_source::wall_now());
    }

    fn write_sample(&mut self, sample: VideoSample) {
        let Some(clip) = &mut self.clip else { return };
        if clip.segment.is_none() && clip.not_before.is_some_and(|t| sample.pts < t) {
            // Already in the video (the previous clip's end): not written twice.
            return;
        }
        // The frame interval, for the last frame's duration; the larger of two neighbours, so
        // nanosecond truncation of the stream's time base does not shorten a clip. Not across
        // a gap.
        if let Some(last) = clip.last_pts
            && sample.pts > last
            && !sample.discontinuity
        {
            let interval = sample.pts - last;
            clip.frame = if interval.as_nanos().abs_diff(clip.frame.as_nanos()) <= 1 {
                interval.max(clip.frame)
            } else {
                interval
            };
        }
        // Media is missing before this sample: what is written ends with the last frame.
        let gap_from = clip
            .last_pts
            .filter(|_| sample.discontinuity && clip.segment.is_some())
            .map(|last| (last + clip.frame).min(sample.pts));
        let segment_full = clip.segment.as_ref().is_some_and(|s| {
            sample.key_frame
                && (sample.pts - s.start >= self.config.segment_length
                    || s.writer.params() != &sample.params)
        });
        if gap_from.is_some() && sample.key_frame {
            // The segment ends with its last frame; the next starts at this key frame, and
            // the gap between them is recorded when it opens.
            self.finish_segment(None);
        } else if segment_full {
            // The segment ends where this key frame starts the next one.
            self.finish_segment(Some(sample.pts));
        }
        let Some(clip) = &mut self.clip else { return };
        clip.last_pts = Some(sample.pts);
        if clip.segment.is_none() {
            if !sample.key_frame || clip.retry_at.is_some_and(|t| sample.pts < t) {
                return;
            }
            if let Err(e) = self.open_segment(&sample) {
                self.storage_error(&format!("{e:#}"), sample.pts);
                if let Some(clip) = &mut self.clip {
                    clip.retry_at = Some(sample.pts + RETRY_AFTER);
                }
                return;
            }
        }
        let Some(mut segment) = self.clip.as_mut().and_then(|c| c.segment.take()) else {
            return;
        };
        let pts = sample.pts;
        let fragment_start = *segment.fragment_start.get_or_insert(pts);
        if let Some(fragment) = segment.writer.push(sample) {
            segment.fragment_start = Some(pts);
            // A fragment cut by a gap (frames lost inside a GOP) ends with its last frame.
            let end = gap_from.unwrap_or(pts);
            if !self.append(&mut segment, &fragment, fragment_start, end) {
                return;
            }
            if end < pts {
                self.record_gap(end, pts);
            }
        }
        if let Some(clip) = &mut self.clip {
            clip.segment = Some(segment);
        }
    }

    fn open_segment(&mut self, first: &VideoSample) -> anyhow::Result<()> {
        if !self.open_catalog(first.pts) {
            anyhow::bail!("the catalog is not available");
        }
        self.retry_unclosed(first.pts);
        let (Some(catalog), Some(clip)) = (&self.catalog, &mut self.clip) else {
            anyhow::bail!("no clip");
        };
        if clip.number == 0 {
            clip.number = catalog.next_clip()?;
            if let Some(source) = clip.snapshot.take() {
                let path = crate::archive::snapshot_file(
                    catalog.dir(),
                    &self.config.video_name,
                    clip.number,
                );
                if let Some(folder) = path.parent() {
                    let _ = std::fs::create_dir_all(folder);
                }
                let who = Requester {
                    subject: &self.subject,
                    events: &self.events,
                    correlation_id: &clip.correlation_id,
                };
                let recording = format!("{} clip {}", self.config.video_name, clip.number);
                request(&who, source, path, recording);
            }
        }
        if let Some(end) = clip.recorded_end
            && first.pts > end
        {
            // Media of this clip that never reached the archive; until that is recorded, no
            // segment opens.
            insert_gap(
                catalog,
                &self.config.video_name,
                end,
                first.pts,
                clip.gap_reason,
            )?;
        }
        let base = *clip.base.get_or_insert(first.dts);
        let writer = Fmp4Writer::new(first.params.clone(), base, clip.audio.clone());
        let init = writer.init_segment(first.pts);
        let relative = format!(
            "videos/{}/{:08}-{:04}.mp4",
            self.config.video_name, clip.number, clip.seq
        );
        let path = self.archive.join(&relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // The row first: a crash between the two leaves a row without a file, which the
        // start-up repair drops (nothing was recorded yet).
        let id = catalog.begin_segment(
            &self.config.video_name,
            clip.number,
            clip.seq,
            &relative,
            first.pts,
            init.len() as i64,
        )?;
        let created = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&init)?;
                file.sync_data()?;
                Ok(file)
            });
        let file = match created {
            Ok(file) => file,
            Err(e) => {
                // No file (a full disk): the row goes too, so the next try can take its path;
                // if even that fails, it is dropped before the next segment or by the repair.
                let _ = std::fs::remove_file(&path);
                if catalog.delete_segment(id).is_err() {
                    self.unclosed.push(Unclosed::Empty(id));
                }
                return Err(e.into());
            }
        };
        let mut hasher = Sha256::new();
        hasher.update(&init);
        clip.seq += 1;
        // The gap before this segment is recorded (a failed try above extends the same row).
        clip.gap_reason = GAP_NO_MEDIA;
        clip.segment = Some(Segment {
            id,
            path,
            init_len: init.len() as i64,
            file,
            writer,
            bytes: init.len() as i64,
            start: first.pts,
            fragment_start: None,
            hasher,
        });
        if !clip.started {
            clip.started = true;
            let correlation = clip.correlation_id.clone();
            self.event("RecordingStarted", first.pts, &correlation);
        }
        Ok(())
    }

    /// Appends a fragment to `segment` (out of the clip meanwhile); reports the clip available
    /// at its first fragment. On failure the segment is cut back to its last recorded fragment
    /// and closed, a new one is tried [`RETRY_AFTER`] later, and false is returned.
    fn append(
        &mut self,
        segment: &mut Segment,
        fragment: &Fragment,
        start: MediaTime,
        end: MediaTime,
    ) -> bool {
        let result = match &self.catalog {
            Some(catalog) => segment.append(catalog, fragment, start, end),
            None => Err(anyhow::anyhow!("the catalog is not available")),
        };
        let Some(clip) = &mut self.clip else {
            return result.is_ok();
        };
        match result {
            Ok(()) => {
                clip.recorded_end = Some(end);
                self.failures.on_success();
                if !clip.available {
                    clip.available = true;
                    let correlation = clip.correlation_id.clone();
                    self.event("RecordingAvailable", end, &correlation);
                }
                true
            }
            Err(e) => {
                clip.retry_at = Some(end + RETRY_AFTER);
                clip.gap_reason = GAP_STORAGE;
                self.storage_error(&format!("{e:#}"), end);
                self.keep_what_is_whole(segment, end);
                false
            }
        }
    }

    /// After a failed write: cuts `segment`'s file back to its recorded fragments and closes
    /// it in the catalog, or drops it when it has none. If even that fails, the start-up repair
    /// trims it.
    fn keep_what_is_whole(&mut self, segment: &mut Segment, at: MediaTime) {
        let cut = segment
            .file
            .set_len(segment.bytes as u64)
            .and_then(|()| segment.file.sync_data());
        match cut {
            Err(e) => self.storage_error(&format!("cutting the segment back: {e}"), at),
            Ok(()) if segment.bytes <= segment.init_len => {
                let _ = std::fs::remove_file(&segment.path);
                self.close_in_catalog(Unclosed::Empty(segment.id), at);
            }
            Ok(()) => {
                let hash = hex(&segment.hasher.clone().finalize());
                self.close_in_catalog(Unclosed::Finished(segment.id, hash), at);
            }
        }
    }

    /// Closes a segment's row (or drops an empty one); when the catalog cannot be written (its
    /// disk is full too), it is tried again before the next segment and at shutdown, so no row
    /// stays "recording" (a playlist that never ends) while the pipeline runs.
    fn close_in_catalog(&mut self, close: Unclosed, at: MediaTime) {
        let result = match (&self.catalog, &close) {
            (None, _) => Err(anyhow::anyhow!("the catalog is not available")),
            (Some(c), Unclosed::Empty(id)) => c.delete_segment(*id),
            (Some(c), Unclosed::Finished(id, hash)) => c.finish_segment(*id, hash),
        };
        if let Err(e) = result {
            if self.unclosed.is_empty() {
                self.storage_error(&format!("{e:#}"), at);
            }
            self.unclosed.push(close);
        }
    }

    /// Tries again to close the rows that could not be closed.
    fn retry_unclosed(&mut self, at: MediaTime) {
        for close in std::mem::take(&mut self.unclosed) {
            self.close_in_catalog(close, at);
        }
    }

    /// Records frames lost inside a fragment (`start` to `end`) as a gap; a failure is reported.
    fn record_gap(&mut self, start: MediaTime, end: MediaTime) {
        let Some(catalog) = &self.catalog else { return };
        if let Err(e) = insert_gap(catalog, &self.config.video_name, start, end, GAP_NO_MEDIA) {
            self.storage_error(&format!("{e:#}"), end);
        }
    }

    fn finish_segment(&mut self, end: Option<MediaTime>) {
        let Some(clip) = &mut self.clip else { return };
        let frame = clip.frame;
        let last = clip.last_pts;
        let Some(mut segment) = clip.segment.take() else {
            return;
        };
        let start = segment.fragment_start.unwrap_or(segment.start);
        // The last frame lasts at least one frame interval, and until `end` only when that is
        // within one more (media that stopped before the clip's end is not stretched to it).
        let frame_end = last.map(|l| l + frame).unwrap_or(start);
        let end = end
            .filter(|e| *e <= frame_end + frame)
            .map_or(frame_end, |e| e.max(frame_end));
        if let Some(fragment) = segment.writer.finish(Some(end))
            && !self.append(&mut segment, &fragment, start, end)
        {
            return;
        }
        if segment.bytes <= segment.init_len {
            // No fragment (nothing to write at the end): no 0 s segment stays behind.
            self.keep_what_is_whole(&mut segment, end);
            return;
        }
        let hash = hex(&segment.hasher.finalize());
        self.close_in_catalog(Unclosed::Finished(segment.id, hash), end);
    }

    /// Keeps why the open clip exists in the catalog, once it has a number (a clip that never
    /// wrote a segment has none, and nothing to explain).
    fn keep_explanation(&mut self, explanation: &ClipExplanation) {
        let (Some(catalog), Some(clip)) = (&self.catalog, &self.clip) else {
            return;
        };
        if clip.number == 0 {
            return;
        }
        // The events' inference snapshots go beside the clip's snapshot.
        let mut explanation = explanation.clone();
        let folder = crate::archive::snapshot_file(catalog.dir(), &self.config.video_name, 0)
            .parent()
            .map(std::path::Path::to_path_buf);
        let copies = explanation.name_event_snapshots(&format!("{:08}", clip.number));
        if let (Some(folder), false) = (folder, copies.is_empty()) {
            let _ = std::fs::create_dir_all(&folder);
            crate::media::inference_snapshot::copy_to(
                copies
                    .into_iter()
                    .map(|(id, name)| (id, folder.join(name)))
                    .collect(),
            );
        }
        let result = serde_json::to_string(&explanation)
            .map_err(anyhow::Error::from)
            .and_then(|body| {
                catalog.record_explanation(&self.config.video_name, clip.number, &body)
            });
        // An event's clip goes on the review list (a continuous recording is not one).
        if let (false, Ok(json)) = (explanation.continuous, serde_json::to_value(&explanation)) {
            let start = explanation
                .preroll
                .start
                .clone()
                .unwrap_or_else(|| explanation.first_event.clone());
            crate::service::review::index().add_archive_clip(
                &explanation.pipeline,
                (catalog.dir(), &self.config.video_name, clip.number),
                &json,
                &start,
                &explanation.end,
            );
        }
        if let Err(e) = result {
            let at = clip.last_pts.unwrap_or_default();
            self.events.emit(Event::new(
                EventClass::Diagnostics,
                "StorageError",
                self.subject.clone(),
                at,
                json!({"outputLocation": self.config.video_name, "detail": format!("cannot keep the clip's explanation in the catalog: {e:#}")}),
            ));
        }
    }

    fn close_clip(&mut self, end: Option<MediaTime>) {
        let Some(clip) = &self.clip else { return };
        let (started, correlation, last) =
            (clip.started, clip.correlation_id.clone(), clip.last_pts);
        self.finish_segment(end);
        if started {
            let at = end.or(last).unwrap_or_default();
            self.event("RecordingStopped", at, &correlation);
        }
        self.clip = None;
    }

    fn event(&self, kind: &str, at: MediaTime, correlation: &str) {
        self.events.emit(
            Event::new(
                EventClass::Operational,
                kind,
                self.subject.clone(),
                at,
                json!({"outputType": "video", "outputLocation": self.config.video_name}),
            )
            .correlated(Some(correlation.to_string())),
        );
    }

    fn storage_error(&mut self, detail: &str, at: MediaTime) {
        let Some(repeats) = self.failures.on_failure(at) else {
            return;
        };
        self.events.emit(Event::new(
            EventClass::Diagnostics,
            "StorageError",
            self.subject.clone(),
            at,
            json!({"outputType": "video", "outputLocation": self.config.video_name, "archive": self.archive, "detail": detail, "retry": RETRY_TEXT, "repeatsNotReported": repeats}),
        ));
    }
}

/// Records media of `video` missing from `start` to `end` (why: `reason`) in `catalog`.
fn insert_gap(
    catalog: &Catalog,
    video: &str,
    start: MediaTime,
    end: MediaTime,
    reason: &str,
) -> anyhow::Result<()> {
    let gap = GapRow {
        start,
        end,
        reason: reason.to_string(),
    };
    catalog.record_gap(video, &gap)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
