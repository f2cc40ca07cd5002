//! The benchmark behind `mmlatent bench vae`: MoPoE and MMVAE+ with the PolyMNIST settings of
//! their papers (MoPoE: latent 512, β 2.5, Laplace 0.75, lr 5e-4; MMVAE+: 32 shared + 32
//! private dimensions, K importance samples, IWAE) on the bundled default dataset (PolyMNIST
//! format, 3 × 3×28×28).
//!
//! The step workloads cycle in order through the first [`crate::measure::pool_size`] training
//! tuples, which `scripts/bench_vae.py` reads from the split written by
//! [`crate::measure::write_split`], so MultiVae trains on the very same batches, in the same order, with the same architecture,
//! from the same initial weights (`<model>_init.safetensors` in the data folder). The epoch
//! workloads take whole shuffled epochs of the split through each side's own loader.

use crate::measure::{time_epochs, time_pool_steps, BenchOptions, BenchResult};
use anyhow::{Context, Result};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::MultimodalDataset;
use mmlatent_vae::config::{VaeConfig, VaeKind};
use mmlatent_vae::VaeModel;
use tch::Device;

/// The two benchmarked models: (name, kind, `[model]` table, learning rate).
pub const WORKLOADS: [(&str, VaeKind, &str, f64); 2] = [
    ("mopoe", VaeKind::Mopoe, "latent_dim = 512\nbeta = 2.5\nwidth = 32", 5e-4),
    (
        "mmvaeplus",
        VaeKind::Mmvaeplus,
        "latent_dim = 32\nspecific = 32\nbeta = 1.0\nwidth = 32\nk = 4\nestimator = \"iwae\"",
        1e-3,
    ),
];

/// Runs both workloads on `dataset` (the bundled default set in `mmlatent bench vae`): timings
/// `<model> step` and, with `opts.epochs > 0`, `<model> epoch`; values `<model> loss@<steps>`,
/// the mean loss of the last 5 steps.
pub fn run(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<BenchResult> {
    let mut result = BenchResult::default();
    for (name, kind, table, lr) in WORKLOADS {
        let cfg = VaeConfig::parse(kind, toml::from_str(table)?).context("bench: workload config")?;
        tch::manual_seed(0);
        let model = VaeModel::new(cfg, &dataset.modalities, Device::Cpu)?;
        // The initial weights, so that the PyTorch side starts from the same point.
        mmlatent_train::checkpoint::save_varstore(&model.vs, &opts.data_dir.join(format!("{name}_init.safetensors")))?;
        let mut opt = Adam::new(&model.vs, AdamConfig::adam(lr));
        let (step, loss) =
            time_pool_steps(name, &dataset.train, &dataset.modalities, opts.batch, opts.repeats, |s, xs| {
                Ok(model.train_step(&mut opt, xs, s)?[0].1)
            })?;
        result.timings.push(step);
        result.values.push(loss);
        if opts.epochs > 0 {
            let (split, specs, batch) = (&dataset.train, &dataset.modalities, opts.batch as usize);
            let offset = opts.repeats.warmup + opts.repeats.iters;
            result.timings.push(time_epochs(&format!("{name} epoch"), split, specs, batch, opts.epochs, |s, xs| {
                model.train_step(&mut opt, xs, offset + s).map(|_| ())
            })?);
        }
    }
    Ok(result)
}
