//! Projectors that fold the event log into operational read models.
//!
//! Filled by the projections issue; this crate exists so the workspace has
//! its final shape from the first commit.
