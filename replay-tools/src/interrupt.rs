//! What an interrupted command leaves behind: on SIGINT, SIGTERM or
//! SIGHUP, every file registered with [`RemovedOnInterrupt`] (an export's
//! hidden `.FILE.<random>.partial`) is removed and the tool exits with
//! 128 + the signal's number, as a shell reports a process the signal
//! killed. Without the handler, a terminated export left its partial file
//! for ever, and a SIGINT sent to a tool started in the background (where
//! the shell ignores SIGINT) did nothing. An import interrupted this way
//! leaves its "restore did not finish" marker, which every opener refuses
//! (remove the directory and import again), as after a SIGKILL.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handler, on a thread of its own; once, at start. A
/// handler that cannot be installed leaves the signals' defaults.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let registered =
                std::mem::take(&mut *REGISTERED.lock().unwrap_or_else(PoisonError::into_inner));
            for path in &registered {
                let _ = std::fs::remove_file(path);
            }
            crate::stderr_line!("oms-replay: interrupted (signal {signal}); stopped");
            std::process::exit(128 + signal);
        }
    });
}

/// A file removed if the command is interrupted, for as long as this
/// lives.
#[derive(Debug)]
pub struct RemovedOnInterrupt(PathBuf);

impl RemovedOnInterrupt {
    /// Registers `path`.
    pub fn new(path: &Path) -> Self {
        REGISTERED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(path.to_path_buf());
        Self(path.to_path_buf())
    }
}

impl Drop for RemovedOnInterrupt {
    fn drop(&mut self) {
        REGISTERED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|path| path != &self.0);
    }
}
