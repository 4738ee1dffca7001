//! The FileSink node: one fragmented MP4 file per gate activation, named from the pattern, kept
//! within `maximumSizeMiB` by deleting this sink's oldest files, and checked for crash damage
//! at start-up. Write errors (disk full, not writable) are reported and retried; the pipeline
//! keeps running.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::clip_explanation::{
    ClipExplanation, remove_event_snapshots_of, sidecar_path, write_sidecar_with_event_snapshots,
};
use super::file_naming::FileNaming;
use super::gate_node::ClipCommand;
use super::open_marker::{OpenMarker, take_left_open};
use super::snapshot_request::{Requester, request};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::fmp4::{Fmp4Writer, Fragment};
use crate::media::recovery::{Recovery, trim_incomplete_fragment};
use crate::media::snapshot::{SnapshotSource, snapshot_path};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::sample::{AudioParams, VideoSample};
use crate::media::time::MediaTime;
use crate::topology::model::FileSinkConfig;

const MIB: u64 = 1024 * 1024;
/// Longest time between two fsyncs of an open file (`vigil run --sync-interval-ms`). Every
/// fragment is written to the file as soon as it is complete, so a crash or `kill -9` of vigil
/// loses nothing complete; a power cut loses at most this much. An fsync per fragment instead
/// costs a fifth of recording's CPU and, on SD cards and eMMC, a journal commit and a cache
/// flush per camera per second.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(5);
use super::storage_retry::{FailureReports, RETRY_AFTER, RETRY_TEXT};

struct OpenFile {
    path: PathBuf,
    file: File,
    writer: Fmp4Writer,
    bytes: u64,
    /// Length of its init segment: a file no longer than this holds no media.
    init_bytes: u64,
    /// When the file was last fsync'd (or opened).
    synced_at: Instant,
    /// Says the file is open until this is dropped.
    _marker: OpenMarker,
}

impl OpenFile {
    /// After a failed write: cuts the file back to its last complete fragment, so that nothing
    /// torn is ever announced; a file left with no fragment is removed. Whether a playable file
    /// remains.
    fn cut_back(&mut self) -> bool {
        if self.bytes > self.init_bytes && self.file.set_len(self.bytes).is_ok() {
            return true;
        }
        // No media, or the cut failed (then recovery trims it at the next start): an empty
        // or init-only file is ours alone and goes.
        if self.bytes <= self.init_bytes {
            let _ = std::fs::remove_file(&self.path);
            return false;
        }
        true
    }
}

struct Clip {
    activation: u64,
    correlation_id: String,
    audio: Option<Arc<AudioParams>>,
    file: Option<OpenFile>,
    retry_at: Option<MediaTime>,
    last_pts: Option<MediaTime>,
    /// Files to announce at the clip's end.
    files: Vec<PathBuf>,
    /// Every file the clip wrote (each gets the clip's explanation beside it).
    written: Vec<PathBuf>,
    /// What the clip's snapshot is made from, until its first file asks for it.
    snapshot: Option<Arc<SnapshotSource>>,
}

/// One FileSink.
pub struct FileSink {
    naming: FileNaming,
    budget: Option<u64>,
    subject: String,
    events: EventBus,
    /// This sink's finished files, oldest first, with their sizes: kept only under a size budget
    /// (which deletes the oldest); without one, a sink that runs for months would hold every
    /// file it ever wrote.
    finished: VecDeque<(PathBuf, u64)>,
    clip: Option<Clip>,
    sync_interval: Duration,
    syncs: u64,
    failures: FailureReports,
}

impl FileSink {
    /// A sink writing below `config.base_directory_path`; scans it for this sink's files and
    /// trims any that a crash left with an incomplete last fragment.
    pub fn new(config: &FileSinkConfig, subject: String, events: EventBus) -> Self {
        let base = std::path::absolute(&config.base_directory_path)
            .unwrap_or_else(|_| config.base_directory_path.clone());
        let mut sink = Self {
            naming: FileNaming::new(&base, &config.file_name_pattern),
            budget: config.maximum_size_mib.map(|m| m.saturating_mul(MIB)),
            subject,
            events,
            finished: VecDeque::new(),
            clip: None,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            syncs: 0,
            failures: FailureReports::default(),
        };
        sink.recover_existing();
        sink
    }

    /// The same sink, fsyncing an open file at least every `interval` (zero: every fragment)
    /// and always when it closes.
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// How many fsyncs this sink has made.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Files this sink has on disk, oldest first, as its size budget counts them (none without
    /// a budget).
    pub fn files(&self) -> Vec<PathBuf> {
        self.finished.iter().map(|(p, _)| p.clone()).collect()
    }

