//! Writers of small files in the field's formats, for the tests: IDX folders, MATLAB v5
//! MAT-files (plain and zlib-compressed elements), PolyMNIST and CUB folders.
#![allow(dead_code)]

use flate2::write::ZlibEncoder;
use mmlatent_data::idx::{self, IdxArray, IdxType};
use mmlatent_data::image_file;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A deterministic grey image of `h × w` for item `i` of class `label`: a bright bar whose row
/// depends on the label, so items of a class look alike.
pub fn grey_item(i: usize, label: i64, h: usize, w: usize) -> Vec<u8> {
    (0..h * w)
        .map(|p| {
            let (y, x) = (p / w, p % w);
            if y / 3 == label as usize % (h / 3) && x >= 2 && x + 2 < w {
                200 + (i % 50) as u8
            } else {
                ((x + y + i) % 7) as u8 * 10
            }
        })
        .collect()
}

/// Writes `{prefix}-images-idx3-ubyte{ext}` and `{prefix}-labels-idx1-ubyte{ext}` (28×28).
pub fn write_idx_pair(dir: &Path, prefix: &str, labels: &[u8], ext: &str) -> (PathBuf, PathBuf) {
    let pixels: Vec<u8> = labels.iter().enumerate().flat_map(|(i, &l)| grey_item(i, l as i64, 28, 28)).collect();
    let images = dir.join(format!("{prefix}-images-idx3-ubyte{ext}"));
    let label_file = dir.join(format!("{prefix}-labels-idx1-ubyte{ext}"));
    idx::write(&images, &IdxArray { dtype: IdxType::U8, dims: vec![labels.len(), 28, 28], data: pixels }).unwrap();
    idx::write(&label_file, &IdxArray { dtype: IdxType::U8, dims: vec![labels.len()], data: labels.to_vec() }).unwrap();
    (images, label_file)
}

/// An MNIST-style folder with `train` and `t10k` splits of balanced labels.
pub fn write_mnist_dir(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
    write_idx_pair(dir, "train", &labels(n_train), ".gz");
    write_idx_pair(dir, "t10k", &labels(n_test), "");
}

