//! IDX files, the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte[.gz]`,
//! `t10k-labels-idx1-ubyte[.gz]`, ...), gzipped or not.
//!
//! Layout (LeCun et al.): a 4-byte magic `00 00 TT DD` (TT the element type, DD the number of
//! dimensions), DD big-endian `u32` sizes, then the elements in row-major order, big-endian.
//! mmlatent also writes its own index files (MNIST-SVHN pairings) in this format as `i32`.

use crate::fsutil;
use anyhow::{bail, ensure, Context, Result};
use flate2::write::GzEncoder;
use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Element types of the IDX format, by their type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxType {
    U8 = 0x08,
    I8 = 0x09,
    I16 = 0x0B,
    I32 = 0x0C,
    F32 = 0x0D,
    F64 = 0x0E,
}

impl IdxType {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x08 => Self::U8,
            0x09 => Self::I8,
            0x0B => Self::I16,
            0x0C => Self::I32,
            0x0D => Self::F32,
            0x0E => Self::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// A whole IDX array: its element type, its sizes and its raw (big-endian) elements.
#[derive(Clone, Debug)]
pub struct IdxArray {
    pub dtype: IdxType,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The elements as integers (floats are rejected).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let d = &self.data;
        Ok(match self.dtype {
            IdxType::U8 => d.iter().map(|&b| b as i64).collect(),
            IdxType::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            IdxType::I16 => d.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as i64).collect(),
            IdxType::I32 => d.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
            IdxType::F32 | IdxType::F64 => bail!("IDX array holds floats ({:?}), integers expected", self.dtype),
        })
    }
}

/// Parses the bytes of an IDX file; `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let p = path.display();
    ensure!(bytes.len() >= 4, "{p}: too short for an IDX header ({} bytes)", bytes.len());
    let dtype = IdxType::from_byte(bytes[2]);
    let ndims = bytes[3] as usize;
    let (Some(dtype), [0, 0], 1..=4) = (dtype, &bytes[..2], ndims) else {
        bail!(
            "{p}: wrong IDX magic {:02x} {:02x} {:02x} {:02x} (expected 00 00 <type 08..0e> <1..4 dimensions>)",
            bytes[0],
            bytes[1],
            bytes[2],
            bytes[3]
        );
    };
    let header = 4 + 4 * ndims;
    ensure!(bytes.len() >= header, "{p}: truncated IDX header ({} of {header} bytes)", bytes.len());
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected = dims.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else { bail!("{p}: IDX sizes {dims:?} overflow") };
    let found = bytes.len() - header;
    ensure!(
        found >= expected,
        "{p}: truncated IDX file: the header promises {dims:?} elements ({expected} bytes) but only {found} bytes follow"
    );
    ensure!(found == expected, "{p}: IDX file has {} bytes after the {dims:?} elements it declares", found - expected);
    Ok(IdxArray { dtype, dims, data: bytes[header..].to_vec() })
}

/// Reads an IDX file, gunzipping `.gz` files.
pub fn read(path: &Path) -> Result<IdxArray> {
    parse(&fsutil::read_maybe_gzip(path)?, path)
}

/// Writes an IDX file (gzipped when `path` ends in `.gz`); `data` holds the big-endian elements.
pub fn write(path: &Path, array: &IdxArray) -> Result<()> {
    let expected: usize = array.dims.iter().product::<usize>() * array.dtype.size();
    ensure!(array.data.len() == expected, "IDX data of {} bytes does not fill {:?}", array.data.len(), array.dims);
    let mut bytes = vec![0, 0, array.dtype as u8, array.dims.len() as u8];
    for &d in &array.dims {
        bytes.extend_from_slice(&u32::try_from(d).context("IDX size above u32")?.to_be_bytes());
    }
    bytes.extend_from_slice(&array.data);
    if path.extension().is_some_and(|e| e == "gz") {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes)?;
        bytes = enc.finish()?;
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes `values` as a one-dimensional `i32` IDX file.
pub fn write_indices(path: &Path, values: &[i64]) -> Result<()> {
    let mut data = Vec::with_capacity(values.len() * 4);
    for &v in values {
        data.extend_from_slice(&i32::try_from(v).context("index above i32")?.to_be_bytes());
    }
    write(path, &IdxArray { dtype: IdxType::I32, dims: vec![values.len()], data })
}

/// Reads a one-dimensional integer IDX file.
pub fn read_indices(path: &Path) -> Result<Vec<i64>> {
    let a = read(path)?;
    ensure!(a.dims.len() == 1, "{}: expected a one-dimensional IDX array, found sizes {:?}", path.display(), a.dims);
    a.to_i64().with_context(|| path.display().to_string())
}

/// Grey images and their labels from an IDX pair.
#[derive(Debug)]
pub struct ImageSet {
    /// `n × height × width` bytes, row-major.
    pub pixels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub labels: Vec<i64>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let per = self.height * self.width;
        &self.pixels[i * per..(i + 1) * per]
    }

    /// The images as a `u8 [N, 1, H, W]` tensor.
    pub fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.pixels).view([self.len() as i64, 1, self.height as i64, self.width as i64])
    }
}

