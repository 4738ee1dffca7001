//! The review list: the recent clips of every pipeline, for people looking for what happened.
//! Each `RecordingAvailable` of a FileSink's file adds one, with what its explanation says (when,
//! which events and labels) and whether its snapshot exists; a VideoSink adds each clip it
//! closes in its archive ([`ReviewIndex::add_archive_clip`]). The newest [`KEEP`] of this process
//! are listed, newest first, filtered by pipeline and label (`GET /api/clips`).

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::bus::event::Event;
use crate::bus::event_log::EventBus;
use crate::media::snapshot::snapshot_path;
use crate::nodes::clip_explanation::sidecar_path;

/// Clips kept in the list.
pub const KEEP: usize = 500;

/// Where a clip's media is.
#[derive(Clone, Debug, PartialEq)]
pub enum Recording {
    /// A FileSink's file.
    File(PathBuf),
    /// Clip `clip` of video `video` in an archive; its snapshot at `snapshot`.
    Archive {
        /// The video.
        video: String,
        /// The clip's number.
        clip: i64,
        /// Its snapshot file.
        snapshot: PathBuf,
    },
}

/// One clip.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewClip {
    /// Its number in this process, from 1.
    pub id: u64,
    /// The live pipeline.
    pub pipeline: String,
    /// The recording.
    pub recording: Recording,
    /// Its first frame's time (UTC), from its explanation (else when it was announced).
    pub start: String,
    /// Its end (UTC).
    pub end: String,
    /// The labels of the events that made it, sorted.
    pub labels: Vec<String>,
    /// The kinds of the events that made it (`Trigger`, `Inference`, ...), sorted.
    pub events: Vec<String>,
}

impl ReviewClip {
    /// The file of a FileSink's clip.
    pub fn file(&self) -> Option<&PathBuf> {
        match &self.recording {
            Recording::File(f) => Some(f),
            Recording::Archive { .. } => None,
        }
    }

    /// The clip as `GET /api/clips` lists it.
    pub fn to_json(&self) -> Value {
        let (name, snapshot, media, download, video) = match &self.recording {
            Recording::File(file) => (
                file.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                snapshot_path(file)
                    .exists()
                    .then(|| format!("/api/clips/{}/snapshot.jpg", self.id)),
                format!("/api/clips/{}/media.mp4", self.id),
                format!("/api/clips/{}/media.mp4?download=1", self.id),
                None,
            ),
            Recording::Archive {
                video,
                clip,
                snapshot,
            } => {
                let v = percent_encode(video);
                let range = format!(
                    "startTime={}&endTime={}",
                    percent_encode(&self.start),
                    percent_encode(&self.end)
                );
                (
                    format!("{video} clip {clip}"),
                    snapshot
                        .exists()
                        .then(|| format!("/api/videos/{v}/clips/{clip}/snapshot.jpg")),
                    format!("/api/videos/{v}/download.mp4?{range}"),
                    format!("/api/videos/{v}/download.mp4?{range}"),
                    Some(json!({"name": video, "clip": clip})),
                )
            }
        };
        json!({
            "id": self.id,
            "pipeline": self.pipeline,
            "name": name,
            "video": video,
            "start": self.start,
            "end": self.end,
            "labels": self.labels,
            "events": self.events,
            "snapshot": snapshot,
            "media": media,
            "download": download,
        })
    }
}

/// The list.
#[derive(Default)]
pub struct ReviewIndex {
    clips: Mutex<VecDeque<ReviewClip>>,
    next: std::sync::atomic::AtomicU64,
}

/// The process's list (made on first use).
pub fn index() -> &'static Arc<ReviewIndex> {
    static INDEX: OnceLock<Arc<ReviewIndex>> = OnceLock::new();
    INDEX.get_or_init(Default::default)
}

impl ReviewIndex {
    /// Fills the list from the events of `bus` (every pipeline's) from now on.
    pub fn follow(self: &Arc<Self>, bus: &EventBus) {
        let me = self.clone();
        bus.observe(Arc::new(move |pipeline: &str, event: &Event| {
            me.on_event(pipeline, event)
        }));
    }

    fn clips(&self) -> std::sync::MutexGuard<'_, VecDeque<ReviewClip>> {
        self.clips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a clip when `event` announces a FileSink's recording.
    pub fn on_event(&self, pipeline: &str, event: &Event) {
        if event.kind != "RecordingAvailable" || event.body["outputType"] != "filePath" {
            return;
        }
        let Some(file) = event.body["outputLocation"].as_str().map(PathBuf::from) else {
            return;
        };
        let explanation: Option<Value> = std::fs::read(sidecar_path(&file))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let time = event.time.to_string();
        self.push(
            pipeline,
            Recording::File(file),
            explanation.as_ref(),
            &time,
            &time,
        );
    }

