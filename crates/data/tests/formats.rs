//! Reading and building the field's formats from small files the tests write.

mod common;

use common::*;
use mmlatent_core::dataset::DataConfig;
use mmlatent_data::polymnist::{self, Background};
use mmlatent_data::{cub, default, detect, idx, inspect, mnist_svhn, open, svhn, Format};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn config(path: &Path, format: &str) -> DataConfig {
    DataConfig { path: path.to_path_buf(), format: format.into(), max_train: None, max_test: None }
}

#[test]
fn idx_folders_read_gzipped_and_plain() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist_dir(dir.path(), 30, 20);
    let train = idx::read_split(dir.path(), "train").unwrap();
    assert_eq!((train.len(), train.height, train.width), (30, 28, 28));
    assert_eq!(train.image(7), grey_item(7, 7, 28, 28).as_slice());
    assert_eq!(detect(dir.path()).unwrap(), Format::Idx);
    // A gunzipped copy beside the .gz is the same file: the plain one is read.
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    let plain = idx::read(&gz).unwrap();
    idx::write(&dir.path().join("train-images-idx3-ubyte"), &plain).unwrap();
    assert_eq!(idx::find_split_files(dir.path(), "train").unwrap().0, dir.path().join("train-images-idx3-ubyte"));
    let ds = open(&config(dir.path(), "auto")).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (30, 20));
    assert_eq!(ds.modalities[0].item_shape(), vec![1, 28, 28]);
}

#[test]
fn svhn_mat_files_read_plain_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    for compress in [false, true] {
        let path = dir.path().join(format!("s{compress}.mat"));
        write_svhn(&path, &[10, 1, 9, 3], compress);
        let s = svhn::read(&path).unwrap();
        assert_eq!(s.labels, vec![0, 1, 9, 3], "10 means the digit 0");
        let t = s.tensor();
        assert_eq!(t.size(), vec![4, 3, 32, 32]);
        // Column-major X(r, c, ch, i) must land at [i, ch, r, c].
        for (i, ch, r, c) in [(0, 0, 0, 1), (2, 1, 5, 30), (3, 2, 31, 0)] {
            assert_eq!(
                t.int64_value(&[i, ch, r, c]),
                svhn_pixel(r as usize, c as usize, ch as usize, i as usize) as i64
            );
        }
    }
    write_svhn_dir(&dir.path().join("svhn"), 12, 5);
    let ds = open(&config(&dir.path().join("svhn"), "auto")).unwrap();
    assert_eq!((ds.name.as_str(), ds.train.len(), ds.test.len()), ("svhn", 12, 5));
}

#[test]
fn mat_reader_skips_other_classes_and_reads_integer_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.mat");
    let chars = mat_matrix("name", 4, &[1, 2], 4, &[104, 0, 105, 0]); // mxCHAR: skipped
    let ints: Vec<u8> = [3i16, -2, 700].iter().flat_map(|v| v.to_le_bytes()).collect();
    let y = mat_matrix("values", 10, &[3, 1], 3, &ints); // mxINT16 stored as miINT16
    std::fs::write(&path, mat_file(&[chars, mat_compressed(&y)])).unwrap();
    let arrays = mmlatent_data::mat::read(&path).unwrap();
    assert_eq!(arrays.len(), 1);
    assert_eq!(arrays[0].to_f64().unwrap(), vec![3.0, -2.0, 700.0]);
    assert!(arrays[0].to_u8().is_err(), "-2 and 700 are not bytes");
}

