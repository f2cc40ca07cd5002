//! Cost of the EBM model: milliseconds per 1,000 joint samples (short-run Langevin on the
//! prior, then every decoder), of the Langevin part alone, and of one training step.
//!
//! ```text
//! cargo run --release -p mmlatent-ebm --example sample_cost -- configs/default-ebm.toml [threads] [reps]
//! ```
//!
//! The weights do not change the cost, so a freshly initialised model of the config is timed.
//! Each figure is the median of `reps` runs, as wall time and as the process's CPU time
//! (Linux `/proc/self/stat`, 10 ms ticks): on a busy machine with 1 thread the CPU time is the
//! honest figure, the wall time includes waiting for the cores.

use anyhow::{Context, Result};
use mmlatent_core::MultimodalModel;
use mmlatent_ebm::train::{train_step, Optimisers};
use mmlatent_ebm::{EbmConfig, EbmModel};
use mmlatent_train::config::Experiment;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// CPU time (user + system) of this process in milliseconds.
fn cpu_ms() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("malformed /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks * 10.0)
}

/// Median (wall ms, CPU ms) of `reps` runs of `f`, after one warm-up run.
fn median_ms(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    f()?;
    let (mut wall, mut cpu) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let (start, cpu_start) = (Instant::now(), cpu_ms()?);
        f()?;
        wall.push(start.elapsed().as_secs_f64() * 1e3);
        cpu.push(cpu_ms()? - cpu_start);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok((wall[reps / 2], cpu[reps / 2]))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().context("usage: sample_cost CONFIG [threads] [reps]")?;
    let threads: i32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let reps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5).max(1);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let experiment = Experiment::load(path.as_ref(), &[])?;
    let dataset = mmlatent_data::open(&experiment.data)?;
    let config: EbmConfig = experiment.model_config()?;
    let model = EbmModel::new(experiment.model_kind()?, &dataset.modalities, &config, Device::Cpu)?;
    let none: Vec<Option<Tensor>> = dataset.modalities.iter().map(|_| None).collect();
    let joint = median_ms(reps, || model.generate(&none, 1000).map(drop))?;
    let langevin = median_ms(reps, || {
        let _ = model.sample_prior(1000).sum(Kind::Float).double_value(&[]);
        Ok(())
    })?;
    let batch = dataset.train.head(&dataset.modalities, experiment.train.batch_size, Device::Cpu);
    let mut opt = Optimisers::new(&model, experiment.train.lr)?;
    let step = median_ms(reps, || train_step(&model, &mut opt, &batch.items).map(drop))?;
    println!(
        "{} on {} ({} threads), median wall / CPU ms: joint generation of 1,000 samples {:.0} / {:.0} \
         ({} Langevin steps of the energy MLP: {:.0} / {:.0}); training step (batch {}) {:.0} / {:.0}",
        experiment.model_kind()?,
        dataset.name,
        threads,
        joint.0,
        joint.1,
        config.langevin_steps,
        langevin.0,
        langevin.1,
        experiment.train.batch_size,
        step.0,
        step.1
    );
    Ok(())
}
