//! Helpers shared by the eventlog integration tests.
#![allow(dead_code)]

use eventlog::{AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent};

/// An event whose payload is `payload`.
pub(crate) fn event(payload: &str) -> NewEvent {
    NewEvent::new("TestEvent", "tenant-a", "corr", payload.as_bytes().to_vec())
}

/// A one-event append.
pub(crate) fn append_one(stream: &str, expected: ExpectedVersion, payload: &str) -> AppendRequest {
    AppendRequest::new(stream, expected, vec![event(payload)])
}

/// Opens a log in `dir` with the given durability.
pub(crate) fn open(dir: &std::path::Path, durability: Durability) -> EventLog {
    EventLog::open(LogConfig::new(dir).durability(durability)).expect("open log")
}

/// Copies the directory tree `from` into `to` (created).
pub(crate) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
