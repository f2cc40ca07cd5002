//! `mmlatent train CONFIG`: trains every stage of the experiment's model in a run folder.
//!
//! The work (checks before anything is written, the run folder and its lock, `--resume` with
//! the resumable `--set` keys) is `mmlatent_runner::train`, shared with the Python bindings.

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
    pub overrides: Vec<String>,
    /// cpu, cuda, cuda:N or auto (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    mmlatent_runner::train(&TrainRequest {
        config: ConfigSource::File(&args.config),
        run: args.run,
        resume: args.resume,
        overrides: &args.overrides,
        device: args.device.as_deref(),
    })?;
    Ok(())
}
