//! mmlatent-mld: Multi-modal Latent Diffusion (Bounoua, Franzese & Michiardi), SPEC §2.1.
//!
//! Two stages, each run by the training loop [`mmlatent_train::training::Stage`] (resumable,
//! checkpoint sets under `checkpoints/<stage>/`):
//! 1. [`autoencoder`]: one deterministic autoencoder per modality (stage `ae_<modality>`),
//!    trained alone with the modality's likelihood — or, in the [`contrastive`] variant (not the
//!    seed's), all together (stage `autoencoders`) with a cross-modal term added;
//! 2. [`train`]: the training latents are encoded once, normalised ([`model::LatentNorm`]:
//!    standardised per dimension or whitened per modality, saved as `latent_stats`), and the [`score_net`] is trained on
//!    them with masked multi-time denoising score matching under the VP-SDE of [`sde`]
//!    (stage `score`, EMA weights in `score_ema`).
//!
//! Sampling ([`sampler`]): Euler–Maruyama on the reverse SDE (optionally with RePaint
//! resampling) or Heun on the probability-flow ODE, joint or any subset given any subset;
//! [`model::MldModel`] implements [`MultimodalModel`].
//!
//! Depends on `mmlatent-core` (the maths) and `mmlatent-train` (the batch loaders and the
//! training loop) alone: it sees tensors, batches and a loop to hand its step to, never a file
//! format, an evaluation metric or a benchmark (`mmlatent-data` and `mmlatent-eval` serve only
//! its tests and examples; its workloads for `mmlatent bench` are `mmlatent-bench`'s).

pub mod autoencoder;
pub mod config;
pub mod contrastive;
pub mod guidance;
pub mod model;
pub mod sampler;
pub mod score_net;
pub mod sde;
pub mod stage1;
pub mod train;

use anyhow::{Context, Result};
use config::MldConfig;
use mmlatent_core::{ModalitySpec, MultimodalDataset, MultimodalModel};
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{Family, PlannedStage, ReusableStages, SamplerInfo, TrainContext};
use mmlatent_train::run::RunDir;
use model::{build_autoencoders, LatentNorm, MldModel};
use sampler::Layout;
use tch::{Device, Tensor};

/// The MLD model family (`[model] kind = "mld"`).
pub struct MldFamily;

pub static FAMILY: MldFamily = MldFamily;

/// Batch size used to encode the training set for stage 2.
pub(crate) const ENCODE_BATCH: i64 = 512;

/// Test tuples whose latents measure the score stage's held-out loss.
const HELD_OUT: usize = 1024;

impl Family for MldFamily {
    type Config = MldConfig;

