//! What the CLI needs from a model family: train a run, and load a trained run as a
//! [`MultimodalModel`]. Each model crate exports one `FAMILY` static.
//!
//! A family implements [`Family`]: its `[model]` table as one typed config ([`Family::Config`],
//! parsed and its values checked in [`Family::parse`], the only place the table is read), and
//! every other method takes that typed value. The front ends hold families as
//! `&dyn` [`ModelFamily`], which every [`Family`] is, and read an experiment once per command
//! ([`ModelFamily::configure`]): the [`ConfiguredFamily`] they get holds the typed config and
//! hands it to each call.

use crate::config::Experiment;
use crate::run::RunDir;
use anyhow::{bail, Result};
use mmlatent_core::dataset::MultimodalDataset;
use mmlatent_core::{ModalitySpec, MultimodalModel};
use serde::{Deserialize, Serialize};
use tch::Device;

/// Called with the step after a checkpoint of a model's last stage at each multiple of
/// `train.sample_every`; the front end draws sample grids from the run as it stands.
pub type Snapshot<'a> = &'a dyn Fn(usize) -> Result<()>;

/// The dataset's evaluation classifiers, when the front end has them at hand: the class each item
/// of a batch `[N, …]` of modality `m` (data space) is read as, `[N]`. A model reports with it
/// how much of the class its reconstructions keep (MLD, at the end of stage 1).
pub type Judge<'a> = &'a dyn Fn(usize, &tch::Tensor) -> Result<tch::Tensor>;

/// Stages a new run may take over, finished, from another run of the same family instead of
/// training them (MLD's autoencoders: `train --autoencoders-from RUN`).
pub struct ReusableStages {
    /// The stages' names, as in `checkpoints/<stage>`.
    pub stages: Vec<String>,
    /// Every setting those stages depend on, by dotted key; two runs share the stages only when
    /// all of them are equal.
    pub settings: toml::Table,
}

/// One training stage as a config plans it: what `train` prints before it starts, so that which
/// key sets which stage's steps is never a guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStage {
    /// The stage's name, as in `checkpoints/<stage>`.
    pub name: String,
    /// How many steps it trains.
    pub steps: usize,
    /// The config key that sets them (e.g. `train.steps`, `model.autoencoder.steps`).
    pub steps_key: &'static str,
}

impl PlannedStage {
    /// A stage whose steps are `train.steps`.
    pub fn of_train(name: &str, experiment: &Experiment) -> Self {
        Self { name: name.to_string(), steps: experiment.train.steps, steps_key: "train.steps" }
    }

    /// `stages` in one line, stages of equal steps from one key grouped: "ae_m0,
    /// ae_m1 1500 steps each (model.autoencoder.steps), then score 8000 steps (train.steps)".
    pub fn describe(stages: &[PlannedStage]) -> String {
        let mut groups: Vec<(Vec<&str>, usize, &str)> = vec![];
        for s in stages {
            match groups.last_mut() {
                Some((names, steps, key)) if *steps == s.steps && *key == s.steps_key => names.push(&s.name),
                _ => groups.push((vec![&s.name], s.steps, s.steps_key)),
            }
        }
        let group = |(names, steps, key): &(Vec<&str>, usize, &str)| {
            let each = if names.len() > 1 { " each" } else { "" };
            format!("{} {steps} steps{each} ({key})", names.join(", "))
        };
        groups.iter().map(group).collect::<Vec<_>>().join(", then ")
    }
}

/// The sampler a model draws with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SamplerInfo {
    /// e.g. `ancestral`, `langevin`, `prior`.
    pub name: String,
    /// Its settings as the run's `[model]` table gives them (after this call's overrides).
    pub settings: serde_json::Value,
    /// Network evaluations per sample, where the model counts them (MLD: score evaluations,
    /// RePaint included; EBM: Langevin steps, one energy gradient each).
    pub evaluations_per_sample: Option<usize>,
}

