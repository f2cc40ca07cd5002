//! Modalities: a name, a kind and the tensor shape of one item.
//!
//! In memory, a batch of a modality is a tensor of shape `[N, ..shape]`:
//! images are `f32` in `[0, 1]` (`[N, C, H, W]`), text is `i64` token ids (`[N, L]`),
//! vectors are `f32` (`[N, D]`, one-hot or multi-hot for labels and attributes).

use serde::{Deserialize, Serialize};

/// What kind of data a modality holds, with the sizes that fix its shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModalityKind {
    /// `channels × height × width`, values in `[0, 1]`.
    Image { channels: i64, height: i64, width: i64 },
    /// Token ids padded to `max_len`, drawn from a vocabulary of `vocab_size` words.
    Text { max_len: i64, vocab_size: i64 },
    /// A real vector of `dim` entries (labels, attributes).
    Vector { dim: i64 },
}

/// One modality of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalitySpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: ModalityKind,
}

impl ModalitySpec {
    pub fn image(name: &str, channels: i64, height: i64, width: i64) -> Self {
        Self { name: name.to_string(), kind: ModalityKind::Image { channels, height, width } }
    }

    pub fn text(name: &str, max_len: i64, vocab_size: i64) -> Self {
        Self { name: name.to_string(), kind: ModalityKind::Text { max_len, vocab_size } }
    }

    pub fn vector(name: &str, dim: i64) -> Self {
        Self { name: name.to_string(), kind: ModalityKind::Vector { dim } }
    }

    /// Shape of one item (without the batch dimension).
    pub fn item_shape(&self) -> Vec<i64> {
        match self.kind {
            ModalityKind::Image { channels, height, width } => vec![channels, height, width],
            ModalityKind::Text { max_len, .. } => vec![max_len],
            ModalityKind::Vector { dim } => vec![dim],
        }
    }

    /// Shape of a batch of `n` items.
    pub fn batch_shape(&self, n: i64) -> Vec<i64> {
        let mut shape = vec![n];
        shape.extend(self.item_shape());
        shape
    }

    /// Number of scalar entries of one item.
    pub fn numel(&self) -> i64 {
        self.item_shape().iter().product()
    }

    pub fn is_image(&self) -> bool {
        matches!(self.kind, ModalityKind::Image { .. })
    }

    pub fn is_text(&self) -> bool {
        matches!(self.kind, ModalityKind::Text { .. })
    }

    /// A short human-readable description such as `image 3×28×28`.
    pub fn describe(&self) -> String {
        match self.kind {
            ModalityKind::Image { channels, height, width } => format!("image {channels}×{height}×{width}"),
            ModalityKind::Text { max_len, vocab_size } => format!("text ≤{max_len} tokens, vocabulary {vocab_size}"),
            ModalityKind::Vector { dim } => format!("vector {dim}"),
        }
    }
}

/// All 2^M − 1 non-empty subsets of the modalities `0..m`, ordered by size, then
/// lexicographically (the order of every per-subset table and of the subset-based models).
pub fn subsets(m: usize) -> Vec<Vec<usize>> {
    let mut all: Vec<Vec<usize>> =
        (1u64..(1 << m)).map(|mask| (0..m).filter(|i| mask & (1 << i) != 0).collect()).collect();
    all.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    all
}

/// The non-empty proper subsets of `0..m` (the given sets of conditional generation), in the
/// order of [`subsets`].
pub fn proper_subsets(m: usize) -> Vec<Vec<usize>> {
    subsets(m).into_iter().filter(|s| s.len() < m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_kind() {
        let m = ModalitySpec::image("m0", 3, 28, 28);
        assert_eq!(m.batch_shape(4), vec![4, 3, 28, 28]);
        assert_eq!(m.numel(), 3 * 28 * 28);
        assert_eq!(ModalitySpec::text("caption", 32, 1000).item_shape(), vec![32]);
    }

    #[test]
    fn round_trips_through_json() {
        let m = ModalitySpec::text("caption", 32, 1590);
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"kind\":\"text\""), "{s}");
        assert_eq!(serde_json::from_str::<ModalitySpec>(&s).unwrap(), m);
    }
}
