//! Reading the stream index: the runs of a stream (see
//! [`crate::keyspace::StreamRun`]), the position of one version, and every
//! stream's head, derived from its last run.
//!
//! Every reader of the index goes through here, so the log, recovery,
//! verify and the replay tools agree on what a run means.

use crate::error::LogError;
use crate::keyspace::{self, StreamRun};

/// A malformed run key or value, named by the stream it belongs to.
fn malformed(stream: &str) -> LogError {
    LogError::Inconsistent {
        position: 0,
        problem: format!("malformed stream index entry of stream {stream:?}"),
    }
}

/// Decodes one stored run entry into (stream id, run).
pub fn decode_entry(key: &[u8], value: &[u8]) -> Option<(String, StreamRun)> {
    let (stream, first_version) = keyspace::parse_run_key(key)?;
    let run = keyspace::parse_run(first_version, value)?;
    Some((stream.to_owned(), run))
}

/// The run of `stream_id` that holds `version`, if any.
pub fn run_holding(
    tree: &sled::Tree,
    stream_id: &str,
    version: u64,
) -> Result<Option<StreamRun>, LogError> {
    if version == 0 {
        return Ok(None);
    }
    let start = keyspace::run_key(stream_id, 1);
    let end = keyspace::run_key(stream_id, version);
    let Some((key, value)) = tree.range(start..=end).next_back().transpose()? else {
        return Ok(None);
    };
    let (_, run) = decode_entry(&key, &value).ok_or_else(|| malformed(stream_id))?;
    Ok(run.position_of(version).map(|_| run))
}

/// Position of `stream_id`'s event at `version`, if the index has one.
pub fn position_of(
    tree: &sled::Tree,
    stream_id: &str,
    version: u64,
) -> Result<Option<u64>, LogError> {
    Ok(run_holding(tree, stream_id, version)?.and_then(|run| run.position_of(version)))
}

/// Lazily walks the runs of `stream_id` from the one holding
/// `from_version` (or the first after it), in version order.
pub fn runs_from(
    tree: &sled::Tree,
    stream_id: &str,
    from_version: u64,
) -> impl Iterator<Item = Result<StreamRun, LogError>> + Send + 'static {
    let from_version = from_version.max(1);
    let start_version = match run_holding(tree, stream_id, from_version) {
        Ok(Some(run)) => Ok(run.first_version),
        Ok(None) => Ok(from_version),
        Err(e) => Err(e),
    };
    let (first_error, range) = match start_version {
        Ok(v) => {
            let start = keyspace::run_key(stream_id, v);
            let end = keyspace::run_key(stream_id, u64::MAX);
            (None, Some(tree.range(start..=end)))
        }
        Err(e) => (Some(e), None),
    };
    let stream = stream_id.to_owned();
    first_error
        .map(Err)
        .into_iter()
        .chain(range.into_iter().flatten().map(move |entry| {
            let (key, value) = entry?;
            decode_entry(&key, &value)
                .map(|(_, run)| run)
                .ok_or_else(|| malformed(&stream))
        }))
}

/// The last run of `stream_id` that lies wholly below `limit`: where the
/// stream's durable head is.
pub fn last_run_below(
    tree: &sled::Tree,
    stream_id: &str,
    limit: u64,
) -> Result<Option<StreamRun>, LogError> {
    for entry in tree.scan_prefix(keyspace::stream_prefix(stream_id)).rev() {
        let (key, value) = entry?;
        let (_, run) = decode_entry(&key, &value).ok_or_else(|| malformed(stream_id))?;
        if run.last_position() < limit {
            return Ok(Some(run));
        }
    }
    Ok(None)
}
