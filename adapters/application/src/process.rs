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
//!
//! A command that keeps failing is never retried out of sight: after
//! [`ATTEMPTS_PER_SESSION`] failed attempts the batch halts with
//! [`Halt::Retry`], so the consumer's status shows the retry and its cause
//! (and the session starts again from the checkpoint: every command id is
//! derived, so what already ran is deduplicated). A command that can never
//! succeed (the log refuses its events as invalid, or a stored event of
//! its stream does not decode) stops the process at the event that issued
//! it ([`Halt::Poison`]), with the cause.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::capability::Capabilities;
use domain::idempotency::CommandKey;
use domain::ids::Timestamp;
use domain::policy::{react, IssuedCommand, PolicyCommand, PolicyInput};
use domain::{HandoffDecider, OrderDecider, RuleViolation};
use eventlog::{ConsumerBatch, RecordedEvent};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::command::{CommandContext, CommandError, CommandPath};
use crate::consumer::{self, Consumer, ConsumerOptions, ConsumerProbe, Halt, Session};
use crate::events::decode_any;

/// The consumer's name (its checkpoint lives in `consumer/<name>`).
pub const NAME: &str = "fulfillment-process";

/// The policy runner's counters, read by the server's `/metrics`.
#[derive(Debug, Default)]
pub struct PolicyCounters {
    /// Commands the process manager executed.
    pub commands: AtomicU64,
    /// Commands of the process manager that a rule refused.
    pub refusals: AtomicU64,
}

/// The process manager: runs the domain's policy over the log as the
/// checkpointed consumer [`NAME`].
pub struct ProcessManager {
    /// The command path the policy's commands run through.
    pub path: CommandPath,
    /// Where executed and refused commands are counted.
    pub counters: Arc<PolicyCounters>,
    /// Events read per batch.
    pub batch_size: usize,
    /// Streams whose commands run at once.
    pub concurrency: usize,
    /// Each tenant's capabilities now, which the policy decides with.
    pub capabilities: CapabilitySource,
}

/// A tenant's capabilities by tenant id (the systems table's registry).
pub type CapabilitySource = Arc<dyn Fn(&str) -> Capabilities + Send + Sync>;

/// Failed attempts at one command before its batch halts for a retry.
pub const ATTEMPTS_PER_SESSION: u32 = 5;

/// A policy command with what it runs as and the position of the event
/// that issued it.
struct Issued {
    command: PolicyCommand,
    context: CommandContext,
    position: u64,
}

/// Policy commands by target stream, in event order.
type Groups = BTreeMap<String, Vec<Issued>>;

