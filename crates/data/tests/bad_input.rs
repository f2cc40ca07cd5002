//! Bad input: every corrupt file gets an error naming the file and the problem, never a panic.

mod common;

use common::*;
use mmlatent_core::dataset::DataConfig;
use mmlatent_data::{idx, mat, open, svhn};
use std::path::Path;

fn open_dir(path: &Path) -> anyhow::Result<mmlatent_data::MultimodalDataset> {
    open(&DataConfig { path: path.to_path_buf(), format: "auto".into(), max_train: None, max_test: None })
}

/// Asserts that `result` failed with a message containing every piece of `expected`.
fn assert_error<T>(result: anyhow::Result<T>, expected: &[&str]) {
    let Err(e) = result else { panic!("expected an error mentioning {expected:?}") };
    let text = message(e);
    for piece in expected {
        assert!(text.contains(piece), "error `{text}` does not mention `{piece}`");
    }
}

#[test]
fn missing_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("train-images-idx3-ubyte.gz");
    assert_error(idx::read(&missing), &["train-images-idx3-ubyte.gz", "not found"]);
    assert_error(svhn::read(&dir.path().join("train_32x32.mat")), &["train_32x32.mat", "not found"]);
    assert_error(open_dir(&dir.path().join("nowhere")), &["nowhere", "not found"]);
    // A folder in no known layout.
    assert_error(open_dir(dir.path()), &["cannot tell the dataset format"]);
    // An MNIST folder whose label file is missing.
    write_mnist_dir(dir.path(), 10, 10);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    assert_error(open_dir(dir.path()), &["no test `idx1` IDX file"]);
}

#[test]
fn truncated_idx() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = write_idx_pair(dir.path(), "train", &[1, 2, 3], "");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 100]).unwrap();
    assert_error(idx::read(&images), &["train-images-idx3-ubyte", "truncated", "[3, 28, 28]", "2252 bytes"]);
    std::fs::write(&images, &bytes[..10]).unwrap();
    assert_error(idx::read(&images), &["train-images-idx3-ubyte", "truncated IDX header"]);
    // Truncated inside the gzip stream.
    let (gz, _) = write_idx_pair(dir.path(), "t10k", &[1, 2, 3], ".gz");
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(idx::read(&gz), &["t10k-images-idx3-ubyte.gz", "corrupt or truncated gzip"]);
}

#[test]
fn wrong_idx_magic() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = write_idx_pair(dir.path(), "train", &[1, 2], "");
    let mut bytes = std::fs::read(&images).unwrap();
    bytes[..4].copy_from_slice(&[0x50, 0x4b, 0x03, 0x04]); // a zip file's magic
    std::fs::write(&images, &bytes).unwrap();
    assert_error(idx::read(&images), &["train-images-idx3-ubyte", "wrong IDX magic 50 4b 03 04"]);
    // Image and label files swapped: a label vector where images are expected.
    let (_, labels) = write_idx_pair(dir.path(), "t10k", &[1, 2], "");
    assert_error(idx::read_image_set(&labels, &labels, 10), &["t10k-labels-idx1-ubyte", "expected a u8 image array"]);
}

#[test]
fn gz_that_is_not_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-labels-idx1-ubyte.gz");
    std::fs::write(&path, b"\x00\x00\x08\x01\x00\x00\x00\x01\x05").unwrap();
    assert_error(idx::read(&path), &["train-labels-idx1-ubyte.gz", "not gzip"]);
}

#[test]
fn idx_label_out_of_range_and_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = write_idx_pair(dir.path(), "train", &[1, 12, 3], "");
    assert_error(
        idx::read_image_set(&images, &labels, 10),
        &["train-labels-idx1-ubyte", "label 12 of item 1", "out of range"],
    );
    let (_, fewer) = write_idx_pair(dir.path(), "t10k", &[1, 2], "");
    assert_error(idx::read_image_set(&images, &fewer, 10), &["holds 3 images", "holds 2 labels"]);
}

