//! The maths every model family (MLD, the EBM prior, the VAE baselines), the data layer and the
//! evaluation code build on:
//! - [`modality`]: what a modality is (image, text, vector) and its tensor shape;
//! - [`dataset`]: a multimodal dataset in memory (aligned tuples + labels) and batches, and
//!   where one comes from ([`dataset::DataConfig`], the `[data]` table);
//! - [`model`]: the [`model::MultimodalModel`] trait through which evaluation and sampling
//!   talk to any trained model;
//! - [`nets`]: encoders and decoders chosen by modality kind and size;
//! - [`likelihood`]: per-modality likelihoods (Laplace, Gaussian, Bernoulli, categorical);
//! - [`dist`]: Gaussian/Laplace latent distributions, products and mixtures of experts;
//!   [`probe`]: how much of the class features carry (linear and one-hidden-layer probes);
//! - [`optim`]: Adam / AdamW with its state in our hands and a fused CPU update; how gradients are
//!   shared with other processes is a [`optim::GradientExchange`] the training loop installs;
//! - [`precision`]: fp32 or bf16 mixed precision (libtorch's autocast, through a small C++ shim);
//! - [`rng`]: the seeded generator of data order; [`device`]: libtorch's thread count and seeds;
//!   [`host`]: tensors read out as Rust data (the one conversion, whatever a tensor's layout).
//!
//! It must not know how a model is trained or run, shown, measured or called: the training loop,
//! experiments' configs, run folders, checkpoint sets, data-parallel jobs, interrupts and batch
//! loaders are `mmlatent-train`'s; progress bars, plots and image files `mmlatent-present`'s;
//! benchmarks `mmlatent-bench`'s; choosing and loading a CUDA device `mmlatent-runner`'s; Python
//! `mmlatent-python`'s; nor any file format of a dataset (`mmlatent-data`).

pub mod dataset;
pub mod device;
pub mod dist;
pub mod host;
pub mod likelihood;
pub mod modality;
pub mod model;
pub mod nets;
pub mod optim;
pub mod precision;
pub mod probe;
pub mod rng;
#[doc(hidden)]
pub mod testing;

pub use dataset::{Batch, MultimodalDataset, Split};
pub use modality::{ModalityKind, ModalitySpec};
pub use model::MultimodalModel;
