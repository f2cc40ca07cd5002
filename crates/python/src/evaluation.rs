//! Scores of tensors the caller passes, with the evaluation crate's own measures: joint
//! coherence (all modalities' classifiers agree, `mmlatent_eval::coherence::JointTally`),
//! accuracy against given labels (conditional coherence when the samples were generated from
//! inputs of those labels), the Fréchet distance in the classifiers' features (FD) and, with
//! Inception weights, FID — each per modality, modalities named as the classifiers name them.

use anyhow::{bail, ensure, Result};
use mmlatent_eval::coherence::JointTally;
use mmlatent_eval::fid::{classifier_frechet_distance, frechet_distance_of_features};
use mmlatent_eval::inception::InceptionV3;
use mmlatent_eval::Classifiers;
use tch::Tensor;

/// What to score.
pub struct Inputs<'a> {
    /// Samples by modality name (any subset of the classifiers' modalities).
    pub samples: &'a [(String, Tensor)],
    /// Real data by modality name, for FD and FID (every modality of `samples` it names).
    pub reference: Option<&'a [(String, Tensor)]>,
    /// True class of each sample tuple, `i64 [N]`.
    pub labels: Option<&'a Tensor>,
    /// Inception for FID of the image modalities (needs `reference`).
    pub inception: Option<&'a InceptionV3>,
    /// Items per Inception forward pass.
    pub batch: i64,
}

/// The scores, each per modality in the order of `samples`.
#[derive(Debug, Default)]
pub struct Scores {
    /// Fraction of tuples on which every modality's classifier predicts the same class; only
    /// when `samples` holds every modality of the classifiers.
    pub coherence: Option<f64>,
    /// Fraction of samples classified as their label.
    pub accuracy: Vec<(String, f64)>,
    pub fd: Vec<(String, f64)>,
    pub fid: Vec<(String, f64)>,
}

/// The index of the classifiers' modality `name`.
fn index_of(classifiers: &Classifiers, name: &str) -> Result<usize> {
    let specs = classifiers.modalities();
    match specs.iter().position(|s| s.name == name) {
        Some(m) => Ok(m),
        None => {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            bail!("no modality `{name}`: the classifiers know {}", known.join(", "))
        }
    }
}

/// Scores `inputs` (see the module doc).
pub fn evaluate(classifiers: &Classifiers, inputs: &Inputs) -> Result<Scores> {
    ensure!(!inputs.samples.is_empty(), "evaluate: no samples given");
    let mut scores = Scores::default();
    let n = inputs.samples[0].1.size().first().copied().unwrap_or(0);
    let mut indices = vec![];
    for (name, x) in inputs.samples {
        let m = index_of(classifiers, name)?;
        ensure!(!indices.contains(&m), "evaluate: modality `{name}` given twice");
        let size = x.size();
        ensure!(
            size.first() == Some(&n),
            "evaluate: the samples of {name} are {size:?}, not a batch of {n} like those of {}",
            inputs.samples[0].0
        );
        indices.push(m);
    }
    if indices.len() == classifiers.modalities().len() {
        let mut ordered: Vec<Tensor> = vec![];
        for m in 0..indices.len() {
            let k = indices.iter().position(|&i| i == m).expect("every modality is present");
            ordered.push(inputs.samples[k].1.shallow_clone());
        }
        let mut tally = JointTally::default();
        tally.add(classifiers, &ordered)?;
        scores.coherence = Some(tally.value());
    }
    if let Some(labels) = inputs.labels {
        for ((name, x), &m) in inputs.samples.iter().zip(&indices) {
            scores.accuracy.push((name.clone(), classifiers.accuracy(m, x, labels)?));
        }
    }
    if let Some(reference) = inputs.reference {
        for ((name, x), &m) in inputs.samples.iter().zip(&indices) {
            let Some((_, real)) = reference.iter().find(|(r, _)| r == name) else {
                continue;
            };
            scores.fd.push((name.clone(), classifier_frechet_distance(classifiers, m, x, real)?));
            if let (Some(inception), true) = (inputs.inception, classifiers.modalities()[m].is_image()) {
                let fid = frechet_distance_of_features(
                    &inception.features(x, inputs.batch)?,
                    &inception.features(real, inputs.batch)?,
                )?;
                scores.fid.push((name.clone(), fid));
            }
        }
    } else if inputs.inception.is_some() {
        bail!("evaluate: FID compares samples with real data: give `reference` too");
    }
    Ok(scores)
}