    fn kinds(&self) -> &'static [&'static str] {
        &["mld"]
    }

    fn renamed_keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("score.d", "score.given_p")]
    }

    fn parse(&self, experiment: &Experiment) -> Result<MldConfig> {
        experiment.model_config()
    }

    fn check(&self, cfg: &MldConfig, _experiment: &Experiment, dataset: &MultimodalDataset) -> Result<()> {
        cfg.check(&dataset.modalities)?;
        dataset.ensure_batch_fits("[model.autoencoder] batch_size", cfg.autoencoder.batch_size)?;
        // Builds the (small) autoencoders on the CPU: unsupported modality sizes fail here.
        build_autoencoders(cfg, &dataset.modalities, Device::Cpu)?;
        Ok(())
    }

    /// The score network's width, when the configured one is left to the rule of
    /// [`config::ScoreConfig::width_for`]: derived from the total latent size of the dataset's
    /// modalities and written, so that the run keeps it whatever the rule becomes. (Runs stored
    /// without it take it from their checkpoints, [`model::with_run_width`].)
    fn resolved(
        &self,
        _experiment: &Experiment,
        mut cfg: MldConfig,
        modalities: Option<&[ModalitySpec]>,
    ) -> Result<MldConfig> {
        if let Some(modalities) = modalities {
            let total: i64 = cfg.latent_sizes(modalities).iter().sum();
            cfg.score.width = Some(cfg.score.width_for(total));
        }
        Ok(cfg)
    }

    fn warnings(&self, cfg: &MldConfig) -> Vec<String> {
        cfg.sampler.warnings()
    }

    /// Stage 1 with `[model.autoencoder]`'s steps (one stage per modality, or the contrastive
    /// variant's one), then the score network with `[train]`'s.
    fn stages(&self, cfg: &MldConfig, experiment: &Experiment, modalities: &[ModalitySpec]) -> Vec<PlannedStage> {
        let stage1 = cfg.stage1_stages(modalities).into_iter().map(|name| PlannedStage {
            name,
            steps: cfg.autoencoder.steps,
            steps_key: "model.autoencoder.steps",
        });
        stage1.chain([PlannedStage::of_train(model::SCORE, experiment)]).collect()
    }

    /// The `[model.sampler]` settings; the loaded model counts the evaluations (RePaint's jumps
    /// and Heun's second evaluations included).
    fn sampler(&self, cfg: &MldConfig) -> Result<SamplerInfo> {
        let settings = serde_json::to_value(&cfg.sampler)?;
        let name = settings["method"].as_str().unwrap_or("euler").to_string();
        Ok(SamplerInfo { name, settings, evaluations_per_sample: None })
    }

    fn train(&self, cfg: &MldConfig, ctx: &TrainContext) -> Result<()> {
        let modalities = &ctx.dataset.modalities;
        cfg.check(modalities)?;
        // Held-out tuples, for the validation losses of both stages: the first test tuples.
        let test = &ctx.dataset.test;
        let mut held_out = mmlatent_core::Split {
            items: test.items.iter().map(Tensor::shallow_clone).collect(),
            labels: test.labels.shallow_clone(),
        };
        held_out.truncate(HELD_OUT);
        let held_out_items: Vec<Tensor> =
            if held_out.is_empty() { vec![] } else { held_out.items.iter().map(Tensor::shallow_clone).collect() };
        // Stage 1: each autoencoder alone, on the CPU several at once as the cores allow; or, in
        // the contrastive variant, all together.
        let mut autoencoders = build_autoencoders(cfg, modalities, ctx.device)?;
        match &cfg.autoencoder.contrastive {
            None => {
                let jobs = autoencoders
                    .iter_mut()
                    .enumerate()
                    .map(|(m, ae)| {
                        autoencoder::training_job(
                            ae,
                            m,
                            ctx,
                            &cfg.autoencoder,
                            held_out_items.get(m).map(Tensor::shallow_clone),
                        )
                    })
                    .collect();
                mmlatent_train::side_by_side::run(jobs, ctx.device)?;
            }
            Some(term) => contrastive::train_jointly(&autoencoders, ctx, &cfg.autoencoder, term, &held_out_items)?,
        }
        stage1::report(&autoencoders, ctx, &held_out)?;
        // Stage 2: encode once, standardise, train the score network.
        let latents = encode_split(&autoencoders, &ctx.dataset.train);
        let layout = Layout::new(cfg.latent_sizes(modalities));
        let latent_norm = LatentNorm::fit(&latents, &layout, cfg.latent_norm);
        if mmlatent_train::parallel::is_leader() {
            latent_norm.save(ctx.run)?;
        }
        let held_out = (!held_out.is_empty()).then(|| latent_norm.forward(&encode_split(&autoencoders, &held_out)));
        let cfg = model::with_run_width(cfg, ctx.run, &layout)?;
        if mmlatent_train::parallel::is_leader() {
            eprintln!(
                "score network: width {} for {} latent dimensions of {} modalities",
                cfg.score.width_for(layout.total()),
                layout.total(),
                layout.num_modalities()
            );
        }
        train::train_score(ctx, &latent_norm.forward(&latents), held_out.as_ref(), &layout, &cfg)
    }

    /// Stage 1: the autoencoders, which depend on the data, the seed and the `[model]` keys of
    /// stage 1 only, so that score networks can be compared on the same latents.
    fn reusable_stages(
        &self,
        cfg: &MldConfig,
        experiment: &Experiment,
        modalities: &[ModalitySpec],
    ) -> Result<Option<ReusableStages>> {
        let mut settings = toml::Table::new();
        settings.insert("seed".into(), toml::Value::try_from(experiment.seed)?);
        settings.insert("data".into(), toml::Value::try_from(&experiment.data)?);
        settings.insert("model.autoencoder".into(), toml::Value::try_from(&cfg.autoencoder)?);
        settings.insert("model.latent_dims".into(), toml::Value::try_from(&cfg.latent_dims)?);
        // Each modality's likelihood as it is in effect (set or left to its default alike).
        let likelihoods: toml::Table = modalities
            .iter()
            .zip(cfg.likelihoods_for(modalities)?)
            .map(|(m, l)| Ok((m.name.clone(), toml::Value::try_from(l)?)))
            .collect::<Result<_>>()?;
        settings.insert("model.likelihoods".into(), likelihoods.into());
        Ok(Some(ReusableStages { stages: cfg.stage1_stages(modalities), settings }))
    }

    fn load(
        &self,
        cfg: &MldConfig,
        _experiment: &Experiment,
        run: &RunDir,
        dataset: &MultimodalDataset,
        device: Device,
    ) -> Result<Box<dyn MultimodalModel>> {
        let model = MldModel::load(run, &dataset.modalities, cfg, device)
            .with_context(|| format!("cannot load the MLD model of run {}", run.root().display()))?;
        Ok(Box::new(model))
    }
}

/// The concatenated latents `[N, D]` of every tuple of `split`.
pub fn encode_split(autoencoders: &[autoencoder::Autoencoder], split: &mmlatent_core::Split) -> Tensor {
    let parts: Vec<Tensor> =
        autoencoders.iter().enumerate().map(|(m, ae)| ae.encode_split(split, m, ENCODE_BATCH)).collect();
    Tensor::cat(&parts, 1)
}