enum Executed {
    Done,
    Refused(&'static str),
    /// It may succeed later (storage, contention).
    Infra(String),
    /// It never will: the same command fails the same way.
    Invalid(String),
}

/// How a stream's commands ended.
enum GroupEnd {
    Done,
    Stopped,
    /// A command failed [`ATTEMPTS_PER_SESSION`] times.
    GaveUp(String),
    /// A command issued by the event at `position` can never succeed.
    Invalid {
        position: u64,
        message: String,
    },
}

fn classify<E: std::error::Error + RuleViolation + 'static>(
    result: Result<crate::command::CommandOutcome, CommandError<E>>,
) -> Executed {
    match result {
        Ok(_) => Executed::Done,
        Err(CommandError::Rejected { source }) => Executed::Refused(source.rule()),
        Err(CommandError::IdempotencyConflict { .. }) => Executed::Refused("idempotency_conflict"),
        Err(
            e @ (CommandError::Append(eventlog::AppendError::Invalid(_))
            | CommandError::Corrupt { .. }),
        ) => Executed::Invalid(e.to_string()),
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

impl Consumer for ProcessManager {
    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        let (groups, mut poison) = self.commands_of(&batch);
        let mut gave_up = None;
        for end in self.execute_groups(groups, &session.stop_signal()).await {
            match end {
                GroupEnd::Done => {}
                GroupEnd::Stopped => return Err(Halt::Stopped),
                GroupEnd::GaveUp(message) => gave_up = Some(message),
                GroupEnd::Invalid { position, message } => {
                    if poison.as_ref().is_none_or(|(at, _)| position < *at) {
                        poison = Some((position, format!("a command it issued: {message}")));
                    }
                }
            }
        }
        if let Some(message) = gave_up {
            return Err(Halt::Retry(message));
        }
        match poison {
            // Every command of the events before the poison ran.
            Some((position, message)) => Err(Halt::Poison {
                position,
                message,
                rows: ConsumerBatch::default(),
            }),
            None => Ok(ConsumerBatch::default()),
        }
    }
}

impl ProcessManager {
    /// Runs until `stop` turns true or the log closes, on the one consumer
    /// loop ([`crate::consumer::run`]).
    pub async fn run(self, probe: ConsumerProbe, stop: watch::Receiver<bool>) {
        let options = ConsumerOptions {
            batch_size: self.batch_size,
            ..ConsumerOptions::default()
        };
        let log = self.path.log().clone();
        consumer::run(log, probe, self, options, stop).await;
    }

    /// The policy's commands for a batch, grouped by target stream in event
    /// order.
    /// Stops at the first event that does not decode: its position and the
    /// error come back with the commands of the events before it.
    fn commands_of(&self, batch: &[RecordedEvent]) -> (Groups, Option<(u64, String)>) {
        let mut groups = Groups::new();
        // One lookup per tenant per batch.
        let mut by_tenant: std::collections::HashMap<String, Capabilities> =
            std::collections::HashMap::new();
        for record in batch {
            let event = match decode_any(record) {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(e) => return (groups, Some((record.position, e.to_string()))),
            };
            let event_id = record.event_id.to_string();
            let trigger = event.as_trigger();
            let input = PolicyInput {
                event_id: &event_id,
                stream_id: &record.stream_id,
                recorded_at: Timestamp(record.recorded_at_ms),
                event: trigger,
                capabilities: by_tenant
                    .entry(record.tenant_id.clone())
                    .or_insert_with(|| (self.capabilities)(&record.tenant_id)),
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
                    .push(Issued {
                        command,
                        context,
                        position: record.position,
                    });
            }
        }
        (groups, None)
    }

    /// Runs each stream's commands in order, streams concurrently, and
    /// answers how each stream's commands ended. A stream stops at its
    /// first command that gave up or can never succeed.
    async fn execute_groups(&self, groups: Groups, stop: &watch::Receiver<bool>) -> Vec<GroupEnd> {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (_, commands) in groups {
            let path = self.path.clone();
            let counters = self.counters.clone();
            let semaphore = semaphore.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let Ok(_permit) = semaphore.acquire_owned().await else {
                    return GroupEnd::Stopped;
                };
                for issued in &commands {
                    if let Some(end) = execute_with_retries(&path, issued, &counters, &stop).await {
                        return end;
                    }
                }
                GroupEnd::Done
            });
        }
        let mut ends = Vec::new();
        while let Some(done) = tasks.join_next().await {
            ends.push(done.unwrap_or(GroupEnd::Stopped));
        }
        ends
    }
}

/// Runs one command, retrying a passing failure up to
/// [`ATTEMPTS_PER_SESSION`] attempts; `None` when it ran or a rule
/// refused it, else how its stream ends.
async fn execute_with_retries(
    path: &CommandPath,
    issued: &Issued,
    counters: &PolicyCounters,
    stop: &watch::Receiver<bool>,
) -> Option<GroupEnd> {
    let stream = issued.command.stream_id.as_str();
    let mut backoff = 50u64;
    for attempt in 1..=ATTEMPTS_PER_SESSION {
        match execute_one(path, &issued.command, &issued.context).await {
            Executed::Done => {
                counters.commands.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Executed::Refused(rule) => {
                counters.refusals.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(stream, rule, "policy command refused");
                return None;
            }
            Executed::Invalid(message) => {
                tracing::error!(stream, position = issued.position, %message, "policy command can never succeed");
                return Some(GroupEnd::Invalid {
                    position: issued.position,
                    message,
                });
            }
            Executed::Infra(message) if attempt == ATTEMPTS_PER_SESSION => {
                return Some(GroupEnd::GaveUp(format!(
                    "{} on {stream} (issued by the event at position {}) failed {attempt} times: {message}",
                    issued.command.action, issued.position
                )));
            }
            Executed::Infra(message) => {
                tracing::warn!(stream, attempt, %message, "policy command failed; retrying");
                if *stop.borrow() {
                    return Some(GroupEnd::Stopped);
                }
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                backoff = (backoff * 2).min(5_000);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::OrderError;
    use eventlog::AppendError;

    fn failed(error: CommandError<OrderError>) -> Executed {
        classify::<OrderError>(Err(error))
    }

    #[test]
    fn a_command_the_log_refuses_as_invalid_never_succeeds_and_a_storage_failure_may() {
        let invalid = failed(CommandError::Append(AppendError::Invalid(
            "payload of 133916 bytes exceeds 65536".into(),
        )));
        assert!(matches!(invalid, Executed::Invalid(m) if m.contains("133916")));
        let corrupt = failed(CommandError::Corrupt {
            position: 7,
            message: "does not decode".into(),
        });
        assert!(matches!(corrupt, Executed::Invalid(_)));
        let storage = failed(CommandError::Append(AppendError::Storage("disk".into())));
        assert!(matches!(storage, Executed::Infra(_)));
        let refused = failed(CommandError::Rejected {
            source: OrderError::LineNotFound,
        });
        assert!(matches!(refused, Executed::Refused(_)));
    }
}
