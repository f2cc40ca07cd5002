//! mmlatent-vae (under construction: the family is registered, training is not written yet).

use anyhow::{bail, Result};
use mmlatent_core::family::{ModelFamily, TrainContext};
use mmlatent_core::run::RunDir;
use mmlatent_core::{MultimodalDataset, MultimodalModel};
use tch::Device;

pub struct VaeFamily;

pub static FAMILY: VaeFamily = VaeFamily;

impl ModelFamily for VaeFamily {
    fn kinds(&self) -> &'static [&'static str] {
        &["mvae", "mmvae", "mopoe", "mvtcae", "mmjsd", "nexus", "mmvaeplus"]
    }

    fn train(&self, _ctx: &TrainContext) -> Result<()> {
        bail!("vae training is not implemented yet")
    }

    fn load(&self, _run: &RunDir, _dataset: &MultimodalDataset, _device: Device) -> Result<Box<dyn MultimodalModel>> {
        bail!("vae loading is not implemented yet")
    }
}
