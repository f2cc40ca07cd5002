//! Training of both EBM kinds: one stage (`ebm`) alternating, on every batch, a generator /
//! inference step (Adam, `train.lr`) and an EBM step (its own Adam, `model.ebm_lr`) on the
//! posterior samples of that batch against fresh short-run Langevin prior samples.

use crate::config::EbmConfig;
use crate::model::EbmModel;
use anyhow::{bail, Result};
use mmlatent_core::family::TrainContext;
use mmlatent_core::grid::save_image_grid;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::run::RunDir;
use mmlatent_core::training::Stage;
use mmlatent_core::MultimodalModel;
use mmlatent_data::BatchLoader;

/// The name of the (single) training stage and of its checkpoint.
pub const STAGE: &str = "ebm";

/// The numbers logged at every step.
#[derive(Clone, Copy, Debug)]
pub struct StepMetrics {
    pub loss: f64,
    pub recon: f64,
    pub cross: f64,
    pub reg: f64,
    pub ebm_loss: f64,
    pub energy_posterior: f64,
    pub energy_prior: f64,
}

impl StepMetrics {
    /// E_q[f] − E_p[f]; it goes negative as the EBM separates posterior from prior samples and
    /// should hover near a small value when the short-run chain keeps up.
    pub fn energy_gap(&self) -> f64 {
        self.energy_posterior - self.energy_prior
    }
}

/// The two optimisers of a model.
pub struct Optimisers {
    pub generator: Adam,
    pub prior: Adam,
}

impl Optimisers {
    pub fn new(model: &EbmModel, generator_lr: f64) -> Result<Self> {
        let cfg = model.config();
        Ok(Self {
            generator: Adam::new(&model.generator_vs, AdamConfig::adam(generator_lr)),
            prior: Adam::new(&model.prior_vs, AdamConfig::adam(cfg.ebm_lr).betas(cfg.ebm_beta1, 0.999)),
        })
    }

    /// Where the state of each optimiser is checkpointed in `run`.
    fn paths(run: &RunDir) -> [std::path::PathBuf; 2] {
        [run.optimizer_checkpoint(&format!("{STAGE}_generator")), run.optimizer_checkpoint(&format!("{STAGE}_prior"))]
    }

    pub fn save(&self, run: &RunDir) -> Result<()> {
        let [generator, prior] = Self::paths(run);
        self.generator.save(&generator)?;
        self.prior.save(&prior)
    }

    /// Restores both states when they were saved (older runs resume with fresh moments).
    pub fn restore(&mut self, run: &RunDir) -> Result<()> {
        let [generator, prior] = Self::paths(run);
        self.generator.restore_if_present(&generator)?;
        self.prior.restore_if_present(&prior)?;
        Ok(())
    }
}

/// One training step on a batch: the generator / inference update, then the EBM update.
/// Fails with a clear message when the energy gap exceeds `max_energy_gap`.
pub fn train_step(model: &EbmModel, opt: &mut Optimisers, items: &[tch::Tensor]) -> Result<StepMetrics> {
    let objective = model.objective(items)?;
    opt.generator.backward_step(&objective.loss)?;

    let n = objective.posterior_z.size()[0];
    let prior_z = model.sample_prior(n);
    let ebm = model.prior().loss(&objective.posterior_z, &prior_z);
    // Each backward_step differentiates only with respect to its own optimiser's variables.
    opt.prior.backward_step(&ebm.loss)?;
    let metrics = StepMetrics {
        loss: objective.loss.double_value(&[]),
        recon: objective.recon,
        cross: objective.cross,
        reg: objective.reg,
        ebm_loss: ebm.energy_posterior - ebm.energy_prior,
        energy_posterior: ebm.energy_posterior,
        energy_prior: ebm.energy_prior,
    };
    let limit = model.config().max_energy_gap;
    if metrics.energy_gap().abs() > limit {
        bail!(
            "the EBM prior blew up: mean energy {:.3e} on posterior samples and {:.3e} on Langevin samples, a gap \
             beyond model.max_energy_gap = {limit:.1e}; lower model.ebm_lr or model.langevin_step_size",
            metrics.energy_posterior,
            metrics.energy_prior
        );
    }
    Ok(metrics)
}

/// Trains (or resumes) the model of `ctx` and writes a grid of joint samples at the end.
pub fn train(ctx: &TrainContext) -> Result<()> {
    let experiment = ctx.experiment;
    let kind = experiment.model_kind()?;
    let config: EbmConfig = experiment.model_config()?;
    let mut model = EbmModel::new(kind, &ctx.dataset.modalities, &config, ctx.device)?;
    let checkpoint = ctx.run.checkpoint(STAGE);
    let train_cfg = &experiment.train;
    let mut stage = Stage::begin(ctx.run, STAGE, train_cfg.steps, train_cfg)?;
    if stage.is_done() {
        return Ok(());
    }
    if stage.start_step() > 0 {
        model.load(&checkpoint)?;
    }
    let mut opt = Optimisers::new(&model, train_cfg.lr)?;
    if stage.start_step() > 0 {
        opt.restore(ctx.run)?;
    }
    let mut loader = BatchLoader::with_skip(
        &ctx.dataset.train,
        &ctx.dataset.modalities,
        train_cfg.batch_size,
        experiment.seed,
        ctx.device,
        stage.start_step(),
    );
    let save = |model: &EbmModel, opt: &Optimisers| -> Result<()> {
        model.save(&checkpoint)?;
        opt.save(ctx.run)
    };
    for step in stage.start_step()..train_cfg.steps {
        let batch = loader.next_batch();
        let factor = train_cfg.lr_factor(step);
        opt.generator.set_lr(train_cfg.lr * factor);
        opt.prior.set_lr(config.ebm_lr * factor);
        let m = train_step(&model, &mut opt, &batch.items).map_err(|e| {
            e.context(format!("step {} of {}; the last good checkpoint is {}", step + 1, STAGE, checkpoint.display()))
        })?;
        let metrics = [
            ("loss", m.loss),
            ("recon", m.recon),
            ("cross", m.cross),
            ("reg", m.reg),
            ("energy_posterior", m.energy_posterior),
            ("energy_prior", m.energy_prior),
            ("energy_gap", m.energy_gap()),
        ];
        stage.record(step, &metrics, || save(&model, &opt))?;
    }
    stage.finish(|| save(&model, &opt))?;
    write_joint_grid(&model, ctx)
}

/// `samples/joint.png`: 8 joint samples, one row per image modality.
fn write_joint_grid(model: &EbmModel, ctx: &TrainContext) -> Result<()> {
    let none: Vec<Option<tch::Tensor>> = model.modalities().iter().map(|_| None).collect();
    let samples = model.generate(&none, 8)?;
    let rows: Vec<tch::Tensor> =
        samples.into_iter().zip(model.modalities()).filter(|(_, s)| s.is_image()).map(|(t, _)| t).collect();
    if rows.is_empty() {
        return Ok(());
    }
    save_image_grid(&ctx.run.file("samples/joint.png")?, &rows)
}
