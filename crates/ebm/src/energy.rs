//! The energy-based prior p_α(z) = exp(−f_α(z)) N(z; 0, I) / Z(α) with f_α a small MLP
//! (exponential tilting of N(0, I), SPEC §2.2).

use crate::langevin::langevin;
use mmlatent_core::nets::mlp;
use std::f64::consts::PI;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// f_α and the operations on the prior it defines.
#[derive(Debug)]
pub struct EnergyPrior {
    net: nn::Sequential,
    dim: i64,
}

/// The EBM's objective on one batch, and its two halves for logging.
pub struct EbmLoss {
    /// E_q[f] − E_p[f]: its gradient is the negative log-likelihood gradient of α (poster,
    /// "Learning EBM"); minimising it lowers f on posterior samples and raises it on prior ones.
    pub loss: Tensor,
    pub energy_posterior: f64,
    pub energy_prior: f64,
}

impl EnergyPrior {
    /// An MLP `dim → hidden (× layers) → 1` under `p`.
    pub fn new(p: nn::Path, dim: i64, hidden: i64, layers: usize) -> Self {
        let mut dims = vec![dim];
        dims.extend(std::iter::repeat_n(hidden, layers.max(1)));
        dims.push(1);
        Self { net: mlp(p, &dims), dim }
    }

    /// Latent dimension.
    pub fn dim(&self) -> i64 {
        self.dim
    }

    /// f_α(z), one value per row: `[N, D]` → `[N]`.
    pub fn energy(&self, z: &Tensor) -> Tensor {
        self.net.forward(z).squeeze_dim(-1)
    }

    /// log p_α(z) + log Z(α) = −f_α(z) + log N(z; 0, I): the prior's log-density up to the
    /// constant log Z(α), which does not depend on z (so it drops out of every z-gradient).
    pub fn unnormalised_log_density(&self, z: &Tensor) -> Tensor {
        -self.energy(z) + standard_normal_log_density(z)
    }

    /// `n` samples of p_α by short-run Langevin from N(0, I).
    pub fn sample(&self, n: i64, steps: usize, step_size: f64, device: Device) -> Tensor {
        let start = Tensor::randn([n, self.dim], (Kind::Float, device));
        langevin(|z| self.energy(z), &start, steps, step_size)
    }

    /// The EBM objective for posterior samples `posterior` and prior samples `prior` (both
    /// detached from everything but α).
    pub fn loss(&self, posterior: &Tensor, prior: &Tensor) -> EbmLoss {
        let e_post = self.energy(&posterior.detach()).mean(Kind::Float);
        let e_prior = self.energy(&prior.detach()).mean(Kind::Float);
        EbmLoss {
            energy_posterior: e_post.double_value(&[]),
            energy_prior: e_prior.double_value(&[]),
            loss: e_post - e_prior,
        }
    }
}

/// log N(z; 0, I) per row.
pub fn standard_normal_log_density(z: &Tensor) -> Tensor {
    let d = z.size()[z.dim() - 1] as f64;
    z.square().sum_dim_intlist(-1, false, Kind::Float) * -0.5 - 0.5 * d * (2.0 * PI).ln()
}
