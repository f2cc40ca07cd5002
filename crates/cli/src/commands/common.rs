//! Helpers shared by the sub-commands: opening runs with their dataset and model (the
//! runner's), checks of output files and counts.

use anyhow::{bail, Result};
use std::path::Path;

pub use mmlatent_runner::{open_run, OpenedRun};

/// Checks, before any work, that `path` (the value of `flag`) names a file with extension `ext`
/// that can be created: not a folder, in an existing folder.
pub fn check_output_file(flag: &str, path: &Path, ext: &str) -> Result<()> {
    if path.is_dir() {
        bail!(
            "{flag} {} is a folder: name the .{ext} file to write, e.g. {}/out.{ext}",
            path.display(),
            path.display()
        );
    }
    if path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() != Some(ext) {
        bail!("{flag} {}: name a .{ext} file", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!("{flag} {}: the folder {} does not exist", path.display(), parent.display());
        }
    }
    Ok(())
}

/// Checks that a count given on the command line lies in `1..=max`.
pub fn check_count(flag: &str, value: i64, max: i64) -> Result<()> {
    if !(1..=max).contains(&value) {
        bail!("{flag} {value}: give a number from 1 to {max}");
    }
    Ok(())
}
