//! Typed operations views: the dashboard, the projectors and the
//! consumers of the log (the fulfillment process's and the relay).

use async_graphql::SimpleObject;

use super::enums::{HandoffStatus, OutcomeClass, TargetSystem};
use super::scalars::DateTime;
use crate::auth::Principal;

/// Handoffs of one target system by outcome class.
#[derive(SimpleObject, Clone, Debug)]
pub struct OutcomeCount {
    /// The normalized outcome class.
    pub class: OutcomeClass,
    /// How many observations had it.
    pub count: u64,
}

/// Handoffs of one target system in one status.
#[derive(SimpleObject, Clone, Debug)]
pub struct StatusCount {
    /// The handoff status.
    pub status: HandoffStatus,
    /// How many handoffs are in it.
    pub count: u64,
}

/// One target system's figures.
#[derive(SimpleObject, Clone, Debug)]
pub struct TargetDashboard {
    /// The external system.
    pub target: TargetSystem,
    /// Observations by outcome class.
    pub outcomes: Vec<OutcomeCount>,
    /// Handoffs by status.
    pub statuses: Vec<StatusCount>,
    /// Handoffs waiting for an outcome.
    pub pending: u64,
    /// Handoffs whose outcome is unknown.
    pub unknown: u64,
}

/// Fallout cases opened and resolved in one hour.
#[derive(SimpleObject, Clone, Debug)]
pub struct HourlyFallout {
    /// The start of the hour.
    pub hour_start: DateTime,
    /// Cases opened in it.
    pub opened: u64,
    /// Cases resolved in it.
    pub resolved: u64,
}

/// The operations dashboard of the caller's tenant.
#[derive(SimpleObject, Clone, Debug)]
pub struct Dashboard {
    /// When it was computed.
    pub now: DateTime,
    /// Figures per target system.
    pub targets: Vec<TargetDashboard>,
    /// Handoffs waiting for an outcome, all systems.
    pub pending: u64,
    /// Handoffs whose outcome is unknown, all systems.
    pub unknown: u64,
    /// Age of the oldest pending handoff, in milliseconds.
    pub oldest_pending_age_ms: Option<i64>,
    /// The oldest pending handoff.
    pub oldest_pending_handoff_id: Option<String>,
    /// Open fallout cases.
    pub open_fallout: u64,
    /// Fallout opened and resolved per hour, oldest first.
    pub fallout_by_hour: Vec<HourlyFallout>,
}

impl From<projections::Dashboard> for Dashboard {
    fn from(view: projections::Dashboard) -> Self {
        Self {
            now: DateTime::from_ms(view.now_ms),
            targets: view
                .targets
                .into_iter()
                .map(|t| TargetDashboard {
                    target: t.target.into(),
                    outcomes: t
                        .outcomes
                        .into_iter()
                        .map(|o| OutcomeCount {
                            class: o.class.into(),
                            count: o.count,
                        })
                        .collect(),
                    statuses: t
                        .stages
                        .into_iter()
                        .map(|s| StatusCount {
                            status: s.stage.into(),
                            count: s.count,
                        })
                        .collect(),
                    pending: t.pending,
                    unknown: t.unknown,
                })
                .collect(),
            pending: view.pending,
            unknown: view.unknown,
            oldest_pending_age_ms: view.oldest_pending_age_ms,
            oldest_pending_handoff_id: view.oldest_pending_handoff.map(|h| h.to_string()),
            open_fallout: view.open_fallout,
            fallout_by_hour: view
                .fallout_by_hour
                .into_iter()
                .map(|h| HourlyFallout {
                    hour_start: DateTime::from_ms(h.hour_start_ms),
                    opened: h.opened,
                    resolved: h.resolved,
                })
                .collect(),
        }
    }
}