#[test]
fn big_endian_mat_files_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be.mat");
    let x: Vec<u8> = (0..32 * 32 * 3 * 2).map(|p| (p % 251) as u8).collect();
    let y: Vec<u8> = [10.0f64, 4.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let elements = [mat_matrix_in("X", 9, &[32, 32, 3, 2], 2, &x, true), mat_matrix_in("y", 6, &[2, 1], 9, &y, true)];
    std::fs::write(&path, mat_file_in(&elements, true)).unwrap();
    let s = svhn::read(&path).unwrap();
    assert_eq!(s.labels, vec![0, 4]);
    // [i=1, ch=2, r=3, c=4] comes from column-major position 3 + 32·4 + 1024·2 + 3072·1.
    assert_eq!(s.tensor().int64_value(&[1, 2, 3, 4]), ((3 + 128 + 2048 + 3072) % 251) as i64);
}

#[test]
fn polymnist_recipe_inverts_the_background_where_the_item_is() {
    let bg = Background { width: 4, height: 3, rgb: (0..36).map(|v| v as u8 * 7).collect() };
    let item = [0u8, 200, 129, 128]; // 2×2: only pixels 1 and 2 are > 128
    let mut out = [0u8; 12];
    polymnist::compose(&item, 2, 2, &bg, 1, 1, &mut out);
    for p in 0..4 {
        let (y, x) = (p / 2, p % 2);
        for c in 0..3 {
            let v = bg.rgb[((1 + y) * 4 + 1 + x) * 3 + c];
            let expected = if item[p] > 128 { 255 - v } else { v };
            assert_eq!(out[c * 4 + p], expected, "pixel {p} channel {c}");
        }
    }
}

#[test]
fn polymnist_builder_writes_a_folder_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("mnist");
    write_mnist_dir(&source, 40, 20);
    let bgs: Vec<PathBuf> = (0..3).map(|k| dir.path().join(format!("bg{k}.png"))).collect();
    for (k, p) in bgs.iter().enumerate() {
        write_rgb_png(p, 40 + 10 * k, 35, k);
    }
    let out = dir.path().join("poly");
    let summary = polymnist::build(&source, &bgs, &out, Some(50), None, 3).unwrap();
    assert_eq!((summary.train, summary.test, summary.modalities, summary.files), (50, 20, 3, 3 * 70));
    assert!(out.join("train/m2/49.9.png").is_file());
    assert_eq!(detect(&out).unwrap(), Format::PolyMnist);
    let ds = open(&config(&out, "polymnist")).unwrap();
    assert_eq!(ds.modalities.len(), 3);
    assert_eq!(ds.train.items[1].size(), vec![50, 3, 28, 28]);
    let labels = Vec::<i64>::try_from(&ds.train.labels).unwrap();
    assert_eq!(labels, (0..50).map(|i| i % 10).collect::<Vec<_>>());
    // Modalities differ (own backgrounds and instances), and the same seed repeats the build.
    assert!(!ds.train.items[0].equal(&ds.train.items[1]));
    let again = polymnist::build(&source, &bgs, &dir.path().join("poly2"), Some(50), None, 3).unwrap();
    assert_eq!(again.files, summary.files);
    let ds2 = open(&config(&dir.path().join("poly2"), "auto")).unwrap();
    assert!(ds.train.items[2].equal(&ds2.train.items[2]));
    // Writing into a folder that already holds a dataset is refused.
    assert!(polymnist::build(&source, &bgs, &out, Some(5), Some(5), 0).is_err());
}

#[test]
fn polymnist_loader_takes_any_number_of_modalities_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    write_polymnist_dir(dir.path(), 4, 12);
    let mut cfg = config(dir.path(), "auto");
    cfg.max_train = Some(5);
    let ds = open(&cfg).unwrap();
    assert_eq!((ds.num_modalities(), ds.train.len(), ds.test.len()), (4, 5, 12));
    assert_eq!(ds.class_names.len(), 10);
}

