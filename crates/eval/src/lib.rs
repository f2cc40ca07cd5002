//! Evaluation of multimodal generative models, the way the field scores them.
//!
//! - [`classifier`]: one classifier per modality, trained on the dataset's labels, saved, reused;
//! - [`coherence`]: joint and conditional coherence of any [`mmlatent_core::MultimodalModel`];
//! - [`fid`]: Fréchet distances between feature sets (FID, and FD in the penultimate features of
//!   the tool's own classifiers), image folders;
//! - [`inception`]: Inception-v3 exactly as pytorch-fid builds it for FID;
//! - [`oracle`]: reference models that return real data (coherence anchors for tests);
//! - [`provenance`]: where an evaluation's numbers come from;
//! - [`report`]: everything above as one report (table, JSON, CSV, sample grids).
//!
//! It trains its classifiers through the training loop of `mmlatent_train`, shows progress and
//! writes image grids through `mmlatent_present`, and must not know any model family (it sees
//! [`mmlatent_core::MultimodalModel`]) nor a front end.

pub mod classifier;
pub mod coherence;
pub mod fid;
pub mod inception;
pub mod latent;
pub mod oracle;
pub mod provenance;
pub mod report;

pub use classifier::{ClassifierOptions, Classifiers};
pub use report::{evaluate, EvalOptions, Report};
