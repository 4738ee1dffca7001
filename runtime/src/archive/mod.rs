//! The video archive behind VideoSink: segment files in a local directory (the cache), a SQLite
//! catalog of segments and fragments, the start-up repair, availability queries, HLS playlists and
//! MP4 export for playback, and the upload of segments to S3-compatible object storage.

pub mod available;
pub mod catalog;
pub mod export;
pub mod hls;
pub mod repair;

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;

/// Opens the archive at `dir` and repairs what a crash left, reporting the repair as an
/// `ArchiveRepaired` diagnostics event at `at`.
pub fn open_archive(dir: &Path, bus: &EventBus, at: MediaTime) -> Result<catalog::Catalog> {
    let catalog = catalog::Catalog::open(dir)?;
    let report = repair::repair(&catalog)?;
    if !report.is_clean() {
        bus.emit(Event::new(
            EventClass::Diagnostics,
            "ArchiveRepaired",
            format!("/archive/{}", dir.display()),
            at,
            json!({"archive": dir, "segmentsTrimmed": report.trimmed, "segmentsClosed": report.closed,
                   "segmentsDropped": report.dropped, "orphanFilesDeleted": report.orphans}),
        ));
    }
    Ok(catalog)
}