#[test]
fn mnist_svhn_pairs_by_label_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (m, s, out) = (dir.path().join("mnist"), dir.path().join("svhn"), dir.path().join("ms"));
    write_mnist_dir(&m, 40, 20); // 4 per class in train, 2 in test
    write_svhn_dir(&s, 30, 30); // 3 per class in both
    let manifest = mnist_svhn::build(&m, &s, &out, 5, 10_000, 7).unwrap();
    assert_eq!((manifest.train_pairs, manifest.test_pairs), (10 * 3 * 5, 10 * 2 * 5));
    assert_eq!(detect(&out).unwrap(), Format::MnistSvhn);
    let ds = open(&config(&out, "auto")).unwrap();
    assert_eq!(ds.train.items[0].size(), vec![150, 1, 28, 28]);
    assert_eq!(ds.train.items[1].size(), vec![150, 3, 32, 32]);
    // Each pair's MNIST item is the source image its index names, with the pair's label.
    let ids = idx::read_indices(&mnist_svhn::index_file(&out, "train", "mnist")).unwrap();
    let src = idx::read_split(&m, "train").unwrap();
    for p in [0usize, 77, 149] {
        let item = Vec::<u8>::try_from(ds.train.items[0].get(p as i64).view([-1])).unwrap();
        assert_eq!(item.as_slice(), src.image(ids[p] as usize));
        assert_eq!(ds.train.labels.int64_value(&[p as i64]), src.labels[ids[p] as usize]);
    }
    // Seeded: the same seed gives the same index files, another seed others.
    let again = dir.path().join("ms2");
    mnist_svhn::build(&m, &s, &again, 5, 10_000, 7).unwrap();
    let read = |d: &Path| idx::read_indices(&mnist_svhn::index_file(d, "train", "svhn")).unwrap();
    assert_eq!(read(&out), read(&again));
    mnist_svhn::build(&m, &s, &again, 5, 10_000, 8).unwrap();
    assert_ne!(read(&out), read(&again));
}

#[test]
fn cub_images_and_captions_form_tuples() {
    let dir = tempfile::tempdir().unwrap();
    write_cub_dir(dir.path());
    assert_eq!(detect(dir.path()).unwrap(), Format::Cub);
    let ds = open(&config(dir.path(), "auto")).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (30, 10));
    assert_eq!(ds.train.items[0].size(), vec![30, 3, 64, 64]);
    assert_eq!(ds.train.items[1].size(), vec![30, 32]);
    assert_eq!(ds.class_names, vec!["001.A", "002.B", "003.C"]);
    let labels = Vec::<i64>::try_from(&ds.train.labels).unwrap();
    assert_eq!(labels, [vec![0; 20], vec![1; 10]].concat());
    assert_eq!(ds.test.labels.int64_value(&[0]), 2);
    // Captions 0..9 share image 0; caption 10 belongs to image 1.
    assert!(ds.train.items[0].get(0).equal(&ds.train.items[0].get(9)));
    assert!(!ds.train.items[0].get(0).equal(&ds.train.items[0].get(10)));
    let vocab = ds.vocabularies[1].as_ref().unwrap();
    assert_eq!(&vocab[..4], &["<pad>", "<bos>", "<eos>", "<unk>"]);
    assert!(vocab.contains(&"crown".to_string()) && !vocab.contains(&"zebra".to_string()));
    let text = cub::decode(&Vec::<i64>::try_from(ds.train.items[1].get(13)).unwrap(), vocab);
    assert_eq!(text, "this bird has a red crown , image 1 caption 3 .");
    let test_text = cub::decode(&Vec::<i64>::try_from(ds.test.items[1].get(0)).unwrap(), vocab);
    assert!(test_text.starts_with("a <unk> <unk> bird"), "{test_text}");
}