    /// Adds clip `clip` of `video` (archive `archive`) of `pipeline`, which ran from `start` to
    /// `end` (UTC) for the reasons `explanation` gives.
    pub fn add_archive_clip(
        &self,
        pipeline: &str,
        (archive, video, clip): (&std::path::Path, &str, i64),
        explanation: &Value,
        start: &str,
        end: &str,
    ) {
        let snapshot = crate::archive::snapshot_file(archive, video, clip);
        let recording = Recording::Archive {
            video: video.to_string(),
            clip,
            snapshot,
        };
        self.push(pipeline, recording, Some(explanation), start, end);
    }

    fn push(
        &self,
        pipeline: &str,
        recording: Recording,
        explanation: Option<&Value>,
        start: &str,
        end: &str,
    ) {
        let mut labels = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        let (mut start, mut end) = (start.to_string(), end.to_string());
        if let Some(e) = explanation {
            for r in e["events"].as_array().into_iter().flatten() {
                for l in r["labels"].as_array().into_iter().flatten() {
                    if let Some(l) = l.as_str() {
                        labels.insert(l.to_string());
                    }
                }
                if let Some(t) = r["eventType"].as_str() {
                    kinds.insert(t.rsplit('.').next().unwrap_or(t).to_string());
                }
            }
            if let Some(s) = e["preroll"]["start"].as_str() {
                start = s.to_string();
            }
            if let Some(s) = e["end"].as_str() {
                end = s.to_string();
            }
        }
        let mut clips = self.clips();
        if clips
            .iter()
            .any(|c| c.pipeline == pipeline && same_recording(&c.recording, &recording))
        {
            return;
        }
        // Ordered by start (a clip found again at a restart goes among the older ones).
        let at = clips.partition_point(|c| c.start <= start);
        if clips.len() >= KEEP {
            if at == 0 {
                return;
            }
            clips.pop_front();
        }
        let at = clips.partition_point(|c| c.start <= start);
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        clips.insert(
            at,
            ReviewClip {
                id,
                pipeline: pipeline.to_string(),
                recording,
                start,
                end,
                labels: labels.into_iter().collect(),
                events: kinds.into_iter().collect(),
            },
        );
    }

    /// Adds `file`, a FileSink's recording of `pipeline` found on disk (at a start), if its
    /// explanation is beside it.
    pub fn add_existing_file(&self, pipeline: &str, file: PathBuf) {
        let Some(explanation) = std::fs::read(sidecar_path(&file))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return;
        };
        let (Some(start), Some(end)) = (
            explanation["preroll"]["start"]
                .as_str()
                .or(explanation["firstEvent"].as_str())
                .map(str::to_string),
            explanation["end"].as_str().map(str::to_string),
        ) else {
            return;
        };
        self.push(
            pipeline,
            Recording::File(file),
            Some(&explanation),
            &start,
            &end,
        );
    }

    /// Adds the event clips of the archive at `archive` that its catalog explains (the newest
    /// [`KEEP`]), as its first user opens it.
    pub fn add_archive(
        &self,
        archive: &std::path::Path,
        catalog: &crate::archive::catalog::Catalog,
    ) {
        let Ok(rows) = catalog.recent_explanations(KEEP) else {
            return;
        };
        for (video, clip, body) in rows {
            let Ok(explanation) = serde_json::from_str::<Value>(&body) else {
                continue;
            };
            if explanation["continuous"] == true {
                continue;
            }
            let (Some(pipeline), Some(start), Some(end)) = (
                explanation["pipeline"].as_str(),
                explanation["preroll"]["start"]
                    .as_str()
                    .or(explanation["firstEvent"].as_str()),
                explanation["end"].as_str(),
            ) else {
                continue;
            };
            self.add_archive_clip(pipeline, (archive, &video, clip), &explanation, start, end);
        }
    }

    /// The clips of `pipeline` (any when none) with `label` (any when none), newest first, at
    /// most `limit`; and every pipeline and label the list holds.
    pub fn list(&self, pipeline: Option<&str>, label: Option<&str>, limit: usize) -> Value {
        let clips = self.clips();
        let pipelines: BTreeSet<&str> = clips.iter().map(|c| c.pipeline.as_str()).collect();
        let labels: BTreeSet<&str> = clips
            .iter()
            .flat_map(|c| c.labels.iter().map(String::as_str))
            .collect();
        let picked: Vec<Value> = clips
            .iter()
            .rev()
            .filter(|c| pipeline.is_none_or(|p| c.pipeline == p))
            .filter(|c| label.is_none_or(|l| c.labels.iter().any(|x| x == l)))
            .take(limit)
            .map(ReviewClip::to_json)
            .collect();
        json!({"clips": picked, "pipelines": pipelines, "labels": labels})
    }

    /// Clip `id`, if still listed.
    pub fn clip(&self, id: u64) -> Option<ReviewClip> {
        self.clips().iter().find(|c| c.id == id).cloned()
    }
}

