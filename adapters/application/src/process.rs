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

/// Policy commands by target stream, in event order.
type Groups = BTreeMap<String, Vec<(PolicyCommand, CommandContext)>>;

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

impl Consumer for ProcessManager {
    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        let (groups, poison) = self.commands_of(&batch);
        if !self.execute_groups(groups, &session.stop_signal()).await {
            return Err(Halt::Stopped);
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
                    .push((command, context));
            }
        }
        (groups, None)
    }

    /// Runs each stream's commands in order, streams concurrently. False
    /// when stopped before every command ran.
    async fn execute_groups(&self, groups: Groups, stop: &watch::Receiver<bool>) -> bool {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (_, commands) in groups {
            let path = self.path.clone();
            let counters = self.counters.clone();
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
                                counters.commands.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Executed::Refused(rule) => {
                                counters.refusals.fetch_add(1, Ordering::Relaxed);
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
