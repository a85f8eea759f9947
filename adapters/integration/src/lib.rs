//! The external systems around the pure domain: everything that talks to
//! inventory, provisioning, billing and CRM, and the running fulfillment
//! process that drives them.
//!
//! - [`config`]: the per-tenant table of external systems (configuration,
//!   not code).
//! - [`external`]: anti-corruption layers for inventory, provisioning and
//!   billing (port, request mapper, HTTP client, response and error mapper,
//!   evidence); [`crm`] for the synchronous customer lookup.
//! - [`dispatcher`]: each handoff request becomes exactly one external call.
//! - [`callbacks`]: signed callbacks, the inbox, parking, the axum router.
//! - [`reconciliation`]: status queries that repair UNKNOWN and stuck
//!   handoffs through domain commands.
//! - [`fulfillment`]: the running process: the policy runner, the
//!   dispatcher, the handoff index, parked callbacks and reconciliation.
//!
//! Commands go through `application`'s command path; this crate depends on
//! `domain`, `eventlog` and `application`, never on the server, the
//! simulators or the relay. External names (status words, vendor codes,
//! field names) never leave the `external` modules and the simulators:
//! everything else sees only the domain's [`domain::outcome::OutcomeClass`].
#![forbid(unsafe_code)]

pub mod callbacks;
pub mod config;
pub mod crm;
pub mod dispatcher;
pub mod document;
pub mod evidence;
pub mod external;
pub mod fulfillment;
pub mod metrics;
pub mod reconciliation;
pub mod signing;

pub use callbacks::{CallbackInbox, CallbackReceipt, CallbackRejection};
pub use config::{SystemConfig, SystemsConfig};
pub use crm::{CrmError, CustomerAccount, CustomerDirectory, HttpCustomerDirectory};
pub use document::{DocumentError, DocumentGenerator, GeneratedDocument, HttpDocumentGenerator};
pub use fulfillment::{Fulfillment, FulfillmentOptions, FulfillmentStatus};
pub use reconciliation::ReconciliationReport;