/// `s` for a URL's path segment or query value: unreserved characters as they are, every
/// other byte as `%XX`.
/// True when `a` and `b` are the same recording (an archive clip by video and number: the
/// archive's path may be written differently).
fn same_recording(a: &Recording, b: &Recording) -> bool {
    match (a, b) {
        (Recording::File(x), Recording::File(y)) => x == y,
        (
            Recording::Archive {
                video: v1,
                clip: c1,
                ..
            },
            Recording::Archive {
                video: v2,
                clip: c2,
                ..
            },
        ) => v1 == v2 && c1 == c2,
        _ => false,
    }
}

fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::event::EventClass;
    use crate::media::time::MediaTime;

    fn announce(
        index: &ReviewIndex,
        dir: &std::path::Path,
        pipeline: &str,
        name: &str,
        labels: &[&str],
    ) {
        let file = dir.join(name);
        let explanation = json!({
            "preroll": {"start": "2026-01-01T00:00:00.000Z"},
            "end": "2026-01-01T00:00:10.000Z",
            "events": [{"eventType": "Microsoft.VideoAnalyzer.Analytics.Inference", "labels": labels}]
        });
        std::fs::write(sidecar_path(&file), explanation.to_string()).expect("write");
        let event = Event::new(
            EventClass::Operational,
            "RecordingAvailable",
            format!("/livePipelines/{pipeline}/sinks/files"),
            MediaTime::from_secs(1_767_225_610),
            json!({"outputType": "filePath", "outputLocation": file}),
        );
        index.on_event(pipeline, &event);
    }

    #[test]
    fn clips_are_listed_newest_first_and_filtered_by_pipeline_and_label() {
        let dir = std::env::temp_dir().join(format!("vigil-review-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let index = ReviewIndex::default();
        announce(&index, &dir, "yard", "a.mp4", &["truck"]);
        announce(&index, &dir, "gate", "b.mp4", &["car", "truck"]);
        announce(&index, &dir, "yard", "c.mp4", &["person"]);
        let names = |v: &Value| -> Vec<String> {
            v["clips"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        };
        let all = index.list(None, None, 10);
        assert_eq!(names(&all), ["c.mp4", "b.mp4", "a.mp4"]);
        assert_eq!(all["pipelines"], json!(["gate", "yard"]));
        assert_eq!(all["labels"], json!(["car", "person", "truck"]));
        assert_eq!(
            names(&index.list(Some("yard"), None, 10)),
            ["c.mp4", "a.mp4"]
        );
        assert_eq!(
            names(&index.list(None, Some("truck"), 10)),
            ["b.mp4", "a.mp4"]
        );
        assert_eq!(
            names(&index.list(Some("yard"), Some("truck"), 10)),
            ["a.mp4"]
        );
        assert_eq!(names(&index.list(None, None, 1)), ["c.mp4"]);
        let first = &all["clips"][2];
        assert_eq!(first["start"], "2026-01-01T00:00:00.000Z");
        assert_eq!(first["events"], json!(["Inference"]));
        assert_eq!(first["snapshot"], Value::Null, "no snapshot file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn clips_found_again_are_ordered_by_start_and_listed_once() {
        let dir = std::env::temp_dir().join(format!("vigil-review-again-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let index = ReviewIndex::default();
        let write = |name: &str, start: &str| {
            let file = dir.join(name);
            let explanation = json!({"preroll": {"start": start}, "end": start, "events": []});
            std::fs::write(sidecar_path(&file), explanation.to_string()).expect("write");
            file
        };
        let newer = write("newer.mp4", "2026-01-02T00:00:00.000Z");
        let older = write("older.mp4", "2026-01-01T00:00:00.000Z");
        index.add_existing_file("yard", newer.clone());
        index.add_existing_file("yard", older.clone());
        index.add_existing_file("yard", newer);
        // A file without its explanation is not listed at a restart.
        index.add_existing_file("yard", dir.join("bare.mp4"));
        let clip = |start: &str| json!({"preroll": {"start": start}, "end": start, "events": []});
        let archive = (dir.as_path(), "front", 7);
        let c = clip("2026-01-01T12:00:00.000Z");
        index.add_archive_clip("yard", archive, &c, "x", "y");
        index.add_archive_clip("yard", archive, &c, "x", "y");
        let names: Vec<String> = index.list(None, None, 10)["clips"]
            .as_array()
            .expect("clips")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, ["newer.mp4", "front clip 7", "older.mp4"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
