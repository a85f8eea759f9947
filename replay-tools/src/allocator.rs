//! The tool's allocator: mimalloc instead of glibc's malloc, as the server
//! (ADR 0016), built without transparent huge pages (ADR 0033).
//!
//! Walking a log allocates and frees every page sled reads (glibc's malloc
//! took a third of `verify`'s time). With huge pages allowed, mimalloc
//! backs large spans with 2 MiB pages that stay resident while any part is
//! in use, and that churn kept about 35 MB more resident than the walk
//! holds. The allocator lives here, in the library, so the `oms-replay`
//! binary, the benchmark and the tests all run with the same one.

/// The process's allocator (linked into every binary of this crate).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
