//! Progress reporting for long work: an indicatif bar with rate and ETA on a terminal, plain
//! lines (about every 10%) when stderr is not a terminal (CI logs, pipes). A resumed stage
//! starts the bar at its step; rate and ETA count only the steps run in this process.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    /// Where this process started counting (a resumed stage starts past 0).
    first: u64,
    next_report: u64,
    start: Instant,
    message: String,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = if std::io::stderr().is_terminal() && std::env::var_os("MMLATENT_PLAIN_PROGRESS").is_none() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} {elapsed} elapsed, ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            Some(bar)
        } else {
            None
        };
        Self {
            bar,
            label: label.to_string(),
            total,
            done: 0,
            first: 0,
            next_report: 0,
            start: Instant::now(),
            message: String::new(),
        }
    }

    /// Starts counting at `position` (a resumed run).
    pub fn start_at(&mut self, position: u64) {
        self.done = position;
        self.first = position;
        self.next_report = position;
        if let Some(bar) = &self.bar {
            // Hidden while it jumps: set_length records the position in indicatif's rate
            // estimator (set_position alone may not, and the first step would then count as
            // `position` steps), and the estimator and clock then restart from here.
            bar.set_draw_target(ProgressDrawTarget::hidden());
            bar.set_position(position);
            bar.set_length(self.total);
            bar.reset_eta();
            bar.reset_elapsed();
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Prints a line above the bar (or as a plain line without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn set_message(&mut self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.clone());
        }
        self.message = message;
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                // The last step is reported by `finish` ("done in …"), not with an ETA of 0 s.
                if self.done >= self.next_report && self.done < self.total {
                    let secs = self.start.elapsed().as_secs_f64().max(1e-9);
                    let rate = (self.done - self.first) as f64 / secs;
                    let eta = if rate > 0.0 { (self.total.saturating_sub(self.done)) as f64 / rate } else { 0.0 };
                    eprintln!(
                        "{}: {}/{} ({rate:.1}/s, {secs:.0}s elapsed, ETA {eta:.0}s) {}",
                        self.label, self.done, self.total, self.message
                    );
                    self.next_report = self.done + (self.total / 10).max(1);
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.start.elapsed().as_secs_f64();
        let rate = (self.done - self.first) as f64 / secs.max(1e-9);
        eprintln!("{}: done in {secs:.1}s ({rate:.1}/s) {}", self.label, self.message);
    }
}
