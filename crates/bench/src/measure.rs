//! Measurement for `mmlatent bench`: repeated timings summarised by their median and quartiles,
//! whole training epochs through the training loader (data loading included), the machine's
//! load while they ran, and the file the PyTorch side reads the same training tuples from.
//!
//! Every family's benchmark ([`crate::mld`], [`crate::vae`], [`crate::ebm`]) times its workloads
//! with these functions, and `scripts/bench_*.py`
//! summarise theirs the same way (`scripts/bench_common.py`), so the two columns compare like
//! with like.

use anyhow::{Context, Result};
use mmlatent_core::dataset::Split;
use mmlatent_core::precision::Precision;
use mmlatent_core::ModalitySpec;
use mmlatent_train::checkpoint::save_json;
use mmlatent_train::loader::StepLoader;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One timed workload: milliseconds per run, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// The workload's name, shared with the PyTorch script.
    pub name: String,
    pub median: f64,
    /// First and third quartiles (the spread reported beside the median).
    pub q1: f64,
    pub q3: f64,
    /// How many timed runs.
    pub runs: usize,
}

impl Timing {
    /// Summarises the run times `ms` (at least one).
    pub fn from_runs(name: impl Into<String>, mut ms: Vec<f64>) -> Self {
        assert!(!ms.is_empty(), "a timing needs at least one run");
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            // Linear interpolation between order statistics (numpy's default quantile).
            let pos = q * (ms.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            ms[lo] + (ms[hi] - ms[lo]) * (pos - lo as f64)
        };
        Self { name: name.into(), median: at(0.5), q1: at(0.25), q3: at(0.75), runs: ms.len() }
    }
}

/// What a benchmark measured: timings and plain values (losses, to check that both sides
/// computed the same thing).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchResult {
    pub timings: Vec<Timing>,
    pub values: Vec<(String, f64)>,
}

/// What every family's benchmark is asked to do.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Batch size of every workload.
    pub batch: i64,
    /// Repetitions of the step-sized workloads.
    pub repeats: Repeats,
    /// Whole epochs timed per epoch workload (0: none).
    pub epochs: usize,
    /// Where files shared with the PyTorch side go (initial weights).
    pub data_dir: PathBuf,
    /// The precision of the workloads on both sides (bf16: autocast around forward passes and
    /// losses, as `train.precision = "bf16"` trains).
    pub precision: Precision,
}

/// How many untimed and timed repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Repeats {
    pub warmup: usize,
    pub iters: usize,
}

impl Repeats {
    /// For expensive workloads: one warm-up run and a quarter of the repetitions (at least 3).
    pub fn few(self) -> Self {
        Self { warmup: 1, iters: self.iters.div_ceil(4).max(3) }
    }
}

/// Times `f` `repeats.iters` times after `repeats.warmup` untimed runs.
pub fn time_runs(name: &str, repeats: Repeats, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    for _ in 0..repeats.warmup {
        f()?;
    }
    let ms = (0..repeats.iters.max(1))
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(Timing::from_runs(name, ms))
}

/// Number of distinct tuples the step workloads cycle through (in order, no shuffling), so that
/// the PyTorch side can train on the very same batches.
pub fn pool_size(batch: i64) -> i64 {
    4 * batch
}

