//! Coherence of generated samples, judged by the per-modality [`Classifiers`].
//!
//! - **Joint coherence**: the fraction of `n` joint samples on which every modality's
//!   classifier predicts the same class.
//! - **Conditional coherence**: for every non-empty proper subset `S` of the modalities and every
//!   modality `m ∉ S`, the accuracy of `m`'s classifier on `m` generated from the test inputs of
//!   `S`, against the tuples' true labels; reported per `(S → m)` and averaged over all pairs with
//!   the same `|S|` (the "given k modalities" columns of the MoPoE/MLD tables; for two modalities
//!   the entries are the seeds' M→S / S→M columns).
//!
//! The generation passes ([`generate_joint`], [`generate_conditional`]) are shared with the
//! report, which computes Fréchet distances on the same samples.

use crate::classifier::Classifiers;
use anyhow::{ensure, Context, Result};
use mmlatent_core::dataset::{Batch, Split};
use mmlatent_core::{ModalitySpec, MultimodalModel};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub use mmlatent_core::modality::proper_subsets;

/// A score of modality `target` generated from the modalities `given`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SubsetScore {
    /// Names of the given modalities.
    pub given: Vec<String>,
    /// Name of the generated modality.
    pub target: String,
    pub value: f64,
}

/// The mean of the scores whose subsets have `size` given modalities.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SizeAverage {
    pub size: usize,
    pub value: f64,
}

/// Scores per `(S → m)` with their averages by `|S|`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SubsetScores {
    pub entries: Vec<SubsetScore>,
    pub by_size: Vec<SizeAverage>,
}

impl SubsetScores {
    /// Collects `entries` and averages them by the number of given modalities.
    pub fn new(entries: Vec<SubsetScore>) -> Self {
        let max = entries.iter().map(|e| e.given.len()).max().unwrap_or(0);
        let by_size = (1..=max)
            .filter_map(|size| {
                let values: Vec<f64> = entries.iter().filter(|e| e.given.len() == size).map(|e| e.value).collect();
                (!values.is_empty())
                    .then(|| SizeAverage { size, value: values.iter().sum::<f64>() / values.len() as f64 })
            })
            .collect();
        Self { entries, by_size }
    }

    /// The score of `target` generated from `given` (names), if present.
    pub fn get(&self, given: &[&str], target: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|e| e.target == target && e.given.iter().map(String::as_str).eq(given.iter().copied()))
            .map(|e| e.value)
    }

    /// The average over subsets of `size` given modalities, if present.
    pub fn average(&self, size: usize) -> Option<f64> {
        self.by_size.iter().find(|a| a.size == size).map(|a| a.value)
    }
}

/// Checks a model's output: one tensor per modality, `n` items of the modality's shape.
pub fn check_outputs(specs: &[ModalitySpec], outputs: &[Tensor], n: i64, model: &str) -> Result<()> {
    ensure!(
        outputs.len() == specs.len(),
        "model {model} returned {} tensors for {} modalities",
        outputs.len(),
        specs.len()
    );
    for (t, spec) in outputs.iter().zip(specs) {
        ensure!(
            t.size() == spec.batch_shape(n),
            "model {model} returned modality {} of shape {:?}, expected {:?}",
            spec.name,
            t.size(),
            spec.batch_shape(n)
        );
    }
    Ok(())
}

/// Draws `n` joint samples in batches of at most `batch_size` and hands each batch's outputs
/// (one tensor per modality, checked) to `visit`.
pub fn generate_joint(
    model: &dyn MultimodalModel,
    n: i64,
    batch_size: i64,
    mut visit: impl FnMut(&[Tensor]) -> Result<()>,
) -> Result<()> {
    ensure!(n > 0 && batch_size > 0, "joint generation of {n} samples in batches of {batch_size}");
    let specs = model.modalities().to_vec();
    let _guard = tch::no_grad_guard();
    let mut done = 0;
    while done < n {
        let b = batch_size.min(n - done);
        let given: Vec<Option<Tensor>> = specs.iter().map(|_| None).collect();
        let outputs = model.generate(&given, b).with_context(|| format!("joint generation with {}", model.name()))?;
        check_outputs(&specs, &outputs, b, model.name())?;
        visit(&outputs)?;
        done += b;
    }
    Ok(())
}

/// Generates the modalities not in `subset` from the first `max_items` tuples of `split`
/// (given: the tuples' items of `subset`), in batches of at most `batch_size`, handing each
/// batch's outputs and the real batch (on the model's device) to `visit`.
pub fn generate_conditional(
    model: &dyn MultimodalModel,
    split: &Split,
    subset: &[usize],
    max_items: usize,
    batch_size: i64,
    mut visit: impl FnMut(&[Tensor], &Batch) -> Result<()>,
) -> Result<()> {
    let specs = model.modalities().to_vec();
    let n = max_items.min(split.len()) as i64;
    ensure!(n > 0, "conditional generation needs test tuples; the split is empty");
    ensure!(batch_size > 0, "batch size {batch_size}");
    ensure!(subset.iter().all(|&i| i < specs.len()), "subset {subset:?} names a modality the model lacks");
    let _guard = tch::no_grad_guard();
    let mut start = 0;
    while start < n {
        let b = batch_size.min(n - start);
        let real =
            split.batch(&specs, &Tensor::arange_start(start, start + b, (Kind::Int64, Device::Cpu)), model.device());
        let given: Vec<Option<Tensor>> =
            (0..specs.len()).map(|i| subset.contains(&i).then(|| real.items[i].shallow_clone())).collect();
        let outputs = model.generate(&given, b).with_context(|| {
            let names: Vec<&str> = subset.iter().map(|&i| specs[i].name.as_str()).collect();
            format!("conditional generation with {} given {}", model.name(), names.join(","))
        })?;
        check_outputs(&specs, &outputs, b, model.name())?;
        visit(&outputs, &real)?;
        start += b;
    }
    Ok(())
}

