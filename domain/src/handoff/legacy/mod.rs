//! Frozen payload shapes of handoff events at schema versions this build no
//! longer writes, one module per version, each read only by its upcaster
//! (see [`crate::upcast`] and `docs/adr/0013-upcasting.md`).
//!
//! Nothing in these modules may ever change: stored payloads were written in
//! these shapes and stay in the log for good. The committed golden bytes of
//! each version (`domain/tests/golden/`) fail when a shape drifts.

pub mod v1;
