//! `oms-replay`: the audit and incident-recovery CLI. All logic lives in the
//! `replay_tools` library; see `oms-replay --help`.

/// mimalloc instead of glibc's malloc, as the server (ADR 0016): walking a
/// log allocates and frees every page sled reads, and glibc's malloc took a
/// third of `verify`'s time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    replay_tools::cli::main()
}
