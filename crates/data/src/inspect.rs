//! A summary of a dataset for `mmlatent data inspect`: format, modalities and shapes, tuples
//! and class counts per split, as text or JSON.

use crate::Format;
use mmlatent_core::dataset::{MultimodalDataset, Split};
use serde::Serialize;
use std::fmt::Write;
use tch::Kind;

#[derive(Debug, Serialize)]
pub struct ModalitySummary {
    pub name: String,
    pub kind: String,
    pub shape: Vec<i64>,
    /// For text: the vocabulary size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct SplitSummary {
    pub tuples: usize,
    /// Tuples per class, by label.
    pub class_counts: Vec<i64>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub path: String,
    pub format: String,
    pub name: String,
    pub modalities: Vec<ModalitySummary>,
    pub num_classes: i64,
    pub class_names: Vec<String>,
    pub train: SplitSummary,
    pub test: SplitSummary,
}

fn split_summary(split: &Split, num_classes: i64) -> SplitSummary {
    let counts = if split.is_empty() {
        vec![0; num_classes as usize]
    } else {
        Vec::<i64>::try_from(split.labels.to_kind(Kind::Int64).bincount::<&tch::Tensor>(None, num_classes))
            .unwrap_or_default()
    };
    SplitSummary { tuples: split.len(), class_counts: counts }
}

/// Summarises `dataset`, read from `path` in `format`.
pub fn summarize(dataset: &MultimodalDataset, format: Format, path: &str) -> Summary {
    Summary {
        path: path.to_string(),
        format: format.name().to_string(),
        name: dataset.name.clone(),
        modalities: dataset
            .modalities
            .iter()
            .zip(&dataset.vocabularies)
            .map(|(m, v)| ModalitySummary {
                name: m.name.clone(),
                kind: m.describe(),
                shape: m.item_shape(),
                vocabulary: v.as_ref().map(Vec::len),
            })
            .collect(),
        num_classes: dataset.num_classes,
        class_names: dataset.class_names.clone(),
        train: split_summary(&dataset.train, dataset.num_classes),
        test: split_summary(&dataset.test, dataset.num_classes),
    }
}

/// The summary as a human-readable report.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "dataset  {} ({}, format {})", s.path, s.name, s.format);
    let _ = writeln!(out, "modalities ({}):", s.modalities.len());
    for m in &s.modalities {
        let _ = writeln!(out, "  {:<10} {}", m.name, m.kind);
    }
    let _ = writeln!(out, "tuples   train {}   test {}", s.train.tuples, s.test.tuples);
    let _ = writeln!(out, "classes ({}):            train     test", s.num_classes);
    for k in 0..s.num_classes as usize {
        let name = s.class_names.get(k).map_or(String::new(), |n| n.clone());
        let _ = writeln!(
            out,
            "  {k:>3} {name:<18} {:>7}  {:>7}",
            s.train.class_counts.get(k).copied().unwrap_or(0),
            s.test.class_counts.get(k).copied().unwrap_or(0)
        );
    }
    out
}
