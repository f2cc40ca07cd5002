//! The bundled default dataset: the real Fashion-MNIST test set (10,000 items, MIT licence,
//! `assets/fashion-mnist/`) embedded in the binary and turned, in memory, into a PolyMNIST-style
//! dataset of 3 modalities of 3×28×28 with the PolyMNIST recipe ([`polymnist::compose_split`]) on
//! backgrounds that the tool paints itself (seeded procedural colour textures, one style per
//! modality: warm marble, cool clouds, green–yellow weave).
//!
//! Split: a fixed permutation of the 10,000 items, the first 9,000 for training and the other
//! 1,000 for test; every modality draws its partners from its own split only. `full` uses
//! instead the 60,000-item training set of Debian's `dataset-fashion-mnist` for training and
//! the whole bundled set for test.

use crate::idx::{self, ImageSet};
use crate::polymnist::{self, Background};
use crate::rng::SplitMix64;
use anyhow::{ensure, Context, Result};
use mmlatent_core::dataset::MultimodalDataset;
use mmlatent_core::ModalitySpec;
use std::path::Path;

/// Modalities of the default dataset.
pub const NUM_MODALITIES: usize = 3;
/// Training tuples of the bundled (not `full`) default dataset; the rest of the 10,000 are test.
pub const TRAIN_SIZE: usize = 9000;
/// Seed of the split, the textures, the crops and the partners: the default never changes.
pub const SEED: u64 = 20_171_028;
/// Side of the generated background textures.
pub const TEXTURE_SIZE: usize = 128;
/// Where `full` finds the 60,000-item training set.
pub const FULL_SOURCE: &str = "/usr/share/datasets/fashion-mnist";

/// The Fashion-MNIST class names, by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

static TEST_IMAGES: &[u8] = include_bytes!("../../../assets/fashion-mnist/t10k-images-idx3-ubyte.gz");
static TEST_LABELS: &[u8] = include_bytes!("../../../assets/fashion-mnist/t10k-labels-idx1-ubyte.gz");

/// Parses an embedded IDX file; `origin` names it in errors.
fn parse_embedded(bytes: &[u8], origin: &'static str) -> Result<idx::IdxArray> {
    let origin = Path::new(origin);
    idx::parse(&crate::fsutil::gunzip_if_gzip(bytes.to_vec(), origin)?, origin)
}

/// The bundled Fashion-MNIST test set.
pub fn bundled_items() -> Result<ImageSet> {
    let (images, labels) = ("<bundled>/t10k-images-idx3-ubyte.gz", "<bundled>/t10k-labels-idx1-ubyte.gz");
    let img = parse_embedded(TEST_IMAGES, images)?;
    let lab = parse_embedded(TEST_LABELS, labels)?;
    idx::image_set(img, Path::new(images), lab, Path::new(labels), 10)
}

/// Value noise on an integer lattice of `cell` pixels, smoothly interpolated (smoothstep), in [0, 1].
fn value_noise(x: f64, y: f64, cell: f64, seed: u64) -> f64 {
    let hash = |i: i64, j: i64| {
        let key = (i as u64).wrapping_mul(0x1656_67B1_9E37_79F9) ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        SplitMix64::stream(seed, key).uniform()
    };
    let (fx, fy) = (x / cell, y / cell);
    let (i, j) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = (fx - i as f64, fy - j as f64);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let top = hash(i, j) * (1.0 - sx) + hash(i + 1, j) * sx;
    let bottom = hash(i, j + 1) * (1.0 - sx) + hash(i + 1, j + 1) * sx;
    top * (1.0 - sy) + bottom * sy
}

/// Fractal Brownian motion: 4 octaves of value noise, halving cell and amplitude, in [0, 1].
fn fbm(x: f64, y: f64, seed: u64) -> f64 {
    let (mut sum, mut amp, mut cell, mut norm) = (0.0, 0.5, 32.0, 0.0);
    for octave in 0..4 {
        sum += amp * value_noise(x, y, cell, seed.wrapping_add(octave));
        norm += amp;
        amp *= 0.5;
        cell *= 0.5;
    }
    sum / norm
}

