//! Shared test helpers: a temporary log, given-events appends, generated
//! histories.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Duration;

use domain::decider::DomainEvent;
use eventlog::{
    AppendOutcome, AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent,
};
use projections::testing::{HistoryConfig, HistoryGenerator};
use projections::{ProjectionConfig, Projections, ReadModels};

pub const WAIT: Duration = Duration::from_secs(60);

/// A log in a temporary directory.
pub struct TestLog {
    pub dir: tempfile::TempDir,
    pub log: EventLog,
}

impl TestLog {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log =
            EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
        Self { dir, log }
    }

    /// Appends `events` to `stream` for `tenant` under `correlation`.
    pub fn append<E: serde::Serialize + DomainEvent>(
        &self,
        stream: &str,
        tenant: &str,
        correlation: &str,
        events: &[E],
    ) -> AppendOutcome {
        let events = events
            .iter()
            .map(|e| {
                let mut n = NewEvent::new(
                    e.event_type(),
                    tenant,
                    correlation,
                    eventlog::encode_payload(e).unwrap(),
                );
                n.schema_version = e.schema_version();
                n
            })
            .collect();
        self.log
            .append_blocking(AppendRequest::new(stream, ExpectedVersion::Any, events))
            .unwrap()
    }

    /// Appends `n` generated events (at least).
    pub fn generate(&self, generator: &mut HistoryGenerator, n: u64) -> u64 {
        let mut last = 0;
        for a in generator.take_events(n) {
            last = self.log.append_blocking(a.request()).unwrap().last_position;
        }
        last
    }

    /// Every projector caught up offline, then the read models.
    pub fn project(&self) -> ReadModels {
        Projections::catch_up_offline(&self.log, &ProjectionConfig::default(), &mut |_, _| {})
            .unwrap()
    }
}

pub fn generator(seed: u64) -> HistoryGenerator {
    HistoryGenerator::new(HistoryConfig {
        seed,
        ..HistoryConfig::default()
    })
}
