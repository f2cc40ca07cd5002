//! mmlatent-mld (under construction: the family is registered, training is not written yet).

use anyhow::{bail, Result};
use mmlatent_core::family::{ModelFamily, TrainContext};
use mmlatent_core::run::RunDir;
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use tch::Device;

pub struct MldFamily;

pub static FAMILY: MldFamily = MldFamily;

impl ModelFamily for MldFamily {
    fn kinds(&self) -> &'static [&'static str] {
        &["mld"]
    }

    fn train(&self, _ctx: &TrainContext) -> Result<()> {
        bail!("mld training is not implemented yet")
    }

    fn load(&self, _run: &RunDir, _dataset: &MultimodalDataset, _device: Device) -> Result<Box<dyn MultimodalModel>> {
        bail!("mld loading is not implemented yet")
    }
}
