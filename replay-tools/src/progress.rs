//! Progress bars on stderr with rate and ETA, for anything that walks the
//! log. Hidden when stderr is not a terminal or with `--quiet`, so scripts
//! and tests see clean output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over a known number of events (or a spinner when the
/// total is unknown).
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` items labelled `label`; drawn only when `visible`
    /// and stderr is a terminal.
    pub fn new(label: &str, total: Option<u64>, visible: bool) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        if visible && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let template = if total.is_some() {
                "{msg:>8} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} ({per_sec}, ETA {eta})"
            } else {
                "{msg:>8} [{elapsed_precise}] {spinner} {human_pos} ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(250));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_message(label.to_owned());
        Self { bar }
    }

    /// A bar that is never drawn (library callers, benchmarks).
    pub fn hidden() -> Self {
        Self::new("", None, false)
    }

    /// Sets the number of items done.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Adds `n` items done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Sets the total once it is known.
    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
