//! `mmlatent classifier train`.

use anyhow::{bail, Result};

#[derive(clap::Subcommand)]
pub enum ClassifierCommand {
    /// Train one classifier per modality on a dataset's labels.
    Train { data: std::path::PathBuf },
}

pub fn run(_command: ClassifierCommand) -> Result<()> {
    bail!("classifier training is not implemented yet")
}