/// Reads an `idx3-ubyte` image file and its `idx1-ubyte` label file; labels must lie in
/// `0..num_classes`.
pub fn read_image_set(images: &Path, labels: &Path, num_classes: i64) -> Result<ImageSet> {
    image_set(read(images)?, images, read(labels)?, labels, num_classes)
}

/// Checks and combines parsed image and label arrays (read from the files named).
pub fn image_set(img: IdxArray, images: &Path, lab: IdxArray, labels: &Path, num_classes: i64) -> Result<ImageSet> {
    ensure!(
        img.dtype == IdxType::U8 && img.dims.len() == 3,
        "{}: expected a u8 image array N×H×W (idx3-ubyte), found {:?} of sizes {:?}",
        images.display(),
        img.dtype,
        img.dims
    );
    ensure!(
        lab.dtype == IdxType::U8 && lab.dims.len() == 1,
        "{}: expected a u8 label vector (idx1-ubyte), found {:?} of sizes {:?}",
        labels.display(),
        lab.dtype,
        lab.dims
    );
    ensure!(
        img.dims[0] == lab.dims[0],
        "{} holds {} images but {} holds {} labels",
        images.display(),
        img.dims[0],
        labels.display(),
        lab.dims[0]
    );
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l as i64 >= num_classes) {
        bail!("{}: label {l} of item {i} is out of range 0..{num_classes}", labels.display());
    }
    Ok(ImageSet {
        height: img.dims[1],
        width: img.dims[2],
        pixels: img.data,
        labels: lab.data.iter().map(|&l| l as i64).collect(),
    })
}

/// Finds the image and label files of `split` (`train` or `test`) in an MNIST-style folder:
/// names like `train-images-idx3-ubyte`, `t10k-labels.idx1-ubyte.gz`, `emnist-x-test-images-idx3-ubyte`.
pub fn find_split_files(dir: &Path, split: &str) -> Result<(PathBuf, PathBuf)> {
    let entries = fsutil::list_dir(dir)?;
    let find = |kind: &str| -> Result<PathBuf> {
        let hits: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| {
                let name = fsutil::file_name(p).to_ascii_lowercase();
                let right_split = match split {
                    "train" => name.contains("train"),
                    _ => name.contains("t10k") || name.contains("test"),
                };
                right_split && name.contains(kind)
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            // Both `x` and `x.gz`: the same file, compressed and not; read the plain one.
            [a, b] if fsutil::file_name(b).strip_suffix(".gz") == Some(fsutil::file_name(a)) => Ok((*a).clone()),
            [] => bail!("{}: no {split} `{kind}` IDX file (like {split}-images-idx3-ubyte.gz)", dir.display()),
            many => bail!("{}: several {split} `{kind}` IDX files: {many:?}", dir.display()),
        }
    };
    Ok((find("idx3")?, find("idx1")?))
}

/// True when `dir` looks like an MNIST-style IDX folder.
pub fn is_idx_dir(dir: &Path) -> bool {
    find_split_files(dir, "train").is_ok() || find_split_files(dir, "test").is_ok()
}

/// Reads split `split` of an MNIST-style folder (10 classes).
pub fn read_split(dir: &Path, split: &str) -> Result<ImageSet> {
    let (images, labels) = find_split_files(dir, split)?;
    read_image_set(&images, &labels, 10)
}

/// An MNIST-style folder as a one-modality dataset (`image`, 1×H×W, 10 classes).
pub fn load_dataset(dir: &Path) -> Result<MultimodalDataset> {
    let (train, test) = (read_split(dir, "train")?, read_split(dir, "test")?);
    ensure!(
        (train.height, train.width) == (test.height, test.width),
        "{}: train images are {}×{} but test images are {}×{}",
        dir.display(),
        train.height,
        train.width,
        test.height,
        test.width
    );
    let split = |s: &ImageSet| Split { items: vec![s.tensor()], labels: Tensor::from_slice(&s.labels) };
    Ok(MultimodalDataset {
        name: "idx".into(),
        modalities: vec![ModalitySpec::image("image", 1, train.height as i64, train.width as i64)],
        num_classes: 10,
        class_names: vec![],
        vocabularies: vec![None],
        train: split(&train),
        test: split(&test),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_images_and_indices() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
        let path = dir.path().join("x-idx3-ubyte.gz");
        write(&path, &IdxArray { dtype: IdxType::U8, dims: vec![3, 4, 5], data: pixels.clone() }).unwrap();
        let back = read(&path).unwrap();
        assert_eq!((back.dims.clone(), back.data), (vec![3, 4, 5], pixels));
        let ids = dir.path().join("ids.idx");
        write_indices(&ids, &[0, 7, -3, 70000]).unwrap();
        assert_eq!(read_indices(&ids).unwrap(), vec![0, 7, -3, 70000]);
    }
}
