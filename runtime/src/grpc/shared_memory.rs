//! The shared-memory region of a `sharedMemory` GrpcExtension session: a file under `/dev/shm`
//! that the server maps whole (`length_bytes` of the descriptor), and a ring of frame regions in
//! it. A region stays untouched until the server acknowledged the message that named it; a frame
//! for which no free region exists is refused (the node skips and reports it), never written over
//! a region the server may still read.
//!
//! Frames are written with `pwrite` into the file: on tmpfs that is the same page cache the
//! server's mapping reads, so Vigil needs no mapping of its own. Each session makes a new file
//! and removes it when the session ends; the server's mapping of a removed file stays valid for
//! the server, so a late reader never sees the next session's frames. Files are named
//! `vigil-grpc-<pid>-<n>`; [`remove_stale`] removes those a killed process left.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the regions live (Linux's POSIX shared memory).
pub const SHM_DIR: &str = "/dev/shm";

/// Name prefix of Vigil's files there.
const PREFIX: &str = "vigil-grpc-";

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Why a region cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SharedMemoryError {
    /// The file cannot be made, sized or written.
    #[error("shared memory {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A region in use: where it is and the message sequence number that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    offset: u64,
    len: u64,
    sequence: u64,
}

/// One session's shared-memory file and the regions the server has not acknowledged yet.
#[derive(Debug)]
pub struct SharedMemoryRing {
    file: File,
    path: PathBuf,
    handle_name: String,
    size: u64,
    /// In allocation order; the newest last.
    live: VecDeque<Region>,
}

impl SharedMemoryRing {
    /// Makes a new file of `size` bytes under [`SHM_DIR`], readable and writable by its owner
    /// and group (an extension in another container or account needs the same IPC namespace and
    /// group).
    pub fn create(size: u64) -> Result<Self, SharedMemoryError> {
        Self::create_in(Path::new(SHM_DIR), size)
    }

    /// [`Self::create`] in `dir` (tests).
    pub fn create_in(dir: &Path, size: u64) -> Result<Self, SharedMemoryError> {
        let handle_name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(&handle_name);
        let io = |source| SharedMemoryError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o660)
            .open(&path)
            .map_err(io)?;
        let ring = Self {
            file,
            path: path.clone(),
            handle_name,
            size,
            live: VecDeque::new(),
        };
        // Full size at once: servers map `length_bytes` as soon as they read the descriptor.
        ring.file.set_len(size).map_err(io)?;
        Ok(ring)
    }

    /// The name the descriptor gives (`handle_name`: the file's name under [`SHM_DIR`]).
    pub fn handle_name(&self) -> &str {
        &self.handle_name
    }

    /// The file's size (`length_bytes` of the descriptor).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Regions the server has not acknowledged.
    pub fn in_use(&self) -> usize {
        self.live.len()
    }

    /// Finds room for `len` bytes after the newest region (wrapping to the start), writes
    /// `bytes` there for the message `sequence`, and returns the offset. `Ok(None)`: no free room
    /// (every region that would fit is still the server's).
    pub fn put(&mut self, sequence: u64, bytes: &[u8]) -> Result<Option<u64>, SharedMemoryError> {
        let Some(offset) = self.find_room(bytes.len() as u64) else {
            return Ok(None);
        };
        self.file
            .write_all_at(bytes, offset)
            .map_err(|source| SharedMemoryError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.live.push_back(Region {
            offset,
            len: bytes.len() as u64,
            sequence,
        });
        Ok(Some(offset))
    }

    /// The server acknowledged message `sequence`: its region may be used again. Acks of
    /// messages without a region are ignored.
    pub fn release(&mut self, sequence: u64) {
        if let Some(at) = self.live.iter().position(|r| r.sequence == sequence) {
            self.live.remove(at);
        }
    }

    fn find_room(&self, len: u64) -> Option<u64> {
        if len == 0 || len > self.size {
            return None;
        }
        let after_newest = self.live.back().map_or(0, |r| r.offset + r.len);
        let start = if after_newest + len <= self.size {
            after_newest
        } else {
            0
        };
        let overlaps = self
            .live
            .iter()
            .any(|r| start < r.offset + r.len && r.offset < start + len);
        (!overlaps).then_some(start)
    }
}

impl Drop for SharedMemoryRing {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the files under [`SHM_DIR`] that Vigil processes no longer running left (a `kill -9`
/// ends a process before it removes its files); returns how many.
pub fn remove_stale() -> usize {
    remove_stale_in(Path::new(SHM_DIR))
}

fn remove_stale_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-shm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn regions_follow_each_other_and_wrap_only_onto_acknowledged_ones() {
        let d = dir("ring");
        let mut ring = SharedMemoryRing::create_in(&d, 100).expect("ring");
        assert_eq!(
            std::fs::metadata(d.join(ring.handle_name()))
                .expect("file")
                .len(),
            100
        );
        assert_eq!(ring.put(1, &[1; 40]).expect("put"), Some(0));
        assert_eq!(ring.put(2, &[2; 40]).expect("put"), Some(40));
        // 80 + 40 > 100: wraps to 0, which message 1 still holds.
        assert_eq!(ring.put(3, &[3; 40]).expect("put"), None);
        ring.release(1);
        assert_eq!(ring.put(3, &[3; 40]).expect("put"), Some(0));
        // After the newest (0..40) comes 40..80, still message 2's.
        assert_eq!(ring.put(4, &[4; 30]).expect("put"), None);
        ring.release(2);
        assert_eq!(ring.put(4, &[4; 30]).expect("put"), Some(40));
        assert_eq!(ring.in_use(), 2);
        let bytes = std::fs::read(d.join(ring.handle_name())).expect("read");
        assert_eq!(&bytes[0..40], &[3; 40][..], "message 3 where message 1 was");
        assert_eq!(&bytes[40..70], &[4; 30][..]);
        assert_eq!(
            &bytes[70..80],
            &[2; 10][..],
            "the rest of message 2's region untouched"
        );
        // Larger than the whole file, or empty: never.
        assert_eq!(ring.put(5, &[0; 101]).expect("put"), None);
        let path = d.join(ring.handle_name());
        drop(ring);
        assert!(!path.exists(), "the file goes with the session");
    }

    #[test]
    fn files_of_dead_processes_are_removed_and_others_kept() {
        let d = dir("stale");
        let dead = d.join(format!("{PREFIX}4000000000-1"));
        let ours = SharedMemoryRing::create_in(&d, 10).expect("ring");
        let other = d.join("someone-else");
        std::fs::write(&dead, b"x").expect("write");
        std::fs::write(&other, b"x").expect("write");
        assert_eq!(remove_stale_in(&d), 1);
        assert!(!dead.exists());
        assert!(other.exists());
        assert!(d.join(ours.handle_name()).exists());
    }
}
