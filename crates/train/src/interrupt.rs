//! Stopping a training run cleanly when the user (Ctrl-C) or a scheduler (SIGTERM, e.g. Slurm
//! at its time limit) asks: the step in progress finishes, the training loop writes a
//! checkpoint set at that step and the stage ends with [`Interrupted`], which names the set, so
//! `--resume` continues exactly where it stopped (the resumed weights are bit-identical to an
//! uninterrupted run's: see [`crate::training`]).
//!
//! This module holds only the flag; the front end decides what a signal means. The CLI calls
//! [`request`] from its signal handler and exits at once when it returns false: no stage is
//! training (nothing would be lost), or a request is already pending (a second Ctrl-C).
//!
//! Stages trained side by side ([`crate::side_by_side`]) form a [`Group`]: the first of them to
//! take a request stops them all, each after its own current step.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static STAGES_TRAINING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The stop flag of the group this thread's stages belong to, if any.
    static GROUP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Asks the training stage in progress to checkpoint and stop after its current step. Returns
/// true when that request is now pending; false when no stage is training or a request was
/// already pending, in which case the caller should stop the work itself.
pub fn request() -> bool {
    STAGES_TRAINING.load(Ordering::SeqCst) > 0 && !REQUESTED.swap(true, Ordering::SeqCst)
}

/// Consumes a pending request (the training loop, once per step, when it can act on it). A
/// request that comes during a stage's last step stays pending: the run's next stage stops
/// after its first step. Within a [`Group`], true from the moment any member took a request (or
/// the group was stopped) on.
pub(crate) fn take() -> bool {
    let taken = REQUESTED.swap(false, Ordering::SeqCst);
    GROUP.with_borrow(|group| match group {
        Some(stop) => {
            if taken {
                stop.store(true, Ordering::SeqCst);
            }
            stop.load(Ordering::SeqCst)
        }
        None => taken,
    })
}

/// Stages that stop together: while a thread holds a [`Group::join`] guard, the stages it trains
/// stop (checkpointing, as on Ctrl-C) as soon as any thread of the group takes a stop request or
/// [`Group::stop`] is called — e.g. because another member failed.
#[derive(Clone, Default)]
pub struct Group {
    stop: Arc<AtomicBool>,
}

/// Membership of the calling thread in a [`Group`], until dropped.
pub struct Member(());

impl Group {
    /// Makes the calling thread's stages members of this group.
    pub fn join(&self) -> Member {
        GROUP.set(Some(self.stop.clone()));
        Member(())
    }

    /// Asks every member stage to checkpoint and stop after its current step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the group was stopped (by a request one of its stages took, or by [`Group::stop`]).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        GROUP.set(None);
    }
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