    fn recover_existing(&mut self) {
        let folder = self.naming.folder();
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return;
        };
        // Only regular files: a symlink is never followed (its target is not ours to trim).
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| self.naming.is_ours(n))
            })
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, e.path())
            })
            .collect();
        found.sort();
        // The newest of them go on the review list, as they were before a restart.
        let pipeline = crate::bus::event::pipeline_of(&self.subject).to_string();
        let listed_from = found.len().saturating_sub(crate::service::review::KEEP);
        for (n, (_, path)) in found.into_iter().enumerate() {
            // Only files that carry Vigil's brand are kept count of (and so ever deleted by
            // the size budget): a file of the same name pattern that we did not write is left.
            let left_open = take_left_open(&path);
            match trim_incomplete_fragment(&path) {
                Ok(Recovery::NotOurs) => continue,
                // Left open by a crash with every fragment whole: nothing to cut, but it was
                // never announced as finished.
                Ok(Recovery::Intact { fragments }) if left_open => self.diagnostic(
                    "RecordingRecovered",
                    json!({"outputLocation": path, "fragmentsKept": fragments, "bytesRemoved": 0}),
                    None,
                ),
                Ok(Recovery::Trimmed { fragments, removed }) => self.diagnostic(
                    "RecordingRecovered",
                    json!({"outputLocation": path, "fragmentsKept": fragments, "bytesRemoved": removed}),
                    None,
                ),
                Ok(Recovery::Unplayable) => self.diagnostic(
                    "RecordingUnplayable",
                    json!({"outputLocation": path, "detail": "no complete fragment; left in place"}),
                    None,
                ),
                Ok(_) => {}
                Err(e) => {
                    self.diagnostic(
                        "StorageError",
                        json!({"outputLocation": path, "detail": format!("cannot check file: {e}; it is left alone")}),
                        None,
                    );
                    continue;
                }
            }
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if n >= listed_from {
                crate::service::review::index().add_existing_file(&pipeline, path.clone());
            }
            self.remember_finished(path, size);
        }
    }

    /// Acts on one command from the gate.
    pub fn handle(&mut self, command: ClipCommand) {
        match command {
            ClipCommand::Start {
                activation,
                correlation_id,
                audio,
                snapshot,
                ..
            } => {
                self.close_clip(None);
                self.clip = Some(Clip {
                    activation,
                    correlation_id,
                    audio,
                    file: None,
                    retry_at: None,
                    last_pts: None,
                    files: Vec::new(),
                    written: Vec::new(),
                    snapshot,
                });
            }
            ClipCommand::Sample(sample) => self.write_sample(sample),
            ClipCommand::Audio(sample) => {
                if let Some(f) = self.clip.as_mut().and_then(|c| c.file.as_mut()) {
                    f.writer.push_audio(sample);
                }
            }
            ClipCommand::End {
                activation,
                end,
                explanation,
                ..
            } => {
                if self
                    .clip
                    .as_ref()
                    .is_some_and(|c| c.activation == activation)
                {
                    self.close_clip(Some((end, &explanation)));
                }
            }
        }
    }

    /// The pipeline stops: closes the open file cleanly.
    pub fn shutdown(&mut self) {
        self.close_clip(None);
    }

    fn write_sample(&mut self, sample: VideoSample) {
        let Some(clip) = &mut self.clip else { return };
        clip.last_pts = Some(sample.pts);
        // A change of stream parameters needs a new init segment: continue in a new file.
        let params_changed = clip
            .file
            .as_ref()
            .is_some_and(|f| f.writer.params() != &sample.params);
        if params_changed && sample.key_frame {
            // The finished file is complete now: it is announced now, not when the clip ends.
            if let Some(path) = self.finish_file(None)
                && let Some(clip) = &mut self.clip
            {
                clip.files.retain(|p| *p != path);
                let correlation = clip.correlation_id.clone();
                self.event("RecordingStopped", &path, sample.pts, &correlation);
                self.event("RecordingAvailable", &path, sample.pts, &correlation);
            }
        }
        let Some(clip) = &mut self.clip else { return };
        if clip.file.is_none() {
            if !sample.key_frame || clip.retry_at.is_some_and(|t| sample.pts < t) {
                return;
            }
            let audio = clip.audio.clone();
            match self.open_file(&sample, audio) {
                Ok(f) => {
                    let path = f.path.clone();
                    let mut snapshot = None;
                    if let Some(clip) = &mut self.clip {
                        clip.file = Some(f);
                        clip.files.push(path.clone());
                        clip.written.push(path.clone());
                        snapshot = clip
                            .snapshot
                            .take()
                            .map(|s| (s, clip.correlation_id.clone()));
                    }
                    self.operational("RecordingStarted", &path, sample.pts);
                    if let Some((source, correlation_id)) = snapshot {
                        let who = Requester {
                            subject: &self.subject,
                            events: &self.events,
                            correlation_id: &correlation_id,
                        };
                        let recording = path.display().to_string();
                        request(&who, source, snapshot_path(&path), recording);
                    }
                }
                Err(e) => {
                    self.storage_error(&e, sample.pts);
                    if let Some(clip) = &mut self.clip {
                        clip.retry_at = Some(sample.pts + RETRY_AFTER);
                    }
                    return;
                }
            }
        }
        let Some(file) = self.clip.as_mut().and_then(|c| c.file.as_mut()) else {
            return;
        };
        let pts = sample.pts;
        if let Some(fragment) = file.writer.push(sample) {
            let result = write_fragment(file, &fragment).and_then(|()| {
                if file.synced_at.elapsed() >= self.sync_interval {
                    sync(file, &mut self.syncs)?;
                }
                Ok(())
            });
            if let Err(e) = result {
                self.storage_error(&e, pts);
                self.abandon_file(pts);
                return;
            }
            self.failures.on_success();
            self.enforce_budget();
        }
    }

    fn open_file(
        &self,
        first: &VideoSample,
        audio: Option<Arc<AudioParams>>,
    ) -> std::io::Result<OpenFile> {
        let path = self.naming.path_for(first.pts);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        let writer = Fmp4Writer::new(first.params.clone(), first.dts, audio);
        let init = writer.init_segment(first.pts);
        if let Err(e) = file.write_all(&init) {
            // Created by us a moment ago (create_new): a file without its init segment goes.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(OpenFile {
            _marker: OpenMarker::create(&path),
            path,
            file,
            writer,
            bytes: init.len() as u64,
            init_bytes: init.len() as u64,
            synced_at: Instant::now(),
        })
    }

    /// Records a finished file for the size budget (nothing without one).
    fn remember_finished(&mut self, path: PathBuf, size: u64) {
        if self.budget.is_some() {
            self.finished.push_back((path, size));
        }
    }

    /// Finishes the open file, if any (last fragment written), and records it as finished.
    fn finish_file(&mut self, end: Option<MediaTime>) -> Option<PathBuf> {
        let clip = self.clip.as_mut()?;
        let mut f = clip.file.take()?;
        let at = clip.last_pts.unwrap_or_default();
        let result = match f.writer.finish(end) {
            Some(fragment) => write_fragment(&mut f, &fragment),
            None => Ok(()),
        }
        .and_then(|()| {
            // A finished file is on disk before it is reported available.
            sync(&mut f, &mut self.syncs)
        });
        match result {
            Ok(()) => {
                self.remember_finished(f.path.clone(), f.bytes);
                Some(f.path)
            }
            Err(e) => {
                self.storage_error(&e, at);
                self.keep_what_is_whole(f, at)
            }
        }
    }

    /// A write failed: the open file is cut back to its last complete fragment (removed when
    /// it has none) and the next file is tried at the first key frame [`RETRY_AFTER`] later.
    fn abandon_file(&mut self, at: MediaTime) {
        let Some(clip) = &mut self.clip else { return };
        clip.retry_at = Some(at + RETRY_AFTER);
        if let Some(f) = clip.file.take() {
            self.keep_what_is_whole(f, at);
        }
    }

    /// After a failed write: `f` is cut back to its last complete fragment and kept as
    /// finished; one with no fragment is removed, dropped from the clip's files (nothing is
    /// announced for it) and reported (`RecordingUnplayable`). The path kept, if any.
    fn keep_what_is_whole(&mut self, mut f: OpenFile, at: MediaTime) -> Option<PathBuf> {
        if f.cut_back() {
            self.remember_finished(f.path.clone(), f.bytes);
            return Some(f.path);
        }
        if let Some(clip) = &mut self.clip {
            clip.files.retain(|p| *p != f.path);
        }
        self.diagnostic(
            "RecordingUnplayable",
            json!({"outputLocation": f.path, "detail": "a write failed before its first complete fragment; the file was removed"}),
            Some(at),
        );
        None
    }

    /// Closes the clip; at its end (`end`, with the gate's explanation) each of its files gets
    /// the explanation beside it before the files are announced.
    fn close_clip(&mut self, end: Option<(MediaTime, &ClipExplanation)>) {
        let Some(last) = self.clip.as_ref().and_then(|c| c.last_pts) else {
            self.clip = None;
            return;
        };
        self.finish_file(end.map(|(t, _)| t));
        let stop_time = end.map(|(t, _)| t).unwrap_or(last);
        if let (Some((_, explanation)), Some(clip)) = (end, self.clip.as_ref()) {
            let failed: Vec<(PathBuf, std::io::Error)> = clip
                .written
                .iter()
                .filter(|p| p.exists())
                .filter_map(|p| {
                    write_sidecar_with_event_snapshots(p, explanation)
                        .err()
                        .map(|e| (p.clone(), e))
                })
                .collect();
            for (path, e) in failed {
                self.diagnostic(
                    "StorageError",
                    json!({"outputLocation": sidecar_path(&path), "detail": format!("cannot write the clip's explanation: {e}")}),
                    Some(stop_time),
                );
            }
        }
        if let Some(clip) = self.clip.take() {
            for path in &clip.files {
                self.event("RecordingStopped", path, stop_time, &clip.correlation_id);
                self.event("RecordingAvailable", path, stop_time, &clip.correlation_id);
            }
        }
        self.enforce_budget();
    }

    fn enforce_budget(&mut self) {
        let Some(budget) = self.budget else { return };
        let open = self
            .clip
            .as_ref()
            .and_then(|c| c.file.as_ref())
            .map(|f| f.bytes)
            .unwrap_or(0);
        let mut total: u64 = self.finished.iter().map(|(_, s)| s).sum::<u64>() + open;
        while total > budget {
            let Some((path, size)) = self.finished.pop_front() else {
                break;
            };
            total -= size;
            // The media time of the clip being written; between clips, now.
            let time = self.clip.as_ref().and_then(|c| c.last_pts);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(sidecar_path(&path));
                    let _ = std::fs::remove_file(snapshot_path(&path));
                    remove_event_snapshots_of(&path);
                    let time = time.unwrap_or_else(crate::nodes::rtsp_source::wall_now);
                    self.events.emit(Event::new(
                        EventClass::Operational,
                        "RecordingDeleted",
                        self.subject.clone(),
                        time,
                        json!({"outputType": "filePath", "outputLocation": path, "reason": "maximumSizeMiB", "bytes": size}),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.diagnostic(
                    "StorageError",
                    json!({"outputLocation": path, "detail": format!("cannot delete to stay within maximumSizeMiB: {e}")}),
                    time,
                ),
            }
        }
    }

    fn operational(&self, kind: &str, path: &Path, time: MediaTime) {
        let correlation = self
            .clip
            .as_ref()
            .map(|c| c.correlation_id.clone())
            .unwrap_or_default();
        self.event(kind, path, time, &correlation);
    }

    fn event(&self, kind: &str, path: &Path, time: MediaTime, correlation: &str) {
        self.events.emit(
            Event::new(
                EventClass::Operational,
                kind,
                self.subject.clone(),
                time,
                json!({"outputType": "filePath", "outputLocation": path}),
            )
            .correlated(Some(correlation.to_string())),
        );
    }

    fn storage_error(&mut self, e: &std::io::Error, time: MediaTime) {
        let Some(repeats) = self.failures.on_failure(time) else {
            return;
        };
        let folder = self.naming.folder();
        self.events.emit(Event::new(
            EventClass::Diagnostics,
            "StorageError",
            self.subject.clone(),
            time,
            json!({"outputLocation": folder, "errorCode": format!("{:?}", e.kind()), "detail": e.to_string(), "retry": RETRY_TEXT, "repeatsNotReported": repeats}),
        ));
    }

    /// A diagnostics event at media time `time`; none (start-up, before any media): now (UTC).
    fn diagnostic(&self, kind: &str, body: serde_json::Value, time: Option<MediaTime>) {
        self.events.emit(Event::new(
            EventClass::Diagnostics,
            kind,
            self.subject.clone(),
            time.unwrap_or_else(crate::nodes::rtsp_source::wall_now),
            body,
        ));
    }
}

fn write_fragment(f: &mut OpenFile, fragment: &Fragment) -> std::io::Result<()> {
    fragment.write_to(&mut f.file)?;
    f.bytes += fragment.len() as u64;
    Ok(())
}

/// fsyncs the file's data, counting the sync in `syncs`.
fn sync(f: &mut OpenFile, syncs: &mut u64) -> std::io::Result<()> {
    *syncs += 1;
    f.file.sync_data()?;
    f.synced_at = Instant::now();
    Ok(())
}
