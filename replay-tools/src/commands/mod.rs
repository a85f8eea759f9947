//! One module per subcommand: its arguments, its library entry point (for
//! tests and the benchmark) and its `run`, which prints text or JSON.

pub mod as_of;
pub mod consumers;
pub mod dump;
pub mod export;
pub mod import;
pub mod rebuild;
pub mod reset_consumer;
pub mod stats;
pub mod trace;
pub mod verify;
