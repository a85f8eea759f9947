//! UmaDB 0.7.8 as a peer (feature `umadb-peer`): the same workloads, in
//! the same process and on the same disk, through UmaDB's own embedded
//! writer thread (`writer_thread_blocking`, its default: group commit,
//! two fdatasyncs per commit, one for the pages and one for the header)
//! with its default storage options.
//!
//! Each client appends to its own stream with a conditional append: the
//! condition fails if any event tagged with the client's stream exists
//! after the position of the client's last append, which is what the event
//! log's `ExpectedVersion::Exact` checks. On an acknowledgement UmaDB
//! promises what the event log promises: the append is on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use umadb_core::mvcc::{Mvcc, StorageOptions};
use umadb_core::writer_thread_request::WriterThreadRequest;
use umadb_dcb::{
    DcbAppendCondition, DcbEvent, DcbEventStoreSync, DcbQuery, DcbQueryItem, DcbResult,
};

use super::{cell_name, clients, latency_row, payload, runtime, Row};

/// Most events UmaDB's writer thread takes into one commit (the event
/// log's `max_batch_events` default).
const MAX_BATCH_EVENTS: usize = 4096;

/// An open UmaDB with its writer thread.
struct Store {
    mvcc: Arc<Mvcc>,
    requests: mpsc::Sender<WriterThreadRequest>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Store {
    fn open(dir: &std::path::Path) -> Self {
        let mvcc =
            Arc::new(Mvcc::new(false, StorageOptions::default().db_path(dir)).expect("open umadb"));
        let (requests, rx) = mpsc::channel(65_536);
        let (head, _) = watch::channel(None);
        let for_writer = mvcc.clone();
        let writer = std::thread::spawn(move || {
            umadb_core::writer_thread_blocking::writer_thread_blocking(
                for_writer,
                rx,
                head,
                MAX_BATCH_EVENTS,
            );
        });
        Self {
            mvcc,
            requests,
            writer: Some(writer),
        }
    }

    /// Appends `events` if no event tagged `tag` exists after `after`;
    /// the position of the last event appended.
    async fn append(&self, tag: &str, after: Option<u64>, events: Vec<DcbEvent>) -> DcbResult<u64> {
        let (response_tx, response) = oneshot::channel();
        let condition = DcbAppendCondition {
            fail_if_events_match: DcbQuery {
                items: vec![DcbQueryItem {
                    types: vec![],
                    tags: vec![tag.to_owned()],
                }],
            },
            after,
        };
        self.requests
            .send(WriterThreadRequest::Append {
                events,
                condition: Some(condition),
                tracking_info: None,
                response_tx,
                cancel: None,
            })
            .await
            .expect("writer thread");
        response.await.expect("writer thread answers")
    }

    fn close(mut self) {
        let _ = self.requests.try_send(WriterThreadRequest::Shutdown);
        drop(self.requests);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn event(tag: &str, i: u64) -> DcbEvent {
    DcbEvent {
        event_type: "LineAdded".into(),
        tags: vec![tag.to_owned()],
        data: payload(i),
        uuid: None,
        metadata: vec![],
    }
}

/// Durable conditional appends of `per_append` events from `writers`
/// concurrent tasks to distinct streams.
pub(crate) fn appends(writers: usize, per_append: u64, seconds: f64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()));
    let (latencies, elapsed) = runtime().block_on(clients(writers, seconds, |w, stop| {
        let store = store.clone();
        async move {
            let tag = format!("stream:quote-{w}");
            let mut latencies: Vec<Duration> = Vec::new();
            let mut after = None;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let events = (i..i + per_append).map(|k| event(&tag, k)).collect();
                let last = store
                    .append(&tag, after, events)
                    .await
                    .expect("conditional append");
                latencies.push(t.elapsed());
                after = Some(last);
                i += per_append;
            }
            latencies
        }
    }));
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close();
    }
    let name = cell_name("umadb", writers, per_append);
    latency_row(name, &latencies, per_append, elapsed)
}

/// Writes `events` events (100 per append, 1,000 streams), then reads
/// them all from the start in this process, like `read_from_start` does
/// for the event log.
pub(crate) fn read_from_start(events: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = Store::open(dir.path());
    rt.block_on(async {
        let mut written = 0u64;
        while written < events {
            let count = 100.min(events - written);
            let tag = format!("stream:quote-{}", written / 100 % 1000);
            let batch = (0..count).map(|k| event(&tag, written + k)).collect();
            // Unconditional: the read, not the check, is measured here.
            let (response_tx, response) = oneshot::channel();
            store
                .requests
                .send(WriterThreadRequest::Append {
                    events: batch,
                    condition: None,
                    tracking_info: None,
                    response_tx,
                    cancel: None,
                })
                .await
                .expect("writer thread");
            response.await.expect("answer").expect("append");
            written += count;
        }
    });
    let db = umadb_core::db::UmaDb::from_arc(store.mvcc.clone());
    let started = Instant::now();
    let mut count = 0u64;
    for event in db.read(None, None, false, None).expect("read") {
        let event = event.expect("event");
        assert!(!event.event.data.is_empty());
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(count, events);
    drop(db);
    store.close();
    Row {
        name: format!("umadb_read_{}k", events / 1000),
        events_per_s: count as f64 / seconds,
        ..Row::default()
    }
}
