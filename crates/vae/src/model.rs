//! A multimodal VAE as a trainable, loadable [`MultimodalModel`]: the frame and objective of
//! one kind in a VarStore, its training (a step and a held-out loss for the training loop's
//! [`Stage`]), loading and generation.

use crate::config::VaeConfig;
use crate::estimator::dreg_backward;
use crate::frame::Frame;
use crate::models::{build, Loss, Objective};
use anyhow::{Context, Result};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::{ModalitySpec, MultimodalDataset, MultimodalModel};
use mmlatent_train::family::TrainContext;
use mmlatent_train::loader::StepLoader;
use mmlatent_train::run::RunDir;
use mmlatent_train::training::{self, Stage, Which};
use tch::nn;
use tch::{Device, Tensor};

/// The checkpoint stage name of every VAE run.
pub const STAGE: &str = "vae";

pub struct VaeModel {
    pub config: VaeConfig,
    pub vs: nn::VarStore,
    pub frame: Frame,
    pub objective: Box<dyn Objective>,
}

impl VaeModel {
    /// A freshly initialised model of `config`'s kind for `specs` on `device`.
    pub fn new(config: VaeConfig, specs: &[ModalitySpec], device: Device) -> Result<Self> {
        config.check()?;
        let vs = nn::VarStore::new(device);
        let (frame, objective) = build(&config, &vs.root(), specs)?;
        Ok(Self { config, vs, frame, objective })
    }

    /// The loss of a batch at training step `step` (β warm-up applied).
    pub fn loss(&self, xs: &[Tensor], step: usize) -> Result<Loss> {
        let beta = self.config.common.beta;
        let anneal = if beta > 0.0 { self.config.beta_at(step) / beta } else { 1.0 };
        self.objective.loss(&self.frame, xs, anneal)
    }

    /// One optimisation step; returns the loss and the model's metrics.
    pub fn train_step(&self, opt: &mut Adam, xs: &[Tensor], step: usize) -> Result<Vec<(&'static str, f64)>> {
        let out = self.loss(xs, step)?;
        opt.zero_grad();
        out.loss.f_backward().context("backward pass failed")?;
        dreg_backward(&out.dreg).context("DReG backward pass failed")?;
        opt.step()?;
        let mut metrics = vec![("loss", out.loss.double_value(&[]))];
        metrics.extend(out.metrics.iter().map(|(k, v)| (*k, v.double_value(&[]))));
        Ok(metrics)
    }

    /// Trains (or resumes, or loads when done) stage [`STAGE`] of `ctx`'s run on its dataset for
    /// `train.steps` steps, with `ctx`'s snapshots, through the training loop. The held-out loss is the objective on
    /// the first [`VALIDATION_TUPLES`] test tuples (logged as `val_loss`, best set kept).
    pub fn fit(&mut self, ctx: &TrainContext) -> Result<()> {
        let (run, dataset, train, seed) = (ctx.run, ctx.dataset, &ctx.experiment.train, ctx.experiment.seed);
        let device = self.vs.device();
        let mut loader = StepLoader::new(&dataset.train, &dataset.modalities, train.batch_size, seed, device)?;
        let held_out =
            (!dataset.test.is_empty()).then(|| dataset.test.head(&dataset.modalities, VALIDATION_TUPLES, device));
        let this = &*self;
        let mut stage = Stage::new(run, STAGE, train.steps, train, seed)
            .position(1, 1)
            .snapshots(ctx.snapshot)
            .weights(WEIGHTS, &this.vs)
            .optimiser("adam", Adam::new(&this.vs, AdamConfig::adam(train.lr)));
        if let Some(held_out) = &held_out {
            stage = stage.validation(move || {
                let _guard = tch::no_grad_guard();
                Ok(this.loss(&held_out.items, train.steps)?.loss.double_value(&[]))
            });
        }
        stage.run(|step, opts| {
            let batch = loader.batch(step)?;
            this.train_step(&mut opts[0], &batch.items, step)
        })?;
        Ok(())
    }

    /// The trained model of `run` (its config and the dataset's modalities fix the architecture).
    pub fn load(config: VaeConfig, run: &RunDir, dataset: &MultimodalDataset, device: Device) -> Result<Self> {
        let kind = config.kind();
        let model = Self::new(config, &dataset.modalities, device)?;
        training::load_weights(run, STAGE, Which::Latest, &[(WEIGHTS, &model.vs)])
            .with_context(|| format!("cannot load the {} model of run {}", kind.name(), run.root().display()))?;
        Ok(model)
    }
}

/// The name of the model's weights in the stage's checkpoint sets.
pub const WEIGHTS: &str = "vae";

/// Test tuples the held-out loss is measured on.
pub const VALIDATION_TUPLES: usize = 256;

impl MultimodalModel for VaeModel {
    fn name(&self) -> &str {
        self.config.kind().name()
    }

    fn modalities(&self) -> &[ModalitySpec] {
        &self.frame.specs
    }

    fn device(&self) -> Device {
        self.vs.device()
    }

    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let given: Vec<Option<Tensor>> = given.iter().map(|g| g.as_ref().map(|t| t.to_device(self.device()))).collect();
        let latents = self.objective.latents(&self.frame, &given, n)?;
        Ok(self.frame.complete(&given, &latents))
    }
}
