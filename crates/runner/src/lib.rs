//! Running experiments, the part of the tool that is neither a model nor a front end: find the
//! model family of an experiment's `[model] kind` ([`families`]), check an experiment and train
//! it into a new or resumed run folder ([`train`]), open a trained run with its dataset and
//! model ([`open`]). The `mmlatent` binary and the Python bindings both call these, so a run
//! trained or opened from Python behaves (and fails, with the same messages) as from the CLI.
//!
//! This crate prints progress and warnings to stderr (through `mmlatent_core::progress` where
//! training reports steps) and knows nothing of command-line flags beyond quoting them in
//! error messages, nor of Python.

pub mod families;
pub mod open;
pub mod sampler;
pub mod train;

pub use open::{open_run, OpenedRun};
pub use train::{train, ConfigSource, TrainRequest};
