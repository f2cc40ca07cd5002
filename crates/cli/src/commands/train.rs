//! `mmlatent train CONFIG`: trains every stage of the experiment's model in a run folder.
//!
//! The work (checks before anything is written, the run folder and its lock, `--resume` with
//! the resumable `--set` keys) is `mmlatent_runner::train`, shared with the Python bindings.
//! `--nproc N` runs it as N data-parallel workers ([`super::workers`]).

use anyhow::Result;
use mmlatent_runner::{ConfigSource, TrainRequest};
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
    pub overrides: Vec<std::ffi::OsString>,
    /// cpu, cuda, cuda:N or auto (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
    /// Train data-parallel in N local processes (each takes train.batch_size / N tuples of every
    /// batch; gradients are averaged over c10d/Gloo during the backward pass, in buckets of
    /// MMLATENT_BUCKET_MIB, default 4; 0: after it). Workers started by another launcher (RANK,
    /// WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) join their job without it.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub nproc: u16,
    /// MLD: take over the finished autoencoders of another run (copied into the new run) and
    /// train only the score network, to compare stage-2 settings on the same latents. The data,
    /// seed and [model] keys of stage 1 must be the same in both runs.
    #[arg(long, value_name = "RUN", conflicts_with = "resume")]
    pub autoencoders_from: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if args.nproc > 1 {
        return super::workers::launch(args.nproc.into());
    }
    let overrides = super::common::set_arguments(&args.overrides)?;
    mmlatent_runner::train(&TrainRequest {
        config: ConfigSource::File(&args.config),
        run: args.run,
        resume: args.resume,
        overrides: &overrides,
        device: args.device.as_deref(),
        take_over_from: args.autoencoders_from.as_deref(),
    })?;
    Ok(())
}
