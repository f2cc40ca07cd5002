//! `mmlatent quickstart`: the main job on the bundled default dataset.

use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the run.
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    #[arg(long)]
    pub device: Option<String>,
}

pub fn run(_args: Args) -> Result<()> {
    bail!("quickstart is not implemented yet")
}
