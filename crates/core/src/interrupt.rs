//! Stopping a training run cleanly when the user (Ctrl-C) or a scheduler (SIGTERM, e.g. Slurm
//! at its time limit) asks: the step in progress finishes, the training loop writes a
//! checkpoint set at that step and the stage ends with [`Interrupted`], which names the set, so
//! `--resume` continues exactly where it stopped (the resumed weights are bit-identical to an
//! uninterrupted run's: see [`crate::training`]).
//!
//! This module holds only the flag; the front end decides what a signal means. The CLI calls
//! [`request`] from its signal handler and exits at once when it returns false: no stage is
//! training (nothing would be lost), or a request is already pending (a second Ctrl-C).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static STAGES_TRAINING: AtomicUsize = AtomicUsize::new(0);

/// Asks the training stage in progress to checkpoint and stop after its current step. Returns
/// true when that request is now pending; false when no stage is training or a request was
/// already pending, in which case the caller should stop the work itself.
pub fn request() -> bool {
    STAGES_TRAINING.load(Ordering::SeqCst) > 0 && !REQUESTED.swap(true, Ordering::SeqCst)
}

/// Consumes a pending request (the training loop, once per step, when it can act on it). A
/// request that comes during a stage's last step stays pending: the run's next stage stops
/// after its first step.
pub(crate) fn take() -> bool {
    REQUESTED.swap(false, Ordering::SeqCst)
}

/// Held by [`crate::training::Stage::run`] while it trains: requests count only then.
pub(crate) struct Training;

impl Training {
    pub(crate) fn start() -> Self {
        STAGES_TRAINING.fetch_add(1, Ordering::SeqCst);
        Training
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        STAGES_TRAINING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error a stage ends with when it stopped on request, after writing its checkpoint set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub stage: String,
    /// The last step done, saved in `set`.
    pub step: usize,
    pub total: usize,
    pub set: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted: stage {} stopped after step {} of {}, saved in {}; the same command with --resume \
             continues from there",
            self.stage,
            self.step,
            self.total,
            self.set.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// Whether `error` (or any error it wraps) is an [`Interrupted`] stage.
pub fn is_interrupted(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<Interrupted>())
}
