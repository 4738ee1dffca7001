//! The video archive behind VideoSink: segment files in a local directory (the cache), a SQLite
//! catalog of segments and fragments, the start-up repair, availability queries, HLS playlists and
//! MP4 export for playback, and the upload of segments to object storage (S3, Azure Blob, GCS, a folder).

pub mod available;
pub mod catalog;
pub mod export;
pub mod hls;
pub mod keeper;
pub mod repair;
pub mod segment_record;
pub mod store;
pub mod store_location;

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;

/// The subject of an archive's own events (repair, uploads, retention): `/archive/<dir>`, the
/// directory's path without its leading `/`.
pub fn subject(dir: &Path) -> String {
    format!(
        "/archive/{}",
        dir.display().to_string().trim_start_matches('/')
    )
}

/// Opens the archive at `dir` and repairs what a crash left, reporting the repair as an
/// `ArchiveRepaired` diagnostics event at `at`.
pub fn open_archive(dir: &Path, bus: &EventBus, at: MediaTime) -> Result<catalog::Catalog> {
    let catalog = catalog::Catalog::open(dir)?;
    let report = repair::repair(&catalog)?;
    if !report.is_clean() {
        bus.emit(Event::new(
            EventClass::Diagnostics,
            "ArchiveRepaired",
            subject(dir),
            at,
            json!({"archive": dir, "segmentsTrimmed": report.trimmed, "segmentsClosed": report.closed,
                   "segmentsDropped": report.dropped, "orphanFilesDeleted": report.orphans}),
        ));
    }
    Ok(catalog)
}

/// Where an archive keeps the snapshot of clip `clip` of `video`:
/// `<archive>/snapshots/<video>/<clip>.jpg` (eight digits, as segment files).
pub fn snapshot_file(archive: &Path, video: &str, clip: i64) -> std::path::PathBuf {
    archive
        .join("snapshots")
        .join(video)
        .join(format!("{clip:08}.jpg"))
}

/// The object store of `--store`, checked (its bucket answers a listing); none without the option.
pub fn open_store(store: Option<&str>) -> Result<Option<std::sync::Arc<store::ObjectStore>>> {
    let Some(url) = store else {
        return Ok(None);
    };
    let s = store::ObjectStore::from_env(url)?;
    // An unreachable store is not fatal: segments wait in the cache (the keeper reports it).
    if let Err(e) = s.check() {
        tracing::warn!("object store {s:?}: {e:#}; segments stay in the cache until it answers");
    }
    Ok(Some(std::sync::Arc::new(s)))
}

/// Reads evicted segments back from `store` for playback: the whole object, or the bytes
/// `first..=last` of it.
pub fn remote_reader(
    store: Option<std::sync::Arc<store::ObjectStore>>,
) -> Option<crate::api::playback::RemoteReader> {
    let store = store?;
    Some(std::sync::Arc::new(
        move |s: &catalog::SegmentRow, range: Option<(u64, u64)>| {
            let key = store.segment_key(s);
            let got = match range {
                Some((first, last)) => store.get_range(&key, first, last)?,
                None => store.get(&key)?,
            };
            got.ok_or_else(|| {
                anyhow::anyhow!("segment {} is in neither the cache nor the store", s.id)
            })
        },
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_subject_names_the_directory_without_a_double_slash() {
        assert_eq!(
            super::subject(std::path::Path::new("/var/lib/vigil/archive")),
            "/archive/var/lib/vigil/archive"
        );
        assert_eq!(
            super::subject(std::path::Path::new("archive")),
            "/archive/archive"
        );
    }
}