#[test]
fn malformed_and_truncated_mat() {
    let dir = tempfile::tempdir().unwrap();
    for compress in [false, true] {
        let path = dir.path().join(format!("train{compress}.mat"));
        write_svhn(&path, &[1, 2, 3], compress);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
        assert_error(svhn::read(&path), &[&format!("train{compress}.mat"), "truncated"]);
    }
    let path = dir.path().join("garbage.mat");
    std::fs::write(&path, vec![7u8; 300]).unwrap();
    assert_error(mat::read(&path), &["garbage.mat", "not a level-5 MAT-file"]);
    std::fs::write(&path, b"MATLAB 5.0").unwrap();
    assert_error(mat::read(&path), &["garbage.mat", "too short for a MAT-file header"]);
    let mut v73 = b"MATLAB 7.3 MAT-file".to_vec();
    v73.resize(512, 0);
    std::fs::write(&path, &v73).unwrap();
    assert_error(mat::read(&path), &["garbage.mat", "v7.3 (HDF5)"]);
    // A compressed element whose zlib stream is corrupt.
    let mut element = mat_compressed(&mat_matrix("X", 9, &[2, 2], 2, &[1, 2, 3, 4]));
    for b in element.iter_mut().skip(10) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, mat_file(&[element])).unwrap();
    assert_error(mat::read(&path), &["garbage.mat", "corrupt compressed element at byte 128"]);
    // A matrix whose data is shorter than its dimensions need.
    std::fs::write(&path, mat_file(&[mat_matrix("X", 9, &[4, 4], 2, &[1, 2, 3])])).unwrap();
    assert_error(mat::read(&path), &["garbage.mat", "variable `X`", "needs 16 bytes"]);
}

#[test]
fn mat_without_x_or_y_or_with_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test_32x32.mat");
    let y = mat_matrix("y", 6, &[1, 1], 9, &3f64.to_le_bytes());
    std::fs::write(&path, mat_file(&[y])).unwrap();
    assert_error(svhn::read(&path), &["test_32x32.mat", "no numeric variable `X`", "found: y"]);
    let x = mat_matrix("X", 9, &[32, 32, 3, 1], 2, &[0u8; 3072]);
    std::fs::write(&path, mat_file(std::slice::from_ref(&x))).unwrap();
    assert_error(svhn::read(&path), &["test_32x32.mat", "no numeric variable `y`"]);
    // Wrong image size, label out of range 1..=10, and label/image count mismatch.
    let small = mat_matrix("X", 9, &[28, 28, 3, 1], 2, &[0u8; 28 * 28 * 3]);
    std::fs::write(&path, mat_file(&[small, mat_matrix("y", 6, &[1, 1], 9, &3f64.to_le_bytes())])).unwrap();
    assert_error(svhn::read(&path), &["test_32x32.mat", "[28, 28, 3, 1]", "32×32×3×N"]);
    std::fs::write(&path, mat_file(&[x.clone(), mat_matrix("y", 6, &[1, 1], 9, &11f64.to_le_bytes())])).unwrap();
    assert_error(svhn::read(&path), &["test_32x32.mat", "y(1) = 11", "out of range"]);
    let two: Vec<u8> = [1f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, mat_file(&[x, mat_matrix("y", 6, &[2, 1], 9, &two)])).unwrap();
    assert_error(svhn::read(&path), &["test_32x32.mat", "X holds 1 images but y holds 2"]);
}

#[test]
fn png_that_is_not_a_png() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 2, 10);
    let bad = dir.path().join("train/m1/4.4.png");
    std::fs::write(&bad, b"this is not an image").unwrap();
    assert_error(open_dir(dir.path()), &["m1/4.4.png", "not a readable image"]);
}

#[test]
fn png_of_the_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 2, 10);
    write_rgb_png(&dir.path().join("test/m0/3.3.png"), 20, 28, 0);
    assert_error(open_dir(dir.path()), &["test/m0/3.3.png", "20×28", "expected 28×28"]);
}

/// A greyscale or RGBA file among a modality's RGB images is refused, naming it and the
/// counts; a modality that is greyscale (or RGBA) throughout is read as RGB.
#[test]
fn polymnist_modality_that_mixes_grey_rgb_and_rgba() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 2, 10);
    let stray = dir.path().join("train/m1/4.4.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90])).save(&stray).unwrap();
    assert_error(open_dir(dir.path()), &["train/m1", "mixes 1 greyscale, 9 RGB images", "m1/4.4.png", "convert"]);
    image::RgbaImage::from_pixel(28, 28, image::Rgba([1, 2, 3, 128])).save(&stray).unwrap();
    assert_error(open_dir(dir.path()), &["mixes 9 RGB, 1 RGBA images", "m1/4.4.png"]);
    // Greyscale throughout: read, grey in every channel.
    for i in 0..10 {
        for split in ["train", "test"] {
            let path = dir.path().join(format!("{split}/m1/{i}.{i}.png"));
            image::GrayImage::from_pixel(28, 28, image::Luma([i as u8 * 10])).save(&path).unwrap();
        }
    }
    let data = open_dir(dir.path()).unwrap();
    let item = data.train.items[1].get(4);
    assert_eq!(item.size(), [3, 28, 28]);
    assert_eq!(item.to_kind(tch::Kind::Int64).min().int64_value(&[]), 40);
    assert_eq!(item.to_kind(tch::Kind::Int64).max().int64_value(&[]), 40);
}

