//! The tool's allocator: mimalloc instead of glibc's malloc, as the server
//! (ADR 0016), and the lean settings every command runs with (ADR 0033,
//! ADR 0038).
//!
//! Walking a log allocates and frees every page sled reads (glibc's malloc
//! took a third of `verify`'s time). With mimalloc's defaults (large spans
//! backed by transparent huge pages, freed spans kept for its purge delay
//! before they go back to the system) that churn kept 60 to 100 MB more
//! resident than the walk holds. mimalloc reads its settings from the
//! environment once, when the process starts, so the tool runs itself
//! again with them set.
//!
//! The allocator lives here, in the library, so the `oms-replay` binary,
//! the benchmark and the tests all run with the same one.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;

/// The process's allocator (linked into every binary of this crate).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's lean settings: no transparent huge pages, freed memory
/// returned to the system at once. Every command runs with them (ADR
/// 0033, ADR 0037, ADR 0038): they cost `import` about a fifth of its speed
/// and a rebuild about 8 %, and keep each within its memory target.
pub const LEAN_SETTINGS: [(&str, &str); 2] =
    [("MIMALLOC_ALLOW_THP", "0"), ("MIMALLOC_PURGE_DELAY", "0")];

/// Makes sure this process runs with [`LEAN_SETTINGS`]: when one is not
/// in the environment, replaces the process with the same command line
/// with the missing ones added (a value the operator set is kept). Returns
/// when they are all set, or when the process could not be started again
/// (the command then runs with mimalloc's defaults, only holding more).
pub fn run_with_lean_settings() {
    let missing: Vec<_> = LEAN_SETTINGS
        .iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _not_started = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(
            missing
                .iter()
                .map(|(name, value)| (OsStr::new(name), OsStr::new(value))),
        )
        .exec();
}
