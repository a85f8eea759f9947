/*!
Projectors that fold the event log into operational read models, exactly
once, rebuildable, tenant-scoped.

- [`Projections::start`] runs one reader thread that decodes each batch once
  and fans it out to one runner thread per projector ([`PROJECTOR_NAMES`]:
  `quotes`, `orders`, `handoffs`, `fallout`, `audit`; the dashboard's
  counters are kept by `handoffs` and `fallout`). Each runner commits its
  rows and its checkpoint together on its own tree, many events per commit:
  one sled batch under 256 keys, key by key behind a pending record above
  (sled's lock on every tree of the process is held briefly), so a crash at
  any moment neither double-applies nor skips an event.
- [`Projections::status`] reports each projector's checkpoint, lag, rate and
  the event it stopped at, if any; [`Projections::wait_for`] waits until
  every projector has passed a position (read your writes).
- [`Projections::rebuild`] (online) and [`Projections::rebuild_offline`]
  (closed data directory) fold the log from 0 into fresh trees while the old
  ones keep serving, then swap atomically. A rebuilt tree is byte-for-byte
  the incrementally built one ([`ReadModels::digest`]).
- [`ReadModels`] is the query API: quotes, orders, handoffs, the fallout
  queue, the audit trail and the dashboard, each scoped to one tenant, with
  opaque cursors ([`Page`]) and ages computed from the caller's `now_ms`.

Storage layout and guarantees: [`store`](crate::store) (module docs), each
read model's key layout in its module under [`models`], and
`docs/adr/0005-projections.md`.

```
use std::time::Duration;
use domain::ids::{QuoteId, TenantId};
use domain::testing::fixtures;
use eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent};
use projections::Projections;

let dir = tempfile::tempdir()?;
let log = EventLog::open(LogConfig::new(dir.path()))?;
let created = fixtures::quote_created();
let event = NewEvent::new("QuoteCreated", "t1", "corr-1", eventlog::encode_payload(&created)?);
let outcome = log.append_blocking(AppendRequest::new("quote-q1", ExpectedVersion::NoStream, vec![event]))?;

let projections = Projections::start(log.clone())?;
projections.wait_for(outcome.last_position + 1, Duration::from_secs(10))?;
let quote = projections.read_models().quote(&TenantId::new("t1"), &QuoteId::new("q1"))?;
assert_eq!(quote.map(|q| q.revision), Some(1));
assert!(projections.read_models().quote(&TenantId::new("t2"), &QuoteId::new("q1"))?.is_none());
projections.shutdown();
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use error::{ProjectionError, QueryError};
pub use event::decode_record;
pub use keys::{tenant_prefix, TENANT_PREFIX_LEN};
pub use models::audit::{AuditEntry, CAUSATION_EVENT_ID};
pub use models::dashboard::{
    Dashboard, HourlyFallout, OutcomeCount, StageCount, TargetDashboard, DASHBOARD_HOURS,
};
pub use models::fallout::{
    CaseResolution, CaseStatus, FalloutAction, FalloutCaseRecord, FalloutCaseView, FalloutFilter,
    ResolutionHow,
};
pub use models::handoffs::{
    HandoffFilter, HandoffRecord, HandoffResolution, HandoffStage, HandoffView, ObservationRecord,
    SlaPolicy,
};
pub use models::orders::{
    LineHandoff, LineStage, OrderDetail, OrderFilter, OrderHandoffView, OrderLineRecord,
    OrderRecord, OrderStatus, OrderSummary, StepChange, StepHistoryEntry,
};
pub use models::quotes::{
    AcceptanceView, ApprovalState, ApprovalView, ProposalView, QuoteDetail, QuoteFilter,
    QuoteStatus, QuoteSummary, SignatureView,
};
pub use page::{Page, MAX_EXAMINED, MAX_PAGE_SIZE};
pub use projector::PROJECTOR_NAMES;
pub use read::ReadModels;
pub use runtime::{ProjectionConfig, Projections, ProjectorStatus, RebuildProgress, RebuildReport};
pub use store::{ProjectorFailure, TreeDigest};

mod commit;
mod error;
mod event;
mod keys;
pub mod models;
mod page;
mod projector;
mod read;
mod runtime;
pub mod store;
pub mod testing;
mod worker;
