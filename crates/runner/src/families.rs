//! The model families the tool knows, looked up by the `[model] kind` of an experiment.

use anyhow::{bail, Result};
use mmlatent_train::family::ModelFamily;

/// Every model family linked into the tool.
pub fn all() -> Vec<&'static dyn ModelFamily> {
    vec![&mmlatent_mld::FAMILY, &mmlatent_ebm::FAMILY, &mmlatent_vae::FAMILY]
}

/// The family that trains models of `kind`.
pub fn for_kind(kind: &str) -> Result<&'static dyn ModelFamily> {
    let families = all();
    if let Some(f) = families.iter().find(|f| f.kinds().contains(&kind)) {
        return Ok(*f);
    }
    let known: Vec<&str> = families.iter().flat_map(|f| f.kinds().iter().copied()).collect();
    bail!("unknown model kind `{kind}`; known kinds: {}", known.join(", "))
}
