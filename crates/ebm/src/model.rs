//! The multimodal latent generative model with an energy-based prior (SPEC §2.2).
//!
//! Generation: p(X, z, W) = Π_m p(x_m | G_m(z, w_m)) · p_α(z) · Π_m N(w_m; 0, I), where the
//! private latents w_m exist only in the generalised version (as in MMVAE+; the decoder of m
//! reads [z, w_m]). Inference: the mixture of experts q(z|X) = (1/M) Σ_m q_m(z|x_m) with
//! Gaussian experts; in the generalised version each encoder also gives q_m(w_m|x_m).
//!
//! The generator / inference objective (poster, "Learning Generator and Inference Model") is,
//! averaged over m with z ~ q_m(z|x_m) reparameterised,
//!
//! ```text
//! log p(x_m | z) + Σ_{n≠m} log p(x_n | z) + λ · [log p_α(z) − log q(z|X)]
//! ```
//!
//! (λ = `prior_weight`, log Z(α) dropped). In the generalised version the decoder of m reads
//! w_m ~ q_m(w_m|x_m) for its own reconstruction and w_n ~ N(0, I) for cross generation, and
//! the regulariser gains log N(w_m; 0, I) − log q_m(w_m|x_m).

use crate::config::EbmConfig;
use crate::energy::{standard_normal_log_density, EnergyPrior};
use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::dist::{mixture_log_prob, sample_uniform_mixture, Dist};
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::nets::{decoder, encoder, Net};
use mmlatent_core::{ModalitySpec, MultimodalModel};
use mmlatent_train::checkpoint::{load_tensors, save_tensors, take_tensor};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// What encoder m says about a batch: q_m(z|x_m) and, generalised, q_m(w_m|x_m).
#[derive(Debug)]
pub struct Expert {
    pub shared: Dist,
    pub private: Option<Dist>,
}

/// The terms of the generator / inference objective on one batch (means per tuple).
pub struct Objective {
    /// The loss to minimise: −(recon + cross + λ·reg).
    pub loss: Tensor,
    /// log p(x_m | z_m), averaged over m.
    pub recon: f64,
    /// Σ_{n≠m} log p(x_n | z_m), averaged over m.
    pub cross: f64,
    /// log p_α(z) − log q(z|X) (+ the private terms), averaged over m.
    pub reg: f64,
    /// The posterior samples z of every m, `[M·N, latent_dim]`, detached (the EBM's data).
    pub posterior_z: Tensor,
}

/// The trained (or training) model.
pub struct EbmModel {
    name: String,
    modalities: Vec<ModalitySpec>,
    device: Device,
    config: EbmConfig,
    latent_dim: i64,
    private_dim: i64,
    likelihoods: Vec<Likelihood>,
    encoders: Vec<Net>,
    decoders: Vec<Net>,
    prior: EnergyPrior,
    /// Encoders and decoders (generator β and inference φ).
    pub generator_vs: VarStore,
    /// The energy f_α, with its own optimiser.
    pub prior_vs: VarStore,
}

impl EbmModel {
    /// Builds a freshly initialised model of `kind` for `modalities`.
    pub fn new(kind: &str, modalities: &[ModalitySpec], config: &EbmConfig, device: Device) -> Result<Self> {
        let private_dim = config.private_dim_for(kind)?;
        let likelihoods = config.likelihoods_for(modalities)?;
        let latent_dim = config.latent_dim;
        let generator_vs = VarStore::new(device);
        let prior_vs = VarStore::new(device);
        let size = config.net_size();
        let mut encoders = Vec::new();
        let mut decoders = Vec::new();
        for (m, spec) in modalities.iter().enumerate() {
            let out = 2 * (latent_dim + private_dim);
            encoders.push(encoder(generator_vs.root() / format!("enc{m}"), spec, out, size)?);
            decoders.push(decoder(generator_vs.root() / format!("dec{m}"), spec, latent_dim + private_dim, size)?);
        }
        let prior =
            EnergyPrior::new(prior_vs.root() / "energy", latent_dim, config.energy_hidden, config.energy_layers);
        Ok(Self {
            name: kind.to_string(),
            modalities: modalities.to_vec(),
            device,
            config: config.clone(),
            latent_dim,
            private_dim,
            likelihoods,
            encoders,
            decoders,
            prior,
            generator_vs,
            prior_vs,
        })
    }

