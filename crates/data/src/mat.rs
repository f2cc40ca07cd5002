//! A minimal reader of MATLAB level-5 MAT-files (the format of SVHN's `train_32x32.mat`), as
//! specified in MathWorks' "MAT-File Format" (level 5):
//!
//! - a 128-byte header: 116 bytes of text (`MATLAB 5.0 MAT-file ...`), 8 bytes of subsystem
//!   offset, a 2-byte version (0x0100) and the 2-byte endian indicator (`IM` read back in a
//!   little-endian file, `MI` in a big-endian one);
//! - then data elements, each an 8-byte tag (type, byte count) and its data padded to 8 bytes,
//!   or a 4-byte "small element" tag (byte count in the upper 16 bits) with ≤4 bytes of data;
//! - `miMATRIX` (14) elements hold one variable: array flags (class), dimensions, name, real
//!   part (and imaginary part); `miCOMPRESSED` (15) elements hold zlib-compressed elements.
//!
//! Only numeric arrays are decoded (that is all SVHN needs); variables of other classes (cell,
//! struct, char, sparse) are skipped. HDF5-based v7.3 files are recognised and refused.

use crate::fsutil;
use anyhow::{bail, ensure, Context, Result};
use flate2::read::ZlibDecoder;
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Array classes (`mxCLASS`) that hold plain numbers.
const NUMERIC_CLASSES: std::ops::RangeInclusive<u8> = 6..=15;

/// One numeric variable: its MATLAB class, its sizes (column-major order) and its real part,
/// still in the element type it was stored in.
#[derive(Clone, Debug)]
pub struct MatArray {
    pub name: String,
    /// The `mxCLASS` number (6 double, 7 single, 8 int8, 9 uint8, ... 15 uint64).
    pub class: u8,
    pub dims: Vec<usize>,
    data_type: u32,
    data: Vec<u8>,
    big_endian: bool,
}

impl MatArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `u8` (column-major). Values stored in another type must be integers in
    /// 0..=255.
    pub fn to_u8(&self) -> Result<Cow<'_, [u8]>> {
        if self.data_type == MI_UINT8 {
            return Ok(Cow::Borrowed(&self.data));
        }
        self.to_f64()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                    Ok(v as u8)
                } else {
                    bail!("variable {}: element {i} is {v}, not a byte", self.name)
                }
            })
            .collect::<Result<Vec<u8>>>()
            .map(Cow::Owned)
    }

    /// The elements as `f64` (column-major).
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        let be = self.big_endian;
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                self.data
                    .chunks_exact($n)
                    .map(|c| {
                        let b: [u8; $n] = c.try_into().expect("chunk size");
                        (if be { <$t>::from_be_bytes(b) } else { <$t>::from_le_bytes(b) }) as f64
                    })
                    .collect()
            };
        }
        Ok(match self.data_type {
            MI_INT8 => self.data.iter().map(|&b| b as i8 as f64).collect(),
            MI_UINT8 => self.data.iter().map(|&b| b as f64).collect(),
            MI_INT16 => conv!(i16, 2),
            MI_UINT16 => conv!(u16, 2),
            MI_INT32 => conv!(i32, 4),
            MI_UINT32 => conv!(u32, 4),
            MI_SINGLE => conv!(f32, 4),
            MI_DOUBLE => conv!(f64, 8),
            MI_INT64 => conv!(i64, 8),
            MI_UINT64 => conv!(u64, 8),
            t => bail!("variable {}: unsupported element type {t}", self.name),
        })
    }
}

/// Bytes per element of a numeric `mi*` data type.
fn element_size(data_type: u32) -> Option<usize> {
    Some(match data_type {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        _ => return None,
    })
}

