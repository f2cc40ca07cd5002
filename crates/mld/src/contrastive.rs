//! The contrastive variant of MLD's stage 1 (`[model.autoencoder.contrastive]`) — not the
//! seed's MLD, whose autoencoders train alone ([`crate::autoencoder`]).
//!
//! A deterministic autoencoder trained on its reconstruction alone keeps what reconstruction
//! needs; where a background's texture costs more to reconstruct than the item on it, that is
//! the texture, and the class the modalities share is lost (the latent of a modality drawn on
//! grass keeps little more of the class than chance). The variant adds, to the sum of the
//! modalities' reconstruction losses, a term that rewards what the modalities of one tuple have
//! in common: InfoNCE (van den Oord et al. 2018; symmetric over pairs as in CLIP, Radford et
//! al. 2021) between linear projections of their latents,
//!
//! ```text
//! h_m = P_m z_m / ‖P_m z_m‖,   C = mean over ordered pairs m ≠ n of
//!       −(1/B) Σ_i log softmax_j(h_m,i · h_n,j / τ)[j = i]
//! loss = Σ_m NLL_m(x_m | D_m(z_m)) + λ · D̄ · C
//! ```
//!
//! with tuple i's other modalities as the positive and the batch's other tuples as negatives.
//! The autoencoders then train together, in one stage (`autoencoders`) whose sets hold every
//! autoencoder (`ae_<modality>`) and the projections (`projection`); the decoders still see
//! only their own modality's reconstruction loss. Stage 2 and sampling are unchanged.

use crate::autoencoder::Autoencoder;
use crate::config::{AeConfig, ContrastiveConfig};
use anyhow::Result;
use mmlatent_core::nets::fp32_output;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::ModalitySpec;
use mmlatent_train::family::TrainContext;
use mmlatent_train::loader::StepLoader;
use mmlatent_train::training::Stage;
use tch::{nn, Device, Kind, Tensor};

/// The joint stage's name, as in `checkpoints/autoencoders/`.
pub const STAGE: &str = "autoencoders";
/// The projections' part of the joint stage's sets.
pub const PROJECTION: &str = "projection";
/// Items per forward pass of the held-out reconstruction loss.
pub const HELD_OUT_BATCH: i64 = 256;

/// One linear projection P_m per modality, from its latent to the space the term compares in.
pub struct Projections {
    pub vs: nn::VarStore,
    heads: Vec<nn::Linear>,
}

impl Projections {
    pub fn new(latent_sizes: &[i64], dim: i64, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let config = nn::LinearConfig { bias: false, ..Default::default() };
        let heads = latent_sizes.iter().enumerate().map(|(m, &d)| nn::linear(vs.root() / m, d, dim, config)).collect();
        Self { vs, heads }
    }

    /// h_m = P_m z / ‖P_m z‖ for latents `z` `[B, d_m]` of modality `m`.
    pub fn embed(&self, m: usize, z: &Tensor) -> Tensor {
        let p = fp32_output(&z.apply(&self.heads[m]));
        &p / p.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-8)
    }
}

/// The InfoNCE loss C of unit embeddings `h` (one `[B, k]` per modality, row i of each from
/// tuple i): the mean over ordered pairs (m, n), m ≠ n, of the cross-entropy of softmax(h_m h_nᵀ/τ)
/// against the diagonal.
pub fn info_nce(h: &[Tensor], temperature: f64) -> Tensor {
    let b = h[0].size()[0];
    let targets = Tensor::arange(b, (Kind::Int64, h[0].device()));
    let mut terms = vec![];
    for (m, hm) in h.iter().enumerate() {
        for (n, hn) in h.iter().enumerate() {
            if m != n {
                let logits = hm.matmul(&hn.transpose(0, 1)) / temperature;
                terms.push(logits.cross_entropy_for_logits(&targets));
            }
        }
    }
    Tensor::stack(&terms, 0).mean(Kind::Float)
}

/// The mean number of values of an item of the modalities (D̄ of the module's loss).
fn mean_item_size(specs: &[ModalitySpec]) -> f64 {
    specs.iter().map(|s| s.item_shape().iter().product::<i64>() as f64).sum::<f64>() / specs.len().max(1) as f64
}