/// Where a consumer of the log stands.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "application::consumer::ConsumerState")]
pub enum ConsumerState {
    /// Not started yet.
    Starting,
    /// Reading and handling events.
    Running,
    /// Replaying below a recovery bound: no side effects there.
    Recovering,
    /// Waiting out a backoff after a failure.
    Retrying,
    /// Stopped at an event it cannot handle (see `failure`).
    Poisoned,
    /// Shut down, or the log closed.
    Stopped,
}

/// One consumer of the log (the fulfillment process's).
#[derive(SimpleObject, Clone, Debug)]
pub struct ConsumerStatus {
    /// The consumer's name.
    pub name: String,
    /// Where it stands.
    pub state: ConsumerState,
    /// The next position it will handle.
    pub checkpoint: u64,
    /// The log's next position.
    pub head: u64,
    /// Events behind the head.
    pub lag: u64,
    /// Jobs spawned and not finished.
    pub in_flight: u64,
    /// Sessions restarted after a failure since the server started.
    pub retries: u64,
    /// The last failure it retried after (its cause for a caller of every
    /// tenant only).
    pub last_error: Option<String>,
    /// Where it stopped, if it did, and why for a caller of every tenant.
    pub failure: Option<String>,
    /// The recovery bound, for a side-effect consumer being replayed.
    pub recovery_until: Option<u64>,
    /// External calls suppressed during recovery so far.
    pub suppressed: u64,
}

impl ConsumerStatus {
    /// The status as `principal` reads it: the failure and last error
    /// through [`crate::graphql::stopped_at`] and
    /// [`crate::graphql::retried_after`].
    pub fn seen_by(s: application::consumer::ConsumerStatus, principal: &Principal) -> Self {
        Self {
            name: s.name,
            state: s.state.into(),
            checkpoint: s.checkpoint,
            head: s.head,
            lag: s.lag,
            in_flight: s.in_flight,
            retries: s.retries,
            last_error: crate::graphql::retried_after(principal, s.last_error),
            failure: s
                .failure
                .map(|f| crate::graphql::stopped_at(principal, f.position, &f.message)),
            recovery_until: s.recovery_until,
            suppressed: s.suppressed,
        }
    }
}

/// The JetStream relay.
#[derive(SimpleObject, Clone, Debug)]
pub struct RelayStatus {
    /// Its consumer name.
    pub name: String,
    /// Committed checkpoint: every event below it is in JetStream.
    pub checkpoint: u64,
    /// The log's next position.
    pub head: u64,
    /// Events not yet known to be in JetStream.
    pub lag: u64,
    /// Events published and acknowledged since the start.
    pub published: u64,
    /// Publishes the stream's duplicate window dropped.
    pub duplicates: u64,
    /// Events not published (tenant mode or recovery bound).
    pub skipped: u64,
    /// Whether NATS is connected.
    pub connected: bool,
    /// The last error, cleared by the next acknowledgement (its cause for
    /// a caller of every tenant only).
    pub last_error: Option<String>,
    /// The position it stopped at because its event cannot be relayed.
    pub stopped_at: Option<u64>,
}

impl RelayStatus {
    /// The status as `principal` reads it: the last error through
    /// [`crate::graphql::retried_after`].
    pub fn seen_by(s: relay::RelayStatus, principal: &Principal) -> Self {
        Self {
            name: s.name,
            checkpoint: s.checkpoint,
            head: s.head,
            lag: s.lag,
            published: s.published,
            duplicates: s.duplicates,
            skipped: s.skipped,
            connected: s.connected,
            last_error: crate::graphql::retried_after(principal, s.last_error),
            stopped_at: s.stopped_at,
        }
    }
}

/// Every consumer of the log.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct Consumers {
    /// The fulfillment process's consumers (empty while it is stopped).
    pub fulfillment: Vec<ConsumerStatus>,
    /// Parked callbacks waiting for their handoff: the whole server's to a
    /// caller of every tenant, the caller's tenant's to anyone else.
    pub parked_callbacks: u64,
    /// False while the fulfillment process is stopped (during a reset).
    pub running: bool,
    /// The relay, when enabled.
    pub relay: Option<RelayStatus>,
}
