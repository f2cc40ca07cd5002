//! mmlatent-ebm (under construction: the family is registered, training is not written yet).

use anyhow::{bail, Result};
use mmlatent_core::family::{ModelFamily, TrainContext};
use mmlatent_core::run::RunDir;
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use tch::Device;

pub struct EbmFamily;

pub static FAMILY: EbmFamily = EbmFamily;

impl ModelFamily for EbmFamily {
    fn kinds(&self) -> &'static [&'static str] {
        &["ebm", "ebm-generalised"]
    }

    fn train(&self, _ctx: &TrainContext) -> Result<()> {
        bail!("ebm training is not implemented yet")
    }

    fn load(&self, _run: &RunDir, _dataset: &MultimodalDataset, _device: Device) -> Result<Box<dyn MultimodalModel>> {
        bail!("ebm loading is not implemented yet")
    }
}
