//! Keeps the heap from growing after bursts of large allocations.
//!
//! glibc's allocator serves blocks above its mmap threshold (128 KiB) with a mapping of their
//! own, returned to the system when freed; but when such a block is freed it raises the threshold
//! to the block's size (up to 32 MiB). After one 3 MiB call body was read and refused, every later
//! block up to 3 MiB (call bodies, key frames, fragment buffers) came from the per-thread arenas,
//! where long-lived neighbours pin the freed ones: the soak (`scripts/soak.sh`, README
//! "Reliability") stepped up ~6 MiB at every batch of oversized calls after the first and never
//! came down, `malloc_trim` or not. [`pin_mmap_threshold`] fixes the threshold at start-up (which
//! also stops glibc adjusting it), so a burst is mapped and unmapped and leaves nothing behind.
//! A thread also asks the allocator every [`TRIM_EVERY`] to return free pages inside the arenas
//! (`malloc_trim`), for bursts of small blocks (a broker's backlog drained, a pipeline stopped);
//! the snapshot thread does too, whenever its queue empties (at most once a second,
//! [`trim_after_burst`]). Between two trims the memory a burst freed stays resident: with trims
//! every 30 s the soak's RSS swung by 3 MiB (16 clips' snapshots decoded together every minute),
//! more than the growth it measures.
//!
//! glibc also gives threads arenas of their own, up to eight per core. A service has dozens of
//! threads (a camera thread per session, a thread per sink), and each arena keeps its own free
//! memory and its own fragmentation: the soak's RssAnon kept rising for its first 15 minutes.
//! [`limit_arenas`] caps them at one per core (at least two).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time between two trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Blocks of this size and above get a mapping of their own, for the life of the process.
/// Above every frame of a 4K stream's steady state but a key frame, and far below a refused body.
pub const MMAP_THRESHOLD: usize = 1 << 20;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
    fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
}

/// glibc's `struct mallinfo2` (malloc.h): the allocator's figures, summed over its arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallinfo2() -> MallInfo2;
}

/// glibc's `M_MMAP_THRESHOLD` parameter (malloc.h).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: std::ffi::c_int = -3;

/// glibc's `M_ARENA_MAX` parameter (malloc.h).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_ARENA_MAX: std::ffi::c_int = -8;

/// How many arenas the allocator may have: one per core, at least two.
pub fn arena_limit() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// Caps the allocator's arenas at [`arena_limit`] (glibc; nothing elsewhere), unless
/// `MALLOC_ARENA_MAX` in the environment says otherwise. Call before the threads start. Returns
/// whether the allocator took it.
pub fn limit_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let n = std::ffi::c_int::try_from(arena_limit()).unwrap_or(std::ffi::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; it takes no pointers.
        unsafe { mallopt(M_ARENA_MAX, n) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Fixes the allocator's mmap threshold at [`MMAP_THRESHOLD`] (glibc; nothing elsewhere).
/// Returns whether the allocator took it.
pub fn pin_mmap_threshold() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; it takes no pointers.
        unsafe { mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD as std::ffi::c_int) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Returns free heap memory to the system now (glibc; nothing elsewhere).
pub fn trim() {
    LAST_TRIM_MS.store(process_ms(), Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        malloc_trim(0);
    }
}

/// The shortest time between a trim and one asked for after a burst ([`trim_after_burst`]).
pub const BURST_TRIM_GAP: Duration = Duration::from_secs(1);

/// When the last trim began, in milliseconds of [`process_ms`] (0: none yet).
static LAST_TRIM_MS: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since this module was first used (from 1, so that 0 can mean "never").
fn process_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Whether a trim is due after a burst: none yet, or the last one at least `gap` ago.
fn burst_trim_due(last_ms: u64, now_ms: u64, gap: Duration) -> bool {
    let gap_ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX);
    last_ms == 0 || now_ms.saturating_sub(last_ms) >= gap_ms
}

/// Trims after a burst of work has ended (the snapshot queue drained), unless a trim ran
/// within [`BURST_TRIM_GAP`]: inference snapshots come one at a time, several a second, and
/// each would otherwise walk every arena under its lock. Returns whether it trimmed.
pub fn trim_after_burst() -> bool {
    let due = burst_trim_due(
        LAST_TRIM_MS.load(Ordering::Relaxed),
        process_ms(),
        BURST_TRIM_GAP,
    );
    if due {
        trim();
    }
    due
}

/// What the heap holds, in bytes, as the allocator counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapUsage {
    /// Bytes in blocks the program holds, inside the arenas.
    pub in_use: u64,
    /// Bytes free inside the arenas (some of them given back to the system by the last trim).
    pub free: u64,
    /// Bytes in blocks with a mapping of their own (at or above the mmap threshold).
    pub mapped: u64,
}

