//! The pure model of the CPQ/OMS platform: quote, order and handoff deciders, the
//! fulfillment policy, the outcome taxonomy, idempotency keys and money.
//!
//! Each aggregate implements [`Decider`]: `decide(&state, &command)` returns events or
//! a typed refusal naming one rule, and `evolve(state, &event)` folds them. Nothing in
//! this crate does I/O, reads a clock or draws a random number: time, ids and
//! external facts arrive inside commands, so a replay always produces the same state.
//!
//! - [`quote`]: configure, price, approve, propose, sign, accept (stream `quote-<id>`).
//! - [`order`]: reservation, then provisioning, then billing per line, with fallout
//!   and compensation (stream `order-<id>`).
//! - [`handoff`]: one external request with its business idempotency key, UNKNOWN
//!   and reconciliation (stream `handoff-<id>`).
//! - [`outcome`]: the normalized taxonomy every external answer is mapped to.
//! - [`policy`]: `react(event) -> commands`, deterministic ids included.
//! - [`events`]: the one decode of a stored event into [`events::AnyEvent`], and
//!   [`ids::StreamRef`], the typed stream name.
//! - [`upcast`]: the current schema version of every event type and the upcaster
//!   chains that read older ones.
//! - [`testing`]: the given/when/then harness.
//!
//! Event enums are persisted with bincode, which encodes variant indexes: they are
//! append-only, and `tests/golden.rs` fails when an old encoding no longer decodes.
//! A shape change bumps the type's version and keeps the old shape frozen for its
//! upcaster (`docs/adr/0013-upcasting.md`; `tests/upcast.rs`).
//!
//! ```
//! use domain::decider::Decider;
//! use domain::handoff::{HandoffCommand, HandoffDecider, HandoffState, HandoffSubject, RequestSnapshot};
//! use domain::idempotency::{Purpose, TargetSystem};
//! use domain::ids::{LineId, OrderId, TenantId, Timestamp};
//!
//! let subject = HandoffSubject {
//!     tenant_id: TenantId::new("t1"),
//!     order_id: OrderId::new("o1"),
//!     line_id: LineId::new("l1"),
//!     target: TargetSystem::Inventory,
//!     purpose: Purpose::Reserve,
//!     attempt: 1,
//! };
//! let request = HandoffCommand::Request { subject, request: RequestSnapshot::default(), at: Timestamp(0) };
//! let events = HandoffDecider::decide(&HandoffState::Empty, &request)?;
//! let state = domain::decider::fold::<HandoffDecider, _>(&events);
//! assert!(matches!(state, HandoffState::Open(ref h) if h.idempotency_key == "t1:o1:l1:inventory:reserve:1"));
//! # Ok::<(), domain::handoff::HandoffError>(())
//! ```

#![forbid(unsafe_code)]

pub mod capability;
pub mod catalog;
pub mod confirmation;
pub mod consumers;
pub mod decider;
pub mod events;
pub mod handoff;
pub mod idempotency;
pub mod ids;
pub mod integration;
pub mod money;
pub mod names;
pub mod notification;
pub mod order;
pub mod outcome;
pub mod policy;
pub mod quote;
pub mod testing;
pub mod text;
pub mod upcast;

pub use catalog::CatalogDecider;
pub use decider::{fold, run, Decider, Decision, DomainEvent, RuleViolation};
pub use handoff::HandoffDecider;
pub use order::OrderDecider;
pub use quote::QuoteDecider;
