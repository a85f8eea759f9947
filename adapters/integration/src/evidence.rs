//! Evidence of every external call: what was sent and received, redacted,
//! with the raw code and the class it was mapped to.
//!
//! Kept in the sled tree `adapters/evidence` of the log's database, keyed by
//! handoff id then time, so an operator reads one handoff's calls in order.
//! Evidence is written without waiting for a flush (sled writes it out
//! every 500 ms): a crash may lose the evidence of the last half second's
//! calls, and that loses no state, since every outcome is also an
//! observation event on the handoff.

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

/// The evidence tree.
///
/// Durability: callers store a call's evidence *before* they append the
/// outcome it explains, in the log's own sled database, but the outcome
/// is made durable by the log's redo journal and the evidence only by
/// sled's next write-out (every 500 ms) or checkpoint. So an outcome
/// observed in the last half second before a crash may survive without
/// its evidence (the handoff's `calls` then lack that call; its
/// observation event keeps class, raw code and time); an earlier one
/// never does (checked after every SIGKILL cycle by
/// `adapters/integration/tests/crash.rs`). Evidence whose outcome was
/// never appended may survive a crash alone.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    tree: sled::Tree,
    /// Unique per open, so keys written after a restart never overwrite
    /// earlier ones.
    run: u64,
    seq: std::sync::Arc<AtomicU64>,
}

impl EvidenceStore {
    /// Opens the evidence tree of `log`'s database.
    ///
    /// # Errors
    /// A storage error.
    pub fn open(log: &EventLog) -> Result<Self, LogError> {
        Ok(Self {
            tree: log.db().open_tree(TREE)?,
            // The low 64 bits of a ULID: random per open.
            run: u64::try_from(ulid::Ulid::new().0 & u128::from(u64::MAX)).unwrap_or(0),
            seq: std::sync::Arc::default(),
        })
    }

    /// Stores one record. Call it before appending the outcome it explains
    /// (see the type's durability note).
    ///
    /// # Errors
    /// A storage error.
    pub fn record(&self, record: &EvidenceRecord) -> Result<(), LogError> {
        let mut key = record.handoff_id.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&record.at_ms.to_be_bytes());
        key.extend_from_slice(&self.run.to_be_bytes());
        key.extend_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let value = serde_json::to_vec(record).unwrap_or_default();
        self.tree.insert(key, value)?;
        Ok(())
    }

    /// Every record of one handoff, oldest first.
    ///
    /// # Errors
    /// A storage error.
    pub fn for_handoff(&self, handoff_id: &HandoffId) -> Result<Vec<EvidenceRecord>, LogError> {
        let mut prefix = handoff_id.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix) {
            let (_, value) = entry?;
            if let Ok(record) = serde_json::from_slice(&value) {
                out.push(record);
            }
        }
        Ok(out)
    }
}
