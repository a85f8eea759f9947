//! What an append asks for and what it answers.

use sha2::{Digest, Sha256};

use crate::keyspace;
use crate::record::{Hash, NewEvent};

/// The stream version an append expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be exactly at this version (0 means "no stream").
    Exact(u64),
}

impl ExpectedVersion {
    /// True when a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(v) => v == actual,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// An idempotency key and the hash of the request it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// Key unique per intended effect (for example a client command id).
    pub key: String,
    /// Hash of the request; `None` lets the log hash the append's content.
    pub request_hash: Option<Hash>,
}

impl Idempotency {
    /// A key whose request hash is computed from the append's content
    /// (stream, expected version and events, without the event ids).
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            request_hash: None,
        }
    }

    /// A key with a caller-computed request hash (for example the hash of a
    /// command, so a retried command is recognised even if the state moved).
    pub fn with_request_hash(key: impl Into<String>, request_hash: Hash) -> Self {
        Self {
            key: key.into(),
            request_hash: Some(request_hash),
        }
    }
}

/// One atomic append of one or more events to one stream; or, with no
/// events, of its idempotency key alone (a command that changed nothing
/// reserves its id, at the stream version it was decided on, as
/// durably as an append of events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    /// Target stream.
    pub stream_id: String,
    /// Version the stream must be at.
    pub expected: ExpectedVersion,
    /// Events, written together or not at all; none only with an
    /// idempotency key.
    pub events: Vec<NewEvent>,
    /// Optional idempotency key, stored in the same atomic write.
    pub idempotency: Option<Idempotency>,
    /// Attachments ([`AppendRequest::attach`]): (key, value) pairs stored
    /// in the same atomic write when the append is accepted and new.
    pub attachments: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Longest attachment key, in bytes.
pub const MAX_ATTACHMENT_KEY_BYTES: usize = 1024;

/// Longest attachment value, in bytes.
pub const MAX_ATTACHMENT_VALUE_BYTES: usize = 256 * 1024;

impl AppendRequest {
    /// An append without an idempotency key.
    pub fn new(
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream_id: stream_id.into(),
            expected,
            events,
            idempotency: None,
            attachments: Vec::new(),
        }
    }

    /// The same append, with `value` stored at `key` in the same atomic
    /// write: made durable by the journal frame that makes the events
    /// durable, so after any crash either both are there or neither. An
    /// attachment is not a record: it is outside the hash chain, not
    /// verified, not exported, and not written when the append is refused
    /// or answered by its idempotency key's first outcome. Read with
    /// [`crate::EventLog::attachments`]. A key or value over
    /// [`MAX_ATTACHMENT_KEY_BYTES`] / [`MAX_ATTACHMENT_VALUE_BYTES`] makes
    /// the append invalid.
    pub fn attach(mut self, key: Vec<u8>, value: Vec<u8>) -> Self {
        self.attachments.push((key, value));
        self
    }

    /// The same append, guarded by `idempotency`.
    pub fn idempotent(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// The request hash stored with an idempotency key: the caller's, or a
    /// sha256 over stream, expectation and every event field but the id.
    pub fn request_hash(&self) -> Hash {
        if let Some(Idempotency {
            request_hash: Some(hash),
            ..
        }) = &self.idempotency
        {
            return *hash;
        }
        let mut h = Sha256::new();
        field(&mut h, self.stream_id.as_bytes());
        field(&mut h, self.expected.to_string().as_bytes());
        for event in &self.events {
            field(&mut h, event.event_type.as_bytes());
            field(&mut h, &event.schema_version.to_be_bytes());
            field(&mut h, event.tenant_id.as_bytes());
            field(&mut h, event.correlation_id.as_bytes());
            field(
                &mut h,
                event.causation_id.as_deref().unwrap_or("").as_bytes(),
            );
            for (k, v) in &event.metadata {
                field(&mut h, k.as_bytes());
                field(&mut h, v.as_bytes());
            }
            field(&mut h, &event.payload);
        }
        h.finalize().into()
    }
}

/// Length-prefixed so that field boundaries are part of the hash.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// What a successful append wrote (or, for a repeated idempotency key, what
/// the first append wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Position of the first event of the append.
    pub first_position: u64,
    /// Position of the last event of the append (positions are contiguous).
    pub last_position: u64,
    /// Stream version after the append.
    pub stream_version: u64,
    /// True when nothing was written because the idempotency key was seen.
    pub deduplicated: bool,
}

impl AppendOutcome {
    /// Every position the append's events received, in order; empty for
    /// an idempotency record alone (see [`AppendOutcome::records_events`]).
    pub fn positions(&self) -> std::ops::RangeInclusive<u64> {
        self.first_position..=self.last_position
    }

    /// False for an append that recorded its idempotency key alone (no
    /// events: a command that changed nothing), whose positions are the
    /// empty range ending just before the head it was recorded at
    /// (`first_position` = that head, from 1; `last_position` one less).
    pub fn records_events(&self) -> bool {
        self.first_position <= self.last_position
    }

    /// Whether the positions are a range a log can hold
    /// ([`keyspace::idempotency_range_is_well_formed`]).
    pub(crate) fn range_is_well_formed(&self) -> bool {
        keyspace::idempotency_range_is_well_formed(
            self.first_position,
            self.last_position,
            self.stream_version,
        )
    }

    /// The stored idempotency record of this outcome (see [`keyspace`]).
    pub(crate) fn to_bytes(self, request_hash: &Hash) -> [u8; keyspace::IDEMPOTENCY_VALUE_LEN] {
        keyspace::idempotency_value(&keyspace::IdempotencyValue {
            request_hash: *request_hash,
            first_position: self.first_position,
            last_position: self.last_position,
            stream_version: self.stream_version,
        })
    }

    /// Reads a stored idempotency record: the request hash and the first
    /// outcome, marked as deduplicated.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<(Hash, Self)> {
        let value = keyspace::parse_idempotency_value(bytes)?;
        Some((
            value.request_hash,
            Self {
                first_position: value.first_position,
                last_position: value.last_position,
                stream_version: value.stream_version,
                deduplicated: true,
            },
        ))
    }
}
