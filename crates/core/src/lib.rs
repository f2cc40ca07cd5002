//! Shared foundation of mmlatent: the maths and the bookkeeping every model family (MLD, the EBM
//! prior, the VAE baselines), the data layer and the evaluation code build on.
//! - [`modality`]: what a modality is (image, text, vector) and its tensor shape;
//! - [`dataset`]: a multimodal dataset in memory (aligned tuples + labels) and batches;
//! - [`family`]: what the front ends need from a model family (train, load);
//! - [`training`]: the one training loop every stage of every family runs through (learning-rate
//!   schedule, logging, NaN guard, checkpoint sets, exact resume, validation), reporting to the
//!   [`observe`] boundary; [`interrupt`]: a clean stop on Ctrl-C or SIGTERM (checkpoint, then exit);
//!   [`parallel`]: data-parallel training over several processes (c10d, Gloo);
//! - [`model`]: the [`model::MultimodalModel`] trait through which evaluation and sampling
//!   talk to any trained model;
//! - [`nets`]: encoders and decoders chosen by modality kind and size;
//! - [`optim`]: Adam / AdamW with checkpointable state and a fused CPU update;
//! - [`dist`]: Gaussian/Laplace latent distributions, products and mixtures of experts;
//!   [`probe`]: how much of the class features carry (linear and one-hidden-layer probes);
//! - [`loader`]: threaded, seeded batches of a split; [`rng`]: the seeded generator of data order;
//! - [`likelihood`]: per-modality likelihoods (Laplace, Gaussian, Bernoulli, categorical);
//! - [`config`], [`run`], [`checkpoint`]: experiments as TOML files, run folders (with their
//!   lock), atomic checkpoint sets;
//! - [`device`]: libtorch's thread count and seeds; [`host`]: tensors read out as Rust data (the
//!   one conversion, whatever a tensor's layout).
//!
//! It must not know how anything is shown or which device library is loaded: progress bars,
//! loss plots and image files are `mmlatent-present`'s (behind [`observe::Observer`]), choosing
//! and loading a CUDA device is `mmlatent-runner`'s; nor any file format of a dataset.

pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod device;
pub mod dist;
pub mod family;
pub mod host;
pub mod interrupt;
pub mod likelihood;
pub mod loader;
pub mod modality;
pub mod model;
pub mod nets;
pub mod observe;
pub mod optim;
pub mod parallel;
pub mod probe;
pub mod rng;
pub mod run;
pub mod side_by_side;
#[doc(hidden)]
pub mod testing;
pub mod training;

pub use dataset::{Batch, MultimodalDataset, Split};
pub use modality::{ModalityKind, ModalitySpec};
pub use model::MultimodalModel;
