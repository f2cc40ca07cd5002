//! Reading single image files as modality items.

use anyhow::{bail, Context, Result};
use mmlatent_core::{ModalityKind, ModalitySpec};
use std::path::Path;
use tch::{Kind, Tensor};

/// Reads a PNG (or any format the `image` crate knows) as one item `[C, H, W]` in `[0, 1]`
/// of `spec`, which must be an image modality of the file's size.
pub fn read_item(path: &Path, spec: &ModalitySpec) -> Result<Tensor> {
    let ModalityKind::Image { channels, height, width } = spec.kind else {
        bail!("modality {} is not an image; cannot read {}", spec.name, path.display());
    };
    let img = image::open(path).with_context(|| format!("cannot read image {}", path.display()))?;
    if img.width() as i64 != width || img.height() as i64 != height {
        bail!(
            "{} is {}×{}, but modality {} expects {width}×{height}",
            path.display(),
            img.width(),
            img.height(),
            spec.name
        );
    }
    let (data, c) = if channels == 1 { (img.to_luma8().into_raw(), 1) } else { (img.to_rgb8().into_raw(), 3) };
    Ok(Tensor::from_slice(&data).view([height, width, c]).permute([2, 0, 1]).to_kind(Kind::Float) / 255.0)
}
