//! PNG grids of image samples: each row a batch `[n, C, H, W]` with values in `[0, 1]`; and
//! the joint and conditional sample grids of a model that training writes to `samples/`.

use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};
use std::path::Path;
use tch::{Kind, Tensor};

const PAD: u32 = 2;

/// The smallest side of a grid cell in pixels: smaller images are scaled up by a whole factor
/// (nearest neighbour), so that a 28×28 sample reads at a glance (84×84).
pub const MIN_CELL: u32 = 64;

/// The whole factor that brings an `h`×`w` image to at least [`MIN_CELL`] pixels a side.
pub fn cell_scale(h: u32, w: u32) -> u32 {
    MIN_CELL.div_ceil(h.min(w).max(1)).max(1)
}

/// One image of a grid: width, height, scale factor and its RGB bytes (HWC).
type Cell = (u32, u32, u32, Vec<u8>);

/// Writes `rows` (each `[n, C, H, W]`, C = 1 or 3, values in `[0, 1]`) as one PNG grid, one row
/// per tensor; rows may differ in `n` and size (each cell is as large as the largest item).
/// Items smaller than [`MIN_CELL`] are scaled up by nearest neighbour ([`cell_scale`]).
pub fn save_image_grid(path: &Path, rows: &[Tensor]) -> Result<()> {
    if rows.is_empty() {
        bail!("no images to write to {}", path.display());
    }
    let mut cells: Vec<Vec<Cell>> = vec![];
    let (mut cell_w, mut cell_h, mut cols) = (0u32, 0u32, 0usize);
    for row in rows {
        let size = row.size();
        if size.len() != 4 || !(size[1] == 1 || size[1] == 3) {
            bail!("image grid rows must be [n, 1|3, H, W], got {size:?}");
        }
        let (c, h, w) = (size[1], size[2] as u32, size[3] as u32);
        let rgb = if c == 1 { row.repeat([1, 3, 1, 1]) } else { row.shallow_clone() };
        let n = size[0] as usize;
        let flat = mmlatent_core::host::image_bytes(&rgb.permute([0, 2, 3, 1]))?;
        let per = (h * w * 3) as usize;
        let k = cell_scale(h, w);
        cells.push((0..n).map(|i| (w, h, k, flat[i * per..(i + 1) * per].to_vec())).collect());
        cell_w = cell_w.max(w * k);
        cell_h = cell_h.max(h * k);
        cols = cols.max(n);
    }
    let width = cols as u32 * (cell_w + PAD) + PAD;
    let height = rows.len() as u32 * (cell_h + PAD) + PAD;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (r, row) in cells.iter().enumerate() {
        for (c, (w, h, k, px)) in row.iter().enumerate() {
            let (x0, y0) = (PAD + c as u32 * (cell_w + PAD), PAD + r as u32 * (cell_h + PAD));
            for y in 0..h * k {
                for x in 0..w * k {
                    let i = (((y / k) * w + x / k) * 3) as usize;
                    img.put_pixel(x0 + x, y0 + y, Rgb([px[i], px[i + 1], px[i + 2]]));
                }
            }
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    img.save(path).with_context(|| format!("cannot write {}", path.display()))
}

/// Tuples per grid of [`write_sample_grids`].
const GRID_TUPLES: i64 = 8;

/// Writes `<dir>/joint.png` (joint samples, one row per image modality) and, for each modality
/// m, `<dir>/given-<m>.png` (the first test tuples' m, then the other modalities generated from
/// it) with `model`, its draws seeded by `seed`; returns how many grids were written.
pub fn write_sample_grids(
    model: &dyn mmlatent_core::MultimodalModel,
    dataset: &mmlatent_core::MultimodalDataset,
    dir: &Path,
    seed: u64,
) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _guard = tch::no_grad_guard();
    tch::manual_seed(seed as i64);
    let specs = &dataset.modalities;
    let images = |outputs: &[Tensor], order: &[usize]| -> Vec<Tensor> {
        order.iter().filter(|&&m| specs[m].is_image()).map(|&m| outputs[m].to_kind(Kind::Float)).collect()
    };
    let all: Vec<usize> = (0..specs.len()).collect();
    let none: Vec<Option<Tensor>> = (0..specs.len()).map(|_| None).collect();
    let joint = model.generate(&none, GRID_TUPLES)?;
    let mut written = 0;
    let rows = images(&joint, &all);
    if !rows.is_empty() {
        save_image_grid(&dir.join("joint.png"), &rows)?;
        written += 1;
    }
    if specs.len() < 2 || dataset.test.is_empty() {
        return Ok(written);
    }
    let batch = dataset.test.head(specs, GRID_TUPLES as usize, model.device());
    for (m, spec) in specs.iter().enumerate() {
        let given: Vec<Option<Tensor>> =
            (0..specs.len()).map(|k| (k == m).then(|| batch.items[k].shallow_clone())).collect();
        let outputs = model.generate(&given, batch.labels.size()[0])?;
        let order: Vec<usize> = std::iter::once(m).chain((0..specs.len()).filter(|&k| k != m)).collect();
        let rows = images(&outputs, &order);
        if !rows.is_empty() {
            save_image_grid(&dir.join(format!("given-{}.png", spec.name)), &rows)?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn writes_a_grid_of_the_right_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let a = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        let b = Tensor::rand([2, 3, 28, 28], (Kind::Float, Device::Cpu));
        save_image_grid(&path, &[a, b]).unwrap();
        let img = image::open(&path).unwrap();
        // 28×28 items are drawn 84×84 (scale 3), nearest neighbour.
        assert_eq!(cell_scale(28, 28), 3);
        assert_eq!((cell_scale(32, 32), cell_scale(64, 64), cell_scale(100, 100)), (2, 1, 1));
        assert_eq!(img.width(), 4 * 86 + 2);
        assert_eq!(img.height(), 2 * 86 + 2);
        let px = |x, y| img.to_rgb8().get_pixel(x, y).0;
        let (x0, y0) = (PAD, PAD + 86);
        for (dx, dy) in [(0, 0), (1, 0), (2, 2)] {
            assert_eq!(px(x0 + dx, y0 + dy), px(x0, y0), "a source pixel is a 3×3 block");
        }
        assert!(save_image_grid(&path, &[Tensor::zeros([2, 28], (Kind::Float, Device::Cpu))]).is_err());
    }
}
