//! The benchmark behind `mmlatent bench vae`: MoPoE and MMVAE+ with the PolyMNIST settings of
//! their papers (MoPoE: latent 512, β 2.5, Laplace 0.75, lr 5e-4; MMVAE+: 32 shared + 32
//! private dimensions, K importance samples, IWAE) on the bundled default dataset (PolyMNIST
//! format, 3 × 3×28×28).
//!
//! The step workloads cycle in order through the first [`pool_size`] training tuples, which
//! `scripts/bench_vae.py` reads from the split written by [`mmlatent_core::bench::write_split`],
//! so MultiVae trains on the very same batches, in the same order, with the same architecture,
//! from the same initial weights (`<model>_init.safetensors` in the data folder). The epoch
//! workloads take whole shuffled epochs of the split through each side's own loader.

use crate::config::{VaeConfig, VaeKind};
use crate::VaeModel;
use anyhow::{Context, Result};
use mmlatent_core::bench::{time_epochs, BenchOptions, BenchResult, Repeats, Timing};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::MultimodalDataset;
use std::time::Instant;
use tch::{Device, Tensor};

/// The two benchmarked models: (name, kind, `[model]` table, learning rate).
pub const WORKLOADS: [(&str, VaeKind, &str, f64); 2] = [
    ("mopoe", VaeKind::Mopoe, "latent = 512\nbeta = 2.5\nwidth = 32", 5e-4),
    (
        "mmvaeplus",
        VaeKind::Mmvaeplus,
        "latent = 32\nspecific = 32\nbeta = 1.0\nwidth = 32\nk = 4\nestimator = \"iwae\"",
        1e-3,
    ),
];

/// Number of distinct tuples cycled through by the step workloads (in order, no shuffling).
pub fn pool_size(batch: i64) -> i64 {
    4 * batch
}

/// Runs both workloads on `dataset` (the bundled default set in `mmlatent bench vae`): timings
/// `<model> step` and, with `opts.epochs > 0`, `<model> epoch`; values `<model> loss@<steps>`,
/// the mean loss of the last 5 steps.
pub fn run(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<BenchResult> {
    let n = pool_size(opts.batch).min(dataset.train.len() as i64);
    let pool = dataset.train.head(&dataset.modalities, n as usize, Device::Cpu);
    let mut result = BenchResult::default();
    let Repeats { warmup, iters } = opts.repeats;
    for (name, kind, table, lr) in WORKLOADS {
        let cfg = VaeConfig::parse(kind, toml::from_str(table)?).context("bench: workload config")?;
        tch::manual_seed(0);
        let model = VaeModel::new(cfg, &dataset.modalities, Device::Cpu)?;
        // The initial weights, so that the PyTorch side starts from the same point.
        mmlatent_core::checkpoint::save_varstore(&model.vs, &opts.data_dir.join(format!("{name}_init.safetensors")))?;
        let mut opt = Adam::new(&model.vs, AdamConfig::adam(lr));
        let (mut times, mut losses) = (vec![], vec![]);
        for step in 0..warmup + iters {
            let start = (step as i64 * opts.batch) % n;
            let xs: Vec<Tensor> = pool.items.iter().map(|t| t.narrow(0, start, opts.batch.min(n - start))).collect();
            let t0 = Instant::now();
            let metrics = model.train_step(&mut opt, &xs, step)?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if step >= warmup {
                times.push(ms);
            }
            losses.push(metrics[0].1);
        }
        let tail = &losses[losses.len().saturating_sub(5)..];
        result.timings.push(Timing::from_runs(format!("{name} step"), times));
        result.values.push((format!("{name} loss@{}", losses.len()), tail.iter().sum::<f64>() / tail.len() as f64));
        if opts.epochs > 0 {
            let (split, specs, batch) = (&dataset.train, &dataset.modalities, opts.batch as usize);
            let offset = warmup + iters;
            result.timings.push(time_epochs(&format!("{name} epoch"), split, specs, batch, opts.epochs, |s, xs| {
                model.train_step(&mut opt, xs, offset + s).map(|_| ())
            })?);
        }
    }
    Ok(result)
}
