//! Progress bars on stderr with rate and ETA, for anything that walks the
//! log. Hidden when stderr is not a terminal or with `--quiet`, so scripts
//! and tests see clean output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over a known number of events (or a spinner while the
/// total is unknown; it becomes a bar with an ETA once the total is set).
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    drawn: bool,
}

/// The look of a bar (with a total: its length and ETA) or a spinner; the
/// rate in whole items per second.
fn style(total_known: bool) -> Option<ProgressStyle> {
    let template = if total_known {
        "{msg:>8} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} ({rate}, ETA {eta})"
    } else {
        "{msg:>8} [{elapsed_precise}] {spinner} {human_pos} ({rate})"
    };
    let style = ProgressStyle::with_template(template).ok()?;
    Some(
        style
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    )
}

impl Progress {
    /// A bar for `total` items labelled `label`; drawn only when `visible`
    /// and stderr is a terminal.
    pub fn new(label: &str, total: Option<u64>, visible: bool) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        let drawn = visible && std::io::stderr().is_terminal();
        if drawn {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            if let Some(style) = style(total.is_some()) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(250));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_message(label.to_owned());
        Self { bar, drawn }
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

    /// Sets the total once it is known: a spinner becomes a bar with an ETA.
    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
        if self.drawn {
            if let Some(style) = style(true) {
                self.bar.set_style(style);
            }
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
