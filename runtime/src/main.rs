//! The `vigil` binary.

fn main() -> std::process::ExitCode {
    // Before any thread starts: threads made later share the capped arenas.
    vigil::service::memory::limit_arenas();
    vigil::cli::main()
}
