//! The audit trail: every event of a correlation id, and of an aggregate,
//! in log order, with its hash chain link and the link from effect to cause.
//!
//! The projector stores, per tenant and correlation id, the positions of its
//! events; the entries themselves are read back from the log at query time,
//! so the hash shown is the one the log's chain verifies, never a copy. An
//! aggregate's events come from the log's own stream index (each record's
//! tenant is checked).
//!
//! Keys (after the tenant prefix):
//! - `0x02 | sha256(correlation id)[..16] | position >> 14` → the positions
//!   (u64 BE each, ascending) of the correlation's events in that bucket of
//!   16,384 positions.
//!
//! Buckets are fixed by position, not by batch, so the bytes do not depend on
//! where commits fell; one commit writes each busy correlation's bucket once
//! instead of one key per event.
//!
//! The cause of an event is the event of the same correlation whose event id
//! is the event's metadata `causation_event_id`, or else its causation id
//! when that is an event id. Commands issued by the fulfillment policy carry
//! a derived command id as causation; they link to their trigger when the
//! process stamps `causation_event_id` (the generator in
//! [`crate::testing`] does). Events that share a causation id were written
//! by one command.
//!
//! Resolving a cause reads the correlation's events to find the cause's
//! event id. A [`LinkCache`] keeps what was read, per correlation, for
//! every later query: the events of a log never change, so an event id's
//! position never does. Without it, the audit trail of each handoff of a
//! 145-line order read the order's whole correlation (up to 10,000 events)
//! again: one query of every handoff's trail took 35 s and held a worker
//! thread throughout.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use domain::ids::TenantId;
use eventlog::{EventLog, RecordedEvent};
use serde::Serialize;

use crate::commit::Writes;
use crate::error::{FoldError, QueryError};
use crate::event::Decoded;
use crate::keys::{self, KeyBuf};
use crate::page::Page;
use crate::projector::Projector;
use crate::store::KvCache;

const BY_CORRELATION: u8 = 0x02;
const BUCKET_SHIFT: u32 = 14;

/// The metadata key that names the event a command reacted to (defined by
/// the domain).
pub use domain::events::CAUSATION_EVENT_ID;

/// Most events of one correlation read to resolve cause links.
const MAX_LINK_SCAN: usize = 10_000;

/// One event of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Global position.
    pub position: u64,
    /// The aggregate's stream.
    pub stream_id: String,
    /// Version of the stream after the event.
    pub stream_version: u64,
    /// The event id (ULID).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The payload schema version.
    pub schema_version: u16,
    /// The tenant.
    pub tenant_id: String,
    /// The correlation id.
    pub correlation_id: String,
    /// The causation id (the command id that produced it).
    pub causation_id: Option<String>,
    /// Position of the event that caused it, when known.
    pub caused_by_position: Option<u64>,
    /// When the log recorded it (ms).
    pub recorded_at_ms: i64,
    /// Its chain hash (hex).
    pub hash: String,
    /// The previous record's hash (hex).
    pub prev_hash: String,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
}

/// The audit projector.
#[derive(Default)]
pub(crate) struct AuditProjector {
    buckets: KvCache,
    tenants: keys::TenantCache,
}

fn correlation_prefix(tenant: &[u8; 16], correlation_id: &str) -> Vec<u8> {
    KeyBuf::new(tenant, BY_CORRELATION)
        .raw(&keys::short_hash(correlation_id))
        .done()
}

impl Projector for AuditProjector {
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError> {
        let r = &event.record;
        let t = self.tenants.prefix(&r.tenant_id);
        let mut key = correlation_prefix(&t, &r.correlation_id);
        key.extend_from_slice(&(r.position >> BUCKET_SHIFT).to_be_bytes());
        let mut positions = self
            .buckets
            .get(tree, &key)?
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        // Positions arrive in ascending order, so appending keeps them sorted.
        if keys::read_u64(&positions, positions.len().saturating_sub(8))
            .is_some_and(|last| last >= r.position)
        {
            return Err(FoldError(format!(
                "audit position {} recorded twice",
                r.position
            )));
        }
        positions.extend_from_slice(&r.position.to_be_bytes());
        self.buckets.put(key, positions);
        Ok(())
    }

    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        self.buckets.flush(out);
        Ok(())
    }

    fn discard(&mut self) {
        self.buckets.clear();
    }
}