/// The heap's figures now (glibc; `None` elsewhere). It walks every arena's free lists under
/// their locks: for a scrape, not for a hot path.
pub fn heap_usage() -> Option<HeapUsage> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct of counters.
        let info = unsafe { mallinfo2() };
        Some(HeapUsage {
            in_use: info.uordblks as u64,
            free: info.fordblks as u64,
            mapped: info.hblkhd as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Pins the mmap threshold and starts the thread that trims every [`TRIM_EVERY`] for the life of
/// the process. (The binary caps the arenas first thing, before any thread starts.)
pub fn start_trimming() {
    if !pin_mmap_threshold() {
        tracing::debug!("the allocator's mmap threshold could not be fixed");
    }
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

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn rss_anon_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("RssAnon:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// True when glibc served the block at `p` with a mapping of its own: the IS_MMAPPED bit
    /// (2) of the chunk's size word, just before the block. Per block, so other tests' threads
    /// mapping and unmapping meanwhile cannot blur it (the process-wide `mallinfo2` count did).
    fn has_own_mapping(p: *const u8) -> bool {
        // SAFETY: `p` is a live block from glibc's malloc (Rust's System allocator for byte
        // vectors); the word before it is its chunk's size field.
        unsafe { (p as *const usize).sub(1).read() & 2 != 0 }
    }

    #[test]
    fn a_large_block_freed_does_not_move_the_next_ones_onto_the_heap() {
        // Other tests' threads leave large free chunks in the shared arenas, and glibc serves a
        // request from a free chunk that fits before it looks at the threshold: the check runs
        // in a process of its own, this test alone.
        const CHILD: &str = "VIGIL_MEMORY_TEST_CHILD";
        let name =
            "service::memory::tests::a_large_block_freed_does_not_move_the_next_ones_onto_the_heap";
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().expect("test binary");
            let out = std::process::Command::new(exe)
                .args(["--exact", name, "--test-threads", "1"])
                .env(CHILD, "1")
                .output()
                .expect("runs");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        assert!(super::pin_mmap_threshold());
        const SIZE: usize = 3 << 20;
        // glibc without the pin: freeing this raises the threshold to 3 MiB, and the next 3 MiB
        // block comes from the arena.
        let first = std::hint::black_box(vec![1u8; SIZE]);
        assert!(has_own_mapping(first.as_ptr()));
        drop(first);
        let next = std::hint::black_box(vec![2u8; SIZE]);
        assert!(
            has_own_mapping(next.as_ptr()),
            "a 3 MiB block after a freed one was not given a mapping of its own"
        );
        let small = std::hint::black_box(vec![3u8; 100]);
        assert!(!has_own_mapping(small.as_ptr()));
    }

    #[test]
    fn a_trim_after_a_burst_waits_a_second_after_the_last() {
        let gap = super::BURST_TRIM_GAP;
        assert!(super::burst_trim_due(0, 5, gap), "never trimmed");
        assert!(!super::burst_trim_due(1_000, 1_999, gap));
        assert!(super::burst_trim_due(1_000, 2_000, gap));
        // A clock read before the last trim's (another thread's) is not due.
        assert!(!super::burst_trim_due(3_000, 2_000, gap));
        // Right after a trim, a burst's trim is skipped.
        super::trim();
        assert!(!super::trim_after_burst());
    }

    #[test]
    fn the_heap_figures_count_a_block_held() {
        // Other tests allocate meanwhile: a block far larger than their churn, below the pinned
        // threshold (1 MiB) only if pinned; mapped or in use, it shows in one of the two.
        let before = super::heap_usage().expect("glibc");
        let block = std::hint::black_box(vec![7u8; 64 << 20]);
        let during = super::heap_usage().expect("glibc");
        let held = |u: super::HeapUsage| u.in_use + u.mapped;
        assert!(
            held(during) >= held(before) + (60 << 20),
            "a 64 MiB block held: {before:?} then {during:?}"
        );
        drop(block);
    }

    #[test]
    fn trimming_gives_freed_memory_back() {
        // Many small blocks on another thread's arena, all freed but one at the end.
        let before = std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 2_000]).collect();
            let keep = blocks.last().cloned();
            drop(blocks);
            let held = rss_anon_kib();
            super::trim();
            (held, rss_anon_kib(), keep.map(|k| k.len()))
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
