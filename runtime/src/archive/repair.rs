//! Start-up check of an archive: makes the catalog and the files agree after a crash or power
//! loss. A segment file longer than what the catalog recorded loses the extra bytes (a fragment
//! written but not recorded); a segment still marked as recording is closed with its content
//! hash; a row whose file is gone is dropped (a gap is recorded) unless the store has it; a file
//! the catalog does not know is deleted.

use std::path::Path;

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::catalog::Catalog;
use crate::nodes::video_sink::hex;

/// What the repair did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Segments whose files were cut back to their last recorded fragment.
    pub trimmed: usize,
    /// Segments closed that a crash left open.
    pub closed: usize,
    /// Catalog rows dropped because their file was gone.
    pub dropped: usize,
    /// Files deleted because the catalog did not know them.
    pub orphans: usize,
}

impl RepairReport {
    /// True when nothing needed repair.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

/// Repairs the archive whose catalog is `catalog`.
pub fn repair(catalog: &Catalog) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let dir = catalog.dir().to_path_buf();
    let segments = catalog.all_segments()?;
    for s in &segments {
        if !s.local {
            continue;
        }
        let path = dir.join(&s.path);
        let Ok(meta) = std::fs::metadata(&path) else {
            if s.uploaded {
                catalog.mark_evicted(s.id)?;
            } else {
                catalog.drop_segment(s, "fileMissing")?;
                report.dropped += 1;
            }
            continue;
        };
        let recorded = s.bytes.max(0) as u64;
        if meta.len() > recorded {
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.set_len(recorded)?;
            file.sync_all()?;
            catalog.truncate_segment(s.id, s.bytes)?;
            report.trimmed += 1;
        }
        if s.recording {
            let bytes = std::fs::read(&path)?;
            catalog.finish_segment(s.id, &hex(&Sha256::digest(&bytes)))?;
            report.closed += 1;
        }
    }
    let known: std::collections::HashSet<String> = catalog
        .all_segments()?
        .into_iter()
        .map(|s| s.path)
        .collect();
    report.orphans = delete_orphans(&dir, &dir.join("videos"), &known)?;
    Ok(report)
}

fn delete_orphans(
    root: &Path,
    dir: &Path,
    known: &std::collections::HashSet<String>,
) -> Result<usize> {
    let mut deleted = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            deleted += delete_orphans(root, &path, known)?;
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if path.extension().is_some_and(|e| e == "mp4") && !known.contains(&relative) {
            std::fs::remove_file(&path)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
