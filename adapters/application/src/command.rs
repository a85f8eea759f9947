//! The command path: load a stream, fold it, decide, append with the
//! expected version, and retry on a version conflict.
//!
//! It is written once and used by every caller that changes an aggregate.
//! Every command carries a command id, used as the append's idempotency key
//! (with the hash of the command as the request hash), so a retried command
//! never appends twice: the first outcome is returned instead. Correlation
//! and causation ids are stamped on every event (the causation of an event
//! is the command id that produced it).

use std::ops::RangeInclusive;

use domain::decider::{Decider, DomainEvent, RuleViolation};
use domain::events::AnyEvent;
use domain::idempotency::CommandKey;
use eventlog::{
    encode_payload, AppendError, AppendRequest, EventLog, ExpectedVersion, Hash, Idempotency,
    LogError, NewEvent, RecordedEvent,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::state_cache::StateCache;
use crate::stream_turns::StreamTurns;

/// Who asks, under which ids, and at which version they think the stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The command's idempotency key, built from typed parts.
    pub key: CommandKey,
    /// Tenant from the caller's credential.
    pub tenant_id: String,
    /// Correlation id shared by everything one user intent causes.
    pub correlation_id: String,
    /// Version the client saw; `None` lets the path retry on conflicts.
    pub expected_version: Option<u64>,
    /// Hash of the request; `None` hashes the command itself. Client
    /// callers pass the hash of the client's input (their commands carry
    /// server-assigned data such as the time of receipt); reactions and jobs
    /// get [`CommandKey::determined_request_hash`] from [`CommandContext::new`],
    /// so a consumer that re-issues a command after a crash hashes only what
    /// its trigger determined and meets its first outcome.
    pub request_hash: Option<Hash>,
    /// The id of the event that caused this command (a policy reacting to
    /// it, the dispatcher acting on a handoff request), stamped on every
    /// event as metadata [`CAUSATION_EVENT_ID`] so audits can link effect
    /// to cause.
    pub causation_event_id: Option<String>,
    /// Values stored with the command's events in the same atomic write
    /// ([`eventlog::AppendRequest::attach`]): only when the command
    /// appends for the first time (not on a refusal, nor on a retry
    /// answered by its first outcome).
    pub attachments: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Metadata key of the causing event's id (defined by the domain).
pub use domain::events::CAUSATION_EVENT_ID;

impl CommandContext {
    /// A context with no expected version. The request hash is the one the
    /// key determines (reactions and jobs), else the command's own hash.
    pub fn new(
        key: CommandKey,
        tenant_id: impl Into<String>,
        correlation_id: impl Into<String>,
    ) -> Self {
        Self {
            request_hash: key.determined_request_hash(),
            key,
            tenant_id: tenant_id.into(),
            correlation_id: correlation_id.into(),
            expected_version: None,
            causation_event_id: None,
            attachments: Vec::new(),
        }
    }

    /// The key as stored in the log.
    pub fn command_id(&self) -> String {
        self.key.encode()
    }

    /// The same context, naming the event that caused the command.
    pub fn caused_by_event(mut self, event_id: impl Into<String>) -> Self {
        self.causation_event_id = Some(event_id.into());
        self
    }

    /// The same context, with `value` stored at `key` together with the
    /// command's events (see [`CommandContext::attachments`]).
    pub fn attach(mut self, key: Vec<u8>, value: Vec<u8>) -> Self {
        self.attachments.push((key, value));
        self
    }
}

/// What a command did to its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Stream version after the command.
    pub stream_version: u64,
    /// Positions of the events written; `None` when the command decided no event.
    pub positions: Option<RangeInclusive<u64>>,
    /// True when this command id was already executed: nothing new was written.
    pub deduplicated: bool,
    /// How many load-decide-append rounds it took (more than 1 after conflicts).
    pub attempts: u32,
}

