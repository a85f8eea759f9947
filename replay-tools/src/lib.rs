//! Replay tooling for audit and incident recovery.
//!
//! Filled by the replay tooling issue.
