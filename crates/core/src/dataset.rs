//! A multimodal dataset in memory: aligned tuples (one item per modality) plus class labels.
//!
//! Items are stored compactly on the CPU (images as `u8` 0–255, text as `i64` ids, vectors as
//! `f32`) and converted to data space (see [`crate::modality`]) when a batch is taken.

use crate::{ModalityKind, ModalitySpec};
use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// Where the data comes from: the `[data]` table of an experiment (`mmlatent_train::config`),
/// which `mmlatent-data` opens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A dataset folder, or `default` for the bundled dataset.
    pub path: PathBuf,
    /// `auto` (detect), `polymnist`, `mnist-svhn`, `cub` or `default`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Use at most this many training tuples (handy for quick runs).
    #[serde(default)]
    pub max_train: Option<usize>,
    /// Use at most this many test tuples.
    #[serde(default)]
    pub max_test: Option<usize>,
}

fn default_format() -> String {
    "auto".to_string()
}

impl DataConfig {
    /// The bundled default dataset, whole.
    pub fn bundled() -> Self {
        Self { path: PathBuf::from("default"), format: "default".into(), max_train: None, max_test: None }
    }
}

/// One split (train or test): `items[m]` has shape `[N, ..shape of modality m]`.
#[derive(Debug)]
pub struct Split {
    pub items: Vec<Tensor>,
    /// Class label of each tuple, `i64 [N]`.
    pub labels: Tensor,
}

/// A batch in data space on a device.
#[derive(Debug)]
pub struct Batch {
    /// One tensor per modality: images `f32` in `[0, 1]`, text `i64`, vectors `f32`.
    pub items: Vec<Tensor>,
    pub labels: Tensor,
}

/// A dataset of aligned multimodal tuples.
#[derive(Debug)]
pub struct MultimodalDataset {
    /// A short name for reports (`default`, `polymnist`, `mnist-svhn`, `cub`, ...).
    pub name: String,
    pub modalities: Vec<ModalitySpec>,
    pub num_classes: i64,
    /// Names of the classes (for reports); may be empty.
    pub class_names: Vec<String>,
    /// For text modalities, the vocabulary (index = token id); `None` for the others.
    pub vocabularies: Vec<Option<Vec<String>>>,
    pub train: Split,
    pub test: Split,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tuples at `indices` (`i64 [B]`), converted to data space on `device`.
    pub fn batch(&self, modalities: &[ModalitySpec], indices: &Tensor, device: Device) -> Batch {
        let items = self
            .items
            .iter()
            .zip(modalities)
            .map(|(t, spec)| to_data_space(&t.index_select(0, indices), spec).to_device(device))
            .collect();
        Batch { items, labels: self.labels.index_select(0, indices).to_device(device) }
    }

    /// The first `n` tuples as one batch (evaluation, sample grids).
    pub fn head(&self, modalities: &[ModalitySpec], n: usize, device: Device) -> Batch {
        let n = n.min(self.len()) as i64;
        self.batch(modalities, &Tensor::arange(n, (Kind::Int64, Device::Cpu)), device)
    }

    /// Modality `m` alone, with the labels (shallow copies: the storage is shared, not copied).
    pub fn modality(&self, m: usize) -> Split {
        Split { items: vec![self.items[m].shallow_clone()], labels: self.labels.shallow_clone() }
    }

    /// Keeps only the first `n` tuples.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            let n = n as i64;
            self.items = self.items.iter().map(|t| t.narrow(0, 0, n)).collect();
            self.labels = self.labels.narrow(0, 0, n);
        }
    }
}

/// Converts a stored batch of one modality to data space (`u8` images → `f32 / 255`).
pub fn to_data_space(stored: &Tensor, spec: &ModalitySpec) -> Tensor {
    match spec.kind {
        ModalityKind::Image { .. } if stored.kind() == Kind::Uint8 => stored.to_kind(Kind::Float) / 255.0,
        ModalityKind::Image { .. } | ModalityKind::Vector { .. } => stored.to_kind(Kind::Float),
        ModalityKind::Text { .. } => stored.to_kind(Kind::Int64),
    }
}

impl MultimodalDataset {
    /// Refuses a batch size (setting `key`, as the error names it) larger than the training split.
    pub fn ensure_batch_fits(&self, key: &str, batch_size: usize) -> Result<()> {
        ensure!(
            batch_size <= self.train.len(),
            "{key} = {batch_size} is larger than the {} training tuples of dataset {}",
            self.train.len(),
            self.name
        );
        Ok(())
    }

    /// Checks that every split holds one tensor per modality, of the modality's shape, aligned
    /// with the labels, and that labels lie in `0..num_classes`.
    pub fn check(&self) -> Result<()> {
        ensure!(!self.modalities.is_empty(), "dataset {} has no modality", self.name);
        ensure!(
            self.vocabularies.len() == self.modalities.len(),
            "dataset {}: {} vocabularies for {} modalities",
            self.name,
            self.vocabularies.len(),
            self.modalities.len()
        );
        for (split_name, split) in [("train", &self.train), ("test", &self.test)] {
            if split.items.len() != self.modalities.len() {
                bail!(
                    "dataset {} ({split_name}): {} item tensors for {} modalities",
                    self.name,
                    split.items.len(),
                    self.modalities.len()
                );
            }
            let n = split.len() as i64;
            for (t, spec) in split.items.iter().zip(&self.modalities) {
                ensure!(
                    t.size() == spec.batch_shape(n),
                    "dataset {} ({split_name}): modality {} has shape {:?}, expected {:?}",
                    self.name,
                    spec.name,
                    t.size(),
                    spec.batch_shape(n)
                );
            }
            if n > 0 {
                let (lo, hi) = (split.labels.min().int64_value(&[]), split.labels.max().int64_value(&[]));
                ensure!(
                    lo >= 0 && hi < self.num_classes,
                    "dataset {} ({split_name}): labels span {lo}..={hi}, outside 0..{}",
                    self.name,
                    self.num_classes
                );
            }
        }
        Ok(())
    }

    pub fn num_modalities(&self) -> usize {
        self.modalities.len()
    }

    /// Index of the modality called `name`.
    pub fn modality_index(&self, name: &str) -> Result<usize> {
        self.modalities.iter().position(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.modalities.iter().map(|m| m.name.as_str()).collect();
            anyhow::anyhow!("dataset {} has no modality `{name}` (it has {})", self.name, names.join(", "))
        })
    }
}
