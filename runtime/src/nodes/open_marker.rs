//! Markers of the files a FileSink is writing: `.<file name>.recording` beside each open file,
//! removed when the file is closed (finished, or cut back after a failed write). A marker found
//! at start means its file was left open by a crash (`kill -9`, a power cut): the start-up scan
//! announces that file even when every fragment in it is whole (`RecordingRecovered`), which a
//! file's bytes alone cannot tell from one that was closed cleanly.

use std::path::{Path, PathBuf};

/// The marker of one open file; removes itself when dropped.
#[derive(Debug)]
pub struct OpenMarker(Option<PathBuf>);

impl OpenMarker {
    /// Marks `file` as being written. Best effort: without a marker (a full disk, say), a crash
    /// leaves a file the scan still trims, only not announced when it is whole.
    pub fn create(file: &Path) -> Self {
        let marker = marker_path(file);
        Self(std::fs::write(&marker, b"").ok().map(|()| marker))
    }
}

impl Drop for OpenMarker {
    fn drop(&mut self) {
        if let Some(marker) = self.0.take() {
            let _ = std::fs::remove_file(marker);
        }
    }
}

/// True when `file` was left open by a crash; the marker is removed.
pub fn take_left_open(file: &Path) -> bool {
    std::fs::remove_file(marker_path(file)).is_ok()
}

fn marker_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    file.with_file_name(format!(".{name}.recording"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_lives_as_long_as_its_file_is_open() {
        let dir = std::env::temp_dir().join(format!("vigil-marker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("clip.mp4");
        let marker = OpenMarker::create(&file);
        assert!(dir.join(".clip.mp4.recording").exists());
        drop(marker);
        assert!(!take_left_open(&file), "closed: no marker");
        std::mem::forget(OpenMarker::create(&file));
        assert!(take_left_open(&file), "a crash leaves it");
        assert!(!take_left_open(&file), "taken once");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
