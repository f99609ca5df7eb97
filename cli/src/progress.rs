//! A progress bar for long runs: drawn on stderr only when both stdout and stderr are terminals
//! (piped output stays clean), and only once a run has taken more than a second
//! (`PDIPAM_PROGRESS_AFTER_MS` changes that second, so a test can see the bar on a short run).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const SHOW_AFTER: Duration = Duration::from_secs(1);

fn show_after() -> Duration {
    std::env::var("PDIPAM_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(SHOW_AFTER, Duration::from_millis)
}

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    after: Duration,
    /// A terminal is there to draw on and the bar is not drawn yet.
    waiting: bool,
}

impl Progress {
    /// A bar over `len` steps.
    pub fn new(len: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed}] {wide_bar} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            after: show_after(),
            waiting: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Names the current step.
    pub fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// A step is done.
    pub fn step(&mut self) {
        self.bar.inc(1);
        self.poke();
    }

    /// Work goes on within a step: shows the bar once the run is slow enough to need it.
    pub fn poke(&mut self) {
        if self.waiting && self.started.elapsed() >= self.after {
            self.waiting = false;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
