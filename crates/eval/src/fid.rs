//! Fréchet distances between two sets of features (FID when the features are Inception-v3's,
//! "FD" in the feature space of the tool's own classifiers).
//!
//! For Gaussians N(μ₁, Σ₁) and N(μ₂, Σ₂) fitted to the features (Σ with the unbiased 1/(n−1),
//! as `numpy.cov`),
//!
//!   d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}.
//!
//! The trace term is computed stably in f64, without complex arithmetic, in one of two ways:
//! - Σ₁Σ₂ is similar to the symmetric positive semi-definite A = Σ₁^{1/2} Σ₂ Σ₁^{1/2} (same
//!   eigenvalues), so tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(A), with Σ₁^{1/2} and λ(A) from symmetric
//!   eigendecompositions (negative round-off eigenvalues clamped to 0);
//! - when a set has fewer samples than dimensions, Σ = FᵀF with F = (X − μ)/√(n−1) of shape
//!   [n, D]; the non-zero eigenvalues of Σ₁Σ₂ = F₁ᵀF₁F₂ᵀF₂ are those of (F₁F₂ᵀ)(F₁F₂ᵀ)ᵀ, so
//!   tr (Σ₁Σ₂)^{1/2} = ‖F₁F₂ᵀ‖_* (the sum of the singular values of an n₁×n₂ matrix) — exact,
//!   and far cheaper than a D×D decomposition for FID's 2048 dimensions.

use crate::classifier::Classifiers;
use crate::inception::InceptionV3;
use anyhow::{bail, ensure, Context, Result};
use mmlatent_present::progress::Progress;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Mean and covariance of a set of features.
#[derive(Debug)]
pub struct Stats {
    /// `f64 [D]`.
    pub mean: Tensor,
    /// `f64 [D, D]`.
    pub cov: Tensor,
    pub count: i64,
    /// `F = (X − μ)/√(n−1)`, `f64 [n, D]`, kept when `n ≤ D` (then `Σ = FᵀF` has low rank).
    pub factor: Option<Tensor>,
}

impl Stats {
    /// Fits the mean and the unbiased covariance of `features` `[N, D]` (N ≥ 2).
    pub fn from_features(features: &Tensor) -> Result<Self> {
        let size = features.size();
        ensure!(size.len() == 2, "features must be [N, D], got {size:?}");
        ensure!(size[0] >= 2, "a covariance needs at least 2 samples, got {}", size[0]);
        let x = features.to_device(Device::Cpu).to_kind(Kind::Double);
        let mean = x.mean_dim(0, false, Kind::Double);
        let centred = &x - &mean;
        let factor = centred / ((size[0] - 1) as f64).sqrt();
        let cov = factor.transpose(0, 1).matmul(&factor);
        Ok(Self { mean, cov, count: size[0], factor: (size[0] <= size[1]).then_some(factor) })
    }

    pub fn dim(&self) -> i64 {
        self.mean.size()[0]
    }
}

/// Σ^{1/2} of a symmetric positive semi-definite matrix, by eigendecomposition.
fn sqrt_psd(m: &Tensor) -> Result<Tensor> {
    let sym = (m + m.transpose(0, 1)) / 2.0;
    let (values, vectors) = sym.f_linalg_eigh("L")?;
    Ok((&vectors * values.clamp_min(0.0).sqrt().unsqueeze(0)).matmul(&vectors.transpose(0, 1)))
}

/// tr (Σ₁Σ₂)^{1/2} through the symmetric product Σ₁^{1/2} Σ₂ Σ₁^{1/2}.
fn trace_sqrt_product_full(a: &Tensor, b: &Tensor) -> Result<f64> {
    let root = sqrt_psd(a)?;
    let inner = root.matmul(b).matmul(&root);
    let inner = (&inner + inner.transpose(0, 1)) / 2.0;
    Ok(inner.f_linalg_eigvalsh("L")?.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[]))
}

/// tr (Σ₁Σ₂)^{1/2} = ‖F₁F₂ᵀ‖_* for Σᵢ = FᵢᵀFᵢ.
fn trace_sqrt_product_factored(fa: &Tensor, fb: &Tensor) -> Result<f64> {
    let (_, singular, _) = fa.matmul(&fb.transpose(0, 1)).f_svd(true, false)?;
    Ok(singular.sum(Kind::Double).double_value(&[]))
}

