//! SVHN cropped digits (`train_32x32.mat`, `test_32x32.mat`): MATLAB v5 files holding `X`, a
//! 32×32×3×N `uint8` array in column-major order, and `y`, N labels in 1..=10 where 10 means
//! the digit 0.

use crate::mat;
use anyhow::{bail, ensure, Result};
use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// SVHN images as `u8 [N, 3, 32, 32]` bytes (row-major) with labels in 0..10.
#[derive(Debug)]
pub struct SvhnSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
}

impl SvhnSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images as a `u8 [N, 3, 32, 32]` tensor.
    pub fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.pixels).view([self.len() as i64, 3, 32, 32])
    }
}

/// Reads one SVHN `.mat` file.
pub fn read(path: &Path) -> Result<SvhnSet> {
    let arrays = mat::read(path)?;
    let x = mat::take(&arrays, "X", path)?;
    let y = mat::take(&arrays, "y", path)?;
    let p = path.display();
    let &[32, 32, 3, n] = x.dims.as_slice() else {
        bail!("{p}: X has sizes {:?}, expected 32×32×3×N", x.dims);
    };
    ensure!(y.len() == n, "{p}: X holds {n} images but y holds {} labels (sizes {:?})", y.len(), y.dims);
    let raw = x.to_u8().map_err(|e| e.context(format!("{p}: X is not uint8 images")))?;
    // Column-major X(r, c, ch, i) lies at r + 32c + 1024ch + 3072i; we want [i][ch][r][c].
    let mut pixels = vec![0u8; raw.len()];
    for (block, out) in raw.chunks_exact(1024).zip(pixels.chunks_exact_mut(1024)) {
        for r in 0..32 {
            for c in 0..32 {
                out[r * 32 + c] = block[c * 32 + r];
            }
        }
    }
    let labels = y
        .to_f64()?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            10.0 => Ok(0),
            v if v.fract() == 0.0 && (1.0..=9.0).contains(&v) => Ok(v as i64),
            v => bail!("{p}: label y({}) = {v} is out of range 1..=10", i + 1),
        })
        .collect::<Result<Vec<i64>>>()?;
    Ok(SvhnSet { pixels, labels })
}

/// The `.mat` file of `split` (`train` or `test`) in an SVHN folder.
pub fn split_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}_32x32.mat"))
}

/// True when `dir` holds SVHN files.
pub fn is_svhn_dir(dir: &Path) -> bool {
    split_file(dir, "train").is_file() || split_file(dir, "test").is_file()
}

/// An SVHN folder as a one-modality dataset (`svhn`, 3×32×32, 10 classes).
pub fn load_dataset(dir: &Path) -> Result<MultimodalDataset> {
    let split = |name: &str| -> Result<Split> {
        let s = read(&split_file(dir, name))?;
        Ok(Split { items: vec![s.tensor()], labels: Tensor::from_slice(&s.labels) })
    };
    Ok(MultimodalDataset {
        name: "svhn".into(),
        modalities: vec![ModalitySpec::image("svhn", 3, 32, 32)],
        num_classes: 10,
        class_names: vec![],
        vocabularies: vec![None],
        train: split("train")?,
        test: split("test")?,
    })
}
