//! Where each projector stands: the slots its runner (and the reader, on a
//! read failure) publish to, and the public [`ProjectorStatus`] built from
//! them.

use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::Serialize;

use super::rate::RateMeter;
use super::rebuild::RebuildProgress;
use crate::store::ProjectorFailure;

/// Where one projector stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectorStatus {
    /// The projector.
    pub name: String,
    /// The generation queries read.
    pub generation: u64,
    /// The position of the next event it will apply.
    pub checkpoint: u64,
    /// The log's durable head (next position to be written).
    pub head: u64,
    /// `head - checkpoint`.
    pub lag: u64,
    /// Events applied per second over the last few seconds.
    pub events_per_s: f64,
    /// Where it stopped, if it stopped.
    pub failure: Option<ProjectorFailure>,
    /// The rebuild in progress, if one is.
    pub rebuild: Option<RebuildProgress>,
    /// False once its runner has ended (after shutdown).
    pub running: bool,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) checkpoint: u64,
    pub(super) failure: Option<ProjectorFailure>,
    pub(super) meter: RateMeter,
    pub(super) rebuild: Option<RebuildProgress>,
    pub(super) running: bool,
}

pub(super) struct Shared {
    pub(super) slots: Mutex<Vec<Slot>>,
    pub(super) changed: Condvar,
    pub(super) notify: tokio::sync::Notify,
    pub(super) stop: AtomicBool,
    pub(super) stop_reader: tokio::sync::Notify,
}

impl Shared {
    pub(super) fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        match self.slots.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(super) fn update(&self, idx: usize, f: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.slots().get_mut(idx) {
            f(slot);
        }
        self.changed.notify_all();
        self.notify.notify_waiters();
    }
}
