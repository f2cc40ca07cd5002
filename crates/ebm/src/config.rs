//! The `[model]` table of the EBM experiments (`kind = "ebm"` or `"ebm-generalised"`).
//!
//! Defaults follow the latent-space EBM line of work (Pang et al. 2020): an MLP energy of
//! width 200, 60 Langevin steps of size 0.4, Adam(β₁ = 0.5) with lr 2e-5 for the EBM. The
//! generator / inference learning rate is the experiment's `train.lr`.

use anyhow::{bail, ensure, Result};
use mmlatent_core::likelihood::{Likelihood, Likelihoods};
use mmlatent_core::nets::NetSize;
use mmlatent_core::ModalitySpec;
use serde::{Deserialize, Serialize};

/// The base model: a shared latent only.
pub const KIND_BASE: &str = "ebm";
/// The generalised model: a shared latent plus one private latent per modality.
pub const KIND_GENERALISED: &str = "ebm-generalised";

/// The `[model]` table of the EBM families; a key left out takes its value from
/// [`EbmConfig::default`], where every default is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EbmConfig {
    /// Dimension of the shared latent z (the EBM's input).
    pub latent_dim: i64,
    /// Dimension of each modality-specific latent w_m (generalised version only; default 8).
    pub private_dim: Option<i64>,
    /// Width of the encoders / decoders (see `mmlatent_core::nets::NetSize`).
    pub width: i64,
    /// Likelihood of each modality (see [`Likelihoods`]: one for all, a list by position or a
    /// table by name); default: each modality kind's (Laplace(0.75) for images, categorical for
    /// text).
    pub likelihoods: Likelihoods,
    /// Hidden width of the energy MLP f_α.
    pub energy_hidden: i64,
    /// Number of hidden layers of f_α.
    pub energy_layers: usize,
    /// Short-run Langevin steps for prior samples (training and joint generation).
    pub langevin_steps: usize,
    /// Langevin step size s.
    pub langevin_step_size: f64,
    /// Learning rate of the EBM's own Adam optimiser.
    pub ebm_lr: f64,
    /// β₁ of the EBM's Adam (0.5 as in Pang et al.).
    pub ebm_beta1: f64,
    /// Weight of the prior regulariser E[log p_α(z) − log q(z|X)] in the generator objective.
    pub prior_weight: f64,
    /// Training stops with an error when the energy gap |E_q[f] − E_p[f]| exceeds this (the
    /// blow-up failure mode of short-run EBMs: the chain no longer reaches the low-energy
    /// regions). The gap, not the energy itself, is watched: f may drift by a constant, which
    /// log Z(α) absorbs.
    pub max_energy_gap: f64,
}

/// Default size of the private latents of the generalised version.
pub const DEFAULT_PRIVATE_DIM: i64 = 8;

impl Default for EbmConfig {
    fn default() -> Self {
        Self {
            latent_dim: 20,
            private_dim: None,
            width: NetSize::default().width,
            likelihoods: Likelihoods::Defaults,
            energy_hidden: 200,
            energy_layers: 2,
            langevin_steps: 60,
            langevin_step_size: 0.4,
            ebm_lr: 2e-5,
            ebm_beta1: 0.5,
            prior_weight: 1.0,
            max_energy_gap: 1e3,
        }
    }
}

impl EbmConfig {
    /// Checks the values and resolves the private latent size for `kind` (0 for the base model).
    pub fn private_dim_for(&self, kind: &str) -> Result<i64> {
        ensure!(self.latent_dim > 0, "[model] latent_dim must be positive, got {}", self.latent_dim);
        ensure!(self.width > 0, "[model] width must be positive, got {}", self.width);
        ensure!(self.energy_hidden > 0, "[model] energy_hidden must be positive");
        ensure!(
            self.energy_layers > 0,
            "[model] energy_layers must be at least 1 (with no hidden layer f_α is linear in z and can only shift \
             the Gaussian base prior)"
        );
        ensure!(
            self.langevin_steps > 0,
            "[model] langevin_steps must be at least 1 (with none, prior samples are draws of the base N(0, I) and \
             the energy learns nothing)"
        );
        ensure!(
            self.langevin_step_size > 0.0 && self.langevin_step_size.is_finite(),
            "[model] langevin_step_size must be positive, got {}",
            self.langevin_step_size
        );
        ensure!(self.ebm_lr > 0.0 && self.ebm_lr.is_finite(), "[model] ebm_lr must be positive, got {}", self.ebm_lr);
        ensure!((0.0..1.0).contains(&self.ebm_beta1), "[model] ebm_beta1 must lie in [0, 1)");
        ensure!(self.prior_weight >= 0.0, "[model] prior_weight must be non-negative");
        ensure!(self.max_energy_gap > 0.0, "[model] max_energy_gap must be positive");
        match kind {
            KIND_BASE => {
                if let Some(d) = self.private_dim.filter(|&d| d != 0) {
                    bail!("[model] private_dim = {d} needs kind = \"{KIND_GENERALISED}\" (the base model has none)");
                }
                Ok(0)
            }
            KIND_GENERALISED => {
                let d = self.private_dim.unwrap_or(DEFAULT_PRIVATE_DIM);
                ensure!(d > 0, "[model] private_dim must be positive for kind = \"{KIND_GENERALISED}\", got {d}");
                Ok(d)
            }
            other => bail!("the EBM family has no kind `{other}` (use {KIND_BASE} or {KIND_GENERALISED})"),
        }
    }

    /// One likelihood per modality.
    pub fn likelihoods_for(&self, modalities: &[ModalitySpec]) -> Result<Vec<Likelihood>> {
        self.likelihoods.for_modalities(modalities)
    }

    pub fn net_size(&self) -> NetSize {
        NetSize { width: self.width }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings that cannot mean anything are refused, naming the key.
    #[test]
    fn no_langevin_steps_or_energy_layers_is_refused() {
        let parse = |extra: &str| -> EbmConfig { toml::from_str(extra).unwrap() };
        assert!(parse("").private_dim_for(KIND_BASE).is_ok());
        for (setting, needle) in [
            ("langevin_steps = 0", "langevin_steps must be at least 1"),
            ("energy_layers = 0", "energy_layers must be at least 1"),
        ] {
            let err = parse(setting).private_dim_for(KIND_BASE).unwrap_err().to_string();
            assert!(err.contains(needle), "{setting}: {err}");
        }
    }
}
