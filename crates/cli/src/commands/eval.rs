//! `mmlatent eval RUN`.

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {
    pub run: std::path::PathBuf,
}

pub fn run(_args: Args) -> Result<()> {
    bail!("evaluation is not implemented yet")
}
