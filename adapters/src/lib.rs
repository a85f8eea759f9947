//! The write side around the pure domain: the one command path that every
//! caller (the API, the fulfillment process, the dispatcher) uses to load a
//! stream, decide and append.
//!
//! The external-system adapters, dispatcher, callback inbox, reconciliation
//! and simulators are filled by the adapters issue.
#![forbid(unsafe_code)]

pub mod command;

pub use command::{CommandContext, CommandError, CommandOutcome, CommandPath};
