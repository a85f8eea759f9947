//! The reader thread: follows the log from the lowest checkpoint, decodes
//! each batch once and sends it to every runner.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use eventlog::EventLog;

use super::runner::Msg;
use super::status::Shared;
use crate::event::decode;
use crate::store::ProjectorFailure;
use crate::worker::EventBatch;

pub(super) struct Reader {
    pub(super) log: EventLog,
    pub(super) from: u64,
    pub(super) senders: Vec<SyncSender<Msg>>,
    pub(super) shared: Arc<Shared>,
    pub(super) batch_size: usize,
}

impl Reader {
    pub(super) fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(e) => {
                self.fail(self.from, &format!("reader could not start: {e}"));
                return;
            }
        };
        runtime.block_on(self.follow());
    }

    fn fail(&self, position: u64, message: &str) {
        tracing::error!(position, error = message, "projection reader stopped");
        for idx in 0..self.senders.len() {
            self.shared.update(idx, |slot| {
                if slot.failure.is_none() {
                    slot.failure = Some(ProjectorFailure {
                        position,
                        message: message.to_owned(),
                    });
                }
            });
        }
    }

    async fn follow(&self) {
        let mut sub = self.log.subscribe(self.from);
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let first = tokio::select! {
                r = sub.next_batch(self.batch_size) => r,
                () = self.shared.stop_reader.notified() => return,
            };
            let mut records = match first {
                Ok(v) if v.is_empty() => return,
                Ok(v) => v,
                Err(e) => return self.fail(sub.position(), &format!("log read failed: {e}")),
            };
            while records.len() < self.batch_size {
                match sub.try_next_batch(self.batch_size - records.len()) {
                    Ok(v) if v.is_empty() => break,
                    Ok(v) => records.extend(v),
                    Err(e) => return self.fail(sub.position(), &format!("log read failed: {e}")),
                }
            }
            let batch: EventBatch = Arc::new(records.into_iter().map(decode).collect());
            let mut alive = false;
            for tx in &self.senders {
                alive |= tx.send(Msg::Events(batch.clone())).is_ok();
            }
            if !alive {
                return;
            }
        }
    }
}
