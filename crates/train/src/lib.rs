//! The training runtime of mmlatent: everything between a model's step and a run folder on disk.
//! Every stage of every model family (MLD's autoencoders and score network, the EBM, the VAE
//! baselines) and the evaluation classifiers train through it; a model supplies only its step.
//! - [`training`]: the one training loop ([`training::Stage`]: learning-rate schedule, logging,
//!   NaN guard, checkpoint sets, exact resume, validation), reporting to the [`observe`]
//!   boundary; [`interrupt`]: a clean stop on Ctrl-C or SIGTERM (checkpoint, then exit);
//! - [`parallel`]: data-parallel training over several processes (c10d: Gloo, NCCL), including
//!   the [`mmlatent_core::optim::GradientExchange`] the loop installs into its optimisers;
//!   [`side_by_side`]: independent stages trained at once on the CPU;
//! - [`config`]: experiments as TOML files (`seed`, `device`, `[data]`, `[train]`, `[model]`);
//!   [`run`]: run folders (with their lock and metrics logs); [`checkpoint`]: atomic files and
//!   checkpoint sets;
//! - [`family`]: what the front ends need from a model family (train, load);
//! - [`loader`]: threaded, seeded batches of a split, each rank's share of them in a job.
//!
//! It builds on `mmlatent-core` (the models' maths) and must not know any model family, any file
//! format of a dataset, how anything is shown (progress bars and plots are `mmlatent-present`'s,
//! behind [`observe::Observer`]), which device library is loaded (`mmlatent-runner`'s), or
//! Python.

pub mod checkpoint;
pub mod config;
pub mod family;
pub mod interrupt;
pub mod loader;
pub mod observe;
pub mod parallel;
pub mod run;
pub mod side_by_side;
#[doc(hidden)]
pub mod testing;
pub mod training;
