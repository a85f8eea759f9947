//! The decider contract every aggregate implements, and the fold that rebuilds state.
//!
//! A decider is two pure functions and a value: `decide` turns a command and the
//! current state into events (or a typed refusal), `evolve` applies one event to a
//! state, and `initial` is the state before the first event. Nothing here reads a
//! clock, draws a random number or touches storage: time, ids and external facts
//! arrive inside the command, so replaying the same events always yields the same
//! state.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

use crate::events::AnyEvent;

/// An aggregate written as a decider: `decide` holds every business rule and `evolve`
/// only applies facts that `decide` already accepted.
pub trait Decider {
    /// The state folded from the aggregate's events; a lifecycle enum.
    /// Plain data, so the command path may keep it in its cache.
    type State: Clone + Debug + PartialEq + Send + Sync + 'static;
    /// What a caller asks the aggregate to do, carrying time, ids and external facts.
    type Command;
    /// A fact the aggregate recorded; persisted, so its encoding is a contract.
    /// Read back through the one decode (`crate::events::decode`, which
    /// upcasts older versions), then narrowed from [`AnyEvent`].
    type Event: Clone
        + Debug
        + PartialEq
        + Serialize
        + DeserializeOwned
        + DomainEvent
        + TryFrom<AnyEvent, Error = AnyEvent>;
    /// The refusal: one variant per business rule.
    type Error: std::error::Error + Clone + PartialEq + RuleViolation;

    /// The state of a stream that has no events yet.
    fn initial() -> Self::State;

    /// Decides what happens when `command` meets `state`.
    ///
    /// # Errors
    /// Returns the rule that refused the command; no event is produced then.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one accepted event. Never refuses: an event is a fact that happened.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// True when the aggregate has reached the end of its lifecycle.
    fn is_terminal(state: &Self::State) -> bool;
}

/// Metadata every persisted domain event reports about itself, for the log envelope.
pub trait DomainEvent {
    /// A stable, past-tense name such as `"QuoteCreated"`; never renamed.
    fn event_type(&self) -> &'static str;
    /// The payload schema version, bumped (with an upcaster) when the shape changes.
    fn schema_version(&self) -> u16;
}

/// The business rule that a domain error stands for.
pub trait RuleViolation {
    /// A stable snake_case rule name such as `"price_stale"`, safe to expose in APIs.
    fn rule(&self) -> &'static str;
}

/// Rebuilds a state by applying `events` in order to `D::initial()`.
pub fn fold<'a, D, I>(events: I) -> D::State
where
    D: Decider,
    D::Event: 'a,
    I: IntoIterator<Item = &'a D::Event>,
{
    events.into_iter().fold(D::initial(), D::evolve)
}

/// The events an accepted command produced and the state they lead to.
pub struct Decision<D: Decider> {
    /// The events to append, in order.
    pub events: Vec<D::Event>,
    /// The state after applying them.
    pub state: D::State,
}

/// Decides `command` against `state` and evolves the result: the usual step of a
/// command handler once the stream is folded.
///
/// # Errors
/// Returns the decider's refusal unchanged.
pub fn run<D: Decider>(state: D::State, command: &D::Command) -> Result<Decision<D>, D::Error> {
    let events = D::decide(&state, command)?;
    let state = events.iter().fold(state, D::evolve);
    Ok(Decision { events, state })
}