#[test]
fn bundled_default_is_deterministic_balanced_and_textured() {
    let ds = open(&config(Path::new("default"), "auto")).unwrap();
    assert_eq!((ds.train.len(), ds.test.len(), ds.num_modalities()), (default::TRAIN_SIZE, 1000, 3));
    assert_eq!(ds.class_names[9], "Ankle boot");
    let again = default::dataset(false).unwrap();
    for k in 0..3 {
        assert!(ds.train.items[k].equal(&again.train.items[k]), "modality {k} repeats");
    }
    let summary = inspect::summarize(&ds, Format::Default, "default");
    assert_eq!(summary.train.class_counts.iter().sum::<i64>(), 9000);
    assert!(summary.train.class_counts.iter().all(|&c| (800..1000).contains(&c)), "{:?}", summary.train.class_counts);
    // Every modality has its own colours: mean RGB per modality differ clearly.
    let means: Vec<Tensor> = (0..3)
        .map(|k| ds.train.items[k].to_kind(Kind::Float).mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float))
        .collect();
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let d = (&means[a] - &means[b]).abs().max().double_value(&[]);
        assert!(d > 20.0, "modalities {a} and {b} look alike: {d}");
    }
    let b = ds.train.head(&ds.modalities, 4, Device::Cpu);
    assert!(b.items[0].min().double_value(&[]) >= 0.0 && b.items[0].max().double_value(&[]) <= 1.0);
}

#[test]
fn synthetic_keeps_working_with_limits() {
    let mut cfg = config(Path::new("synthetic"), "auto");
    (cfg.max_train, cfg.max_test) = (Some(100), Some(7));
    let ds = open(&cfg).unwrap();
    assert_eq!((ds.name.as_str(), ds.train.len(), ds.test.len()), ("squares", 100, 7));
}

#[test]
fn full_default_needs_its_source() {
    let err = default::dataset_from(Some(Path::new("/nonexistent/fashion"))).unwrap_err();
    assert!(message(err).contains("/nonexistent/fashion: not found"));
    let dir = tempfile::tempdir().unwrap();
    write_mnist_dir(dir.path(), 30, 10);
    let ds = default::dataset_from(Some(dir.path())).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (30, 10_000));
}

/// MAT files written by scipy (`scipy.io.savemat`, the project's virtualenv), not by this
/// project's own writer: an SVHN-shaped pair, plain and compressed, beside variables of other
/// classes and integer types.
#[test]
fn scipy_written_mat_files_read_back() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys
import numpy as np
from scipy.io import savemat
n = 5
r, c, ch, i = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), np.arange(n), indexing="ij")
X = ((r * 7 + c * 3 + ch * 11 + i * 13) % 256).astype(np.uint8)
y = np.array([[10], [1], [9], [3], [7]], dtype=np.float64)
for name, compress in [("plain", False), ("zipped", True)]:
    savemat(f"{sys.argv[1]}/{name}.mat", {"X": X, "y": y, "note": "svhn-like", "meta": {"k": 1},
            "small": np.array([[3, -2, 700]], dtype=np.int16)}, do_compression=compress)
"#;
    let out = std::process::Command::new(&python).args(["-c", script]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "scipy could not write the fixtures: {}", String::from_utf8_lossy(&out.stderr));
    for name in ["plain", "zipped"] {
        let path = dir.path().join(format!("{name}.mat"));
        let s = svhn::read(&path).unwrap();
        assert_eq!(s.labels, vec![0, 1, 9, 3, 7], "{name}: 10 means the digit 0");
        let t = s.tensor();
        assert_eq!(t.size(), vec![5, 3, 32, 32]);
        for (i, ch, r, c) in [(0i64, 0i64, 0i64, 1i64), (2, 1, 5, 30), (4, 2, 31, 0)] {
            assert_eq!(t.int64_value(&[i, ch, r, c]), (r * 7 + c * 3 + ch * 11 + i * 13) % 256, "{name}");
        }
        let arrays = mmlatent_data::mat::read(&path).unwrap();
        let small = mmlatent_data::mat::take(&arrays, "small", &path).unwrap();
        assert_eq!((small.class, small.to_f64().unwrap()), (10, vec![3.0, -2.0, 700.0]), "{name}: int16");
        assert!(arrays.iter().all(|a| a.name != "note" && a.name != "meta"), "{name}: char and struct are skipped");
    }
}
