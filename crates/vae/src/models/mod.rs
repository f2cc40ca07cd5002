//! The seven models, each a small piece of maths over the shared [`Frame`]: how it aggregates
//! the unimodal experts, what it optimises, and which latents it decodes when generating.
//!
//! | kind        | aggregation                                   | objective                              |
//! |-------------|-----------------------------------------------|----------------------------------------|
//! | `mvae`      | product of experts with a prior expert         | sub-sampled ELBO (joint + unimodal + k) |
//! | `mmvae`     | uniform mixture of experts                     | stratified IWAE / DReG                  |
//! | `mopoe`     | mixture of products over all 2^M − 1 subsets   | ELBO with the mixture's KL upper bound  |
//! | `mvtcae`    | product of experts                             | total-correlation (VIB + conditional VIB) |
//! | `mmjsd`     | mixture of experts; dynamic prior = weighted PoE | ELBO with Jensen–Shannon regulariser  |
//! | `nexus`     | modality latents → messages → joint latent     | bottom ELBOs + top ELBO over latents    |
//! | `mmvaeplus` | mixture over shared latents + private latents  | stratified IWAE / DReG, auxiliary priors |

mod mmjsd;
mod mmvae;
mod mmvaeplus;
mod mopoe;
mod mvae;
mod mvtcae;
mod nexus;

use crate::config::{VaeConfig, VaeOptions};
use crate::dist::{sample_uniform_mixture, Dist};
use crate::estimator::DregPath;
use crate::frame::Frame;
use anyhow::Result;
use mmlatent_core::nets::NetSize;
use mmlatent_core::ModalitySpec;
use tch::{nn, Kind, Tensor};

/// One training step's loss (a scalar to minimise), metrics, and DReG encoder paths to finish.
pub struct Loss {
    pub loss: Tensor,
    pub metrics: Vec<(&'static str, Tensor)>,
    pub dreg: Vec<DregPath>,
}

/// What distinguishes one multimodal VAE from another.
pub trait Objective {
    /// The loss of a batch (`xs[m]` in data space). `anneal ∈ [0, 1]` scales the model's β
    /// (KL warm-up).
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss>;

    /// The decoder input of every modality for generation: from the prior when `given` is all
    /// `None` (`n` tuples), else from the aggregated posterior of the given modalities.
    /// Entries of given modalities may be anything (they are not decoded).
    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>>;
}

/// Builds the frame and objective of `cfg`'s kind under `p`.
pub fn build(cfg: &VaeConfig, p: &nn::Path, specs: &[ModalitySpec]) -> Result<(Frame, Box<dyn Objective>)> {
    let c = &cfg.common;
    let size = NetSize { width: c.width };
    let likelihoods = c.likelihoods.for_modalities(specs)?;
    let frame = |latent: i64| Frame::new(&(p / "frame"), specs, latent, latent, size, c.posterior, likelihoods.clone());
    let m = specs.len();
    Ok(match &cfg.options {
        VaeOptions::Mvae(o) => (frame(c.latent_dim)?, Box::new(mvae::Mvae::new(c.beta, o.subsets, m))),
        VaeOptions::Mmvae(o) => {
            (frame(c.latent_dim)?, Box::new(mmvae::Mmvae { beta: c.beta, k: o.k, estimator: o.estimator }))
        }
        VaeOptions::Mopoe => (frame(c.latent_dim)?, Box::new(mopoe::Mopoe::new(c.beta, m))),
        VaeOptions::Mvtcae(o) => (frame(c.latent_dim)?, Box::new(mvtcae::Mvtcae { beta: c.beta, alpha: o.alpha })),
        VaeOptions::Mmjsd => (frame(c.latent_dim)?, Box::new(mmjsd::Mmjsd { beta: c.beta })),
        VaeOptions::Nexus(o) => {
            let settings = nexus::Settings {
                joint: c.latent_dim,
                modality: o.specific,
                msg_dim: o.msg_dim,
                hidden: 4 * c.width,
                beta: c.beta,
                top_beta: o.top_beta,
                dropout: o.dropout,
                adaptive: o.adapt_top_variance,
            };
            (frame(o.specific)?, Box::new(nexus::Nexus::new(&(p / "nexus"), m, settings)))
        }
        VaeOptions::Mmvaeplus(o) => {
            let settings = mmvaeplus::Settings {
                shared: c.latent_dim,
                specific: o.specific,
                beta: c.beta,
                k: o.k,
                estimator: o.estimator,
                learn_aux_prior: o.learn_aux_prior,
                kind: c.posterior,
            };
            (frame(c.latent_dim + o.specific)?, Box::new(mmvaeplus::Mmvaeplus::new(&(p / "aux"), m, settings)))
        }
    })
}

/// Indices of the modalities present in `given`.
fn present(given: &[Option<Tensor>]) -> Vec<usize> {
    given.iter().enumerate().filter(|(_, g)| g.is_some()).map(|(m, _)| m).collect()
}

/// `n` samples of dimension `d` from the frame's standard prior.
fn prior_sample(f: &Frame, n: i64, d: i64) -> Tensor {
    Dist::standard(f.posterior, &Tensor::zeros([n, d], (Kind::Float, f.device))).rsample()
}

/// MoPoE's deterministic component selection: the batch is cut into `k` contiguous blocks of
/// ⌊N/k⌋ items (the last block takes the rest), block j sampling from component j.
fn block_choice(n: i64, k: usize, device: tch::Device) -> Tensor {
    let block = (n / k as i64).max(1);
    Tensor::arange(n, (Kind::Int64, device)).divide_scalar_mode(block, "floor").clamp_max(k as i64 - 1)
}

/// Sums tensors of one shape.
fn sum_all(terms: impl IntoIterator<Item = Tensor>) -> Tensor {
    terms.into_iter().reduce(|a, b| a + b).expect("at least one term")
}

/// The same latent for every modality.
fn shared(z: Tensor, m: usize) -> Vec<Tensor> {
    (0..m).map(|_| z.shallow_clone()).collect()
}

/// Generation latents of the single-latent models: one shared z, drawn from the prior when
/// nothing is given, else by `aggregate` from the posteriors of the given modalities (the model's
/// own way of combining experts: product, mixture, mixture of products).
fn shared_latents(
    f: &Frame,
    given: &[Option<Tensor>],
    n: i64,
    aggregate: impl FnOnce(&[&Dist]) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let idx = present(given);
    let z = if idx.is_empty() {
        prior_sample(f, n, f.enc_latent)
    } else {
        let q = f.encode_given(given);
        let experts: Vec<&Dist> = idx.iter().map(|&i| q[i].as_ref().expect("present")).collect();
        aggregate(&experts)?
    };
    Ok(shared(z, given.len()))
}

/// Mean of a per-item tensor, as a metric.
fn metric(name: &'static str, per_item: &Tensor) -> (&'static str, Tensor) {
    (name, per_item.detach().mean(Kind::Float))
}