/// Counts, per sample, whether every modality's classifier predicts the same class.
#[derive(Default)]
pub struct JointTally {
    agree: i64,
    total: i64,
}

impl JointTally {
    /// Adds one batch of joint samples.
    pub fn add(&mut self, classifiers: &Classifiers, outputs: &[Tensor]) -> Result<()> {
        let predictions: Vec<Tensor> = (0..outputs.len())
            .map(|m| Ok(classifiers.logits(m, &outputs[m])?.argmax(-1, false)))
            .collect::<Result<_>>()?;
        let first = &predictions[0];
        let mut all = first.ones_like().to_kind(Kind::Bool);
        for p in &predictions[1..] {
            all = all.logical_and(&p.eq_tensor(first));
        }
        self.agree += all.sum(Kind::Int64).int64_value(&[]);
        self.total += first.size()[0];
        Ok(())
    }

    /// Fraction of coherent samples so far.
    pub fn value(&self) -> f64 {
        self.agree as f64 / self.total.max(1) as f64
    }
}

/// Joint coherence of `n` samples of `model`.
pub fn joint_coherence(model: &dyn MultimodalModel, classifiers: &Classifiers, n: i64, batch_size: i64) -> Result<f64> {
    check_model(model, classifiers)?;
    let mut tally = JointTally::default();
    generate_joint(model, n, batch_size, |outputs| tally.add(classifiers, outputs))?;
    Ok(tally.value())
}

/// Counts correct predictions of the generated modalities of one subset.
pub struct ConditionalTally {
    subset: Vec<usize>,
    correct: Vec<i64>,
    total: i64,
}

impl ConditionalTally {
    pub fn new(subset: &[usize], num_modalities: usize) -> Self {
        Self { subset: subset.to_vec(), correct: vec![0; num_modalities], total: 0 }
    }

    /// Adds one batch: `outputs` generated from `real`'s items of the subset.
    pub fn add(&mut self, classifiers: &Classifiers, outputs: &[Tensor], real: &Batch) -> Result<()> {
        for (m, out) in outputs.iter().enumerate().filter(|(m, _)| !self.subset.contains(m)) {
            let predicted = classifiers.logits(m, out)?.argmax(-1, false);
            self.correct[m] +=
                predicted.eq_tensor(&real.labels.to_device(predicted.device())).sum(Kind::Int64).int64_value(&[]);
        }
        self.total += real.labels.size()[0];
        Ok(())
    }

    /// One score per generated modality.
    pub fn scores(&self, specs: &[ModalitySpec]) -> Vec<SubsetScore> {
        let given: Vec<String> = self.subset.iter().map(|&i| specs[i].name.clone()).collect();
        (0..specs.len())
            .filter(|m| !self.subset.contains(m))
            .map(|m| SubsetScore {
                given: given.clone(),
                target: specs[m].name.clone(),
                value: self.correct[m] as f64 / self.total.max(1) as f64,
            })
            .collect()
    }
}

/// Conditional coherence of `model` on the first `max_items` tuples of `test`, for every
/// non-empty proper subset of its modalities.
pub fn conditional_coherence(
    model: &dyn MultimodalModel,
    classifiers: &Classifiers,
    test: &Split,
    max_items: usize,
    batch_size: i64,
) -> Result<SubsetScores> {
    check_model(model, classifiers)?;
    let specs = model.modalities().to_vec();
    let mut entries = vec![];
    for subset in proper_subsets(specs.len()) {
        let mut tally = ConditionalTally::new(&subset, specs.len());
        generate_conditional(model, test, &subset, max_items, batch_size, |outputs, real| {
            tally.add(classifiers, outputs, real)
        })?;
        entries.extend(tally.scores(&specs));
    }
    Ok(SubsetScores::new(entries))
}

/// Errors unless the classifiers judge the model's modalities.
pub fn check_model(model: &dyn MultimodalModel, classifiers: &Classifiers) -> Result<()> {
    ensure!(
        model.modalities() == classifiers.modalities(),
        "model {} has modalities [{}], the classifiers were trained for [{}]",
        model.name(),
        names(model.modalities()),
        names(classifiers.modalities())
    );
    Ok(())
}

fn names(specs: &[ModalitySpec]) -> String {
    specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_all_proper_and_ordered() {
        let s = proper_subsets(3);
        assert_eq!(s, vec![vec![0], vec![1], vec![2], vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(proper_subsets(5).len(), 30);
        assert!(proper_subsets(1).is_empty());
    }

    #[test]
    fn averages_by_subset_size() {
        let e = |g: &[&str], t: &str, v: f64| SubsetScore {
            given: g.iter().map(|s| s.to_string()).collect(),
            target: t.into(),
            value: v,
        };
        let s = SubsetScores::new(vec![e(&["a"], "b", 0.2), e(&["b"], "a", 0.4), e(&["a", "b"], "c", 0.9)]);
        assert!((s.average(1).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(s.average(2), Some(0.9));
        assert_eq!(s.get(&["b"], "a"), Some(0.4));
        assert_eq!(s.get(&["c"], "a"), None);
    }
}
