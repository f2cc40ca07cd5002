//! mmlatent-vae: the multimodal VAE baselines of the field — MVAE, MMVAE, MoPoE, MVTCAE,
//! mmJSD, NEXUS and MMVAE+ — over one shared frame.
//!
//! - [`estimator`]: ELBO, IWAE and DReG from log importance weights;
//! - [`frame`]: per-modality encoders (posteriors), decoders and likelihoods;
//! - [`models`]: each model's aggregation, objective and generation;
//! - [`config`]: the `[model]` table; [`model`]: training, loading, generation.
//!
//! The CLI reaches it through [`FAMILY`] (`[model] kind = "mopoe"` etc.).
//!
//! Depends on `mmlatent-core` (the maths) and `mmlatent-train` (the batch loaders and the
//! training loop) alone: it sees tensors, batches and a loop to hand its step to, never a file
//! format, an evaluation metric or a benchmark (`mmlatent-data` and `mmlatent-eval` serve only
//! its tests and examples; its workloads for `mmlatent bench` are `mmlatent-bench`'s).

/// The latent distributions (core's, shared with the EBM-prior model).
pub use mmlatent_core::dist;
pub mod config;
pub mod estimator;
pub mod frame;
pub mod model;
pub mod models;

use anyhow::Result;
use config::{VaeConfig, VaeKind};
use mmlatent_core::{ModalitySpec, MultimodalDataset, MultimodalModel};
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{Family, PlannedStage, SamplerInfo, TrainContext};
use mmlatent_train::run::RunDir;
pub use model::VaeModel;
use tch::Device;

/// The VAE model family (`[model] kind = "mopoe"` etc., one of [`VaeKind::NAMES`]).
pub struct VaeFamily;

pub static FAMILY: VaeFamily = VaeFamily;

impl Family for VaeFamily {
    type Config = VaeConfig;

    fn kinds(&self) -> &'static [&'static str] {
        &VaeKind::NAMES
    }

    fn renamed_keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("latent", "latent_dim"), ("likelihood", "likelihoods")]
    }

    fn parse(&self, experiment: &Experiment) -> Result<VaeConfig> {
        VaeConfig::from_experiment(experiment)
    }

    fn check(&self, config: &VaeConfig, _experiment: &Experiment, dataset: &MultimodalDataset) -> Result<()> {
        // Builds the networks on the CPU: unsupported modality sizes and kinds fail here.
        VaeModel::new(config.clone(), &dataset.modalities, Device::Cpu)?;
        Ok(())
    }

    fn stages(&self, _config: &VaeConfig, experiment: &Experiment, _modalities: &[ModalitySpec]) -> Vec<PlannedStage> {
        vec![PlannedStage::of_train(model::STAGE, experiment)]
    }

    /// Ancestral sampling of the prior, the VAEs' only sampler.
    fn sampler(&self, _config: &VaeConfig) -> Result<SamplerInfo> {
        Ok(SamplerInfo { name: "prior".into(), settings: serde_json::json!({}), evaluations_per_sample: None })
    }

    fn train(&self, config: &VaeConfig, ctx: &TrainContext) -> Result<()> {
        let mut model = VaeModel::new(config.clone(), &ctx.dataset.modalities, ctx.device)?;
        model.fit(ctx)
    }

    fn load(
        &self,
        config: &VaeConfig,
        _experiment: &Experiment,
        run: &RunDir,
        dataset: &MultimodalDataset,
        device: Device,
    ) -> Result<Box<dyn MultimodalModel>> {
        Ok(Box::new(VaeModel::load(config.clone(), run, dataset, device)?))
    }
}
