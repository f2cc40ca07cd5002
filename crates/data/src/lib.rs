//! The data layer of mmlatent: the file formats of the field, dataset builders and the bundled
//! default dataset. The in-memory dataset type itself, and the `[data]` table it is opened from
//! ([`mmlatent_core::dataset::DataConfig`]), live in [`mmlatent_core::dataset`], re-exported here.
//!
//! - formats: [`idx`] (MNIST/Fashion-MNIST), [`mat`] + [`svhn`] (SVHN `.mat`), [`polymnist`],
//!   [`cub`] (image–caption), [`mnist_svhn`] (pairs by label);
//! - builders: [`polymnist::build`], [`mnist_svhn::build`], [`default::dataset`] (+ [`polymnist::write`]);
//! - [`open`] / [`detect`]: a dataset from a config or a folder; [`inspect`]: a summary of one;
//! - [`export`]: generated samples written in the datasets' own layout;
//! - [`synthetic`]: a tiny dataset for tests; [`rng`] is core's, re-exported.
//!
//! It builds on `mmlatent-core` alone and must not know the training runtime (the batch loaders
//! that feed training are `mmlatent_train::loader`'s), any model family or how anything is shown.

pub mod cub;
pub mod default;
pub mod export;
pub mod fsutil;
pub mod idx;
pub mod image_file;
pub mod inspect;
pub mod mat;
pub mod mnist_svhn;
pub mod polymnist;
pub mod svhn;
pub mod synthetic;

pub use mmlatent_core::dataset::{self, Batch, MultimodalDataset, Split};
/// The seeded generator lives in core (the model crates and the batch loaders use it without
/// knowing any file format); re-exported for the data crate's users.
pub use mmlatent_core::rng;

use anyhow::{bail, Context, Result};
use mmlatent_core::dataset::DataConfig;
use std::path::Path;

/// The dataset formats mmlatent reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The bundled default (Fashion-MNIST test set, 3 textured modalities).
    Default,
    /// The default trained on Fashion-MNIST's 60k training set from `/usr/share/datasets`.
    DefaultFull,
    /// The tiny synthetic "squares" dataset (tests and smoke runs).
    Synthetic,
    PolyMnist,
    MnistSvhn,
    Cub,
    /// An MNIST-style IDX folder, as a one-modality dataset.
    Idx,
    /// An SVHN `.mat` folder, as a one-modality dataset.
    Svhn,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Default,
        Format::DefaultFull,
        Format::Synthetic,
        Format::PolyMnist,
        Format::MnistSvhn,
        Format::Cub,
        Format::Idx,
        Format::Svhn,
    ];

    /// The name used in configs (`data.format`) and reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Default => "default",
            Format::DefaultFull => "default-full",
            Format::Synthetic => "synthetic",
            Format::PolyMnist => "polymnist",
            Format::MnistSvhn => "mnist-svhn",
            Format::Cub => "cub",
            Format::Idx => "idx",
            Format::Svhn => "svhn",
        }
    }

    /// The format called `name`.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name).with_context(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
            format!("unknown dataset format `{name}` (known: auto, {})", names.join(", "))
        })
    }

    /// Formats that need no folder.
    fn is_builtin(self) -> bool {
        matches!(self, Format::Default | Format::DefaultFull | Format::Synthetic)
    }
}

/// Tells whether a folder has one format's layout.
type LayoutCheck = fn(&Path) -> bool;

/// Detects the format of `path`: the words `default`, `default-full` and `synthetic` name the
/// built-in datasets; a folder is recognised by its layout.
pub fn detect(path: &Path) -> Result<Format> {
    if let Some(format) = path.to_str().and_then(|p| Format::parse(p).ok()).filter(|f| f.is_builtin()) {
        return Ok(format);
    }
    if !path.exists() {
        let why = fsutil::unreachable(path, "dataset folder");
        bail!("{why} (or use `default` for the bundled dataset)");
    }
    if !path.is_dir() {
        bail!("{}: a dataset is a folder, not a file", path.display());
    }
    let checks: [(LayoutCheck, Format); 5] = [
        (mnist_svhn::is_mnist_svhn_dir, Format::MnistSvhn),
        (polymnist::is_polymnist_dir, Format::PolyMnist),
        (cub::is_cub_dir, Format::Cub),
        (svhn::is_svhn_dir, Format::Svhn),
        (idx::is_idx_dir, Format::Idx),
    ];
    checks.into_iter().find(|(check, _)| check(path)).map(|(_, f)| f).with_context(|| {
        format!(
            "{}: cannot tell the dataset format: expected train/m0/ (PolyMNIST), {} (MNIST-SVHN), \
             text_trainvalclasses.txt with train/ (CUB), train_32x32.mat (SVHN) or *-idx3-ubyte files (IDX)",
            path.display(),
            mnist_svhn::MANIFEST
        )
    })
}

/// Loads the dataset at `path` in `format`.
pub fn load(format: Format, path: &Path) -> Result<MultimodalDataset> {
    let dataset = match format {
        Format::Default => default::dataset(false)?,
        Format::DefaultFull => default::dataset(true)?,
        Format::Synthetic => synthetic::squares(2000, 500, 2, 0),
        Format::PolyMnist => polymnist::load(path)?,
        Format::MnistSvhn => mnist_svhn::load(path)?,
        Format::Cub => cub::load(path)?,
        Format::Idx => idx::load_dataset(path)?,
        Format::Svhn => svhn::load_dataset(path)?,
    };
    Ok(dataset)
}

/// The format a config asks for (`auto`: detected from the path).
pub fn config_format(config: &DataConfig) -> Result<Format> {
    match config.format.as_str() {
        "auto" => detect(&config.path),
        name => Format::parse(name),
    }
}

/// Opens the dataset a config points to (format detected or named), applying its limits.
pub fn open(config: &DataConfig) -> Result<MultimodalDataset> {
    let format = config_format(config)?;
    let mut dataset = load(format, &config.path)
        .with_context(|| format!("cannot load the {} dataset at {}", format.name(), config.path.display()))?;
    if let Some(n) = config.max_train {
        dataset.train.truncate(n);
    }
    if let Some(n) = config.max_test {
        dataset.test.truncate(n);
    }
    dataset.check()?;
    Ok(dataset)
}