/// Why a command was not executed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + 'static> {
    /// A business rule refused the command.
    #[error("the command was refused: {source}")]
    Rejected {
        /// The domain's refusal.
        #[source]
        source: E,
    },
    /// The client's expected version is not the stream's version.
    #[error("version conflict on {stream_id}: expected {expected}, actual {actual}")]
    VersionConflict {
        /// The stream.
        stream_id: String,
        /// What the client expected.
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// The command id was already used for a different command.
    #[error("command id {command_id} was already used for a different command")]
    IdempotencyConflict {
        /// The reused id.
        command_id: String,
    },
    /// Concurrent writers kept winning; the command gave up.
    #[error("gave up on {stream_id} after {attempts} conflicting attempts")]
    Contention {
        /// The stream.
        stream_id: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A stored event of the stream does not decode.
    #[error("event at position {position} does not decode: {message}")]
    Corrupt {
        /// Its position.
        position: u64,
        /// Why.
        message: String,
    },
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The append failed for a storage reason.
    #[error(transparent)]
    Append(AppendError),
}

impl<E: std::error::Error + RuleViolation + 'static> CommandError<E> {
    /// The rule that refused the command, when a rule did.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Self::Rejected { source } => Some(source.rule()),
            _ => None,
        }
    }
}

/// A folded stream: its state and version.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<S> {
    /// The state after every event.
    pub state: S,
    /// The stream's version (number of events).
    pub version: u64,
}

/// The load-decide-append runner over one log. Clones share one
/// stream-state cache ([`crate::state_cache`]) and one set of stream turns
/// ([`crate::stream_turns`]): commands on one stream through this path run
/// one after another, so they never conflict with each other.
#[derive(Debug, Clone)]
pub struct CommandPath {
    log: EventLog,
    max_attempts: u32,
    cache: StateCache,
    turns: StreamTurns,
}

impl CommandPath {
    /// A path over `log` that retries a conflicting append up to 32 times,
    /// backing off between attempts, and keeps the folded state of up to
    /// [`crate::state_cache::DEFAULT_CAPACITY`] streams.
    pub fn new(log: EventLog) -> Self {
        Self {
            log,
            max_attempts: 32,
            cache: StateCache::new(crate::state_cache::DEFAULT_CAPACITY),
            turns: StreamTurns::new(),
        }
    }

    /// The same path keeping the folded state of at most `streams` streams
    /// (0: fold every stream from its first event on every load).
    pub fn with_state_cache(mut self, streams: usize) -> Self {
        self.cache = StateCache::new(streams);
        self
    }

    /// What the stream-state cache did since start.
    pub fn state_cache_stats(&self) -> crate::state_cache::StateCacheStats {
        self.cache.stats()
    }

    /// The log this path writes to.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Folds a stream's events into the decider's state: from the cached
    /// fold of its first events when there is one, then every later event
    /// the log holds.
    pub fn load<D: Decider>(
        &self,
        stream_id: &str,
    ) -> Result<Loaded<D::State>, CommandError<D::Error>> {
        let (mut state, mut version) = match self.cache.get::<D::State>(stream_id) {
            Some((version, state)) => (state, version),
            None => (D::initial(), 0),
        };
        let cached = version;
        for record in self.log.iter_stream(stream_id, version + 1) {
            let record = record?;
            let event: D::Event = decode(&record)?;
            state = D::evolve(state, &event);
            version = record.stream_version;
        }
        if version > cached && self.cache.enabled() {
            self.cache.put(stream_id, version, state.clone());
        }
        Ok(Loaded { state, version })
    }

