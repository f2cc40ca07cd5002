//! The benchmark behind `mmlatent bench ebm`, mirrored by `scripts/bench_ebm.py` (the same model
//! written in PyTorch: conv experts and decoders of `mmlatent_core::nets`, the energy MLP,
//! 60-step short-run Langevin, the mixture-of-experts objective) with the model of
//! `configs/default-ebm.toml` on the bundled default dataset (3 × 3×28×28):
//! - `ebm step`: one training step (generator / inference update, a Langevin prior draw of M·B
//!   chains, EBM update) on the first [`crate::measure::pool_size`] training tuples in order,
//!   from the initial weights written to `ebm_init.safetensors` in the data folder (the PyTorch
//!   side loads them);
//! - `ebm epoch`: a whole shuffled epoch through each side's loader;
//! - `ebm joint1000`: 1,000 joint samples (Langevin from N(0, I), then every decoder).
//!
//! The value `ebm loss@<steps>` (mean loss of the last 5 steps) shows that both sides train the
//! same objective; the Langevin and reparameterisation noise differ, so it agrees only roughly.

use crate::measure::{time_epochs, time_pool_steps, time_runs, BenchOptions, BenchResult};
use anyhow::{Context, Result};
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use mmlatent_ebm::config::EbmConfig;
use mmlatent_ebm::model::EbmModel;
use mmlatent_ebm::train::{train_step, Optimisers};
use mmlatent_ebm::KIND_BASE;
use tch::{Device, Tensor};

/// The `[model]` table of `configs/default-ebm.toml` and its generator learning rate.
pub const MODEL: &str = "kind = \"ebm\"\nlatent_dim = 16\nwidth = 32\nenergy_hidden = 200\nenergy_layers = 2\n\
                         langevin_steps = 60\nlangevin_step_size = 0.4\nebm_lr = 1e-4";
pub const GENERATOR_LR: f64 = 1e-3;

/// Runs the three workloads on `dataset` with the current libtorch thread setting.
pub fn run(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<BenchResult> {
    let mut table: toml::Table = toml::from_str(MODEL)?;
    table.remove("kind");
    let config: EbmConfig = toml::Value::Table(table).try_into().context("bench: the EBM workload's config")?;
    tch::manual_seed(0);
    let model = EbmModel::new(KIND_BASE, &dataset.modalities, &config, Device::Cpu)?;
    model.save(&opts.data_dir.join("ebm_init.safetensors"))?;
    let mut optimisers = Optimisers::new(&model, GENERATOR_LR)?;

    let (step, loss) =
        time_pool_steps("ebm", &dataset.train, &dataset.modalities, opts.batch, opts.repeats, |_, xs| {
            Ok(train_step(&model, &mut optimisers, xs)?.loss)
        })?;
    let mut result = BenchResult { timings: vec![step], values: vec![loss] };
    if opts.epochs > 0 {
        let (split, specs) = (&dataset.train, &dataset.modalities);
        result.timings.push(time_epochs("ebm epoch", split, specs, opts.batch as usize, opts.epochs, |_, xs| {
            train_step(&model, &mut optimisers, xs).map(|_| ())
        })?);
    }
    let nothing_given: Vec<Option<Tensor>> = dataset.modalities.iter().map(|_| None).collect();
    result
        .timings
        .push(time_runs("ebm joint1000", opts.repeats.few(), || model.generate(&nothing_given, 1000).map(|_| ()))?);
    Ok(result)
}
