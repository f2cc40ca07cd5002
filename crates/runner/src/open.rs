//! Opening a trained run: its experiment, dataset and model, ready to sample and evaluate.

use crate::families;
use anyhow::{Context, Result};
use mmlatent_core::config::Experiment;
use mmlatent_core::device::{parse_device, seed_everything, set_threads};
use mmlatent_core::run::RunDir;
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use std::path::Path;
use tch::Device;

/// A trained run, opened: its experiment, dataset and model.
pub struct OpenedRun {
    pub run: RunDir,
    pub experiment: Experiment,
    pub dataset: MultimodalDataset,
    pub model: Box<dyn MultimodalModel>,
    pub device: Device,
}

/// Opens the run folder `path`, its dataset and its trained model on `device` (default: the
/// run's own device setting).
pub fn open_run(path: &Path, device: Option<&str>) -> Result<OpenedRun> {
    let run = RunDir::open(path)?;
    let experiment = run.experiment()?;
    let device = parse_device(device.unwrap_or(&experiment.device))?;
    set_threads(experiment.train.threads);
    seed_everything(experiment.seed);
    let dataset = mmlatent_data::open(&experiment.data)
        .with_context(|| format!("cannot open the dataset of run {}", path.display()))?;
    let family = families::for_kind(experiment.model_kind()?)?;
    let model = family.load(&run, &dataset, device)?;
    Ok(OpenedRun { run, experiment, dataset, model, device })
}
