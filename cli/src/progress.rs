//! Progress of long runs, on stderr (stdout keeps only the report): a bar when stderr is a
//! terminal, once a run has taken more than a second; otherwise (a log, a pipe) a plain line
//! every ten seconds once a run has taken that long. `PDIPAM_PROGRESS_AFTER_MS` changes that
//! first second (and the plain lines' first ten), so a test can see either on a short run.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const SHOW_AFTER: Duration = Duration::from_secs(1);
/// Where no bar can be drawn: the first plain line after this long, then one per this long.
const LINE_EVERY: Duration = Duration::from_secs(10);

fn show_after(default: Duration) -> Duration {
    std::env::var("PDIPAM_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(default, Duration::from_millis)
}

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    after: Duration,
    /// A terminal is there to draw on and the bar is not drawn yet.
    waiting: bool,
    /// No terminal: when the next plain line is due (None: never).
    next_line: Option<Instant>,
    /// Plain lines: every this long.
    line_every: Duration,
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
        let started = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        let line_every = show_after(LINE_EVERY);
        Progress {
            bar,
            started,
            after: show_after(SHOW_AFTER),
            waiting: terminal,
            next_line: (!terminal).then(|| started + line_every),
            line_every,
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
        if let Some(due) = self.next_line.filter(|due| Instant::now() >= *due) {
            eprintln!(
                "pdipam: {} of {} steps done, {}, {:.1} s",
                self.bar.position(),
                self.bar.length().unwrap_or(0),
                self.bar.message(),
                self.started.elapsed().as_secs_f64()
            );
            self.next_line = Some(due.max(Instant::now() - self.line_every) + self.line_every);
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
