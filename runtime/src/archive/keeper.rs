//! Keeps an archive in shape, in the background: uploads completed segments to the object store
//! in order (retrying with back-off while it is unreachable), keeps the local cache within its
//! budget (evicting uploaded segments first; when the store is down and the cache is full, the
//! oldest media is dropped and the gap reported, ava-spec §10.2), and deletes segments past
//! their video's retention period, locally and remotely.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::available::TimeRange;
use super::catalog::{Catalog, SegmentRow};
use super::segment_record::SegmentPublisher;
use super::store::ObjectStore;
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::{MediaDuration, MediaTime};
use crate::nodes::rtsp_source::wall_now;

/// Wait between upload attempts while the store is unreachable: a store that is back is used
/// within it (a growing back-off left it unused for up to 30 s).
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The archive's background worker.
pub struct Keeper {
    catalog: Catalog,
    store: Option<Arc<ObjectStore>>,
    budget: Option<i64>,
    bus: EventBus,
    subject: String,
    failures: u32,
    retry_at: Option<Instant>,
    owned: HashMap<String, bool>,
    installation: String,
    bucket_ready: bool,
    /// The store is shared by a cluster (segments keyed per installation).
    shared: bool,
    publisher: Option<SegmentPublisher>,
    publish_failing: bool,
    pass_lock: Option<PassLock>,
}

/// Held by a keeper for each pass over its archive: two keepers of one archive (a pipeline's
/// and a cluster member's lifelong one) never pass at once, so neither reads a file the other
/// is evicting or dropping.
pub type PassLock = Arc<std::sync::Mutex<()>>;

impl Keeper {
    /// A keeper of the archive at `dir`, uploading to `store`, within `budget` bytes.
    pub fn new(
        dir: &std::path::Path,
        store: Option<Arc<ObjectStore>>,
        budget: Option<u64>,
        bus: EventBus,
    ) -> Result<Self> {
        let catalog = Catalog::open(dir)?;
        let installation = catalog.installation()?;
        let shared = catalog.shares_store()?;
        Ok(Self {
            catalog,
            store,
            budget: budget.map(|b| b.min(i64::MAX as u64) as i64),
            bus,
            subject: super::subject(dir),
            failures: 0,
            retry_at: None,
            owned: HashMap::new(),
            installation,
            bucket_ready: false,
            shared,
            publisher: None,
            publish_failing: false,
            pass_lock: None,
        })
    }

    /// Passes only while holding `lock` (shared by every keeper of this archive).
    pub fn with_pass_lock(mut self, lock: PassLock) -> Self {
        self.pass_lock = Some(lock);
        self
    }