/// Positions of a correlation after `after`, in order, from its buckets.
fn positions(
    tree: &sled::Tree,
    prefix: &[u8],
    after: Option<u64>,
) -> impl Iterator<Item = Result<u64, QueryError>> {
    let start = after.map_or(0, |a| a >> BUCKET_SHIFT);
    let mut from = prefix.to_vec();
    from.extend_from_slice(&start.to_be_bytes());
    let end = crate::page::successor(prefix);
    let range = match end {
        Some(e) => tree.range(from..e),
        None => tree.range(from..),
    };
    range.flat_map(move |entry| {
        let list: Vec<Result<u64, QueryError>> = match entry {
            Err(e) => vec![Err(QueryError::from(e))],
            Ok((_, value)) => value
                .chunks_exact(8)
                .filter_map(|c| keys::read_u64(c, 0))
                .filter(|p| after.is_none_or(|a| *p > a))
                .map(Ok)
                .collect(),
        };
        list
    })
}

fn read(log: &EventLog, position: u64) -> Result<Option<RecordedEvent>, QueryError> {
    log.read_at(position).map_err(|e| QueryError::Corrupt {
        projector: "audit",
        message: e.to_string(),
    })
}

/// Correlations whose event ids a [`LinkCache`] keeps.
const CACHED_CORRELATIONS: usize = 32;

/// The event ids read so far of one correlation (its first
/// [`MAX_LINK_SCAN`] events at most), with their positions.
#[derive(Default)]
struct CorrelationIds {
    ids: HashMap<ulid::Ulid, u64>,
    /// The last position read (the next read starts after it).
    read_to: Option<u64>,
    /// Events read.
    read: usize,
}

/// Event id -> position of the correlations queried lately (at most
/// [`CACHED_CORRELATIONS`], least recently used dropped), shared by every
/// audit query of the read models.
#[derive(Default)]
pub(crate) struct LinkCache {
    correlations: Mutex<Vec<CachedCorrelation>>,
}

/// One correlation of a [`LinkCache`]: (tenant prefix, correlation id)
/// and its ids.
type CachedCorrelation = (([u8; 16], String), Arc<Mutex<CorrelationIds>>);

impl LinkCache {
    /// The ids of `correlation` of the tenant `tenant`, moved to the front.
    fn correlation(&self, tenant: [u8; 16], correlation: &str) -> Arc<Mutex<CorrelationIds>> {
        let mut list = self
            .correlations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = match list
            .iter()
            .position(|((t, c), _)| *t == tenant && c == correlation)
        {
            Some(at) => list.remove(at),
            None => (
                (tenant, correlation.to_owned()),
                Arc::new(Mutex::new(CorrelationIds::default())),
            ),
        };
        let ids = entry.1.clone();
        list.insert(0, entry);
        list.truncate(CACHED_CORRELATIONS);
        ids
    }
}

/// Resolves cause links within correlations, through the read models'
/// [`LinkCache`].
struct Links<'a> {
    tree: &'a sled::Tree,
    log: &'a EventLog,
    tenant: [u8; 16],
    cache: &'a LinkCache,
}

impl Links<'_> {
    fn cause_of(&mut self, r: &RecordedEvent) -> Result<Option<u64>, QueryError> {
        let Some(cause) = r
            .metadata
            .get(CAUSATION_EVENT_ID)
            .or(r.causation_id.as_ref())
            .and_then(|c| ulid::Ulid::from_string(c).ok())
        else {
            return Ok(None);
        };
        let shared = self.cache.correlation(self.tenant, &r.correlation_id);
        let mut known = shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The cause comes before the event: read on up to it (once for
        // every query after this one).
        if known.read_to.is_none_or(|to| to + 1 < r.position) && known.read < MAX_LINK_SCAN {
            let prefix = correlation_prefix(&self.tenant, &r.correlation_id);
            for position in positions(self.tree, &prefix, known.read_to) {
                let position = position?;
                if position >= r.position || known.read >= MAX_LINK_SCAN {
                    break;
                }
                if let Some(e) = read(self.log, position)?.filter(|e| e.tenant_id == r.tenant_id) {
                    known.ids.insert(e.event_id, position);
                }
                known.read += 1;
                known.read_to = Some(position);
            }
        }
        Ok(known.ids.get(&cause).copied().filter(|p| *p < r.position))
    }

    fn entry(&mut self, r: RecordedEvent) -> Result<AuditEntry, QueryError> {
        let caused_by_position = self.cause_of(&r)?;
        Ok(AuditEntry {
            position: r.position,
            stream_id: r.stream_id,
            stream_version: r.stream_version,
            event_id: r.event_id.to_string(),
            event_type: r.event_type,
            schema_version: r.schema_version,
            tenant_id: r.tenant_id,
            correlation_id: r.correlation_id,
            causation_id: r.causation_id,
            caused_by_position,
            recorded_at_ms: r.recorded_at_ms,
            hash: keys::to_hex(&r.hash),
            prev_hash: keys::to_hex(&r.prev_hash),
            metadata: r.metadata,
        })
    }
}