/// Times `repeats` training steps (after the untimed warm-up ones) on the first
/// [`pool_size`] tuples of `split` in data space, cycled in order in batches of `batch`. `step`
/// gets the step number and the batch and returns its loss. Gives the timing `<prefix> step` and
/// the value `<prefix> loss@<steps>`, the mean loss of the last 5 steps.
pub fn time_pool_steps(
    prefix: &str,
    split: &Split,
    modalities: &[ModalitySpec],
    batch: i64,
    repeats: Repeats,
    mut step: impl FnMut(usize, &[Tensor]) -> Result<f64>,
) -> Result<(Timing, (String, f64))> {
    let n = pool_size(batch).min(split.len() as i64);
    let pool = split.head(modalities, n as usize, Device::Cpu);
    let (mut ms, mut losses) = (vec![], vec![]);
    for s in 0..repeats.warmup + repeats.iters.max(1) {
        let start = (s as i64 * batch) % n;
        let xs: Vec<Tensor> = pool.items.iter().map(|t| t.narrow(0, start, batch.min(n - start))).collect();
        let t0 = Instant::now();
        losses.push(step(s, &xs)?);
        if s >= repeats.warmup {
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let tail = &losses[losses.len().saturating_sub(5)..];
    let loss = tail.iter().sum::<f64>() / tail.len() as f64;
    Ok((Timing::from_runs(format!("{prefix} step"), ms), (format!("{prefix} loss@{}", losses.len()), loss)))
}

/// Times `epochs` whole passes over `split` in batches of `batch` (the last, incomplete batch
/// dropped, as in training): each pass takes its batches from the training loop's own
/// [`StepLoader`] (shuffling, gathering and conversion included) and runs `step` on each.
pub fn time_epochs(
    name: &str,
    split: &Split,
    modalities: &[ModalitySpec],
    batch: usize,
    epochs: usize,
    mut step: impl FnMut(usize, &[Tensor]) -> Result<()>,
) -> Result<Timing> {
    let per_epoch = (split.len() / batch.max(1)).max(1);
    let mut loader = StepLoader::new(split, modalities, batch, 0, Device::Cpu)?;
    let mut ms = vec![];
    for epoch in 0..epochs.max(1) {
        let start = Instant::now();
        for s in epoch * per_epoch..(epoch + 1) * per_epoch {
            let b = loader.batch(s)?;
            step(s, &b.items)?;
        }
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_runs(name, ms))
}

/// Runs the PyTorch side of a benchmark, `python script`, with `opts`'s batch, repetitions, epochs
/// precision and data folder and `threads` CPU threads, and returns the JSON object of its last output line
/// (`{"timings": {name: {median, q1, q3, runs}}, "values": {name: number}}`).
pub fn run_reference(python: &Path, script: &Path, opts: &BenchOptions, threads: usize) -> Result<serde_json::Value> {
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--threads", &threads.to_string(), "--batch", &opts.batch.to_string()])
        .args(["--warmup", &opts.repeats.warmup.to_string(), "--iters", &opts.repeats.iters.to_string()])
        .args(["--epochs", &opts.epochs.to_string(), "--precision", opts.precision.name(), "--data"])
        .arg(&opts.data_dir)
        .output()
        .with_context(|| format!("cannot run {} (pass --python, or --no-pytorch)", python.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{} printed no JSON object: {text}", script.display()))
}

/// The 1-minute load average of the machine (Linux; `None` elsewhere).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Writes the stored training tuples of `split` for the PyTorch side's epochs: one raw
/// little-endian file per modality (`m<i>.bin`, the stored element type: `u8` images stay
/// `u8`) and `meta.json` with their shapes and types.
pub fn write_split(dir: &Path, split: &Split) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut shapes = vec![];
    let mut dtypes = vec![];
    for (m, t) in split.items.iter().enumerate() {
        let (bytes, dtype): (Vec<u8>, &str) = match t.kind() {
            Kind::Uint8 => (mmlatent_core::host::to_vec::<u8>(t)?, "uint8"),
            Kind::Int64 => {
                (mmlatent_core::host::to_vec::<i64>(t)?.iter().flat_map(|v| v.to_le_bytes()).collect(), "int64")
            }
            _ => (mmlatent_core::host::to_vec::<f32>(t)?.iter().flat_map(|v| v.to_le_bytes()).collect(), "float32"),
        };
        let path = dir.join(format!("m{m}.bin"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .with_context(|| format!("cannot write {}", path.display()))?;
        shapes.push(t.size());
        dtypes.push(dtype);
    }
    save_json(&serde_json::json!({ "shapes": shapes, "dtypes": dtypes }), &dir.join("meta.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate_between_order_statistics() {
        let t = Timing::from_runs("x", vec![4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!((t.q1, t.median, t.q3, t.runs), (2.0, 3.0, 4.0, 5));
        let t = Timing::from_runs("y", vec![1.0, 2.0]);
        assert_eq!((t.q1, t.median, t.q3), (1.25, 1.5, 1.75));
        let t = Timing::from_runs("z", vec![7.0]);
        assert_eq!((t.q1, t.median, t.q3), (7.0, 7.0, 7.0));
    }

    #[test]
    fn epochs_visit_every_full_batch_once() {
        let n = 10;
        let split = Split {
            items: vec![Tensor::arange(n, (Kind::Float, Device::Cpu)).view([n, 1])],
            labels: Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
        };
        let spec = [ModalitySpec::vector("v", 1)];
        let mut seen = vec![];
        let t = time_epochs("e", &split, &spec, 3, 2, |_, items| {
            seen.extend(mmlatent_core::host::to_vec::<f32>(&items[0])?);
            Ok(())
        })
        .unwrap();
        assert_eq!(t.runs, 2);
        // 3 batches of 3 per epoch: 9 distinct tuples each epoch, the tenth dropped.
        assert_eq!(seen.len(), 18);
        for epoch in seen.chunks(9) {
            let mut e = epoch.to_vec();
            e.sort_by(f32::total_cmp);
            e.dedup();
            assert_eq!(e.len(), 9);
        }
    }
}
