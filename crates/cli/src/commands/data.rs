//! `mmlatent data build|inspect`.

use anyhow::{bail, Result};

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Print a dataset's format, modalities, shapes and counts.
    Inspect { dir: std::path::PathBuf },
}

pub fn run(_command: DataCommand) -> Result<()> {
    bail!("data commands are not implemented yet")
}