/// Mixes two RGB colours: `a` at t = 0, `b` at t = 1.
fn mix(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    let t = t.clamp(0.0, 1.0);
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A seeded procedural colour texture of `size × size` pixels in style `style % 3`:
/// 0 warm marble (sine veins bent by noise), 1 cool clouds (fractal noise), 2 green–yellow weave
/// (crossed stripes warped by noise).
pub fn texture(style: usize, size: usize, seed: u64) -> Background {
    let mut rgb = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        for x in 0..size {
            let (xf, yf) = (x as f64, y as f64);
            let n = fbm(xf, yf, seed);
            let colour = match style % 3 {
                0 => {
                    let vein = 0.5 + 0.5 * (0.16 * xf + 0.07 * yf + 8.0 * n).sin();
                    mix([150.0, 30.0, 20.0], [255.0, 215.0, 90.0], vein)
                }
                1 => {
                    let t = ((n - 0.5) * 2.2 + 0.5).clamp(0.0, 1.0);
                    mix([10.0, 40.0, 120.0], [170.0, 235.0, 255.0], t)
                }
                _ => {
                    let warp = 3.0 * n;
                    let a = (0.45 * xf + warp).sin();
                    let b = (0.45 * yf + warp).sin();
                    let t = 0.5 + 0.25 * (a + b);
                    mix([40.0, 120.0, 30.0], [240.0, 225.0, 80.0], t)
                }
            };
            rgb.extend(colour.iter().map(|&c| c.round().clamp(0.0, 255.0) as u8));
        }
    }
    Background { width: size, height: size, rgb }
}

/// The backgrounds of the default dataset, one per modality.
pub fn backgrounds() -> Vec<Background> {
    (0..NUM_MODALITIES).map(|k| texture(k, TEXTURE_SIZE, SplitMix64::stream(SEED, 100 + k as u64).next_u64())).collect()
}

/// The default dataset (`full`: trained on the 60,000 Fashion-MNIST training items of
/// [`FULL_SOURCE`], which must then exist).
pub fn dataset(full: bool) -> Result<MultimodalDataset> {
    dataset_from(full.then_some(Path::new(FULL_SOURCE)))
}

/// The default dataset, trained on the IDX training set of `full_source` when given.
pub fn dataset_from(full_source: Option<&Path>) -> Result<MultimodalDataset> {
    let bundled = bundled_items()?;
    let bgs = backgrounds();
    let full = full_source.is_some();
    let (train, test) = if let Some(dir) = full_source {
        ensure!(
            dir.is_dir(),
            "{}: not found; the full default dataset needs Fashion-MNIST's training set there \
             (Debian/Ubuntu: apt install dataset-fashion-mnist)",
            dir.display()
        );
        let source = idx::read_split(dir, "train")
            .with_context(|| format!("cannot read the full training set in {}", dir.display()))?;
        let all_train: Vec<usize> = (0..source.len()).collect();
        let all_test: Vec<usize> = (0..bundled.len()).collect();
        (
            polymnist::compose_split(&source, &all_train, source.len(), &bgs, SEED)?,
            polymnist::compose_split(&bundled, &all_test, bundled.len(), &bgs, SEED + 1)?,
        )
    } else {
        let order = SplitMix64::new(SEED).permutation(bundled.len());
        let (train_idx, test_idx) = order.split_at(TRAIN_SIZE.min(bundled.len()));
        (
            polymnist::compose_split(&bundled, train_idx, train_idx.len(), &bgs, SEED)?,
            polymnist::compose_split(&bundled, test_idx, test_idx.len(), &bgs, SEED + 1)?,
        )
    };
    let dataset = MultimodalDataset {
        name: if full { "default-full" } else { "default" }.into(),
        modalities: (0..NUM_MODALITIES).map(|k| ModalitySpec::image(&format!("m{k}"), 3, 28, 28)).collect(),
        num_classes: 10,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        vocabularies: vec![None; NUM_MODALITIES],
        train,
        test,
    };
    dataset.check()?;
    Ok(dataset)
}