    /// Executes `command` on `stream_id`: load, decide, append, retrying on
    /// a version conflict unless the client named an expected version.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] when a rule refuses; the conflict variants
    /// when the stream moved or the command id was reused.
    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(
            stream_id = %stream_id,
            command_key = %context.key,
            correlation_id = %context.correlation_id,
        )
    )]
    pub async fn execute<D>(
        &self,
        stream_id: &str,
        command: &D::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<D::Error>>
    where
        D: Decider,
        D::Command: Serialize,
        D::Error: 'static,
    {
        let request_hash = match context.request_hash {
            Some(hash) => hash,
            None => command_hash(stream_id, command)?,
        };
        self.run::<D>(stream_id, context, request_hash, |state| {
            D::decide(state, command)
        })
        .await
    }

    /// Executes the command `build` makes from the stream's current state:
    /// load, build, decide, append, as [`CommandPath::execute`] (on a
    /// version conflict the stream is loaded again and the command built
    /// again). For a command that depends on the aggregate (pricing its
    /// current lines), so the stream is read once per attempt. The
    /// client's request must be hashed in `context.request_hash`: there is
    /// no command to hash before the stream is read.
    ///
    /// # Errors
    /// As [`CommandPath::execute`]; `build`'s refusal is
    /// [`CommandError::Rejected`]. [`CommandError::Corrupt`] without a
    /// request hash.
    pub async fn execute_with<D>(
        &self,
        stream_id: &str,
        context: &CommandContext,
        mut build: impl FnMut(&D::State) -> Result<D::Command, D::Error>,
    ) -> Result<CommandOutcome, CommandError<D::Error>>
    where
        D: Decider,
        D::Error: 'static,
    {
        let Some(request_hash) = context.request_hash else {
            return Err(CommandError::Corrupt {
                position: 0,
                message: "a built command needs the client's request hash".to_owned(),
            });
        };
        self.run::<D>(stream_id, context, request_hash, |state| {
            D::decide(state, &build(state)?)
        })
        .await
    }

    /// The first outcome of the command `context` names, when its id was
    /// used already: the outcome if the request is the same, an
    /// idempotency conflict if not.
    fn first_outcome<E: std::error::Error + 'static>(
        &self,
        context: &CommandContext,
        request_hash: Hash,
    ) -> Result<Option<CommandOutcome>, CommandError<E>> {
        let Some((seen_hash, first)) = self.log.idempotency_record(&context.command_id())? else {
            return Ok(None);
        };
        if seen_hash != request_hash {
            return Err(CommandError::IdempotencyConflict {
                command_id: context.command_id(),
            });
        }
        Ok(Some(outcome_of(first, 0)))
    }

    /// The idempotency check, then load, `decide`, append, retried on a
    /// version conflict unless the client named an expected version.
    async fn run<D>(
        &self,
        stream_id: &str,
        context: &CommandContext,
        request_hash: Hash,
        mut decide: impl FnMut(&D::State) -> Result<Vec<D::Event>, D::Error>,
    ) -> Result<CommandOutcome, CommandError<D::Error>>
    where
        D: Decider,
        D::Error: 'static,
    {
        if let Some(first) = self.first_outcome(context, request_hash)? {
            return Ok(first);
        }
        // From the load to the acknowledgement: the stream's other commands
        // through this path wait, and then load what this one appended.
        let _turn = self.turns.take(stream_id).await;
        for attempt in 1..=self.max_attempts {
            let loaded = self.load::<D>(stream_id)?;
            // A refusal made on a state that already holds this command's
            // own events (a concurrent first attempt with the same id won
            // the race since the check above) is answered with that
            // attempt's outcome: the loaded events are durable, so their
            // idempotency record is too.
            let refused =
                |error: CommandError<D::Error>| match self.first_outcome(context, request_hash) {
                    Ok(Some(first)) => Ok(first),
                    Ok(None) => Err(error),
                    Err(e) => Err(e),
                };
            if let Some(expected) = context.expected_version {
                if expected != loaded.version {
                    return refused(CommandError::VersionConflict {
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual: loaded.version,
                    });
                }
            }
            let events = match decide(&loaded.state) {
                Ok(events) => events,
                Err(source) => return refused(CommandError::Rejected { source }),
            };
            // A decision of no events still appends: the command's id alone,
            // so that it is reserved (a retry gets this outcome, another
            // request with the id is a conflict) and the stream's version
            // is checked as for any append.
            let new_events = events
                .iter()
                .map(|event| to_new_event(event, context))
                .collect::<Result<Vec<_>, _>>()?;
            let request = AppendRequest::new(
                stream_id,
                ExpectedVersion::Exact(loaded.version),
                new_events,
            )
            .idempotent(Idempotency::with_request_hash(
                context.command_id(),
                request_hash,
            ));
            let request = context
                .attachments
                .iter()
                .fold(request, |request, (key, value)| {
                    request.attach(key.clone(), value.clone())
                });
            match self.log.append(request).await {
                Ok(outcome) => {
                    self.remember::<D>(stream_id, loaded, &events, &outcome);
                    return Ok(outcome_of(outcome, attempt));
                }
                Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                    self.cache.forget(stream_id);
                    if let Some(expected) = context.expected_version {
                        return Err(CommandError::VersionConflict {
                            stream_id: stream_id.to_owned(),
                            expected,
                            actual,
                        });
                    }
                    tracing::debug!(stream_id, attempt, "version conflict; reloading");
                    tokio::time::sleep(backoff(attempt, &request_hash)).await;
                }
                Err(AppendError::IdempotencyConflict { .. }) => {
                    return Err(CommandError::IdempotencyConflict {
                        command_id: context.command_id(),
                    })
                }
                Err(other) => return Err(CommandError::Append(other)),
            }
        }
        Err(CommandError::Contention {
            stream_id: stream_id.to_owned(),
            attempts: self.max_attempts,
        })
    }

    /// Keeps the state an acknowledged append leads to: the loaded state
    /// evolved with the appended events, at the stream's new version.
    fn remember<D: Decider>(
        &self,
        stream_id: &str,
        loaded: Loaded<D::State>,
        events: &[D::Event],
        outcome: &eventlog::AppendOutcome,
    ) {
        let appended = u64::try_from(events.len()).unwrap_or(u64::MAX);
        if !self.cache.enabled()
            || outcome.deduplicated
            || outcome.stream_version != loaded.version.saturating_add(appended)
        {
            return;
        }
        let state = events.iter().fold(loaded.state, D::evolve);
        self.cache.put(stream_id, outcome.stream_version, state);
    }
}

