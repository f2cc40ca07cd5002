//! `mmlatent train CONFIG`: trains every stage of the experiment's model in a run folder.

use crate::families;
use anyhow::{bail, Context, Result};
use mmlatent_core::config::Experiment;
use mmlatent_core::device::{parse_device, seed_everything, set_threads};
use mmlatent_core::family::TrainContext;
use mmlatent_core::run::RunDir;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Experiment file, e.g. configs/default-mld.toml.
    pub config: PathBuf,
    /// Run folder (default: runs/<experiment name>).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Continue the run in the folder from its last checkpoints.
    #[arg(long)]
    pub resume: bool,
    /// Override a config value: --set train.steps=500 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// cpu, cuda, cuda:N or auto (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let mut experiment = Experiment::load(&args.config, &args.overrides)?;
    let requested = experiment.to_toml()?;
    if let Some(d) = &args.device {
        experiment.device = d.clone();
    }
    let root = args.run.clone().unwrap_or_else(|| PathBuf::from("runs").join(experiment.run_name()));
    let run = RunDir::create(&root, &experiment, args.resume)?;
    // A resumed run keeps the experiment it was started with; overrides that would change it
    // are refused rather than silently ignored.
    let experiment = if args.resume {
        let stored = run.experiment()?;
        if !args.overrides.is_empty() && stored.to_toml()? != requested {
            bail!(
                "--set cannot change the experiment of the run in {} when resuming (it keeps its stored \
                 config); edit {} instead, or start a new run",
                root.display(),
                run.config_path().display()
            );
        }
        stored
    } else {
        experiment
    };
    train_experiment(&experiment, &run, args.device.as_deref())
}

/// Trains `experiment` into `run` (shared with `quickstart`).
pub fn train_experiment(experiment: &Experiment, run: &RunDir, device: Option<&str>) -> Result<()> {
    let device = parse_device(device.unwrap_or(&experiment.device))?;
    set_threads(experiment.train.threads);
    seed_everything(experiment.seed);
    let family = families::for_kind(experiment.model_kind()?)?;
    let dataset = mmlatent_data::open(&experiment.data).context("cannot open the experiment's dataset")?;
    eprintln!(
        "training {} on {} ({} train / {} test tuples, {} modalities) on {:?} → {}",
        experiment.model_kind()?,
        dataset.name,
        dataset.train.len(),
        dataset.test.len(),
        dataset.num_modalities(),
        device,
        run.root().display()
    );
    family.train(&TrainContext { experiment, run, dataset: &dataset, device })
}
