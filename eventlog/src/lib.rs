/*!
A durable, verifiable, append-only event log on sled.

The log knows nothing of quotes or orders: it stores opaque payloads with an
envelope (stream, version, ids, tenant, correlation, time, metadata) in one
hash chain over the whole log.

- [`EventLog::open`] recovers after a crash and refuses a damaged log: it
  verifies every record before it serves or writes anything.
- [`EventLog::append`] appends to a stream with an [`ExpectedVersion`] and an
  optional [`Idempotency`] key, through one writer that group-commits many
  callers into one sled batch and one `fdatasync` of a redo journal frame
  (see [`journal`]).
- [`EventLog::iter_all`] / [`EventLog::iter_stream`] read lazily;
  [`EventLog::subscribe`] catches up then follows live appends.
- [`EventLog::consumer`] gives a consumer one tree where its rows and its
  checkpoint are committed atomically.
- [`verify::verify_tree`] walks the log and names the first bad position.
- [`restore::Restorer`] writes a log's stored records (an export) into a
  new data directory, checking the chain as it goes.

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
use eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent};

let dir = tempfile::tempdir()?;
let log = EventLog::open(LogConfig::new(dir.path()))?;
let event = NewEvent::new("QuoteCreated", "tenant-a", "corr-1", b"{}".to_vec());
let outcome = log
    .append(AppendRequest::new("quote-1", ExpectedVersion::NoStream, vec![event]))
    .await?;
assert_eq!((outcome.first_position, outcome.stream_version), (0, 1));
assert_eq!(log.read_stream("quote-1", 1, 10)?.len(), 1);
log.close().await;
# Ok(())
# }
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use acked::{acknowledged_head_warning, AckedHead, ACKED_HEAD_FILE};
pub use append::{
    AppendOutcome, AppendRequest, ExpectedVersion, Idempotency, MAX_ATTACHMENT_KEY_BYTES,
    MAX_ATTACHMENT_VALUE_BYTES,
};
pub use checkpoint::{ConsumerBatch, ConsumerFailure, ConsumerStore, RecoveryRewind};
pub use codec::{decode_payload, encode_payload, CodecError};
#[cfg(feature = "fault-injection")]
pub use config::FaultPlan;
pub use config::{Durability, LogConfig};
pub use error::{AppendError, LogError};
pub use log::{EventLog, WriterStats};
pub use record::{DecodeError, Hash, NewEvent, RecordedEvent, FORMAT_VERSION, GENESIS_HASH};
pub use recovery::{check_layout, check_restore_finished, read_meta};
pub use subscription::Subscription;
pub use verify::{check_acknowledged, verify_dir, Problem, VerifyError, VerifyReport};

mod acked;
mod append;
mod checkpoint;
pub mod codec;
mod config;
mod error;
mod heads;
pub mod index;
pub mod journal;
pub mod keyspace;
mod log;
pub mod pages;
pub mod probe;
pub mod record;
mod recovery;
pub mod restore;
pub mod storage;
mod subscription;
pub mod tenants;
mod upgrade;
pub mod verify;
mod writer;
