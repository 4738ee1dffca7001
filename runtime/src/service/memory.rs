//! Gives memory the process freed back to the system. glibc's allocator keeps freed memory in
//! its per-thread arenas, so after a burst (an oversized call read and refused, a broker's
//! backlog drained, a pipeline stopped) RSS stays at its peak. A thread asks the allocator every
//! [`TRIM_EVERY`] to return what is free (`malloc_trim`, which also releases free pages inside the
//! arenas); it costs a few milliseconds when there is something to return. It does not explain
//! the soak's growth (`scripts/soak.sh`, README "Reliability"): a rerun with it stepped up the same
//! way at each batch of oversized calls, so that memory is still referenced somewhere.

use std::time::Duration;

/// Time between two trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Returns free heap memory to the system now (glibc; nothing elsewhere).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        malloc_trim(0);
    }
}

/// Starts the thread that trims every [`TRIM_EVERY`] for the life of the process.
pub fn start_trimming() {
    let spawned = std::thread::Builder::new()
        .name("memory trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_EVERY);
                trim();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no memory-trim thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_gives_freed_memory_back() {
        fn rss_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("RssAnon:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        }
        // Many small blocks on another thread's arena, all freed but one at the end.
        let before = std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 2_000]).collect();
            let keep = blocks.last().cloned();
            drop(blocks);
            let held = rss_kib();
            super::trim();
            (held, rss_kib(), keep.map(|k| k.len()))
        })
        .join()
        .expect("thread");
        let (held, after, _) = before;
        assert!(
            after + 20_000 < held,
            "trim returned the freed 40 MB: {held} KiB before, {after} KiB after"
        );
    }
}
