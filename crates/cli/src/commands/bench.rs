//! `mmlatent bench ...`: benchmarks against PyTorch references.

use anyhow::{bail, Result};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// MLD training step and sampling.
    Mld,
}

pub fn run(_command: BenchCommand) -> Result<()> {
    bail!("benchmarks are not implemented yet")
}
