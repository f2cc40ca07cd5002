//! mmlatent-ebm: the multimodal latent generative model with an energy-based prior
//! (Yuan, Cui, Li, Han; SPEC §2.2), in its base (shared latent z) and generalised (z plus
//! modality-specific latents w_m) versions.
//!
//! - [`langevin`]: the short-run Langevin sampler of the tilted Gaussian prior (a pure function);
//! - [`energy`]: the energy MLP f_α, the prior's log-density and the EBM objective;
//! - [`model`]: encoders (mixture of Gaussian experts), decoders, the generator / inference
//!   objective, joint and conditional generation ([`mmlatent_core::MultimodalModel`]);
//! - [`train`]: the training loop (two optimisers, energy-gap logging, blow-up guard);
//! - [`config`]: the `[model]` table.
//!
//! Depends on `mmlatent-core` (the maths) and `mmlatent-train` (the batch loaders and the
//! training loop) alone: it sees tensors, batches and a loop to hand its step to, never a file
//! format, an evaluation metric or a benchmark (`mmlatent-data` and `mmlatent-eval` serve only
//! its tests and examples; its workloads for `mmlatent bench` are `mmlatent-bench`'s).

pub mod config;
pub mod energy;
pub mod langevin;
pub mod model;
pub mod train;

pub use config::{EbmConfig, KIND_BASE, KIND_GENERALISED};
pub use model::EbmModel;

use anyhow::{Context, Result};
use mmlatent_core::{ModalitySpec, MultimodalDataset, MultimodalModel};
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{Family, PlannedStage, SamplerInfo, TrainContext};
use mmlatent_train::run::RunDir;
use tch::Device;

/// The EBM model family (`kind = "ebm"` and `kind = "ebm-generalised"`).
pub struct EbmFamily;

pub static FAMILY: EbmFamily = EbmFamily;

impl Family for EbmFamily {
    type Config = EbmConfig;

    fn kinds(&self) -> &'static [&'static str] {
        &[KIND_BASE, KIND_GENERALISED]
    }

    fn parse(&self, experiment: &Experiment) -> Result<EbmConfig> {
        experiment.model_config()
    }

    /// The private latent size in effect: written for the generalised model, absent (none) for
    /// the base one.
    fn resolved(
        &self,
        experiment: &Experiment,
        mut config: EbmConfig,
        _modalities: Option<&[ModalitySpec]>,
    ) -> Result<EbmConfig> {
        let private_dim = config.private_dim_for(experiment.model_kind()?)?;
        config.private_dim = (private_dim > 0).then_some(private_dim);
        Ok(config)
    }

    fn check(&self, config: &EbmConfig, experiment: &Experiment, dataset: &MultimodalDataset) -> Result<()> {
        // Builds the networks on the CPU: unsupported modality sizes and kinds fail here.
        EbmModel::new(experiment.model_kind()?, &dataset.modalities, config, Device::Cpu)?;
        Ok(())
    }

    fn stages(&self, _config: &EbmConfig, experiment: &Experiment, _modalities: &[ModalitySpec]) -> Vec<PlannedStage> {
        vec![PlannedStage::of_train(train::STAGE, experiment)]
    }

    /// Short-run Langevin on the prior: one energy gradient per step.
    fn sampler(&self, config: &EbmConfig) -> Result<SamplerInfo> {
        Ok(SamplerInfo {
            name: "langevin".into(),
            settings: serde_json::json!({"steps": config.langevin_steps, "step_size": config.langevin_step_size}),
            evaluations_per_sample: Some(config.langevin_steps),
        })
    }

    fn train(&self, config: &EbmConfig, ctx: &TrainContext) -> Result<()> {
        train::train(config, ctx)
    }

    fn load(
        &self,
        config: &EbmConfig,
        experiment: &Experiment,
        run: &RunDir,
        dataset: &MultimodalDataset,
        device: Device,
    ) -> Result<Box<dyn MultimodalModel>> {
        let model = EbmModel::new(experiment.model_kind()?, &dataset.modalities, config, device)?;
        train::load_trained(&model, run)
            .with_context(|| format!("cannot load the EBM model of run {}", run.root().display()))?;
        Ok(Box::new(model))
    }
}