/// The Fréchet distance d² between the Gaussians of `a` and `b` (see the module docs).
pub fn frechet_distance(a: &Stats, b: &Stats) -> Result<f64> {
    ensure!(a.dim() == b.dim(), "feature dimensions differ: {} and {}", a.dim(), b.dim());
    let diff = (&a.mean - &b.mean).square().sum(Kind::Double).double_value(&[]);
    let trace_sqrt = match (&a.factor, &b.factor) {
        (Some(fa), Some(fb)) => trace_sqrt_product_factored(fa, fb),
        _ => trace_sqrt_product_full(&a.cov, &b.cov),
    }
    .context("the matrix square root of the Fréchet distance failed (non-finite features?)")?;
    let tr_a = a.cov.trace().double_value(&[]);
    let tr_b = b.cov.trace().double_value(&[]);
    let d = diff + tr_a + tr_b - 2.0 * trace_sqrt;
    ensure!(d.is_finite(), "the Fréchet distance is not finite (non-finite features?)");
    // Round-off can leave a tiny negative number for identical sets.
    Ok(d.max(0.0))
}

/// Fréchet distance between two sets of features `[N, D]` and `[M, D]`.
pub fn frechet_distance_of_features(a: &Tensor, b: &Tensor) -> Result<f64> {
    frechet_distance(&Stats::from_features(a)?, &Stats::from_features(b)?)
}

/// Fréchet distance between two batches of modality `m` (data space) in the penultimate
/// features of `classifiers` — the "FD" that MLD reports for small images.
pub fn classifier_frechet_distance(classifiers: &Classifiers, m: usize, a: &Tensor, b: &Tensor) -> Result<f64> {
    frechet_distance_of_features(&classifiers.features(m, a)?, &classifiers.features(m, b)?)
}

/// File extensions read as images (those of pytorch-fid that the `image` crate decodes).
const IMAGE_EXTENSIONS: [&str; 7] = ["bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tiff"];

/// The image files directly inside `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    let mut files = vec![];
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} holds no image files ({})", dir.display(), IMAGE_EXTENSIONS.join(", "));
    }
    Ok(files)
}

/// Reads an image file as `[1, 3, H, W]` in `[0, 1]` (grey and RGBA converted to RGB).
pub fn read_rgb(path: &Path) -> Result<Tensor> {
    let img = image::open(path).with_context(|| format!("cannot read image {}", path.display()))?.to_rgb8();
    let (w, h) = (img.width() as i64, img.height() as i64);
    Ok(Tensor::from_slice(img.as_raw()).view([h, w, 3]).permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float) / 255.0)
}

/// Inception pool features `[N, 2048]` of image files, `batch` at a time (images may differ
/// in size: each is resized to 299×299 on its own).
pub fn inception_features_of_files(
    model: &InceptionV3,
    files: &[PathBuf],
    batch: usize,
    label: Option<&str>,
) -> Result<Tensor> {
    let mut progress = label.map(|l| Progress::new(l, files.len() as u64));
    let mut parts = vec![];
    for chunk in files.chunks(batch.max(1)) {
        let inputs: Vec<Tensor> = chunk.iter().map(|f| model.prepare(&read_rgb(f)?)).collect::<Result<_>>()?;
        parts.push(model.forward_prepared(&Tensor::cat(&inputs, 0)).to_device(Device::Cpu));
        if let Some(p) = &mut progress {
            p.inc(chunk.len() as u64);
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    Ok(Tensor::cat(&parts, 0))
}

/// The image files of `dir` for an FID (at least 2).
fn fid_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = image_files(dir)?;
    ensure!(files.len() >= 2, "{} holds {} image; FID needs at least 2", dir.display(), files.len());
    Ok(files)
}

fn features_of_dir(model: &InceptionV3, dir: &Path, files: &[PathBuf], batch: usize, progress: bool) -> Result<Tensor> {
    let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "images".into());
    inception_features_of_files(model, files, batch, progress.then_some(label.as_str()))
}

/// Inception pool features `[N, 2048]` of the images in `dir` (see [`image_files`]).
pub fn folder_features(model: &InceptionV3, dir: &Path, batch: usize, progress: bool) -> Result<Tensor> {
    features_of_dir(model, dir, &fid_files(dir)?, batch, progress)
}

