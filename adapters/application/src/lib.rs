//! The write-side application layer between the pure domain and everything
//! that issues commands or reacts to events.
//!
//! - [`command`]: the one command path (load, decide, append, retry) that
//!   the API, the process manager, the dispatcher, the callback inbox and
//!   reconciliation all use.
//! - [`events`]: the log's record handed to the domain's one decode.
//! - [`expiry`]: durable quote-expiry timers and the ticker that expires
//!   quotes whose validity ended.
//! - [`process`]: the policy runner: the domain's fulfillment policy run as
//!   a checkpointed consumer.
//! - [`clock`]: time at the edge (the domain never reads a clock).
//! - [`metrics`]: the helpers every scrape-time owner writes its Prometheus
//!   families with.
//! - [`testing`]: drive a sample quote to acceptance, for tests and demos.
//!
//! May depend on `domain` and `eventlog` only (and no crate of the
//! platform depends the other way).
#![forbid(unsafe_code)]

pub mod clock;
pub mod command;
pub mod consumer;
pub mod events;
pub mod expiry;
pub mod metrics;
pub mod process;
pub mod state_cache;
mod stream_turns;
pub mod testing;

pub use command::{CommandContext, CommandError, CommandOutcome, CommandPath};