/// A cursor over the elements of a buffer, reading with the file's byte order.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    big_endian: bool,
    /// Describes where the bytes come from, for errors (`file.mat`, `file.mat (compressed element at 128)`).
    origin: String,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, pos: usize) -> Result<u32> {
        let b: [u8; 4] = self
            .bytes
            .get(pos..pos + 4)
            .with_context(|| format!("{}: truncated at byte {pos}", self.origin))?
            .try_into()
            .expect("4 bytes");
        Ok(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The next data element: its type and its data.
    fn element(&mut self) -> Result<(u32, &'a [u8])> {
        let start = self.pos;
        let first = self.u32_at(start)?;
        if first >> 16 != 0 {
            // Small data element: 2-byte count, 2-byte type, ≤4 data bytes in one 8-byte word.
            let (n, t) = ((first >> 16) as usize, first & 0xffff);
            ensure!(n <= 4, "{}: small data element at byte {start} claims {n} bytes", self.origin);
            let data = self
                .bytes
                .get(start + 4..start + 4 + n)
                .with_context(|| format!("{}: truncated small element at byte {start}", self.origin))?;
            self.pos = start + 8;
            return Ok((t, data));
        }
        let n = self.u32_at(start + 4)? as usize;
        let data = self.bytes.get(start + 8..start + 8 + n).with_context(|| {
            format!(
                "{}: truncated: element at byte {start} declares {n} bytes, only {} remain",
                self.origin,
                self.bytes.len().saturating_sub(start + 8)
            )
        })?;
        // Compressed elements are not padded; the others are padded to 8 bytes.
        self.pos = if first == MI_COMPRESSED { start + 8 + n } else { start + 8 + n.div_ceil(8) * 8 };
        Ok((first, data))
    }
}

/// Reads every numeric variable of a level-5 MAT-file.
pub fn read(path: &Path) -> Result<Vec<MatArray>> {
    parse(&fsutil::read(path)?, &path.display().to_string())
}

/// Parses the bytes of a level-5 MAT-file; `origin` names it in errors.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<MatArray>> {
    ensure!(bytes.len() >= 128, "{origin}: too short for a MAT-file header ({} bytes of 128)", bytes.len());
    let text = String::from_utf8_lossy(&bytes[..116]);
    if text.starts_with("MATLAB 7.3") {
        bail!("{origin}: a MATLAB v7.3 (HDF5) file; save it as v7 or earlier (`save -v7`) to read it");
    }
    ensure!(text.starts_with("MATLAB"), "{origin}: not a level-5 MAT-file (header text does not start with `MATLAB`)");
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => bail!("{origin}: bad endian indicator {other:?} in the MAT-file header"),
    };
    let mut arrays = vec![];
    read_elements(&bytes[128..], 128, big_endian, origin, &mut arrays)?;
    Ok(arrays)
}

fn read_elements(bytes: &[u8], offset: usize, big_endian: bool, origin: &str, out: &mut Vec<MatArray>) -> Result<()> {
    let mut r = Reader { bytes, pos: 0, big_endian, origin: origin.to_string() };
    while !r.at_end() {
        let start = offset + r.pos;
        let (t, data) = r.element().with_context(|| format!("{origin}: bad data element at byte {start}"))?;
        match t {
            MI_MATRIX => {
                if let Some(a) = read_matrix(data, big_endian, &format!("{origin} (matrix at byte {start})"))? {
                    out.push(a);
                }
            }
            MI_COMPRESSED => {
                let mut inflated = vec![];
                ZlibDecoder::new(data)
                    .read_to_end(&mut inflated)
                    .with_context(|| format!("{origin}: corrupt compressed element at byte {start}"))?;
                read_elements(
                    &inflated,
                    0,
                    big_endian,
                    &format!("{origin} (compressed element at byte {start})"),
                    out,
                )?;
            }
            _ => {} // other top-level elements carry no variables
        }
    }
    Ok(())
}

/// Decodes the sub-elements of one `miMATRIX`; `None` for non-numeric classes.
fn read_matrix(bytes: &[u8], big_endian: bool, origin: &str) -> Result<Option<MatArray>> {
    if bytes.is_empty() {
        return Ok(None); // an empty matrix element
    }
    let mut r = Reader { bytes, pos: 0, big_endian, origin: origin.to_string() };
    let (t, flags) = r.element()?;
    ensure!(t == MI_UINT32 && flags.len() == 8, "{origin}: array flags missing");
    let class = if big_endian { flags[3] } else { flags[0] };
    let (t, dims_raw) = r.element()?;
    ensure!(t == MI_INT32 && dims_raw.len() % 4 == 0 && !dims_raw.is_empty(), "{origin}: dimensions missing");
    let dims: Vec<usize> = dims_raw
        .chunks_exact(4)
        .map(|c| {
            let b = [c[0], c[1], c[2], c[3]];
            (if big_endian { i32::from_be_bytes(b) } else { i32::from_le_bytes(b) }).max(0) as usize
        })
        .collect();
    let (t, name) = r.element()?;
    ensure!(t == MI_INT8, "{origin}: array name missing");
    let name = String::from_utf8_lossy(name).into_owned();
    if !NUMERIC_CLASSES.contains(&class) {
        return Ok(None);
    }
    let (data_type, data) = r.element().with_context(|| format!("{origin}: variable `{name}` has no data"))?;
    let Some(size) = element_size(data_type) else {
        bail!("{origin}: variable `{name}` stores its data as unsupported type {data_type}");
    };
    let needed = dims.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
    let Some(needed) = needed else { bail!("{origin}: variable `{name}` has impossible sizes {dims:?}") };
    ensure!(
        data.len() == needed,
        "{origin}: variable `{name}` of sizes {dims:?} needs {needed} bytes of type {data_type}, found {}",
        data.len()
    );
    Ok(Some(MatArray { name, class, dims, data_type, data: data.to_vec(), big_endian }))
}

/// The variable called `name`, or an error naming the file and the variables it does hold.
pub fn take<'a>(arrays: &'a [MatArray], name: &str, origin: &Path) -> Result<&'a MatArray> {
    arrays.iter().find(|a| a.name == name).with_context(|| {
        let names: Vec<&str> = arrays.iter().map(|a| a.name.as_str()).collect();
        format!("{}: no numeric variable `{name}` (found: {})", origin.display(), names.join(", "))
    })
}
