//! Live subscriptions over WebSocket: the event stream of the caller's
//! tenant (filtered by stream prefix and event type) and fallout changes.

use async_graphql::{Context, Subscription as GqlSubscription};
use futures_util::stream::{self, Stream, StreamExt};

/// How long a fallout change waits for the read models to include it.
const PROJECTED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

use super::error::{ApiError, ApiResult};
use super::types::EventNode;
use super::{caller, input};
use crate::auth::Role;

/// The subscription root.
pub struct Subscription;

/// Most event types one subscription may filter on.
pub const MAX_EVENT_TYPES: usize = 64;

#[GqlSubscription]
impl Subscription {
    /// Every event appended from now on to the caller's tenant, optionally
    /// only streams starting with `streamPrefix` and only `eventTypes` (1
    /// to 64 event types, each one an event has, e.g. `QuoteAccepted`;
    /// leave it out for every type). With `after` (the position of the last event the client received),
    /// every event after it first, stored ones then live ones, with no gap
    /// and no duplicate: how a client resumes after a reconnect (the
    /// server closes subscriptions with 1012 when it stops). With `from`
    /// instead, every event from that position on (`0`: the whole log),
    /// for a client that has received nothing yet.
    async fn events(
        &self,
        ctx: &Context<'_>,
        stream_prefix: Option<String>,
        event_types: Option<Vec<String>>,
        after: Option<i64>,
        from: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = EventNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "subscribe")?;
        let from = start(
            platform,
            input::optional_count("after", after)?,
            input::optional_count("from", from)?,
        )?;
        if let Some(prefix) = &stream_prefix {
            input::label("streamPrefix", prefix, input::MAX_LABEL_BYTES)?;
            domain::ids::validate_stream_prefix(prefix)
                .map_err(|e| ApiError::validation("streamPrefix", e.to_string()))?;
        }
        if let Some(types) = &event_types {
            if types.is_empty() {
                return Err(ApiError::validation(
                    "eventTypes",
                    "name at least one event type, or leave eventTypes out for every type",
                )
                .into());
            }
            if types.len() > MAX_EVENT_TYPES {
                return Err(ApiError::validation(
                    "eventTypes",
                    format!("at most {MAX_EVENT_TYPES} event types"),
                )
                .into());
            }
            for event_type in types {
                input::label("eventTypes", event_type, input::MAX_LABEL_BYTES)?;
                domain::events::check_event_type(event_type).map_err(|e| {
                    ApiError::validation("eventTypes", format!("`{event_type}` is {e}"))
                })?;
            }
        }
        let tenant = principal.tenant.to_string();
        let subscription = platform.log.subscribe(from);
        Ok(live(subscription, move |event| {
            event.tenant_id == tenant
                && stream_prefix
                    .as_deref()
                    .is_none_or(|prefix| event.stream_id.starts_with(prefix))
                && event_types
                    .as_ref()
                    .is_none_or(|types| types.contains(&event.event_type))
        }))
    }

    /// Every event that opens, changes or closes a fallout case (on a
    /// line or on a handoff, a resolution, a line's or an order's
    /// cancellation), for the caller's tenant, from now on (with `after` or `from`, the changes
    /// since first, as `events` resumes). Each change is sent once the
    /// read models include it (or after a few seconds at most), so a
    /// queue re-read on a change shows it.
    async fn fallout_changes(
        &self,
        ctx: &Context<'_>,
        after: Option<i64>,
        from: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = EventNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "subscribe")?;
        let from = start(
            platform,
            input::optional_count("after", after)?,
            input::optional_count("from", from)?,
        )?;
        let tenant = principal.tenant.to_string();
        let subscription = platform.log.subscribe(from);
        let projections = platform.projections.clone();
        let changes = live(subscription, move |event| {
            event.tenant_id == tenant
                && projections::models::fallout::CASE_EVENT_TYPES
                    .contains(&event.event_type.as_str())
        });
        Ok(changes.then(move |change| {
            let projections = projections.clone();
            async move {
                // Never an error: a late read model only delays the change.
                let _ = projections
                    .wait_for_async(change.position + 1, PROJECTED_WAIT)
                    .await;
                change
            }
        }))
    }
}

/// The first position a subscription delivers: the one after `after`,
/// `from`, or the head (from now on).
///
/// # Errors
/// `VALIDATION` when both are given, or either names a position past the
/// log.
fn start(
    platform: &crate::platform::Platform,
    after: Option<u64>,
    from: Option<u64>,
) -> ApiResult<u64> {
    let head = platform.log.next_position();
    match (after, from) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "from",
            "give `after` (the last position received) or `from` (the first to deliver), not both",
        )),
        (Some(after), None) if after < head => Ok(after + 1),
        (Some(after), None) => Err(ApiError::validation(
            "after",
            format!("position {after} is past the log's last position; resume with the last position received"),
        )),
        (None, Some(from)) if from <= head => Ok(from),
        (None, Some(from)) => Err(ApiError::validation(
            "from",
            format!("position {from} is past the log's next position {head}"),
        )),
        (None, None) => Ok(head),
    }
}

/// Turns a log subscription into a stream of the events `keep` admits; it
/// ends when the log closes or fails.
fn live(
    subscription: eventlog::Subscription,
    keep: impl Fn(&eventlog::RecordedEvent) -> bool + Send + Sync + 'static,
) -> impl Stream<Item = EventNode> {
    stream::unfold(
        (subscription, keep, Vec::<EventNode>::new()),
        |(mut subscription, keep, mut pending)| async move {
            loop {
                if let Some(next) = pending.pop() {
                    return Some((next, (subscription, keep, pending)));
                }
                let batch = subscription.next_batch(256).await.ok()?;
                if batch.is_empty() {
                    return None;
                }
                pending = batch
                    .iter()
                    .filter(|e| keep(e))
                    .map(EventNode::from)
                    .collect();
                pending.reverse();
            }
        },
    )
}
