//! Evidence of every external call: what was sent and received, redacted,
//! with the raw code and the class it was mapped to.
//!
//! Attached to the append that records the call's outcome (so it is as
//! durable as the outcome), else kept in the sled tree `adapters/evidence`
//! of the log's database; keyed by handoff id then time, so an operator
//! reads one handoff's calls in order (see [`EvidenceStore`]).

use std::sync::atomic::{AtomicU64, Ordering};

use domain::ids::HandoffId;
use eventlog::{EventLog, LogError};
use serde::{Deserialize, Serialize};

use crate::external::{CallOutcome, Evidence};

const TREE: &str = "adapters/evidence";

/// One call's evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// When the call ended (Unix ms).
    pub at_ms: i64,
    /// The handoff.
    pub handoff_id: String,
    /// The system.
    pub system: String,
    /// `dispatch` or `reconciliation`.
    pub source: String,
    /// The normalized class.
    pub class: String,
    /// The raw external code.
    pub raw_code: Option<String>,
    /// The raw external label.
    pub raw_label: Option<String>,
    /// The system's reference.
    pub external_reference: Option<String>,
    /// The redacted exchange.
    pub evidence: Evidence,
}

impl EvidenceRecord {
    /// The record of `outcome` for `handoff_id`.
    pub fn of(
        at_ms: i64,
        handoff_id: &HandoffId,
        system: &str,
        source: &str,
        outcome: &CallOutcome,
    ) -> Self {
        Self {
            at_ms,
            handoff_id: handoff_id.to_string(),
            system: system.to_owned(),
            source: source.to_owned(),
            class: outcome.class.as_str().to_owned(),
            // As the handoff records them (`Observation::as_evidence`).
            raw_code: outcome.raw_code.as_deref().map(domain::text::evidence),
            raw_label: outcome.raw_label.as_deref().map(domain::text::evidence),
            external_reference: outcome
                .external_reference
                .as_deref()
                .map(domain::text::evidence),
            evidence: outcome.evidence.clone(),
        }
    }
}

/// Where evidence is kept.
///
/// Durability: a call's evidence travels with the outcome it explains, as
/// an attachment of that outcome's append ([`EvidenceStore::attachment`],
/// [`application::CommandContext::attach`]): the journal frame that makes
/// the outcome durable makes the evidence durable, so after any crash an
/// outcome in the log never lacks its evidence (checked after every
/// SIGKILL cycle by `adapters/integration/tests/crash.rs`). Evidence of a
/// call whose outcome is not appended (a status read that answered
/// nothing, an outcome refused or already recorded by a retry) goes to the
/// tree `adapters/evidence` ([`EvidenceStore::record`]), written out by
/// sled within 500 ms, and may survive a crash alone or not at all; so
/// did all evidence before this build, which is still read.
#[derive(Clone)]
pub struct EvidenceStore {
    log: EventLog,
    tree: sled::Tree,
    /// Unique per open, so keys written after a restart never overwrite
    /// earlier ones.
    run: u64,
    seq: std::sync::Arc<AtomicU64>,
}

impl std::fmt::Debug for EvidenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceStore")
            .field("run", &self.run)
            .finish()
    }
}

/// The attachment keys of evidence start with this.
const ATTACHED: &[u8] = b"evidence/";

impl EvidenceStore {
    /// Opens the evidence of `log`.
    ///
    /// # Errors
    /// A storage error.
    pub fn open(log: &EventLog) -> Result<Self, LogError> {
        Ok(Self {
            log: log.clone(),
            tree: log.db().open_tree(TREE)?,
            // The low 64 bits of a ULID: random per open.
            run: u64::try_from(ulid::Ulid::new().0 & u128::from(u64::MAX)).unwrap_or(0),
            seq: std::sync::Arc::default(),
        })
    }

    /// The handoff's part of a key: its id and a 0 byte.
    fn handoff_part(handoff_id: &str) -> Vec<u8> {
        let mut key = handoff_id.as_bytes().to_vec();
        key.push(0);
        key
    }

    /// The key of `record` in the tree, unique per call: handoff, time,
    /// run, sequence.
    fn key(&self, record: &EvidenceRecord) -> Vec<u8> {
        let mut key = Self::handoff_part(&record.handoff_id);
        key.extend_from_slice(&record.at_ms.to_be_bytes());
        key.extend_from_slice(&self.run.to_be_bytes());
        key.extend_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        key
    }

    /// `record` as an attachment (key, value) of the append that records
    /// its outcome: pass it to [`application::CommandContext::attach`].
    /// A record too large to attach (its redacted request is bounded only
    /// by the order's size) has its request cut to fit.
    pub fn attachment(&self, record: &EvidenceRecord) -> (Vec<u8>, Vec<u8>) {
        let key = [ATTACHED, &self.key(record)].concat();
        let mut value = serde_json::to_vec(record).unwrap_or_default();
        if value.len() > eventlog::MAX_ATTACHMENT_VALUE_BYTES {
            let mut cut = record.clone();
            let mut end = eventlog::MAX_ATTACHMENT_VALUE_BYTES / 4;
            while !cut.evidence.request.is_char_boundary(end) {
                end -= 1;
            }
            cut.evidence.request.truncate(end);
            cut.evidence.request.push_str("...(cut)");
            value = serde_json::to_vec(&cut).unwrap_or_default();
        }
        (key, value)
    }

    /// Stores `record` on its own, for a call whose outcome is not
    /// appended with it (see the type's durability note).
    ///
    /// # Errors
    /// A storage error.
    pub fn record(&self, record: &EvidenceRecord) -> Result<(), LogError> {
        let value = serde_json::to_vec(record).unwrap_or_default();
        self.tree.insert(self.key(record), value)?;
        Ok(())
    }

    /// [`EvidenceStore::record`] for a call whose outcome was not appended
    /// with its evidence; a failure to store it is logged, not returned
    /// (the outcome, or its absence, stands either way).
    pub fn keep_unattached(&self, record: &EvidenceRecord) {
        if let Err(e) = self.record(record) {
            tracing::warn!(error = %e, handoff_id = %record.handoff_id, "cannot store call evidence");
        }
    }

    /// Whether the command that recorded an outcome stored the evidence
    /// attached to it: only an append that was new does (a refusal or a
    /// retry answered by its first outcome stores nothing).
    pub fn attached<E: std::error::Error>(
        executed: &Result<application::CommandOutcome, application::CommandError<E>>,
    ) -> bool {
        executed.as_ref().is_ok_and(|outcome| !outcome.deduplicated)
    }

    /// Every record of one handoff, oldest first: those attached to its
    /// outcomes and those stored on their own.
    ///
    /// # Errors
    /// A storage error.
    pub fn for_handoff(&self, handoff_id: &HandoffId) -> Result<Vec<EvidenceRecord>, LogError> {
        let prefix = Self::handoff_part(handoff_id.as_str());
        let mut found: Vec<(Vec<u8>, EvidenceRecord)> = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry?;
            if let Ok(record) = serde_json::from_slice(&value) {
                found.push((key.get(prefix.len()..).unwrap_or_default().to_vec(), record));
            }
        }
        let attached = [ATTACHED, &prefix].concat();
        for (key, value) in self.log.attachments(&attached)? {
            if let Ok(record) = serde_json::from_slice(&value) {
                found.push((
                    key.get(attached.len()..).unwrap_or_default().to_vec(),
                    record,
                ));
            }
        }
        // Time, run, sequence: the order the calls ended in.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().map(|(_, record)| record).collect())
    }
}
