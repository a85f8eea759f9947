//! The external-systems integration tests: one binary, one module per area.
//!
//! - `contract`: every external status and error code to its outcome, and
//!   the request mapping, per system;
//! - `flow`: the seeds' integration test table, end to end through the
//!   simulators and the fulfillment process;
//! - `callbacks`: signatures, timestamps, the inbox, parking, tenants.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    unreachable_pub,
    dead_code
)]

mod callbacks;
mod contract;
mod document;
mod flow;
mod harness;
mod notification;
