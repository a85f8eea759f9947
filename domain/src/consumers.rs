//! The names of the platform's consumers that make external calls.
//!
//! Their checkpoints live in the log under these names. A tool that
//! restores a log (`oms-replay import`) guards them so that the restored
//! history is not sent to the target systems again; it checks the names it
//! is given against [`SIDE_EFFECT_CONSUMERS`], so a mistyped name is
//! refused rather than leaving the real consumer unguarded.

/// The handoff dispatcher: it calls the target systems.
pub const HANDOFF_DISPATCHER: &str = "handoff-dispatcher";

/// Every consumer of the platform that makes external calls.
pub const SIDE_EFFECT_CONSUMERS: [&str; 1] = [HANDOFF_DISPATCHER];
