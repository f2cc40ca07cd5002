//! mmlatent's Inception-v3 features and FID against pytorch-fid itself.
//!
//! `scripts/fid_reference.py` builds pytorch-fid's FID Inception with random weights (no
//! download), saves them, and computes features and FID of two small folders of PNGs with
//! pytorch-fid's own functions; mmlatent must read the same weights and agree (features to
//! 1e-4 relative, FID to 1e-3 relative). The venv's Python must have pytorch-fid (installed
//! by scripts/setup.sh): without it this test fails, it does not skip.

use image::{GrayImage, RgbImage};
use mmlatent_eval::fid::{folder_features, frechet_distance_of_features};
use mmlatent_eval::inception::InceptionV3;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tch::{Device, Kind, Tensor};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Smooth random images with a bright square, so features vary within and between folders.
fn write_images(dir: &Path, n: usize, side: u32, rgb: bool, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for i in 0..n {
        let (x0, y0, v) = (next() % (side / 2), next() % (side / 2), 120 + next() % 136);
        let pixel = |x: u32, y: u32, c: u32, noise: u32| -> u8 {
            let inside = x >= x0 && x < x0 + side / 3 && y >= y0 && y < y0 + side / 3;
            let base = if inside { v / (c + 1) } else { 20 * c };
            (base + noise % 40).min(255) as u8
        };
        let path = dir.join(format!("{i:03}.png"));
        if rgb {
            let img = RgbImage::from_fn(side, side, |x, y| {
                image::Rgb([pixel(x, y, 0, next()), pixel(x, y, 1, next()), pixel(x, y, 2, next())])
            });
            img.save(path).unwrap();
        } else {
            GrayImage::from_fn(side, side, |x, y| image::Luma([pixel(x, y, 0, next())])).save(path).unwrap();
        }
    }
}

fn read_f32(path: &Path, dims: i64) -> Tensor {
    let bytes = std::fs::read(path).unwrap();
    let values: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Tensor::from_slice(&values).view([-1, dims])
}

fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).to_kind(Kind::Double).norm().double_value(&[]);
    diff / b.to_kind(Kind::Double).norm().double_value(&[])
}

#[test]
fn features_and_fid_match_pytorch_fid() {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs torch and pytorch-fid)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("ref"));
    write_images(&a, 4, 28, false, 1);
    write_images(&b, 5, 32, true, 2);

    // The script prints "weights written" before its slow part (features, scipy's sqrtm); the
    // Rust side computes its features meanwhile.
    let mut child = Command::new(&python)
        .arg(root.join("scripts/fid_reference.py"))
        .args([&out, &a, &b])
        .env("TQDM_DISABLE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run the venv's python");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.trim() == "weights written");
    if !ready {
        let status = child.wait().unwrap();
        assert!(
            status.code() != Some(3),
            "pytorch-fid is not installed in {}: run scripts/setup.sh (the agreement test needs it)",
            python.display()
        );
        panic!("scripts/fid_reference.py failed before writing the weights: {status}");
    }
    // libtorch cannot parse Python's pickled state dicts: loading one is an error that gives
    // the conversion command; the safetensors copy the script wrote is read.
    let e = InceptionV3::load(&out.join("inception.pth"), Device::Cpu).unwrap_err();
    assert!(format!("{e:#}").contains("scripts/convert_inception.py"), "{e:#}");
    let model = InceptionV3::load(&out.join("inception.safetensors"), Device::Cpu).unwrap();

    // Folder A in batches of 2 (pytorch-fid used 8): batching does not change the features.
    let features_a = folder_features(&model, &a, 2, false).unwrap();
    let features_b = folder_features(&model, &b, 8, false).unwrap();
    assert_eq!(features_a.size(), vec![4, 2048]);

    let status = child.wait().unwrap();
    assert!(status.success(), "scripts/fid_reference.py failed: {status}");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).unwrap()).unwrap();
    let reference_fid = reference["fid"].as_f64().unwrap();
    let err_a = relative_error(&features_a, &read_f32(&out.join("features_a.f32"), 2048));
    let err_b = relative_error(&features_b, &read_f32(&out.join("features_b.f32"), 2048));
    assert!(err_a < 1e-4 && err_b < 1e-4, "features differ from pytorch-fid's by {err_a:e}, {err_b:e} (relative)");

    let fid = frechet_distance_of_features(&features_a, &features_b).unwrap();
    let rel = (fid - reference_fid).abs() / reference_fid.abs();
    eprintln!("FID mmlatent {fid} pytorch-fid {reference_fid} (relative difference {rel:e}); feature errors {err_a:e} {err_b:e}");
    assert!(rel < 1e-3, "FID {fid} vs pytorch-fid {reference_fid}");
}
