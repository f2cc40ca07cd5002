//! The training-step benchmark behind `mmlatent bench vae`: MoPoE and MMVAE+ with the PolyMNIST
//! settings of their papers (MoPoE: latent 512, β 2.5, Laplace 0.75, lr 5e-4; MMVAE+: 32
//! shared + 32 private dimensions, K importance samples, IWAE) on the first tuples of the
//! bundled default dataset (PolyMNIST format, 3 × 3×28×28).
//!
//! The tuples are also written to `data_dir` (raw little-endian f32, one file per modality,
//! plus `meta.json`) so that `scripts/bench_vae.py` trains MultiVae on the very same batches,
//! in the same order, with the same architecture, from the same initial weights
//! (`<model>_init.safetensors`).

use crate::config::{VaeConfig, VaeKind};
use crate::VaeModel;
use anyhow::{Context, Result};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::MultimodalDataset;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Settings of the benchmark.
pub struct BenchOptions {
    pub batch: i64,
    /// Untimed steps before the timed ones.
    pub warmup: usize,
    /// Timed steps (the median is reported); the loss is reported after warmup + iters steps.
    pub iters: usize,
    /// Where the shared batches are written for the PyTorch side.
    pub data_dir: PathBuf,
}

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

/// Number of distinct tuples cycled through by the benchmark (in order, no shuffling).
pub fn pool_size(batch: i64) -> i64 {
    4 * batch
}

/// Runs both workloads on the first tuples of `dataset` (the bundled default set in
/// `mmlatent bench vae`); returns `("<model> ms/step", median ms)` and
/// `("<model> loss@<steps>", mean loss of the last 5 steps)`.
pub fn run(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<Vec<(String, f64)>> {
    let n = pool_size(opts.batch).min(dataset.train.len() as i64);
    let pool = dataset.train.head(&dataset.modalities, n as usize, Device::Cpu);
    write_pool(&opts.data_dir, &pool.items, opts.batch)?;
    let mut results = vec![];
    for (name, kind, table, lr) in WORKLOADS {
        let cfg = VaeConfig::parse(kind, toml::from_str(table)?).context("bench: workload config")?;
        tch::manual_seed(0);
        let model = VaeModel::new(cfg, &dataset.modalities, Device::Cpu)?;
        // The initial weights, so that the PyTorch side starts from the same point.
        mmlatent_core::checkpoint::save_varstore(&model.vs, &opts.data_dir.join(format!("{name}_init.safetensors")))?;
        let mut opt = Adam::new(&model.vs, AdamConfig::adam(lr));
        let (mut times, mut losses) = (vec![], vec![]);
        for step in 0..opts.warmup + opts.iters {
            let start = (step as i64 * opts.batch) % n;
            let xs: Vec<Tensor> = pool.items.iter().map(|t| t.narrow(0, start, opts.batch.min(n - start))).collect();
            let t0 = Instant::now();
            let metrics = model.train_step(&mut opt, &xs, step)?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if step >= opts.warmup {
                times.push(ms);
            }
            losses.push(metrics[0].1);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let tail = &losses[losses.len().saturating_sub(5)..];
        results.push((format!("{name} ms/step"), times[times.len() / 2]));
        results.push((format!("{name} loss@{}", losses.len()), tail.iter().sum::<f64>() / tail.len() as f64));
    }
    Ok(results)
}

/// Writes the pool of tuples as raw f32 files plus `meta.json` for the PyTorch side.
fn write_pool(dir: &Path, items: &[Tensor], batch: i64) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut shapes = vec![];
    for (m, t) in items.iter().enumerate() {
        let values: Vec<f32> = Vec::try_from(t.to_kind(Kind::Float).flatten(0, -1))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let path = dir.join(format!("m{m}.f32"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .with_context(|| format!("cannot write {}", path.display()))?;
        shapes.push(t.size());
    }
    let meta = serde_json::json!({ "shapes": shapes, "batch": batch });
    mmlatent_core::checkpoint::save_json(&meta, &dir.join("meta.json"))
}
