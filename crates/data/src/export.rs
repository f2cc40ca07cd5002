//! Generated samples as files in the datasets' own layout, for the field's tools (pytorch-fid,
//! `mmlatent fid`, a user's own classifier) and for this crate's readers:
//!
//! ```text
//! DIR/m{k}/{i}.{label}.png   image modality k, sample i (the PolyMNIST split layout; read
//!                            back by `polymnist::load_split_folder`)
//! DIR/m{k}.txt               text modality k: one decoded caption per line, line i = sample i
//! DIR/m{k}.csv               vector modality k: header `index,label,v0,v1,…`, one row per sample
//! DIR/labels.txt             one label per line, line i = sample i
//! ```
//!
//! Samples without a label (joint samples) carry [`UNLABELLED`] (`-1`) in file names and lists.
//! Given modalities are written like generated ones (they are the inputs, kept for reference).

use crate::image_file::write_png;
use crate::{fsutil, polymnist::UNLABELLED};
use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::{host, ModalityKind, ModalitySpec};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::Path;
use tch::Tensor;

/// What [`write_samples`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub samples: usize,
    pub files: usize,
}

/// Writes `outputs` (one data-space tensor per modality, `[n, ..]`, as
/// `MultimodalModel::generate` returns them) into `dir`, which must be new or empty. `labels`
/// gives one label per sample (`None`: all [`UNLABELLED`]); `vocabularies` decode text.
pub fn write_samples(
    dir: &Path,
    specs: &[ModalitySpec],
    vocabularies: &[Option<Vec<String>>],
    outputs: &[Tensor],
    labels: Option<&[i64]>,
) -> Result<Written> {
    ensure!(outputs.len() == specs.len(), "{} sample tensors for {} modalities", outputs.len(), specs.len());
    let n = outputs.first().map_or(0, |t| t.size()[0] as usize);
    let labels: Vec<i64> = match labels {
        Some(l) => {
            ensure!(l.len() == n, "{} labels for {n} samples", l.len());
            l.to_vec()
        }
        None => vec![UNLABELLED; n],
    };
    if dir.is_file() {
        bail!("{}: is a file; name a folder to write the samples into", dir.display());
    }
    if dir.is_dir() && fsutil::list_dir(dir)?.into_iter().next().is_some() {
        bail!("{}: already holds files; write the samples to a new or empty folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut files = 0;
    for (k, (spec, t)) in specs.iter().zip(outputs).enumerate() {
        ensure!(t.size()[0] as usize == n, "modality {}: {} samples, expected {n}", spec.name, t.size()[0]);
        match spec.kind {
            ModalityKind::Image { channels, height, width } => {
                let folder = dir.join(format!("m{k}"));
                std::fs::create_dir_all(&folder).with_context(|| format!("{}: cannot create", folder.display()))?;
                let bytes = host::image_bytes(t)?;
                let (c, h, w) = (channels as usize, height as usize, width as usize);
                bytes.par_chunks_exact(c * h * w).zip(labels.par_iter()).enumerate().try_for_each(
                    |(i, (chw, label))| write_png(&folder.join(format!("{i}.{label}.png")), chw, c, h, w),
                )?;
                files += n;
            }
            ModalityKind::Text { .. } => {
                let vocab = vocabularies
                    .get(k)
                    .and_then(Option::as_ref)
                    .with_context(|| format!("modality {}: text without a vocabulary", spec.name))?;
                let ids = host::to_vec::<i64>(t)?;
                let len = (ids.len() / n.max(1)).max(1);
                let text: String = ids.chunks_exact(len).map(|row| crate::cub::decode(row, vocab) + "\n").collect();
                write_file(&dir.join(format!("m{k}.txt")), &text)?;
                files += 1;
            }
            ModalityKind::Vector { dim } => {
                let values = host::to_vec::<f32>(t)?;
                let mut text = String::from("index,label");
                for j in 0..dim {
                    let _ = write!(text, ",v{j}");
                }
                text.push('\n');
                for (i, row) in values.chunks_exact(dim.max(1) as usize).enumerate() {
                    let _ = write!(text, "{i},{}", labels[i]);
                    for v in row {
                        let _ = write!(text, ",{v}");
                    }
                    text.push('\n');
                }
                write_file(&dir.join(format!("m{k}.csv")), &text)?;
                files += 1;
            }
        }
    }
    let list: String = labels.iter().map(|l| format!("{l}\n")).collect();
    write_file(&dir.join("labels.txt"), &list)?;
    Ok(Written { samples: n, files: files + 1 })
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polymnist::load_split_folder;
    use tch::{Device, Kind};

    /// Images written by label come back through the PolyMNIST split reader, pixel for pixel;
    /// vectors and labels land in their CSV / list; a non-empty folder is refused.
    #[test]
    fn samples_round_trip_through_the_polymnist_reader() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s");
        let specs =
            vec![ModalitySpec::image("m0", 3, 4, 5), ModalitySpec::image("m1", 3, 4, 5), ModalitySpec::vector("v", 2)];
        let images = |seed: f64| (Tensor::arange(3 * 60, (Kind::Float, Device::Cpu)).view([3, 3, 4, 5]) + seed) / 255.0;
        let vectors = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 3.25, 0.0, 1.0]).view([3, 2]);
        let outputs = vec![images(0.0), images(7.0), vectors];
        let written = write_samples(&out, &specs, &[None, None, None], &outputs, Some(&[2, 0, 1])).unwrap();
        assert_eq!(written, Written { samples: 3, files: 3 + 3 + 1 + 1 });
        assert!(out.join("m1/2.1.png").is_file());
        let split = load_split_folder(&out, 10).unwrap();
        assert_eq!(Vec::<i64>::try_from(&split.labels).unwrap(), vec![2, 0, 1]);
        let back = split.items[1].to_kind(Kind::Float) / 255.0;
        assert!(back.allclose(&outputs[1], 1e-6, 1e-6, false));
        let csv = std::fs::read_to_string(out.join("m2.csv")).unwrap();
        assert_eq!(csv.lines().nth(2), Some("1,0,2,3.25"));
        let err = write_samples(&out, &specs, &[None, None, None], &outputs, None).unwrap_err().to_string();
        assert!(err.contains("already holds files"), "{err}");
    }

    /// The output of a real convolutional decoder (channels-last in memory, as every decoder of
    /// the models returns it) is written pixel for pixel in logical order.
    #[test]
    fn decoder_output_is_written_in_logical_order() {
        use mmlatent_core::nets::{decoder, NetSize};
        let spec = ModalitySpec::image("m0", 3, 28, 28);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = decoder(vs.root(), &spec, 8, NetSize { width: 8 }).unwrap();
        let images = tch::no_grad(|| net.forward(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu))).sigmoid());
        assert!(!images.is_contiguous(), "the decoder's output is expected channels-last");
        let dir = tempfile::tempdir().unwrap();
        write_samples(dir.path(), std::slice::from_ref(&spec), &[None], std::slice::from_ref(&images), None).unwrap();
        let split = load_split_folder(dir.path(), 10).unwrap();
        let expected = (images * 255.0).round().to_kind(Kind::Uint8);
        assert!(split.items[0].equal(&expected), "pixels moved between the decoder and the files");
    }

    /// Joint samples have no label: the placeholder is in the names and the reader accepts it.
    #[test]
    fn unlabelled_samples_carry_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let specs = vec![ModalitySpec::image("m0", 1, 2, 2)];
        let outputs = vec![Tensor::rand([2, 1, 2, 2], (Kind::Float, Device::Cpu))];
        write_samples(dir.path(), &specs, &[None], &outputs, None).unwrap();
        assert!(dir.path().join("m0/1.-1.png").is_file());
        let split = load_split_folder(dir.path(), 10).unwrap();
        assert_eq!(Vec::<i64>::try_from(&split.labels).unwrap(), vec![UNLABELLED, UNLABELLED]);
        assert_eq!(std::fs::read_to_string(dir.path().join("labels.txt")).unwrap(), "-1\n-1\n");
    }
}
