//! Training of both EBM kinds: one stage (`ebm`) alternating, on every batch, a generator /
//! inference step (Adam, `train.lr`) and an EBM step (its own Adam, `model.ebm_lr`) on the
//! posterior samples of that batch against fresh short-run Langevin prior samples.

use crate::config::EbmConfig;
use crate::model::EbmModel;
use anyhow::{bail, Result};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_train::family::TrainContext;
use mmlatent_train::loader::StepLoader;
use mmlatent_train::run::RunDir;
use mmlatent_train::training::{self, Stage, Which};

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

/// One training step on a batch: the generator / inference update, then the EBM update.
/// Fails with a clear message when the energy gap exceeds `max_energy_gap`.
pub fn train_step(model: &EbmModel, opt: &mut Optimisers, items: &[tch::Tensor]) -> Result<StepMetrics> {
    train_step_with(model, &mut opt.generator, &mut opt.prior, items)
}

/// [`train_step`] with the generator's and the prior's optimisers given apart.
pub fn train_step_with(
    model: &EbmModel,
    generator: &mut Adam,
    prior: &mut Adam,
    items: &[tch::Tensor],
) -> Result<StepMetrics> {
    let objective = model.objective(items)?;
    generator.backward_step(&objective.loss)?;

    let n = objective.posterior_z.size()[0];
    let prior_z = model.sample_prior(n);
    let ebm = model.prior().loss(&objective.posterior_z, &prior_z);
    // Each backward_step differentiates only with respect to its own optimiser's variables.
    prior.backward_step(&ebm.loss)?;
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

/// The names of the generator's and the prior's weights in the stage's checkpoint sets.
pub const WEIGHTS: [&str; 2] = ["generator", "prior"];

/// The two optimisers of a model.
pub struct Optimisers {
    pub generator: Adam,
    pub prior: Adam,
}

impl Optimisers {
    /// Adam for the generator / inference networks at `generator_lr`, and for the prior at the
    /// config's `ebm_lr` and `ebm_beta1`.
    pub fn new(model: &EbmModel, generator_lr: f64) -> Result<Self> {
        let cfg = model.config();
        Ok(Self {
            generator: Adam::new(&model.generator_vs, AdamConfig::adam(generator_lr)),
            prior: Adam::new(&model.prior_vs, AdamConfig::adam(cfg.ebm_lr).betas(cfg.ebm_beta1, 0.999)),
        })
    }
}

/// Trains (or resumes) the model of `ctx` through the training loop (both learning rates
/// follow `train`'s schedule), with `ctx`'s snapshots.
pub fn train(config: &EbmConfig, ctx: &TrainContext) -> Result<()> {
    let experiment = ctx.experiment;
    let kind = experiment.model_kind()?;
    let model = EbmModel::new(kind, &ctx.dataset.modalities, config, ctx.device)?;
    let train_cfg = &experiment.train;
    let mut loader = StepLoader::new(
        &ctx.dataset.train,
        &ctx.dataset.modalities,
        train_cfg.batch_size,
        experiment.seed,
        ctx.device,
    )?;
    let Optimisers { generator, prior } = Optimisers::new(&model, train_cfg.lr)?;
    Stage::new(ctx.run, STAGE, train_cfg.steps, train_cfg, experiment.seed)
        .position(1, 1)
        .snapshots(ctx.snapshot)
        .weights(WEIGHTS[0], &model.generator_vs)
        .weights(WEIGHTS[1], &model.prior_vs)
        .optimiser("generator", generator)
        .optimiser("prior", prior)
        .run(|step, opts| {
            let batch = loader.batch(step)?;
            let (generator, prior) = opts.split_at_mut(1);
            let m = train_step_with(&model, &mut generator[0], &mut prior[0], &batch.items)?;
            Ok(vec![
                ("loss", m.loss),
                ("recon", m.recon),
                ("cross", m.cross),
                ("reg", m.reg),
                ("energy_posterior", m.energy_posterior),
                ("energy_prior", m.energy_prior),
                ("energy_gap", m.energy_gap()),
            ])
        })?;
    Ok(())
}

/// Loads the trained weights of stage [`STAGE`] of `run` into `model`.
pub fn load_trained(model: &EbmModel, run: &RunDir) -> Result<()> {
    training::load_weights(
        run,
        STAGE,
        Which::Latest,
        &[(WEIGHTS[0], &model.generator_vs), (WEIGHTS[1], &model.prior_vs)],
    )?;
    Ok(())
}
