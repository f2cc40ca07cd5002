//! Running experiments, the part of the tool that is neither a model nor a front end: find the
//! model family of an experiment's `[model] kind` ([`families`]), choose the device ([`device`],
//! which loads libtorch's CUDA backend), check an experiment and train it into a new or resumed
//! run folder ([`train`]), open a trained run with its dataset and model ([`open`]), evaluate it
//! into its own evaluation folder ([`evaluate`]). The
//! `mmlatent` binary and the Python bindings both call these, so a run trained or opened from
//! Python behaves (and fails, with the same messages) as from the CLI; both call
//! [`install_presentation`] first, so training draws its progress and loss plots alike.
//!
//! This crate prints warnings to stderr and shows progress through `mmlatent_present`; it knows
//! nothing of command-line flags beyond quoting them in error messages, nor of Python.

pub mod device;
pub mod evaluate;
pub mod families;
pub mod open;
pub mod sampler;
pub mod train;

pub use open::{open_run, OpenedRun};
pub use train::{train, ConfigSource, TrainRequest};

/// Installs [`mmlatent_present::stages::Presenter`] as this process's training observer: every
/// training stage (of a model or of the evaluation classifiers) then draws a progress bar and
/// writes its loss plots (`plots/<stage>.png`). Front ends call it once, at start.
pub fn install_presentation() {
    mmlatent_train::observe::set_observer(Some(std::sync::Arc::new(mmlatent_present::stages::Presenter)));
}