    pub fn config(&self) -> &EbmConfig {
        &self.config
    }

    pub fn prior(&self) -> &EnergyPrior {
        &self.prior
    }

    pub fn is_generalised(&self) -> bool {
        self.private_dim > 0
    }

    /// Runs encoder m on a batch of modality m (data space).
    pub fn encode(&self, m: usize, x: &Tensor) -> Expert {
        let raw = self.encoders[m].forward(&x.to_device(self.device));
        let z_part = raw.narrow(-1, 0, 2 * self.latent_dim);
        // Each part reads as (μ, raw scale), σ = softplus(raw) + 1e-4.
        let gaussian = |part: Tensor| {
            let chunks = part.chunk(2, -1);
            Dist::gaussian_softplus(chunks[0].shallow_clone(), &chunks[1])
        };
        let private =
            (self.private_dim > 0).then(|| gaussian(raw.narrow(-1, 2 * self.latent_dim, 2 * self.private_dim)));
        Expert { shared: gaussian(z_part), private }
    }

    /// Decoder n on `[B, latent]` codes (plus private codes in the generalised version).
    fn decode_raw(&self, n: usize, z: &Tensor, w: Option<&Tensor>) -> Tensor {
        match w {
            Some(w) => self.decoders[n].forward(&Tensor::cat(&[z, w], -1)),
            None => self.decoders[n].forward(z),
        }
    }

    /// The generator / inference objective on a batch (`items`: one data-space tensor per
    /// modality, all on the model's device).
    pub fn objective(&self, items: &[Tensor]) -> Result<Objective> {
        let m_count = self.modalities.len() as i64;
        ensure!(items.len() == self.modalities.len(), "batch has {} modalities, model {}", items.len(), m_count);
        let b = items[0].size()[0];
        let experts: Vec<Expert> = items.iter().enumerate().map(|(m, x)| self.encode(m, x)).collect();
        // z_m ~ q_m(z|x_m) for every m, stacked: [M, B, D].
        let z = Tensor::stack(&experts.iter().map(|e| e.shared.rsample()).collect::<Vec<_>>(), 0);
        // log q(z|X) = log (1/M) Σ_k q_k(z|x_k), [M, B].
        let shared: Vec<&Dist> = experts.iter().map(|e| &e.shared).collect();
        let log_q = mixture_log_prob(&shared, &z);
        let z_flat = z.view([m_count * b, self.latent_dim]);
        let log_p = self.prior.unnormalised_log_density(&z_flat).view([m_count, b]);
        // Private latents: w_m ~ q_m(w_m|x_m) for m's own reconstruction.
        let own_w: Vec<Option<Tensor>> = experts.iter().map(|e| e.private.as_ref().map(|g| g.rsample())).collect();
        let private_reg: Vec<Tensor> = experts
            .iter()
            .zip(&own_w)
            .filter_map(|(e, w)| {
                Some(standard_normal_log_density(w.as_ref()?) - e.private.as_ref()?.log_prob(w.as_ref()?))
            })
            .collect();
        let reg = if private_reg.is_empty() { log_p - log_q } else { log_p - log_q + Tensor::stack(&private_reg, 0) };
        // Every decoder n reads every block m of codes at once ([M·B, ...]); log p(x_n | z_m)
        // is stacked into [N, M, B]: the diagonal n = m is reconstruction, the rest cross generation.
        let log_px: Vec<Tensor> = items
            .iter()
            .enumerate()
            .map(|(n, x)| {
                let w = own_w[n].as_ref().map(|own| {
                    let blocks: Vec<Tensor> = (0..m_count as usize)
                        .map(|m| if m == n { own.shallow_clone() } else { own.randn_like() })
                        .collect();
                    Tensor::cat(&blocks, 0)
                });
                let out = self.decode_raw(n, &z_flat, w.as_ref());
                let mut reps = vec![1i64; x.dim()];
                reps[0] = m_count;
                self.likelihoods[n].log_prob(&out, &x.repeat(&reps)).view([m_count, b])
            })
            .collect();
        let log_px = Tensor::stack(&log_px, 0);
        let recon = log_px.diagonal(0, 0, 1).transpose(0, 1); // [M, B]
        let cross = log_px.sum_dim_intlist(0, false, Kind::Float) - &recon;
        let per_item = |t: &Tensor| t.mean(Kind::Float).double_value(&[]);
        let elbo = (&recon + &cross + &reg * self.config.prior_weight).mean(Kind::Float);
        Ok(Objective {
            recon: per_item(&recon),
            cross: per_item(&cross),
            reg: per_item(&reg),
            loss: -elbo,
            posterior_z: z_flat.detach(),
        })
    }

