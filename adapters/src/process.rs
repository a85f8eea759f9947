//! The fulfillment process manager: the domain's policy run as a
//! checkpointed consumer.
//!
//! For each event of the log it calls `domain::policy::react` and executes
//! the commands through the command path, with the command ids the policy
//! derives from the event id (so a replay after a crash issues the same ids
//! and the log's idempotency records make it a no-op), the event's tenant
//! and correlation id. Commands for one stream run in event order; streams
//! run concurrently. The checkpoint moves only after every command of a
//! batch was executed or refused by a rule.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use domain::idempotency::CommandKey;
use domain::ids::Timestamp;
use domain::policy::{react, IssuedCommand, PolicyCommand, PolicyInput};
use domain::{HandoffDecider, OrderDecider, RuleViolation};
use eventlog::{ConsumerBatch, ConsumerStore, RecordedEvent};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::command::{CommandContext, CommandError, CommandPath};
use crate::events::decode_any;
use crate::metrics::Metrics;

/// The consumer's name (its checkpoint lives in `consumer/<name>`).
pub const NAME: &str = "fulfillment-process";

pub(crate) struct ProcessManager {
    pub(crate) path: CommandPath,
    pub(crate) store: ConsumerStore,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) batch_size: usize,
    pub(crate) concurrency: usize,
}

enum Executed {
    Done,
    Refused(&'static str),
    Infra(String),
}

fn classify<E: std::error::Error + RuleViolation + 'static>(
    result: Result<crate::command::CommandOutcome, CommandError<E>>,
) -> Executed {
    match result {
        Ok(_) => Executed::Done,
        Err(CommandError::Rejected { source }) => Executed::Refused(source.rule()),
        Err(CommandError::IdempotencyConflict { .. }) => Executed::Refused("idempotency_conflict"),
        Err(other) => Executed::Infra(other.to_string()),
    }
}

#[tracing::instrument(
    name = "policy_command",
    skip_all,
    fields(
        stream_id = %command.stream_id,
        action = %command.action,
        causation_event_id = context.causation_event_id.as_deref(),
        correlation_id = %context.correlation_id,
    )
)]
async fn execute_one(
    path: &CommandPath,
    command: &PolicyCommand,
    context: &CommandContext,
) -> Executed {
    match &command.command {
        IssuedCommand::Order(c) => classify(
            path.execute::<OrderDecider>(&command.stream_id, c, context)
                .await,
        ),
        IssuedCommand::Handoff(c) => classify(
            path.execute::<HandoffDecider>(&command.stream_id, c, context)
                .await,
        ),
    }
}

impl ProcessManager {
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut position = match self.store.checkpoint() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "process manager cannot read its checkpoint");
                return;
            }
        };
        let mut subscription = self.path.log().subscribe(position);
        loop {
            let batch = tokio::select! {
                _ = stop.changed() => break,
                batch = subscription.next_batch(self.batch_size) => batch,
            };
            let batch = match batch {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, position, "process manager read failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    subscription = self.path.log().subscribe(position);
                    continue;
                }
            };
            let Some(next) = batch.last().map(|r| r.position + 1) else {
                continue;
            };
            let groups = match self.commands_of(&batch) {
                Ok(groups) => groups,
                Err((at, message)) => {
                    tracing::error!(position = at, %message, "process manager stopped at an event it cannot decode");
                    let _ = self.store.record_failure(at, &message);
                    // Commit what precedes the poison event, then stop.
                    if at > position {
                        let _ = self.store.commit(ConsumerBatch::default(), at);
                    }
                    let _ = self.store.record_failure(at, &message);
                    return;
                }
            };
            if !self.execute_groups(groups, &stop).await {
                break;
            }
            if let Err(e) = self.store.commit(ConsumerBatch::default(), next) {
                tracing::error!(error = %e, "process manager cannot commit its checkpoint");
                tokio::time::sleep(Duration::from_millis(500)).await;
                subscription = self.path.log().subscribe(position);
                continue;
            }
            position = next;
        }
    }

    /// The policy's commands for a batch, grouped by target stream in event
    /// order.
    #[allow(clippy::type_complexity)]
    fn commands_of(
        &self,
        batch: &[RecordedEvent],
    ) -> Result<BTreeMap<String, Vec<(PolicyCommand, CommandContext)>>, (u64, String)> {
        let mut groups: BTreeMap<String, Vec<(PolicyCommand, CommandContext)>> = BTreeMap::new();
        for record in batch {
            let event = decode_any(record).map_err(|e| (record.position, e.to_string()))?;
            let Some(event) = event else {
                continue;
            };
            let event_id = record.event_id.to_string();
            let trigger = event.as_trigger();
            let input = PolicyInput {
                event_id: &event_id,
                stream_id: &record.stream_id,
                recorded_at: Timestamp(record.recorded_at_ms),
                event: trigger,
            };
            for command in react(&input) {
                let context = CommandContext::new(
                    CommandKey::reaction(event_id.clone(), command.action.clone()),
                    record.tenant_id.clone(),
                    record.correlation_id.clone(),
                )
                .caused_by_event(event_id.clone());
                groups
                    .entry(command.stream_id.clone())
                    .or_default()
                    .push((command, context));
            }
        }
        Ok(groups)
    }

    /// Runs each stream's commands in order, streams concurrently. False
    /// when stopped before every command ran.
    async fn execute_groups(
        &self,
        groups: BTreeMap<String, Vec<(PolicyCommand, CommandContext)>>,
        stop: &watch::Receiver<bool>,
    ) -> bool {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (_, commands) in groups {
            let path = self.path.clone();
            let metrics = self.metrics.clone();
            let semaphore = semaphore.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let Ok(_permit) = semaphore.acquire_owned().await else {
                    return false;
                };
                for (command, context) in &commands {
                    let mut backoff = 50u64;
                    loop {
                        match execute_one(&path, command, context).await {
                            Executed::Done => {
                                metrics.policy_commands.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Executed::Refused(rule) => {
                                metrics.policy_refusals.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(stream = command.stream_id.as_str(), rule, "policy command refused");
                                break;
                            }
                            Executed::Infra(message) => {
                                tracing::warn!(stream = command.stream_id.as_str(), %message, "policy command failed; retrying");
                                if *stop.borrow() {
                                    return false;
                                }
                                tokio::time::sleep(Duration::from_millis(backoff)).await;
                                backoff = (backoff * 2).min(5_000);
                            }
                        }
                    }
                }
                true
            });
        }
        let mut all = true;
        while let Some(done) = tasks.join_next().await {
            all &= done.unwrap_or(false);
        }
        all
    }
}
