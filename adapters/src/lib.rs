//! The write side around the pure domain and everything that talks to
//! external systems.
//!
//! - [`command`]: the one command path (load, decide, append, retry) that
//!   the API, the process manager, the dispatcher, the callback inbox and
//!   reconciliation all use.
//! - [`config`]: the per-tenant table of external systems (configuration,
//!   not code).
//! - [`external`]: anti-corruption layers for inventory, provisioning and
//!   billing (port, request mapper, HTTP client, response and error mapper,
//!   evidence); [`crm`] for the synchronous customer lookup.
//! - [`fulfillment`]: the running process: the policy consumer, the
//!   dispatcher, the handoff index, parked callbacks and reconciliation.
//! - [`callbacks`]: signed callbacks, the inbox, the axum router.
//! - [`reconciliation`]: status queries that repair UNKNOWN and stuck
//!   handoffs through domain commands.
//! - [`simulators`]: in-process simulators of every external system.
//! - [`relay`]: the checkpointed JetStream relay of committed events.
//!
//! External names (status words, vendor codes, field names) never leave
//! the `external` modules and the simulators: everything else sees only
//! the domain's [`domain::outcome::OutcomeClass`].
#![forbid(unsafe_code)]

pub mod callbacks;
pub mod clock;
pub mod command;
pub mod config;
pub mod crm;
pub mod dispatcher;
mod events;
pub mod evidence;
pub mod external;
pub mod fulfillment;
pub mod metrics;
pub mod process;
pub mod reconciliation;
pub mod relay;
pub mod signing;
pub mod simulators;
pub mod testing;

pub use callbacks::{CallbackInbox, CallbackReceipt, CallbackRejection};
pub use command::{CommandContext, CommandError, CommandOutcome, CommandPath};
pub use config::{SystemConfig, SystemsConfig};
pub use crm::{CrmError, CustomerDirectory, HttpCustomerDirectory};
pub use fulfillment::{Fulfillment, FulfillmentOptions, FulfillmentStatus};
pub use reconciliation::ReconciliationReport;
pub use relay::{PublishMode, Relay, RelayConfig, RelayError, RelayStatus};
pub use simulators::{SimulatorOptions, Simulators};
