//! `mmlatent fid DIR_A DIR_B`.

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {
    pub dir_a: std::path::PathBuf,
    pub dir_b: std::path::PathBuf,
}

pub fn run(_args: Args) -> Result<()> {
    bail!("fid is not implemented yet")
}