    /// Also gives each uploaded segment to the cluster's segment index through `publisher`
    /// (the archive's store is shared: [`Catalog::share_store`]).
    pub fn publishing(mut self, publisher: SegmentPublisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// Runs until `stop`, twice a second, then once more (what finished meanwhile is uploaded
    /// if the store is reachable).
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                self.run_once();
                std::thread::sleep(Duration::from_millis(500));
            }
            self.retry_at = None;
            self.run_once();
        })
    }

    /// Until `stop`, a pass whenever something waits for the store or the cluster's index
    /// (checked every second): an archive no pipeline writes to any more (a cluster member
    /// that restarted, or whose pipelines moved away while the store was down) still uploads
    /// and publishes what it recorded. Beside a pipeline's own keeper, give both the same
    /// [`PassLock`].
    pub fn drain(mut self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if self.has_pending().unwrap_or(true) {
                    self.run_once();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    }

    /// Whether a finished segment waits for the store, or for the index.
    fn has_pending(&self) -> Result<bool> {
        let upload = self.store.is_some()
            && self
                .catalog
                .all_segments()?
                .iter()
                .any(|s| !s.recording && s.local && !s.uploaded);
        let publish = self.publisher.is_some()
            && !(self.catalog.unpublished()?.is_empty() && self.catalog.outbox()?.is_empty());
        Ok(upload || publish)
    }

    /// One pass: upload, retention, cache budget, then the cluster's index (last, so that a
    /// segment dropped in this pass is never listed, and one listed before is taken back now).
    pub fn run_once(&mut self) {
        let lock = self.pass_lock.clone();
        let _pass = lock
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
        let now = wall_now();
        self.upload(now);
        if let Err(e) = self.expire(now) {
            self.storage_error(now, format!("retention: {e:#}"), None);
        }
        if let Err(e) = self.enforce_budget(now) {
            self.storage_error(now, format!("cache budget: {e:#}"), None);
        }
        self.publish(now);
    }

    fn upload(&mut self, now: MediaTime) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let pending: Vec<SegmentRow> = match self.catalog.all_segments() {
            Ok(all) => all
                .into_iter()
                .filter(|s| !s.recording && s.local && !s.uploaded)
                .collect(),
            Err(e) => {
                self.storage_error(now, format!("{e:#}"), None);
                return;
            }
        };
        let mut refused: HashSet<String> = HashSet::new();
        for s in pending {
            if refused.contains(&s.video) {
                continue;
            }
            let bucket = if self.bucket_ready {
                Ok(())
            } else {
                store.check()
            };
            self.bucket_ready = bucket.is_ok();
            let result = bucket
                .and_then(|()| self.claim(&store, &s.video))
                .and_then(|mine| {
                    if !mine && self.shared {
                        anyhow::bail!(
                            "video '{}' in the store was recorded by a single installation, not by this cluster; not appending to it",
                            s.video
                        );
                    }
                    if !mine {
                        anyhow::bail!(
                            "video '{}' in the store belongs to another installation; not appending to it",
                            s.video
                        );
                    }
                    let bytes = std::fs::read(self.catalog.dir().join(&s.path))?;
                    let bytes = bytes[..(s.bytes.max(0) as usize).min(bytes.len())].to_vec();
                    store.put(&store.segment_key(&s), bytes)?;
                    self.catalog.mark_uploaded(s.id)
                });
            match result {
                Ok(()) => {
                    // When the segment reached the store, not when the pass began.
                    let done = crate::nodes::rtsp_source::wall_now();
                    if self.failures > 0 {
                        self.failures = 0;
                        self.operational(
                            "StorageRestored",
                            done,
                            json!({"store": format!("{store:?}")}),
                        );
                    }
                    self.operational(
                        "SegmentUploaded",
                        done,
                        json!({"video": s.video, "key": store.segment_key(&s), "bytes": s.bytes,
                               "start": s.start.to_string(), "end": s.end.to_string()}),
                    );
                }
                Err(e) if self.owned.get(&s.video) == Some(&false) => {
                    refused.insert(s.video.clone());
                    self.storage_error(now, format!("{e:#}"), None);
                }
                Err(e) => {
                    self.failures += 1;
                    let wait = RETRY_EVERY;
                    self.retry_at = Some(Instant::now() + wait);
                    if self.failures == 1 {
                        let failed = crate::nodes::rtsp_source::wall_now();
                        self.storage_error(failed, format!("{e:#}"), Some(wait));
                    }
                    return;
                }
            }
        }
    }

    /// Tells the cluster's index of each finished segment, and again once it is uploaded, in
    /// order, then of the segments dropped unuploaded; on a failure (reported once until it
    /// works again) the rest wait for the next pass.
    fn publish(&mut self, now: MediaTime) {
        let Some(publisher) = self.publisher.clone() else {
            return;
        };
        let pending = match self.catalog.unpublished() {
            Ok(p) => p,
            Err(e) => return self.storage_error(now, format!("{e:#}"), None),
        };
        for s in pending {
            let sent = self
                .catalog
                .record_of(&s)
                .and_then(|record| publisher(&record))
                .and_then(|()| self.catalog.mark_published(s.id, s.uploaded));
            if let Err(e) = sent {
                let what = format!("segment {} of '{}'", s.id, s.video);
                return self.publish_failed(now, &what, &e);
            }
        }
        let dropped = match self.catalog.outbox() {
            Ok(d) => d,
            Err(e) => return self.storage_error(now, format!("{e:#}"), None),
        };
        for (id, record) in dropped {
            if let Err(e) = publisher(&record).and_then(|()| self.catalog.sent(id)) {
                let what = format!(
                    "that segment {} of '{}' was dropped",
                    record.origin_id, record.video.name
                );
                return self.publish_failed(now, &what, &e);
            }
        }
        self.publish_failing = false;
    }

    /// Reports a failure to tell the index of `what`, once until publishing works again.
    fn publish_failed(&mut self, now: MediaTime, what: &str, e: &anyhow::Error) {
        if !self.publish_failing {
            self.publish_failing = true;
            self.storage_error(
                now,
                format!("cannot give {what} to the cluster's segment index (retrying): {e:#}"),
                Some(RETRY_EVERY),
            );
        }
    }

    /// True when `video` in the store is this installation's to append to (claiming it when it
    /// is new): the installation that claimed it, or, in a store a cluster shares, any of its
    /// members (their keys do not collide).
    fn claim(&mut self, store: &ObjectStore, video: &str) -> Result<bool> {
        if let Some(mine) = self.owned.get(video) {
            return Ok(*mine);
        }
        let key = store.key(&format!("{video}/.vigil-video.json"));
        let mine = match store.get(&key)? {
            Some(body) => {
                let marker = serde_json::from_slice::<serde_json::Value>(&body).ok();
                let marker = marker.as_ref();
                if self.shared {
                    marker.is_some_and(|v| v["layout"] == "shared")
                } else {
                    marker
                        .and_then(|v| v["installation"].as_str())
                        .is_some_and(|id| id == self.installation)
                }
            }
            None if self.shared => {
                let marker = json!({"video": video, "layout": "shared"});
                store.put(&key, marker.to_string().into_bytes())?;
                true
            }
            None => {
                let marker = json!({"video": video, "installation": self.installation});
                store.put(&key, marker.to_string().into_bytes())?;
                true
            }
        };
        self.owned.insert(video.to_string(), mine);
        Ok(mine)
    }

    fn enforce_budget(&mut self, now: MediaTime) -> Result<()> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        let mut total = self.catalog.local_bytes()?;
        if total <= budget {
            return Ok(());
        }
        let all = self.catalog.all_segments()?;
        // Uploaded segments leave the cache first; then, the store being behind, the oldest media.
        let order = all
            .iter()
            .filter(|s| s.local && !s.recording && s.uploaded)
            .chain(
                all.iter()
                    .filter(|s| s.local && !s.recording && !s.uploaded),
            );
        for s in order {
            if total <= budget {
                break;
            }
            let path = self.catalog.dir().join(&s.path);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            if s.uploaded {
                self.catalog.mark_evicted(s.id)?;
            } else {
                // The other nodes of a cluster may have listed it: they are told it is gone.
                self.catalog.drop_unuploaded(s, "cacheFull")?;
                self.forget_snapshot_when_gone(&s.video, s.clip)?;
                self.bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "DataDropped",
                    self.subject.clone(),
                    now,
                    json!({"dataType": "video", "video": s.video, "start": s.start.to_string(),
                           "end": s.end.to_string(), "bytes": s.bytes,
                           "reason": "localMediaCacheMaximumSizeMiB",
                           "detail": "the local cache is full and this media was not uploaded: it is a gap now"}),
                ));
            }
            total -= s.bytes;
        }
        Ok(())
    }

    /// Deletes the snapshots of clip `clip` of `video` (its own and its events') once the clip has
    /// no segment left.
    fn forget_snapshot_when_gone(&self, video: &str, clip: i64) -> Result<()> {
        if !self.catalog.clip_has_segments(video, clip)? {
            let path = super::snapshot_file(self.catalog.dir(), video, clip);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(folder) = path.parent() {
                crate::nodes::clip_explanation::remove_event_snapshots(
                    folder,
                    &format!("{clip:08}"),
                );
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: MediaTime) -> Result<()> {
        let videos = self.catalog.videos()?;
        for v in videos {
            let Some(retention) = v.retention_ns else {
                continue;
            };
            let cutoff = now - MediaDuration::from_nanos(retention);
            for s in self
                .catalog
                .segments_between(&v.name, TimeRange::ALL.start, cutoff)?
            {
                if s.recording || s.end > cutoff {
                    continue;
                }
                if s.uploaded
                    && let Some(store) = &self.store
                {
                    store.delete(&store.segment_key(&s))?;
                }
                if s.local {
                    let _ = std::fs::remove_file(self.catalog.dir().join(&s.path));
                }
                self.catalog.delete_segment(s.id)?;
                self.forget_snapshot_when_gone(&s.video, s.clip)?;
                self.operational(
                    "RecordingDeleted",
                    now,
                    json!({"outputType": "video", "outputLocation": v.name, "start": s.start.to_string(),
                           "end": s.end.to_string(), "reason": "retentionPeriod"}),
                );
            }
        }
        Ok(())
    }

    fn operational(&self, kind: &str, at: MediaTime, body: serde_json::Value) {
        self.bus.emit(Event::new(
            EventClass::Operational,
            kind,
            self.subject.clone(),
            at,
            body,
        ));
    }

    fn storage_error(&self, at: MediaTime, detail: String, retry: Option<Duration>) {
        let mut body = json!({"detail": detail});
        if let Some(wait) = retry {
            body["retryInSeconds"] = json!(wait.as_secs_f64());
            body["store"] = json!(self.store.as_ref().map(|s| format!("{s:?}")));
        }
        self.bus.emit(Event::new(
            EventClass::Diagnostics,
            "StorageError",
            self.subject.clone(),
            at,
            body,
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::archive::catalog::{FragmentRow, VideoRow};
    use crate::archive::segment_record::SegmentRecord;

    /// A shared archive with `n` finished segments of `lobby`, 10 s apart, their files on disk.
    fn archive(dir: &std::path::Path, n: i64) -> Catalog {
        let c = Catalog::open(dir).expect("opens");
        c.share_store().expect("shared");
        let t = |s: i64| MediaTime::from_secs(1_767_225_600 + s);
        c.ensure_video(&VideoRow {
            name: "lobby".into(),
            title: "Lobby".into(),
            description: String::new(),
            created: t(0),
            segment_length_ns: 30_000_000_000,
            retention_ns: None,
        })
        .expect("video");
        for i in 0..n {
            let path = format!("videos/lobby/{i}.mp4");
            let id = c
                .begin_segment("lobby", i + 1, 0, &path, t(10 * i), 100)
                .expect("segment");
            let fragment = FragmentRow {
                offset: 100,
                len: 50,
                start: t(10 * i),
                end: t(10 * i + 1),
            };
            c.add_fragment(id, &fragment).expect("fragment");
            c.finish_segment(id, "00").expect("finished");
            std::fs::create_dir_all(dir.join("videos/lobby")).expect("folder");
            std::fs::write(dir.join(&path), vec![7u8; 150]).expect("file");
        }
        c
    }

    #[test]
    fn each_uploaded_segment_reaches_the_index_once_in_order_through_an_outage() {
        let dir = std::env::temp_dir().join(format!("vigil-keeper-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let catalog = archive(&dir.join("archive"), 3);
        let installation = catalog.installation().expect("id");
        std::fs::create_dir_all(dir.join("store")).expect("store folder");
        let store = ObjectStore::from_env(&format!("file://{}", dir.join("store").display()))
            .expect("folder store");
        let sent: Arc<Mutex<Vec<SegmentRecord>>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (kept, counted) = (sent.clone(), calls.clone());
        let publisher: SegmentPublisher = Arc::new(move |r: &SegmentRecord| {
            // The cluster is unreachable for the first two attempts.
            if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                anyhow::bail!("no answer from the cluster");
            }
            kept.lock().expect("lock").push(r.clone());
            Ok(())
        });
        let bus = EventBus::in_memory("p");
        let mut keeper = Keeper::new(
            &dir.join("archive"),
            Some(Arc::new(store)),
            None,
            bus.clone(),
        )
        .expect("keeper")
        .publishing(publisher);
        for _ in 0..3 {
            keeper.run_once();
        }
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(calls.load(Ordering::SeqCst), 5, "two refused, then three");
        let order: Vec<i64> = sent.iter().map(|r| r.clip).collect();
        assert_eq!(order, vec![1, 2, 3], "each once, oldest first");
        assert!(
            sent.iter()
                .all(|r| r.origin == installation && r.fragments.len() == 1)
        );
        assert!(catalog.unpublished().expect("q").is_empty());
        let reports: Vec<Event> = bus
            .remembered()
            .into_iter()
            .filter(|e| e.kind == "StorageError")
            .collect();
        assert_eq!(reports.len(), 1, "the outage reported once: {reports:?}");
        assert!(
            reports[0].body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("segment index"))
        );
        let key = dir.join(format!("store/lobby/{installation}/00000001-0000.mp4"));
        assert_eq!(
            std::fs::read(key)
                .expect("uploaded under its installation")
                .len(),
            150
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_listed_segment_dropped_unuploaded_is_told_to_the_index_as_gone() {
        let dir = std::env::temp_dir().join(format!("vigil-keeper-drop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let catalog = archive(&dir, 2);
        // Both were told to the index as finished (not uploaded: the store is away).
        for s in catalog.unpublished().expect("q") {
            catalog.mark_published(s.id, false).expect("published");
        }
        let sent: Arc<Mutex<Vec<SegmentRecord>>> = Arc::default();
        let kept = sent.clone();
        let publisher: SegmentPublisher = Arc::new(move |r: &SegmentRecord| {
            kept.lock().expect("lock").push(r.clone());
            Ok(())
        });
        // Room for one segment's 150 bytes: the oldest goes.
        let mut keeper = Keeper::new(&dir, None, Some(200), EventBus::in_memory("p"))
            .expect("keeper")
            .publishing(publisher);
        keeper.run_once();
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].dropped && sent[0].clip == 1, "{sent:?}");
        assert!(catalog.outbox().expect("q").is_empty(), "sent once");
        keeper.run_once();
        assert_eq!(catalog.all_segments().expect("q").len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_keeper_waits_for_the_other_keeper_of_its_archive() {
        let dir = std::env::temp_dir().join(format!("vigil-keeper-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        archive(&dir, 1);
        let lock = PassLock::default();
        let bus = EventBus::in_memory("p");
        let mut keeper = Keeper::new(&dir, None, None, bus)
            .expect("keeper")
            .with_pass_lock(lock.clone());
        let held = lock.lock().expect("lock");
        let (done_tx, done) = std::sync::mpsc::channel();
        let pass = std::thread::spawn(move || {
            keeper.run_once();
            let _ = done_tx.send(());
        });
        assert!(
            done.recv_timeout(Duration::from_millis(300)).is_err(),
            "a pass ran while the other keeper held the archive"
        );
        drop(held);
        done.recv_timeout(Duration::from_secs(10))
            .expect("the pass runs once the other keeper is done");
        pass.join().expect("joined");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
