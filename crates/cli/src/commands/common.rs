//! Helpers shared by the sub-commands: opening runs with their dataset and model.

use super::sampler::{describe, SamplerArgs, SamplerInfo};
use crate::families;
use anyhow::{bail, Context, Result};
use mmlatent_core::config::Experiment;
use mmlatent_core::device::{parse_device, seed_everything, set_threads};
use mmlatent_core::run::RunDir;
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use std::path::Path;
use tch::Device;

/// A trained run, opened: its experiment, dataset and model.
#[allow(dead_code)] // fields used by eval and quickstart
pub struct OpenedRun {
    pub run: RunDir,
    /// The stored experiment with this call's sampler overrides applied.
    pub experiment: Experiment,
    pub dataset: MultimodalDataset,
    pub model: Box<dyn MultimodalModel>,
    pub device: Device,
    /// The sampler the model draws with (the run's, or the one `sampler` flags chose).
    pub sampler: SamplerInfo,
}

/// Opens the run folder `path`, its dataset and its trained model on `device` (default: the
/// run's own device setting), with the sampler flags of this call applied to its stored
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
    let mut info = describe(&experiment).context("in the sampler flags (--sampler, --steps, --sampler-option)")?;
    let model = families::for_kind(&kind)?.load(&run, &dataset, device)?;
    info.evaluations_per_sample = model.evaluations_per_sample().or(info.evaluations_per_sample);
    Ok(OpenedRun { run, experiment, dataset, model, device, sampler: info })
}

/// Checks, before any work, that `path` (the value of `flag`) names a file with extension `ext`
/// that can be created: not a folder, in an existing folder.
pub fn check_output_file(flag: &str, path: &Path, ext: &str) -> Result<()> {
    if path.is_dir() {
        bail!(
            "{flag} {} is a folder: name the .{ext} file to write, e.g. {}/out.{ext}",
            path.display(),
            path.display()
        );
    }
    if path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() != Some(ext) {
        bail!("{flag} {}: name a .{ext} file", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!("{flag} {}: the folder {} does not exist", path.display(), parent.display());
        }
    }
    Ok(())
}

/// Checks that a count given on the command line lies in `1..=max`.
pub fn check_count(flag: &str, value: i64, max: i64) -> Result<()> {
    if !(1..=max).contains(&value) {
        bail!("{flag} {value}: give a number from 1 to {max}");
    }
    Ok(())
}
