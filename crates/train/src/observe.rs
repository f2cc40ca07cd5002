//! What the training loop tells the outside world, and nothing about how it is shown: the loop
//! ([`crate::training::Stage::run`]) reports each stage to the installed [`Observer`] — started,
//! notes, steps done, checkpoints written, finished — and a front end decides what to draw
//! (progress bars, loss plots: `mmlatent-present`). Without an observer a stage is silent but
//! for its notes, which go to stderr.

use crate::run::RunDir;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// A stage as it starts (or resumes).
#[derive(Clone, Copy, Debug)]
pub struct StageInfo<'a> {
    pub run: &'a RunDir,
    /// The stage's name, e.g. `ae_m0`, `score`, `classifiers`.
    pub name: &'a str,
    /// Its place among the run's stages, `(i, n)`, 1-based, when the model has several.
    pub position: Option<(usize, usize)>,
    /// The step it starts from (past 0 when resumed) and its total steps.
    pub start: usize,
    pub total: usize,
    /// The caller asked for no progress display (nested work, tests).
    pub quiet: bool,
    /// Nothing at all may be shown or written: a rank other than 0 of a data-parallel job
    /// (rank 0 reports for all).
    pub silent: bool,
}

/// Receives the events of one stage, in order; dropped without [`StageObserver::finished`] when
/// the stage fails.
pub trait StageObserver {
    /// A line for the user: a warning, a note on resuming.
    fn note(&mut self, line: &str);
    /// Step `step` (1-based) is done; `logged` holds the metrics' means when this step wrote a
    /// record to `metrics.jsonl` (the loss first unless one is called `loss`).
    fn step_done(&mut self, step: usize, logged: Option<&[(&str, f64)]>);
    /// A checkpoint set of step `step` was written (to `dir`).
    fn checkpoint_written(&mut self, step: usize, dir: &Path);
    /// Every step has run.
    fn finished(self: Box<Self>);
}

/// What a front end installs with [`set_observer`].
pub trait Observer: Send + Sync {
    /// A stage starts: returns what receives its events.
    fn stage_started(&self, stage: &StageInfo) -> Box<dyn StageObserver>;
}

static OBSERVER: RwLock<Option<Arc<dyn Observer>>> = RwLock::new(None);

/// Installs `observer` (`None`: none) for the stages started from now on in this process, and
/// returns the one it replaces.
pub fn set_observer(observer: Option<Arc<dyn Observer>>) -> Option<Arc<dyn Observer>> {
    let mut slot = OBSERVER.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    std::mem::replace(&mut *slot, observer)
}

/// The installed observer.
pub fn observer() -> Option<Arc<dyn Observer>> {
    OBSERVER.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// The receiver of a stage's events when no observer is installed: notes to stderr.
pub(crate) struct Stderr;

impl StageObserver for Stderr {
    fn note(&mut self, line: &str) {
        eprintln!("{line}");
    }
    fn step_done(&mut self, _: usize, _: Option<&[(&str, f64)]>) {}
    fn checkpoint_written(&mut self, _: usize, _: &Path) {}
    fn finished(self: Box<Self>) {}
}

/// The receiver of a silent stage's events (see [`StageInfo::silent`]).
struct Silent;

impl StageObserver for Silent {
    fn note(&mut self, _: &str) {}
    fn step_done(&mut self, _: usize, _: Option<&[(&str, f64)]>) {}
    fn checkpoint_written(&mut self, _: usize, _: &Path) {}
    fn finished(self: Box<Self>) {}
}

/// The receiver of `stage`'s events: nothing for a silent stage, else the installed
/// observer's, else [`Stderr`].
pub(crate) fn stage_started(stage: &StageInfo) -> Box<dyn StageObserver> {
    if stage.silent {
        return Box::new(Silent);
    }
    match observer() {
        Some(observer) => observer.stage_started(stage),
        None => Box::new(Stderr),
    }
}
