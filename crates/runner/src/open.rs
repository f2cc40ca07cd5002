//! Opening a trained run: its experiment, dataset and model, ready to sample and evaluate.

use crate::device::parse_device;
use crate::families;
use crate::sampler::{SamplerArgs, SamplerInfo};
use anyhow::{Context, Result};
use mmlatent_core::device::{seed_everything, set_threads};
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use mmlatent_train::config::Experiment;
use mmlatent_train::run::RunDir;
use std::path::Path;
use tch::Device;

/// A trained run, opened: its experiment, dataset and model.
pub struct OpenedRun {
    pub run: RunDir,
    /// The stored experiment with this call's sampler overrides applied.
    pub experiment: Experiment,
    pub dataset: MultimodalDataset,
    pub model: Box<dyn MultimodalModel>,
    pub device: Device,
    /// The sampler the model draws with (the run's, or the one `sampler` chose).
    pub sampler: SamplerInfo,
}

/// Opens the run folder `path`, its dataset and its trained model on `device` (default: the
/// run's own device setting), with the sampler choices of this call applied to its stored
/// experiment (which stays as it is on disk).
pub fn open_run(path: &Path, device: Option<&str>, sampler: &SamplerArgs) -> Result<OpenedRun> {
    let stored = RunDir::open(path)?;
    let kind = stored.experiment()?.model_kind()?.to_string();
    let run = stored.with_overrides(sampler.overrides(&kind)?);
    let experiment = run.experiment().context("in the sampler flags (--sampler, --steps, --sampler-option)")?;
    let device = parse_device(device.unwrap_or(&experiment.device))?;
    set_threads(experiment.train.threads);
    seed_everything(experiment.seed);
    let dataset = mmlatent_data::open(&experiment.data)
        .with_context(|| format!("cannot open the dataset of run {}", path.display()))?;
    let family = families::for_kind(&kind)?
        .configure(&experiment)
        .context("in the sampler flags (--sampler, --steps, --sampler-option)")?;
    let mut info = family.sampler()?;
    let model = family.load(&run, &dataset, device)?;
    info.evaluations_per_sample = model.evaluations_per_sample().or(info.evaluations_per_sample);
    Ok(OpenedRun { run, experiment, dataset, model, device, sampler: info })
}
