//! End-to-end tests of `oms-replay`: each subcommand runs as the real
//! binary on a log generated through the real command path.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "../support/gen.rs"]
mod gen;

mod common;

mod allocator;
mod as_of;
mod consumers;
mod damage;
mod dump;
mod export_import;
mod locked;
mod rebuild;
mod refusals;
mod reset_consumer;
mod stats;
mod trace;
mod upcast;
mod verify;