    /// `n` samples of the EBM prior by short-run Langevin with the configured steps and size.
    pub fn sample_prior(&self, n: i64) -> Tensor {
        self.prior.sample(n, self.config.langevin_steps, self.config.langevin_step_size, self.device)
    }

    /// Decodes shared codes `z` into modality n's data space (private codes from N(0, I)).
    fn decode_mean(&self, n: usize, z: &Tensor) -> Tensor {
        let w =
            (self.private_dim > 0).then(|| Tensor::randn([z.size()[0], self.private_dim], (Kind::Float, self.device)));
        self.likelihoods[n].mean(&self.decode_raw(n, z, w.as_ref()))
    }

    /// z drawn from the mixture of the given modalities' experts: each row picks one given
    /// expert uniformly and samples it.
    fn conditional_z(&self, given: &[(usize, Tensor)]) -> Tensor {
        let experts: Vec<Dist> = given.iter().map(|(m, x)| self.encode(*m, x).shared).collect();
        sample_uniform_mixture(&experts.iter().collect::<Vec<_>>())
    }

    /// Saves both parameter sets in one safetensors file, atomically (`generator.*`, `prior.*`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (prefix, vs) in [("generator", &self.generator_vs), ("prior", &self.prior_vs)] {
            for (name, t) in vs.variables() {
                named.push((format!("{prefix}.{name}"), t));
            }
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_tensors(&refs, path)
    }

    /// Loads a file written by [`EbmModel::save`]; every parameter must be present with its shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let tensors = load_tensors(path)?;
        let _guard = tch::no_grad_guard();
        for (prefix, vs) in [("generator", &self.generator_vs), ("prior", &self.prior_vs)] {
            for (name, mut var) in vs.variables() {
                let saved = take_tensor(&tensors, &format!("{prefix}.{name}"), path)
                    .context("the checkpoint does not match this model (another kind or size?)")?;
                if saved.size() != var.size() {
                    bail!(
                        "{}: `{prefix}.{name}` has shape {:?}, the model expects {:?} (another config?)",
                        path.display(),
                        saved.size(),
                        var.size()
                    );
                }
                var.copy_(&saved.to_device(self.device));
            }
        }
        Ok(())
    }
}

impl MultimodalModel for EbmModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn modalities(&self) -> &[ModalitySpec] {
        &self.modalities
    }

    fn device(&self) -> Device {
        self.device
    }

    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let present: Vec<(usize, Tensor)> =
            given.iter().enumerate().filter_map(|(m, g)| g.as_ref().map(|t| (m, t.to_device(self.device)))).collect();
        let z = if present.is_empty() { self.sample_prior(n) } else { self.conditional_z(&present) };
        Ok((0..self.modalities.len())
            .map(|m| match present.iter().find(|(k, _)| *k == m) {
                Some((_, x)) => x.shallow_clone(),
                None => self.decode_mean(m, &z),
            })
            .collect())
    }
}