/// A `u32` in the file's byte order.
fn word(v: u32, big_endian: bool) -> [u8; 4] {
    if big_endian {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A MAT-file data element: 8-byte tag (or the 4-byte small form for ≤ 4 bytes), data, padding.
pub fn mat_element(data_type: u32, data: &[u8], allow_small: bool) -> Vec<u8> {
    mat_element_in(data_type, data, allow_small, false)
}

/// [`mat_element`] in either byte order (`data` must already be in that order).
pub fn mat_element_in(data_type: u32, data: &[u8], allow_small: bool, big_endian: bool) -> Vec<u8> {
    let mut out = vec![];
    if allow_small && data.len() <= 4 {
        out.extend_from_slice(&word(((data.len() as u32) << 16) | data_type, big_endian));
        out.extend_from_slice(data);
        out.resize(8, 0);
        return out;
    }
    out.extend_from_slice(&word(data_type, big_endian));
    out.extend_from_slice(&word(data.len() as u32, big_endian));
    out.extend_from_slice(data);
    out.resize(8 + data.len().div_ceil(8) * 8, 0);
    out
}

/// A `miMATRIX` element for a numeric variable of `class` stored as `data_type`.
pub fn mat_matrix(name: &str, class: u8, dims: &[i32], data_type: u32, data: &[u8]) -> Vec<u8> {
    mat_matrix_in(name, class, dims, data_type, data, false)
}

/// [`mat_matrix`] in either byte order.
pub fn mat_matrix_in(name: &str, class: u8, dims: &[i32], data_type: u32, data: &[u8], big_endian: bool) -> Vec<u8> {
    let flags = word(class as u32, big_endian);
    let mut body = mat_element_in(6, &[flags, [0; 4]].concat(), false, big_endian); // array flags, miUINT32
    let dims_bytes: Vec<u8> =
        dims.iter().flat_map(|&d| if big_endian { d.to_be_bytes() } else { d.to_le_bytes() }).collect();
    body.extend(mat_element_in(5, &dims_bytes, false, big_endian)); // miINT32
    body.extend(mat_element_in(1, name.as_bytes(), true, big_endian)); // miINT8
    body.extend(mat_element_in(data_type, data, true, big_endian));
    mat_element_in(14, &body, false, big_endian)
}

/// Wraps an element into a zlib-compressed `miCOMPRESSED` element (not padded).
pub fn mat_compressed(element: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(element).unwrap();
    let z = enc.finish().unwrap();
    let mut out = vec![];
    out.extend_from_slice(&15u32.to_le_bytes());
    out.extend_from_slice(&(z.len() as u32).to_le_bytes());
    out.extend(z);
    out
}

/// A little-endian level-5 MAT-file with these elements.
pub fn mat_file(elements: &[Vec<u8>]) -> Vec<u8> {
    mat_file_in(elements, false)
}

/// A level-5 MAT-file in either byte order (the endian indicator reads `MI` in big-endian files).
pub fn mat_file_in(elements: &[Vec<u8>], big_endian: bool) -> Vec<u8> {
    let mut header = b"MATLAB 5.0 MAT-file, written by mmlatent tests".to_vec();
    header.resize(116, b' ');
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(if big_endian { &[0x01, 0x00] } else { &[0x00, 0x01] });
    header.extend_from_slice(if big_endian { b"MI" } else { b"IM" });
    for e in elements {
        header.extend_from_slice(e);
    }
    header
}

/// The value SVHN-style test images hold at X(r, c, ch, i) (column-major), distinct per position.
pub fn svhn_pixel(r: usize, c: usize, ch: usize, i: usize) -> u8 {
    ((r * 7 + c * 3 + ch * 50 + i * 11) % 256) as u8
}

/// An SVHN `.mat` file with images of `labels` (values as SVHN stores them: 1..=10) and `y` in
/// double precision, optionally with compressed elements.
pub fn write_svhn(path: &Path, labels: &[u8], compress: bool) {
    let n = labels.len();
    let mut x = vec![0u8; 32 * 32 * 3 * n];
    for i in 0..n {
        for ch in 0..3 {
            for c in 0..32 {
                for r in 0..32 {
                    x[r + 32 * c + 1024 * ch + 3072 * i] = svhn_pixel(r, c, ch, i);
                }
            }
        }
    }
    let y: Vec<u8> = labels.iter().flat_map(|&l| (l as f64).to_le_bytes()).collect();
    let mx = mat_matrix("X", 9, &[32, 32, 3, n as i32], 2, &x); // mxUINT8, miUINT8
    let my = mat_matrix("y", 6, &[n as i32, 1], 9, &y); // mxDOUBLE, miDOUBLE
    let elements = if compress { vec![mat_compressed(&mx), mat_compressed(&my)] } else { vec![mx, my] };
    std::fs::write(path, mat_file(&elements)).unwrap();
}

/// An SVHN folder: labels cycle through 1..=10 (10 = digit 0).
pub fn write_svhn_dir(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8 + 1).collect::<Vec<_>>();
    write_svhn(&dir.join("train_32x32.mat"), &labels(n_train), true);
    write_svhn(&dir.join("test_32x32.mat"), &labels(n_test), false);
}

/// A solid-ish RGB PNG of `w × h` whose colour depends on `seed`.
pub fn write_rgb_png(path: &Path, w: usize, h: usize, seed: usize) {
    let chw: Vec<u8> = (0..3 * h * w).map(|p| ((p * 31 + seed * 97) % 251) as u8).collect();
    image_file::write_png(path, &chw, 3, h, w).unwrap();
}

/// A PolyMNIST folder with `k` modalities and `n` tuples per split (labels i % 10).
pub fn write_polymnist_dir(dir: &Path, k: usize, n: usize) {
    for split in ["train", "test"] {
        for m in 0..k {
            let folder = dir.join(split).join(format!("m{m}"));
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                write_rgb_png(&folder.join(format!("{i}.{}.png", i % 10)), 28, 28, i * 5 + m);
            }
        }
    }
}

/// A CUB folder: train classes `001.A` (2 images) and `002.B` (1 image), test class `003.C`
/// (1 image); images of assorted sizes; 10 captions per image.
pub fn write_cub_dir(dir: &Path) {
    let images = [
        ("train", "001.A", "a1.png", 80),
        ("train", "001.A", "a2.png", 64),
        ("train", "002.B", "b1.png", 100),
        ("test", "003.C", "c1.png", 50),
    ];
    for (split, class, file, size) in images {
        let folder = dir.join(split).join(class);
        std::fs::create_dir_all(&folder).unwrap();
        write_rgb_png(&folder.join(file), size, size, size);
    }
    let mut train = String::new();
    for img in 0..3 {
        for j in 0..10 {
            train += &format!("This bird has a red crown, image {img} caption {j}.\n");
        }
    }
    std::fs::write(dir.join("text_trainvalclasses.txt"), train).unwrap();
    let test: String = (0..10).map(|j| format!("A small blue bird with a zebra stripe {j}\n")).collect();
    std::fs::write(dir.join("text_testclasses.txt"), test).unwrap();
}

/// The full text of an error chain.
pub fn message(e: anyhow::Error) -> String {
    format!("{e:#}")
}
