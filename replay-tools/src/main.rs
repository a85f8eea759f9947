//! `oms-replay`: the audit and incident-recovery CLI. All logic lives in the
//! `replay_tools` library (its allocator too); see `oms-replay --help`.

fn main() -> std::process::ExitCode {
    replay_tools::cli::main()
}
