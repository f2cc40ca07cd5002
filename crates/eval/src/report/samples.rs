//! Sample grids and decoded text written beside a report.

use anyhow::{Context, Result};
use mmlatent_core::{ModalityKind, ModalitySpec};
use mmlatent_present::grid::save_image_grid;
use std::fmt::Write as _;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Writes `<dir>/<stem>.png` — for conditional samples, the given inputs (image modalities of
/// `subset`) as the first rows, then the generated image modalities — and `<dir>/<stem>.txt`
/// with generated text decoded through the dataset's vocabularies.
pub(super) fn save_samples(
    dir: &Path,
    stem: &str,
    specs: &[ModalitySpec],
    vocabularies: &[Option<Vec<String>>],
    subset: &[usize],
    outputs: &[Tensor],
    inputs: Option<&Vec<Tensor>>,
) -> Result<()> {
    let mut rows = vec![];
    if let Some(inputs) = inputs {
        rows.extend(subset.iter().filter(|&&m| specs[m].is_image()).map(|&m| inputs[m].to_kind(Kind::Float)));
    }
    rows.extend(
        (0..specs.len())
            .filter(|m| !subset.contains(m) && specs[*m].is_image())
            .map(|m| outputs[m].to_kind(Kind::Float)),
    );
    if !rows.is_empty() {
        save_image_grid(&dir.join(format!("{stem}.png")), &rows)?;
    }
    let mut text = String::new();
    for (m, spec) in specs.iter().enumerate() {
        if let (ModalityKind::Text { .. }, Some(vocab)) = (&spec.kind, vocabularies.get(m).and_then(Option::as_ref)) {
            let (source, role) = match inputs {
                Some(inputs) if subset.contains(&m) => (&inputs[m], "given"),
                _ => (&outputs[m], "generated"),
            };
            for line in decode_text(source, vocab) {
                let _ = writeln!(text, "{} ({role}): {line}", spec.name);
            }
        }
    }
    if !text.is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{stem}.txt"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Token ids `[N, L]` → sentences, dropping `<pad>`/`<bos>` and stopping at `<eos>`.
pub fn decode_text(ids: &Tensor, vocabulary: &[String]) -> Vec<String> {
    let ids = ids.to_device(Device::Cpu).to_kind(Kind::Int64);
    let n = ids.size()[0];
    (0..n)
        .map(|i| {
            let row: Vec<i64> = mmlatent_core::host::to_vec(&ids.get(i)).unwrap_or_default();
            let mut words = vec![];
            for id in row {
                let word = vocabulary.get(id as usize).map(String::as_str).unwrap_or("<unk>");
                match word {
                    "<eos>" => break,
                    "<pad>" | "<bos>" => {}
                    w => words.push(w),
                }
            }
            words.join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_decoded_up_to_eos() {
        let vocab: Vec<String> =
            ["<pad>", "<bos>", "<eos>", "<unk>", "a", "bird"].iter().map(|s| s.to_string()).collect();
        let ids = Tensor::from_slice(&[1i64, 4, 5, 2, 5, 0, 4, 0, 5, 9]).view([2, 5]);
        assert_eq!(decode_text(&ids, &vocab), vec!["a bird".to_string(), "a bird <unk>".to_string()]);
    }
}
