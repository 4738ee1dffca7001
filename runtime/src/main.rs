//! The `vigil` binary.

/// With the `jemalloc` feature, jemalloc allocates the binary's (Rust) memory; C libraries keep
/// the system's allocator. Tune it with `_RJEM_MALLOC_CONF`.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // Before any thread starts: threads made later share the capped arenas.
    vigil::service::memory::limit_arenas();
    vigil::cli::main()
}
