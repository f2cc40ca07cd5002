//! Helpers shared by the sub-commands: opening runs with their dataset and model (the
//! runner's), checks of output files and counts.

use anyhow::{bail, Result};
use std::path::Path;

pub use mmlatent_runner::open_run;

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
            // The nearest part of the path that exists says what is wrong: a file where a
            // folder should be, or a folder that is not there yet.
            if let Some(file) = parent.ancestors().find(|a| a.is_file()) {
                bail!("{flag} {}: {} is a file, not a folder", path.display(), file.display());
            }
            bail!("{flag} {}: the folder {} does not exist", path.display(), parent.display());
        }
    }
    Ok(())
}

/// The `--set SECTION.KEY=VALUE` arguments as text; one that is not UTF-8 is an error quoting
/// it (its undecodable bytes shown as �).
pub fn set_arguments(values: &[std::ffi::OsString]) -> Result<Vec<String>> {
    values
        .iter()
        .map(|v| match v.to_str() {
            Some(s) => Ok(s.to_string()),
            None => bail!("--set {}: not UTF-8 text; config values must be UTF-8", v.to_string_lossy()),
        })
        .collect()
}

/// Checks that a count given on the command line lies in `1..=max`.
pub fn check_count(flag: &str, value: i64, max: i64) -> Result<()> {
    if !(1..=max).contains(&value) {
        bail!("{flag} {value}: give a number from 1 to {max}");
    }
    Ok(())
}