const CORRELATION_CURSOR: u8 = 0xC0;
const STREAM_CURSOR: u8 = 0xA5;

/// The position or version an audit trail's cursor of `scope` (the
/// tenant and the correlation id or stream it pages) resumes after.
fn cursor_value(cursor: Option<&str>, tag: u8, scope: &[u8]) -> Result<Option<u64>, QueryError> {
    cursor
        .map(|c| {
            let suffix = crate::page::decode_cursor(c, crate::page::List::Audit, tag, scope)?;
            keys::read_u64(&suffix, 0)
                .filter(|_| suffix.len() == 8)
                .ok_or(QueryError::InvalidCursor)
        })
        .transpose()
}

fn make_cursor(tag: u8, scope: &[u8], value: u64) -> String {
    crate::page::encode_cursor(crate::page::List::Audit, tag, scope, &value.to_be_bytes())
}

/// Every event of a correlation id, in log order. The cursor is the last
/// position returned.
pub(crate) fn by_correlation(
    tree: &sled::Tree,
    log: &EventLog,
    cache: &LinkCache,
    tenant: &TenantId,
    correlation_id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<AuditEntry>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let prefix = correlation_prefix(&t, correlation_id);
    let after = cursor_value(cursor, CORRELATION_CURSOR, &prefix)?;
    let limit = limit.clamp(1, crate::page::MAX_PAGE_SIZE);
    let mut links = Links {
        tree,
        log,
        tenant: t,
        cache,
    };
    let mut items = Vec::new();
    let mut has_more = false;
    for position in positions(tree, &prefix, after) {
        match read(log, position?)? {
            Some(r) if r.tenant_id == tenant.as_str() && r.correlation_id == correlation_id => {
                if items.len() == limit {
                    has_more = true;
                    break;
                }
                items.push(links.entry(r)?);
            }
            _ => {}
        }
    }
    let next_cursor = if has_more {
        items
            .last()
            .map(|e: &AuditEntry| make_cursor(CORRELATION_CURSOR, &prefix, e.position))
    } else {
        None
    };
    Ok(Page {
        items,
        next_cursor,
        has_more,
    })
}

/// Every event of a stream, in version order, from the log's stream index.
/// The cursor is the last version returned.
pub(crate) fn by_stream(
    tree: &sled::Tree,
    log: &EventLog,
    cache: &LinkCache,
    tenant: &TenantId,
    stream_id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<AuditEntry>, QueryError> {
    let scope = [tenant.as_str().as_bytes(), b"\0", stream_id.as_bytes()].concat();
    let from = match cursor_value(cursor, STREAM_CURSOR, &scope)? {
        None => 1,
        Some(v) => v.checked_add(1).ok_or(QueryError::InvalidCursor)?,
    };
    let limit = limit.clamp(1, crate::page::MAX_PAGE_SIZE);
    let mut links = Links {
        tree,
        log,
        tenant: keys::tenant_prefix(tenant.as_str()),
        cache,
    };
    let mut items = Vec::new();
    let mut has_more = false;
    for record in log.iter_stream(stream_id, from) {
        let record = record.map_err(|e| QueryError::Corrupt {
            projector: "audit",
            message: e.to_string(),
        })?;
        if record.tenant_id != tenant.as_str() {
            continue;
        }
        if items.len() == limit {
            has_more = true;
            break;
        }
        items.push(links.entry(record)?);
    }
    let next_cursor = if has_more {
        items
            .last()
            .map(|e: &AuditEntry| make_cursor(STREAM_CURSOR, &scope, e.stream_version))
    } else {
        None
    };
    Ok(Page {
        items,
        next_cursor,
        has_more,
    })
}
