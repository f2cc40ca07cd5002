//! Shared foundation of mmlatent.
//!
//! Every model family (MLD, the EBM prior, the VAE baselines), the data layer and the
//! evaluation code build on these pieces:
//! - [`modality`]: what a modality is (image, text, vector) and its tensor shape;
//! - [`dataset`]: a multimodal dataset in memory (aligned tuples + labels) and batches;
//! - [`family`]: what the CLI needs from a model family (train, load);
//! - [`training`]: the one training loop every stage of every family runs through (learning-rate
//!   schedule, logging, progress, NaN guard, checkpoint sets, exact resume, validation);
//! - [`model`]: the [`model::MultimodalModel`] trait through which evaluation and sampling
//!   talk to any trained model;
//! - [`nets`]: encoders and decoders chosen by modality kind and size;
//! - [`optim`]: Adam / AdamW with checkpointable state and a fused CPU update;
//! - [`dist`]: Gaussian/Laplace latent distributions, products and mixtures of experts;
//! - [`loader`]: threaded, seeded batches of a split; [`rng`]: the seeded generator of data order;
//! - [`likelihood`]: per-modality likelihoods (Laplace, Gaussian, Bernoulli, categorical);
//! - [`config`], [`run`], [`checkpoint`], [`progress`], [`plot`], [`grid`]: experiments as TOML
//!   files, run folders (with their lock), atomic checkpoint sets, progress bars, loss plots,
//!   PNG grids;
//! - [`device`]: CPU/CUDA selection and thread settings.

pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod device;
pub mod dist;
pub mod family;
pub mod grid;
pub mod likelihood;
pub mod loader;
pub mod modality;
pub mod model;
pub mod nets;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod rng;
pub mod run;
pub mod training;

pub use dataset::{Batch, MultimodalDataset, Split};
pub use modality::{ModalityKind, ModalitySpec};
pub use model::MultimodalModel;
