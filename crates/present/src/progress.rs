//! Progress reporting for long work: an indicatif bar with rate and ETA on a terminal, plain
//! lines (about every 10%) when stderr is not a terminal (CI logs, pipes). A resumed stage
//! starts the bar at its step; rate and ETA count only the steps run in this process.
//!
//! Bars of work running at once (stages trained side by side) are drawn together, one line
//! each, through one process-wide [`MultiProgress`].
//!
//! An embedding front end (the Python bindings) may install an [`Observer`] with
//! [`set_observer`]: while one is installed, new progress reports go to it as [`Event`]s instead
//! of stderr.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// What a [`Progress`] tells an installed [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// `done` of the `total` steps of `label` are complete; `message` is the latest status
    /// (e.g. the last logged losses), possibly empty.
    Step { label: &'a str, done: u64, total: u64, message: &'a str },
    /// A line for the user (a warning, a note on resuming).
    Line { label: &'a str, line: &'a str },
    /// `label` is complete, after `seconds` in this process.
    Finish { label: &'a str, done: u64, total: u64, seconds: f64 },
}

/// Receives the [`Event`]s of every [`Progress`] created while it is installed.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// An [`Observer`] of a closure (which then takes events of any lifetime).
pub fn observer(f: impl Fn(&Event) + Send + Sync + 'static) -> Observer {
    Arc::new(f)
}

static OBSERVER: RwLock<Option<Observer>> = RwLock::new(None);

/// Every terminal bar of the process, so that bars of concurrent work do not draw over each other.
fn bars() -> &'static MultiProgress {
    static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Installs `observer` (or, with `None`, restores stderr reporting) for progress reports created
/// from now on, and returns the one it replaces.
pub fn set_observer(observer: Option<Observer>) -> Option<Observer> {
    let mut slot = OBSERVER.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    std::mem::replace(&mut *slot, observer)
}

/// Held by the tests that install an observer, which would otherwise see each other's reports.
#[cfg(test)]
pub(crate) static OBSERVER_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn current_observer() -> Option<Observer> {
    OBSERVER.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

pub struct Progress {
    observer: Option<Observer>,
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
        let observer = current_observer();
        let bar = if observer.is_none()
            && std::io::stderr().is_terminal()
            && std::env::var_os("MMLATENT_PLAIN_PROGRESS").is_none()
        {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} {elapsed} elapsed, ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            Some(bars().add(bar))
        } else {
            None
        };
        Self {
            observer,
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
            // Hidden (taken off the display) while it jumps: set_length records the position in
            // indicatif's rate estimator (set_position alone may not, and the first step would
            // then count as `position` steps), and the estimator and clock then restart here.
            bars().remove(bar);
            bar.set_position(position);
            bar.set_length(self.total);
            bar.reset_eta();
            bar.reset_elapsed();
            bars().add(bar.clone());
        }
    }

    /// Prints a line above the bar (or as a plain line without one).
    pub fn println(&self, line: &str) {
        if let Some(observer) = &self.observer {
            return observer(&Event::Line { label: &self.label, line });
        }
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
        if let Some(observer) = &self.observer {
            let event = Event::Step { label: &self.label, done: self.done, total: self.total, message: &self.message };
            return observer(&event);
        }
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
        let secs = self.start.elapsed().as_secs_f64();
        if let Some(observer) = &self.observer {
            return observer(&Event::Finish { label: &self.label, done: self.done, total: self.total, seconds: secs });
        }
        let rate = (self.done - self.first) as f64 / secs.max(1e-9);
        let line = format!("{}: done in {secs:.1}s ({rate:.1}/s) {}", self.label, self.message);
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                bars().remove(bar);
                // Above the bars of work still running.
                if bars().println(&line).is_err() {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn an_installed_observer_gets_steps_lines_and_the_end() {
        // Other tests may create progress reports meanwhile: keep only this one's label.
        let _serial = OBSERVER_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let label = "observer-test-stage";
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = seen.clone();
        let previous = set_observer(Some(observer(move |e| {
            let text = match *e {
                Event::Step { label: l, done, total, message } if l == label => {
                    format!("step {done}/{total} {message}")
                }
                Event::Line { label: l, line } if l == label => format!("line {line}"),
                Event::Finish { label: l, done, total, .. } if l == label => format!("finish {done}/{total}"),
                _ => return,
            };
            sink.lock().unwrap().push(text);
        })));
        let mut p = Progress::new(label, 4);
        p.start_at(1);
        p.inc(1);
        p.set_message("loss 0.5".into());
        p.println("a note");
        p.inc(2);
        p.finish();
        set_observer(previous);
        let after = Progress::new(label, 1);
        after.finish();
        assert_eq!(*seen.lock().unwrap(), ["step 2/4 ", "line a note", "step 4/4 loss 0.5", "finish 4/4"]);
    }
}