/// FID between two folders of images (both are listed before any work starts).
/// With `max_images`, each folder's first that many files (in the order of [`image_files`])
/// enter the statistics: a quicker, noisier estimate.
pub fn fid_of_folders(
    model: &InceptionV3,
    (a, b): (&Path, &Path),
    max_images: Option<usize>,
    batch: usize,
    progress: bool,
) -> Result<f64> {
    let first = |mut files: Vec<PathBuf>| {
        files.truncate(max_images.unwrap_or(usize::MAX));
        files
    };
    let (fa, fb) = (first(fid_files(a)?), first(fid_files(b)?));
    let xa = features_of_dir(model, a, &fa, batch, progress)?;
    let xb = features_of_dir(model, b, &fb, batch, progress)?;
    frechet_distance_of_features(&xa, &xb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(n: i64, mean: &Tensor, scale: &Tensor) -> Tensor {
        Tensor::randn([n, mean.size()[0]], (Kind::Double, Device::Cpu)).matmul(&scale.transpose(0, 1)) + mean
    }

    #[test]
    fn closed_form_of_diagonal_gaussians() {
        // For diagonal covariances, d² = |μ₁−μ₂|² + Σᵢ (σ₁ᵢ − σ₂ᵢ)².
        let d = 6;
        let s1 = Tensor::from_slice(&[1.0f64, 2.0, 0.5, 3.0, 1.5, 0.1]);
        let s2 = Tensor::from_slice(&[2.0f64, 1.0, 0.5, 1.0, 0.2, 0.3]);
        let m1 = Tensor::zeros([d], (Kind::Double, Device::Cpu));
        let m2 = Tensor::from_slice(&[1.0f64, -1.0, 0.0, 2.0, 0.0, 0.5]);
        let a = Stats { mean: m1, cov: s1.square().diag(0), count: 0, factor: None };
        let b = Stats { mean: m2, cov: s2.square().diag(0), count: 0, factor: None };
        let expected = (1.0 + 1.0 + 4.0 + 0.25) + (1.0 + 1.0 + 0.0 + 4.0 + 1.69 + 0.04);
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    #[test]
    fn closed_form_of_commuting_full_covariances_and_identity() {
        // Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute: tr (Σ₁Σ₂)^{1/2} = Σ √(aᵢbᵢ).
        tch::manual_seed(3);
        let q = Tensor::linalg_qr(&Tensor::randn([5, 5], (Kind::Double, Device::Cpu)), "reduced").0;
        let av = Tensor::from_slice(&[4.0f64, 1.0, 0.25, 9.0, 2.0]);
        let bv = Tensor::from_slice(&[1.0f64, 1.0, 4.0, 1.0, 0.5]);
        let cov = |v: &Tensor| q.matmul(&v.diag(0)).matmul(&q.transpose(0, 1));
        let mean = Tensor::zeros([5], (Kind::Double, Device::Cpu));
        let a = Stats { mean: mean.copy(), cov: cov(&av), count: 0, factor: None };
        let b = Stats { mean: mean.copy(), cov: cov(&bv), count: 0, factor: None };
        // Σ (√aᵢ − √bᵢ)² = 1 + 0 + 2.25 + 4 + 0.5
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - 7.75).abs() < 1e-9, "{got}");
        assert!(frechet_distance(&a, &a).unwrap() < 1e-9);
    }

    #[test]
    fn sampled_gaussians_approach_the_closed_form_and_singular_sets_work() {
        tch::manual_seed(0);
        let mean = Tensor::from_slice(&[1.0f64, 0.0, -1.0]);
        let scale = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.3, 2.0]).view([3, 3]);
        let a = gaussian(20000, &mean, &scale);
        let b = gaussian(20000, &(&mean + 1.0), &scale);
        // Same covariance: d² = |Δμ|² = 3.
        let d = frechet_distance_of_features(&a, &b).unwrap();
        assert!((d - 3.0).abs() < 0.1, "{d}");
        // Fewer samples than dimensions: singular covariances, still finite and ≥ 0.
        let x = Tensor::randn([10, 64], (Kind::Float, Device::Cpu));
        let y = Tensor::randn([12, 64], (Kind::Float, Device::Cpu));
        let d = frechet_distance_of_features(&x, &y).unwrap();
        assert!(d.is_finite() && d > 0.0, "{d}");
        assert!(frechet_distance_of_features(&x, &x).unwrap() < 1e-6);
        // The low-rank route (both sets smaller than the dimension) equals the full one.
        let (sx, sy) = (Stats::from_features(&x).unwrap(), Stats::from_features(&y).unwrap());
        assert!(sx.factor.is_some() && sy.factor.is_some());
        let full = trace_sqrt_product_full(&sx.cov, &sy.cov).unwrap();
        let low = trace_sqrt_product_factored(sx.factor.as_ref().unwrap(), sy.factor.as_ref().unwrap()).unwrap();
        assert!((full - low).abs() < 1e-6 * full, "{full} vs {low}");
        assert!(frechet_distance_of_features(&x.narrow(0, 0, 1), &y).is_err());
    }
}