/// Capped exponential backoff with jitter, so writers that lost the same
/// race do not collide again in lockstep. The jitter comes from the request
/// hash: deterministic per command, different across commands.
fn backoff(attempt: u32, request_hash: &Hash) -> std::time::Duration {
    let cap_us = 50u64 << attempt.min(6); // 100 us .. 3.2 ms
    let jitter = u64::from(request_hash[usize::try_from(attempt).unwrap_or(0) % 32]);
    std::time::Duration::from_micros(cap_us / 2 + (cap_us / 2) * jitter / 255)
}

fn outcome_of(outcome: eventlog::AppendOutcome, attempts: u32) -> CommandOutcome {
    CommandOutcome {
        stream_version: outcome.stream_version,
        positions: outcome.records_events().then(|| outcome.positions()),
        deduplicated: outcome.deduplicated,
        attempts,
    }
}

/// sha256 over the stream id and the encoded command.
fn command_hash<C: Serialize, E: std::error::Error>(
    stream_id: &str,
    command: &C,
) -> Result<Hash, CommandError<E>> {
    let bytes = encode_payload(command).map_err(|e| CommandError::Corrupt {
        position: 0,
        message: format!("command does not encode: {e}"),
    })?;
    let mut hasher = Sha256::new();
    hasher.update((stream_id.len() as u64).to_be_bytes());
    hasher.update(stream_id.as_bytes());
    hasher.update(&bytes);
    Ok(hasher.finalize().into())
}

fn to_new_event<Ev: Serialize + DomainEvent, E: std::error::Error>(
    event: &Ev,
    context: &CommandContext,
) -> Result<NewEvent, CommandError<E>> {
    let payload = encode_payload(event).map_err(|e| CommandError::Corrupt {
        position: 0,
        message: format!("event does not encode: {e}"),
    })?;
    let mut new = NewEvent::new(
        event.event_type(),
        &context.tenant_id,
        &context.correlation_id,
        payload,
    )
    .caused_by(context.command_id());
    new.schema_version = event.schema_version();
    if let Some(cause) = &context.causation_event_id {
        new.metadata
            .insert(CAUSATION_EVENT_ID.to_owned(), cause.clone());
    }
    Ok(new)
}

/// Decodes a stored event of one aggregate through the one decode
/// ([`crate::events::decode`], which upcasts older schema versions).
///
/// # Errors
/// [`CommandError::Corrupt`] when the record does not decode, or holds
/// another aggregate's event.
pub fn decode<Ev: TryFrom<AnyEvent, Error = AnyEvent>, E: std::error::Error>(
    record: &RecordedEvent,
) -> Result<Ev, CommandError<E>> {
    let corrupt = |message: String| CommandError::Corrupt {
        position: record.position,
        message,
    };
    let event = crate::events::decode(record).map_err(|e| corrupt(e.to_string()))?;
    Ev::try_from(event).map_err(|other| {
        corrupt(format!(
            "the stream holds a {} event of another aggregate",
            other.event_type()
        ))
    })
}