impl SamplerInfo {
    /// `ancestral-50`, `langevin-60`, `prior`: for folder names.
    pub fn short_name(&self) -> String {
        match self.settings.get("steps").and_then(|s| s.as_u64()) {
            Some(steps) => format!("{}-{steps}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Everything a training run needs.
pub struct TrainContext<'a> {
    pub experiment: &'a Experiment,
    pub run: &'a RunDir,
    pub dataset: &'a MultimodalDataset,
    pub device: Device,
    /// The front end's sample grids during training (none: no grids before the end).
    pub snapshot: Option<Snapshot<'a>>,
    /// The dataset's evaluation classifiers, if the front end found them (none: reports that
    /// need them say so).
    pub judge: Option<Judge<'a>>,
}

impl<'a> TrainContext<'a> {
    /// A context without snapshots or classifiers.
    pub fn new(experiment: &'a Experiment, run: &'a RunDir, dataset: &'a MultimodalDataset, device: Device) -> Self {
        Self { experiment, run, dataset, device, snapshot: None, judge: None }
    }
}

/// A model family as the front ends hold it (`&dyn ModelFamily`); implemented for every
/// [`Family`], which is what a model crate implements. A command reads an experiment's `[model]`
/// table once, with [`ModelFamily::configure`], and works on the [`ConfiguredFamily`] it gets.
pub trait ModelFamily: Sync {
    /// The `[model] kind` values this family handles, e.g. `["mld"]`.
    fn kinds(&self) -> &'static [&'static str];

    /// Reads and checks the experiment's `[model]` table (renamed keys under their new names, a
    /// warning for each): the family with its typed config, for one command.
    fn configure(&'static self, experiment: &Experiment) -> Result<Box<dyn ConfiguredFamily>>;

    /// The experiment's `[model]` table as the family resolves it (see
    /// [`ConfiguredFamily::resolved`]).
    fn resolved_model(
        &'static self,
        experiment: &Experiment,
        modalities: Option<&[ModalitySpec]>,
    ) -> Result<toml::Table> {
        Ok(self.configure(experiment)?.resolved(modalities)?.experiment().model.clone())
    }

    /// Trains the experiment of `ctx` (see [`ConfiguredFamily::train`]).
    fn train(&'static self, ctx: &TrainContext) -> Result<()> {
        self.configure(ctx.experiment)?.train(ctx)
    }

    /// Loads the trained model of a run folder, read with its stored experiment.
    fn load(
        &'static self,
        run: &RunDir,
        dataset: &MultimodalDataset,
        device: Device,
    ) -> Result<Box<dyn MultimodalModel>> {
        self.configure(&run.experiment()?)?.load(run, dataset, device)
    }
}

/// A model family with one experiment's `[model]` table read into its typed config: what the
/// runner holds from the start of a command to its end, so the table is parsed and checked once.
pub trait ConfiguredFamily {
    /// The experiment the config was read from.
    fn experiment(&self) -> &Experiment;

    /// Settings of the `[model]` table that are accepted but deserve a word (keys of an earlier
    /// version, say), printed by `train` before it starts.
    fn warnings(&self) -> &[String];

    /// Checks the config against the dataset (modality kinds and sizes, batch sizes) without
    /// training: the CLI calls it before creating a run folder.
    fn check(&self, dataset: &MultimodalDataset) -> Result<()>;

    /// The same family with every default of the `[model]` table written out in its experiment:
    /// what a new run folder stores, so that it says how it was trained. With the dataset's
    /// `modalities`, the values derived from them (MLD's score width) are written too; without,
    /// they stay implicit (enough to compare two configs of one dataset).
    fn resolved(&self, modalities: Option<&[ModalitySpec]>) -> Result<Box<dyn ConfiguredFamily>>;

    /// The stages training runs, in order, with their steps and the key that sets them, on a
    /// dataset of `modalities`.
    fn stages(&self, modalities: &[ModalitySpec]) -> Vec<PlannedStage>;

    /// Trains (or, when the run folder holds checkpoints, resumes) every stage of the model;
    /// `ctx.experiment` is [`ConfiguredFamily::experiment`].
    fn train(&self, ctx: &TrainContext) -> Result<()>;

    /// Loads the trained model of `run` (a run of this experiment) for sampling and evaluation.
    fn load(&self, run: &RunDir, dataset: &MultimodalDataset, device: Device) -> Result<Box<dyn MultimodalModel>>;

    /// The sampler the experiment's model draws with, as a report records it (the evaluation
    /// count where the config alone gives it; the loaded model may know it better).
    fn sampler(&self) -> Result<SamplerInfo>;

    /// The first stages (on a dataset of `modalities`) that a new run may take over from a
    /// finished run whose [`ReusableStages::settings`] are the same; `None` when the family's
    /// stages are trained together.
    fn reusable_stages(&self, modalities: &[ModalitySpec]) -> Result<Option<ReusableStages>>;
}

/// A model family over its typed config (see the module doc). The front ends see it as a
/// [`ModelFamily`].
pub trait Family: Sync {
    /// The `[model]` table, typed: serde with its defaults, unknown keys refused.
    type Config: Serialize + Clone;

    /// The `[model] kind` values this family handles, e.g. `["mld"]`.
    fn kinds(&self) -> &'static [&'static str];

    /// Keys renamed since an earlier version, as `(old, new)` dotted paths under `[model]` in
    /// the same table (e.g. `("score.d", "score.given_p")`): a config (or a stored run) that
    /// uses the old name is read as if it used the new one, with a warning naming it.
    fn renamed_keys(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Reads the experiment's `[model]` table (with `kind`, renamed keys already under their new
    /// names) and checks its values: the one place the table is parsed.
    fn parse(&self, experiment: &Experiment) -> Result<Self::Config>;

    /// `config` with the values it derives made explicit (what a new run folder stores), those
    /// that depend on the dataset only when its `modalities` are given; unchanged by default.
    fn resolved(
        &self,
        _experiment: &Experiment,
        config: Self::Config,
        _modalities: Option<&[ModalitySpec]>,
    ) -> Result<Self::Config> {
        Ok(config)
    }

    /// Checks `config` against the dataset without training (see [`ConfiguredFamily::check`]).
    fn check(&self, config: &Self::Config, experiment: &Experiment, dataset: &MultimodalDataset) -> Result<()>;

    /// See [`ConfiguredFamily::warnings`] (the renamed keys' warnings come on top).
    fn warnings(&self, _config: &Self::Config) -> Vec<String> {
        vec![]
    }

    /// See [`ConfiguredFamily::stages`].
    fn stages(&self, config: &Self::Config, experiment: &Experiment, modalities: &[ModalitySpec]) -> Vec<PlannedStage>;

    /// Trains (or resumes) every stage (see [`ConfiguredFamily::train`]).
    fn train(&self, config: &Self::Config, ctx: &TrainContext) -> Result<()>;

    /// Loads the trained model of `run`, whose stored experiment is `experiment`.
    fn load(
        &self,
        config: &Self::Config,
        experiment: &Experiment,
        run: &RunDir,
        dataset: &MultimodalDataset,
        device: Device,
    ) -> Result<Box<dyn MultimodalModel>>;

    /// See [`ConfiguredFamily::sampler`].
    fn sampler(&self, config: &Self::Config) -> Result<SamplerInfo>;

    /// See [`ConfiguredFamily::reusable_stages`].
    fn reusable_stages(
        &self,
        _config: &Self::Config,
        _experiment: &Experiment,
        _modalities: &[ModalitySpec],
    ) -> Result<Option<ReusableStages>> {
        Ok(None)
    }
}

/// `family`'s typed config of `experiment`, its renamed keys read under their new names, and a
/// warning for each old name found: how every [`ModelFamily`] call reads it (use this, not
/// [`Family::parse`], which expects the new names).
pub fn read_config<F: Family>(family: &F, experiment: &Experiment) -> Result<(F::Config, Vec<String>)> {
    let mut current = experiment.clone();
    let mut warnings = vec![];
    for (old, new) in family.renamed_keys() {
        let (path, old_name) = old.rsplit_once('.').map_or(("", *old), |(p, n)| (p, n));
        let new_name = new.rsplit_once('.').map_or(*new, |(_, n)| n);
        let section = if path.is_empty() { "[model]".to_string() } else { format!("[model.{path}]") };
        let table = path
            .split('.')
            .filter(|p| !p.is_empty())
            .try_fold(&mut current.model, |t, part| t.get_mut(part)?.as_table_mut());
        let Some(table) = table else { continue };
        let Some(value) = table.remove(old_name) else { continue };
        if table.contains_key(new_name) {
            bail!("{section} sets both {old_name} and {new_name}: {old_name} is the earlier name of {new_name}; keep {new_name}");
        }
        warnings.push(format!("{section} {old_name} is now called {new_name}; read as {new_name} = {value}"));
        table.insert(new_name.to_string(), value);
    }
    Ok((family.parse(&current)?, warnings))
}

impl<F: Family> ModelFamily for F {
    fn kinds(&self) -> &'static [&'static str] {
        Family::kinds(self)
    }

    fn configure(&'static self, experiment: &Experiment) -> Result<Box<dyn ConfiguredFamily>> {
        let (config, mut warnings) = read_config(self, experiment)?;
        warnings.extend(Family::warnings(self, &config));
        Ok(Box::new(Configured { family: self, experiment: experiment.clone(), config, warnings }))
    }
}

/// A [`Family`] with its typed config: the [`ConfiguredFamily`] of every family.
struct Configured<F: Family + 'static> {
    family: &'static F,
    experiment: Experiment,
    config: F::Config,
    warnings: Vec<String>,
}

impl<F: Family> ConfiguredFamily for Configured<F> {
    fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn check(&self, dataset: &MultimodalDataset) -> Result<()> {
        self.family.check(&self.config, &self.experiment, dataset)
    }

    fn resolved(&self, modalities: Option<&[ModalitySpec]>) -> Result<Box<dyn ConfiguredFamily>> {
        let config = self.family.resolved(&self.experiment, self.config.clone(), modalities)?;
        let experiment = Experiment { model: self.experiment.model_table_of(&config)?, ..self.experiment.clone() };
        Ok(Box::new(Configured { family: self.family, experiment, config, warnings: self.warnings.clone() }))
    }

    fn stages(&self, modalities: &[ModalitySpec]) -> Vec<PlannedStage> {
        self.family.stages(&self.config, &self.experiment, modalities)
    }

    fn train(&self, ctx: &TrainContext) -> Result<()> {
        self.family.train(&self.config, ctx)
    }

    fn load(&self, run: &RunDir, dataset: &MultimodalDataset, device: Device) -> Result<Box<dyn MultimodalModel>> {
        self.family.load(&self.config, &self.experiment, run, dataset, device)
    }

    fn sampler(&self) -> Result<SamplerInfo> {
        self.family.sampler(&self.config)
    }

    fn reusable_stages(&self, modalities: &[ModalitySpec]) -> Result<Option<ReusableStages>> {
        self.family.reusable_stages(&self.config, &self.experiment, modalities)
    }
}
