//! One catalog and one keeper per archive directory, however many pipelines write to it: the
//! first pipeline to use a directory opens it (repairing what a crash left) and starts its keeper;
//! the last one to leave stops it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::archive::keeper::{Keeper, PassLock};
use crate::archive::segment_record::SegmentPublisher;
use crate::archive::store::ObjectStore;
use crate::bus::event_log::EventBus;
use crate::nodes::rtsp_source::wall_now;

struct Open {
    users: usize,
    stop: Arc<AtomicBool>,
    keeper: Option<std::thread::JoinHandle<()>>,
}

/// The archive directories in use, by absolute path.
#[derive(Clone)]
pub struct Archives {
    open: Arc<Mutex<HashMap<PathBuf, Open>>>,
    store: Option<Arc<ObjectStore>>,
    bus: EventBus,
    publisher: Option<SegmentPublisher>,
    pass_locks: Arc<Mutex<HashMap<PathBuf, PassLock>>>,
}

/// A pipeline's use of an archive directory; dropping the last one stops the keeper.
pub struct ArchiveLease {
    dir: PathBuf,
    archives: Archives,
}

impl Archives {
    /// No archive open yet; keepers upload to `store` and report on `bus`.
    pub fn new(store: Option<Arc<ObjectStore>>, bus: EventBus) -> Self {
        Self {
            open: Arc::new(Mutex::new(HashMap::new())),
            store,
            bus,
            publisher: None,
            pass_locks: Arc::default(),
        }
    }

    /// The lock every keeper of the archive at `key` (an absolute path) passes under.
    fn pass_lock(&self, key: &Path) -> PassLock {
        let mut locks = self.pass_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.to_path_buf()).or_default().clone()
    }

    /// The store is shared by a cluster: every archive opened from now on keys its segments
    /// under its installation and gives each uploaded one to `publisher` (the segment index).
    pub fn shared(mut self, publisher: SegmentPublisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// The object store, if any.
    pub fn store(&self) -> Option<Arc<ObjectStore>> {
        self.store.clone()
    }

    /// Uses the archive at `dir` (created if need be); the first user opens and repairs it and
    /// starts its keeper with the cache `budget` (bytes).
    pub fn acquire(&self, dir: &Path, budget: Option<u64>) -> Result<ArchiveLease> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the archive {}", dir.display()))?;
        let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = open.get_mut(&key) {
            entry.users += 1;
        } else {
            let catalog = crate::archive::open_archive(dir, &self.bus, wall_now())?;
            if self.publisher.is_some() {
                catalog.share_store()?;
            }
            // Its event clips go on the review list, as they were before a restart.
            super::review::index().add_archive(dir, &catalog);
            drop(catalog);
            let stop = Arc::new(AtomicBool::new(false));
            let mut keeper = Keeper::new(dir, self.store.clone(), budget, self.bus.clone())?
                .with_pass_lock(self.pass_lock(&key));
            if let Some(publisher) = &self.publisher {
                keeper = keeper.publishing(publisher.clone());
            }
            let keeper = keeper.spawn(stop.clone());
            open.insert(
                key.clone(),
                Open {
                    users: 1,
                    stop,
                    keeper: Some(keeper),
                },
            );
        }
        Ok(ArchiveLease {
            dir: key,
            archives: self.clone(),
        })
    }

    /// Repairs the archive at `dir` and, in the background until `stop`, uploads and publishes
    /// what waits in it whether or not a pipeline writes there (a cluster member that
    /// restarted, perhaps after `kill -9`; one whose pipelines moved away while the store was
    /// down); nothing without a store.
    pub fn drain(&self, dir: &Path, stop: Arc<AtomicBool>) -> Result<()> {
        if self.store.is_none() {
            return Ok(());
        }
        let catalog = crate::archive::open_archive(dir, &self.bus, wall_now())?;
        if self.publisher.is_some() {
            catalog.share_store()?;
        }
        let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut keeper = Keeper::new(dir, self.store.clone(), None, self.bus.clone())?
            .with_pass_lock(self.pass_lock(&key));
        if let Some(publisher) = &self.publisher {
            keeper = keeper.publishing(publisher.clone());
        }
        drop(keeper.drain(stop));
        Ok(())
    }

    /// Per open archive directory, the segments that wait for the object store (an archive
    /// whose catalog cannot be read is left out); nothing without a store.
    pub fn uploads_pending(&self) -> Vec<(String, i64)> {
        if self.store.is_none() {
            return Vec::new();
        }
        let dirs: Vec<PathBuf> = {
            let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.keys().cloned().collect()
        };
        dirs.into_iter()
            .filter_map(|dir| {
                let catalog = crate::archive::catalog::Catalog::open(&dir).ok()?;
                let pending = catalog
                    .all_segments()
                    .ok()?
                    .into_iter()
                    .filter(|s| s.local && !s.uploaded)
                    .count();
                Some((dir.display().to_string(), pending as i64))
            })
            .collect()
    }

    fn release(&self, dir: &Path) {
        let finished = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            match open.get_mut(dir) {
                Some(entry) if entry.users > 1 => {
                    entry.users -= 1;
                    None
                }
                Some(_) => open.remove(dir),
                None => None,
            }
        };
        if let Some(mut entry) = finished {
            entry.stop.store(true, Ordering::Relaxed);
            if let Some(k) = entry.keeper.take() {
                let _ = k.join();
            }
        }
    }
}

impl ArchiveLease {
    /// The archive's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until no segment of `videos` waits for the object store (none without a store), at
    /// most `timeout`; returns how many still wait.
    pub fn wait_for_uploads(&self, videos: &[String], timeout: Duration) -> Result<usize> {
        if self.archives.store.is_none() || videos.is_empty() {
            return Ok(0);
        }
        let catalog = crate::archive::catalog::Catalog::open(&self.dir)?;
        let deadline = Instant::now() + timeout;
        loop {
            let pending = catalog
                .all_segments()?
                .into_iter()
                .filter(|s| s.local && !s.uploaded && videos.contains(&s.video))
                .count();
            if pending == 0 || Instant::now() >= deadline {
                return Ok(pending);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ArchiveLease {
    fn drop(&mut self) {
        self.archives.release(&self.dir);
    }
}