#[test]
fn polymnist_label_out_of_range_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 2, 10);
    for m in 0..2 {
        let folder = dir.path().join(format!("train/m{m}"));
        std::fs::rename(folder.join("7.7.png"), folder.join("7.12.png")).unwrap();
    }
    assert_error(open_dir(dir.path()), &["m0/7.12.png", "label 12 is out of range 0..10"]);
    // Labels that disagree between modalities.
    std::fs::rename(dir.path().join("train/m1/7.12.png"), dir.path().join("train/m1/7.7.png")).unwrap();
    assert_error(open_dir(dir.path()), &["m1/7.7.png", "differs from the label 12"]);
    std::fs::write(dir.path().join("train/m0/notes.txt"), "hi").unwrap();
    assert_error(open_dir(dir.path()), &["m0/notes.txt", "not a PolyMNIST file name"]);
}

#[test]
fn modality_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 2, 10);
    std::fs::remove_file(dir.path().join("train/m1/6.6.png")).unwrap();
    assert_error(
        open_dir(dir.path()),
        &["modality count mismatch", "train/m0 has 10 files", "train/m1 has 9", "tuple 6"],
    );
    // Train with 3 modalities, test with 2.
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 3, 4);
    std::fs::remove_dir_all(dir.path().join("test/m2")).unwrap();
    assert_error(open_dir(dir.path()), &["modality count mismatch", "has 3 modalities", "has 2"]);
    // A gap in the modality folders.
    std::fs::rename(dir.path().join("train/m1"), dir.path().join("train/m5")).unwrap();
    assert_error(open_dir(dir.path()), &["modality folder m1 is missing"]);
}

#[test]
fn cub_caption_count_not_ten_per_image() {
    let dir = tempfile::tempdir().unwrap();
    write_cub_dir(dir.path());
    let path = dir.path().join("text_trainvalclasses.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let fewer: String = text.lines().take(29).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, fewer).unwrap();
    assert_error(
        open_dir(dir.path()),
        &["text_trainvalclasses.txt", "29 captions for the 3 images", "expected 10 per image (30)"],
    );
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.path().join("text_testclasses.txt"), "one caption\n").unwrap();
    assert_error(cub_load(dir.path()), &["text_trainvalclasses.txt", "cannot read caption file"]);
}

fn cub_load(dir: &Path) -> anyhow::Result<mmlatent_data::MultimodalDataset> {
    mmlatent_data::cub::load(dir)
}

#[test]
fn mnist_svhn_index_files_that_do_not_fit_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (m, s, out) = (dir.path().join("mnist"), dir.path().join("svhn"), dir.path().join("ms"));
    write_mnist_dir(&m, 20, 10);
    write_svhn_dir(&s, 20, 10);
    mmlatent_data::mnist_svhn::build(&m, &s, &out, 2, 100, 0).unwrap();
    let file = mmlatent_data::mnist_svhn::index_file(&out, "test", "svhn");
    idx::write_indices(&file, &[0, 1, 99]).unwrap();
    assert_error(open_dir(&out), &["test-ms-svhn.idx", "item 99, out of range 0..10"]);
    std::fs::remove_dir_all(&s).unwrap();
    assert_error(open_dir(&out), &["SVHN source", "train_32x32.mat", "not found"]);
}

#[test]
fn unknown_format_names() {
    let cfg = DataConfig { path: "default".into(), format: "mnistsvhn".into(), max_train: None, max_test: None };
    assert_error(open(&cfg), &["unknown dataset format `mnistsvhn`", "mnist-svhn"]);
}

#[test]
fn no_truncation_or_flipped_byte_makes_the_readers_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = mmlatent_data::rng::SplitMix64::new(11);
    for compress in [false, true] {
        let path = dir.path().join("one.mat");
        write_svhn(&path, &[3], compress);
        let good = std::fs::read(&path).unwrap();
        for cut in 0..good.len() {
            // A cut file errors, or (cut between elements) lacks a variable.
            let parsed = mat::parse(&good[..cut], "cut.mat");
            assert!(parsed.map_or(true, |arrays| arrays.len() < 2), "cut at {cut} accepted");
        }
        for _ in 0..300 {
            let mut bad = good.clone();
            let at = rng.below(bad.len());
            bad[at] ^= 1 << rng.below(8);
            std::fs::write(&path, &bad).unwrap();
            let _ = svhn::read(&path); // an error or (for pixel bytes) a dataset, never a panic
        }
    }
    let (images, _) = write_idx_pair(dir.path(), "train", &[1, 2], "");
    let good = std::fs::read(&images).unwrap();
    for cut in 0..good.len() - 1 {
        assert!(idx::parse(&good[..cut], &images).is_err(), "cut at {cut} accepted");
    }
}