/// Trains (or resumes, or loads when done) every autoencoder of `autoencoders` together with
/// the contrastive term, as stage [`STAGE`] (the first of the run's two) through the training
/// loop at the constant learning rate `cfg.lr`; `held_out` (raw items per modality) gives the
/// logged held-out reconstruction loss of each modality. Leaves the trained weights in
/// `autoencoders`.
pub fn train_jointly(
    autoencoders: &[Autoencoder],
    ctx: &TrainContext,
    cfg: &AeConfig,
    term: &ContrastiveConfig,
    held_out: &[Tensor],
) -> Result<()> {
    let specs: Vec<ModalitySpec> = autoencoders.iter().map(|ae| ae.spec.clone()).collect();
    let device = autoencoders[0].vs.device();
    let seed = ctx.experiment.seed;
    // Initial projections from a generator seeded for this stage (the autoencoders were built
    // before, from the run's seed), so that they do not depend on what ran before.
    mmlatent_train::training::seed_step(seed, STAGE, usize::MAX, 2);
    let sizes: Vec<i64> = autoencoders.iter().map(|ae| ae.latent_dim).collect();
    let projections = Projections::new(&sizes, term.projection_dim, device);
    let mut loader = StepLoader::new(&ctx.dataset.train, &specs, cfg.batch_size, seed ^ 0xC0_47A5, device)?;
    let scale = term.weight * mean_item_size(&specs);
    let names: Vec<String> = specs.iter().map(Autoencoder::stage_name).collect();
    let mut stage = Stage::new(ctx.run, STAGE, cfg.steps, &ctx.experiment.train, seed).position(1, 2).constant_lr();
    for (ae, name) in autoencoders.iter().zip(&names) {
        stage = stage.weights(name, &ae.vs).optimiser(name, Adam::new(&ae.vs, AdamConfig::adam(cfg.lr)));
    }
    stage = stage
        .weights(PROJECTION, &projections.vs)
        .optimiser(PROJECTION, Adam::new(&projections.vs, AdamConfig::adam(cfg.lr)));
    if !held_out.is_empty() {
        stage = stage.validation_parts(move || {
            let parts: Vec<(String, f64)> = autoencoders
                .iter()
                .zip(held_out)
                .map(|(ae, x)| (format!("val_nll_{}", ae.spec.name), ae.held_out_loss(x, HELD_OUT_BATCH)))
                .collect();
            Ok((parts.iter().map(|(_, v)| v).sum(), parts))
        });
    }
    stage.run(|step, opts| {
        let batch = loader.batch(step)?;
        let latents: Vec<Tensor> = autoencoders.iter().zip(&batch.items).map(|(ae, x)| ae.encode(x)).collect();
        let nll: Vec<Tensor> = autoencoders
            .iter()
            .zip(&latents)
            .zip(&batch.items)
            .map(|((ae, z), x)| ae.reconstruction_loss(z, x))
            .collect();
        let embeddings: Vec<Tensor> = latents.iter().enumerate().map(|(m, z)| projections.embed(m, z)).collect();
        let contrast = info_nce(&embeddings, term.temperature);
        let reconstruction = Tensor::stack(&nll, 0).sum(Kind::Float);
        let loss = &reconstruction + &contrast * scale;
        // One backward pass for every optimiser: the term couples the encoders.
        for opt in opts.iter_mut() {
            opt.zero_grad();
        }
        loss.backward();
        for opt in opts.iter_mut() {
            opt.step()?;
        }
        Ok(vec![
            ("loss", loss.double_value(&[])),
            ("nll", reconstruction.double_value(&[])),
            ("contrastive", contrast.double_value(&[])),
        ])
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// InfoNCE of identical, well-separated embeddings is near 0; of embeddings that do not tell
    /// the tuples apart it is log B.
    #[test]
    fn info_nce_from_perfect_to_uninformative() {
        let b = 8;
        let eye = Tensor::eye(b, (Kind::Float, Device::Cpu));
        assert!(info_nce(&[eye.copy(), eye.copy(), eye.copy()], 0.05).double_value(&[]) < 1e-6);
        let same = Tensor::ones([b, 4], (Kind::Float, Device::Cpu)) / 2.0;
        let c = info_nce(&[same.copy(), same], 0.1).double_value(&[]);
        assert!((c - (b as f64).ln()).abs() < 1e-5, "{c}");
    }
}
