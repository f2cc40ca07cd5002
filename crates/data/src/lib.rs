//! The data layer of mmlatent: the file formats of the field, dataset builders, the bundled
//! default dataset, and a batch loader running beside training. The in-memory dataset type
//! itself lives in [`mmlatent_core::dataset`], re-exported here.

pub mod image_file;
pub mod loader;
pub mod synthetic;

pub use loader::BatchLoader;
pub use mmlatent_core::dataset::{self, Batch, MultimodalDataset, Split};

use anyhow::{bail, Result};
use mmlatent_core::config::DataConfig;

/// Opens the dataset a config points to (format detected or named), applying its limits.
pub fn open(config: &DataConfig) -> Result<MultimodalDataset> {
    let mut dataset = match (config.format.as_str(), config.path.to_str()) {
        ("synthetic", _) | (_, Some("synthetic")) => synthetic::squares(2000, 500, 2, 0),
        (format, _) => bail!("dataset format `{format}` at {} is not supported yet", config.path.display()),
    };
    if let Some(n) = config.max_train {
        dataset.train.truncate(n);
    }
    if let Some(n) = config.max_test {
        dataset.test.truncate(n);
    }
    dataset.validate()?;
    Ok(dataset)
}
