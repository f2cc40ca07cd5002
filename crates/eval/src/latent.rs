//! Diagnostics of two-stage latent models (MLD): is a poor result the first stage's fault (the
//! autoencoders lose the class) or the second's (the latent generator misses the latents)?
//!
//! - **Stage-1 ceiling**: the classifiers' accuracy on the autoencoders' reconstructions of the
//!   test tuples, how often all of a tuple's reconstructions get one class (the joint coherence
//!   a perfect stage 2 would reach, roughly), and how much of the class each modality's latent
//!   keeps: a linear probe fit on encoded training tuples, scored on the test tuples.
//!   Generation from one given modality can transfer the class only as far as it is readable
//!   from that modality's latent.
//! - **Nearest-tuple coherence**: what a stage 2 that samples the encoded data's own
//!   conditional p(z_k | z_m) would reach from each given modality m: every test tuple takes
//!   the other latents of the training tuple whose m-block is nearest, decoded and classified as
//!   generated items are. Given-1 coherence far below it is lost in stage 2; near it, stage 1
//!   is the limit.
//! - **Stage-2 fit**: Fréchet distance between joint samples of the generator and the encoded
//!   test tuples in the generator's (standardised) latent space, per modality block and over
//!   the whole vector, beside the distance a standard normal would get (a generator that learnt
//!   nothing but the standardisation), and the per-block mean and std of both sets.
//! - **Warnings** when generation is near chance while reconstructions are not.

use crate::classifier::Classifiers;
use crate::fid::frechet_distance_of_features;
use anyhow::{Context, Result};
use mmlatent_core::model::LatentView;
use mmlatent_core::Batch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// First and second moments of one latent block, averaged over its dimensions.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockMoments {
    /// Mean over dimensions of the per-dimension mean.
    pub mean: f64,
    /// Mean over dimensions of the per-dimension standard deviation.
    pub std: f64,
}

impl BlockMoments {
    fn of(x: &Tensor) -> Self {
        let x = x.to_kind(Kind::Double);
        Self {
            mean: x.mean_dim(0, false, Kind::Double).mean(Kind::Double).double_value(&[]),
            std: x.std_dim(0, true, false).mean(Kind::Double).double_value(&[]),
        }
    }
}

/// Stage-1 ceiling and stage-2 fit of a latent model.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatentDiagnostics {
    /// Test tuples reconstructed and encoded.
    pub test_tuples: i64,
    /// Joint latent samples drawn.
    pub samples: i64,
    /// Modality → classifier accuracy on its reconstructions.
    pub reconstruction_accuracy: BTreeMap<String, f64>,
    /// Fraction of test tuples whose reconstructions all get one class.
    pub reconstruction_agreement: f64,
    /// Fraction of test tuples whose real items all get one class: what joint coherence would be
    /// for samples as varied as the data (the classifiers' own ceiling on this set).
    #[serde(default)]
    pub real_agreement: f64,
    /// Modality → test accuracy of a linear probe (multinomial logistic regression) on its
    /// latent block, fit on encoded training tuples ([`linear_probe`]).
    #[serde(default)]
    pub probe_accuracy: BTreeMap<String, f64>,
    /// Training tuples the probes were fit on (and the nearest tuples looked up among).
    #[serde(default)]
    pub probe_train_tuples: i64,
    /// Modality m → coherence from m to the other modalities (mean over them) of the nearest-tuple
    /// sampler ([`nearest_rows`]; see the module documentation).
    #[serde(default)]
    pub nearest_tuple_coherence: BTreeMap<String, f64>,
    /// Modality → FD between sampled and encoded latents of its block.
    pub latent_fd: BTreeMap<String, f64>,
    /// FD over the whole concatenated latent.
    pub latent_fd_joint: f64,
    /// Modality → FD between N(0, I) and the encoded latents of its block (the scale of "learnt
    /// nothing"; standardised latents have mean 0 and std 1 per dimension, so only their shape
    /// and correlations separate them from it).
    pub standard_normal_fd: BTreeMap<String, f64>,
    pub standard_normal_fd_joint: f64,
    /// Modality → moments of the encoded test latents.
    pub encoded_moments: BTreeMap<String, BlockMoments>,
    /// Modality → moments of the sampled latents.
    pub sampled_moments: BTreeMap<String, BlockMoments>,
}

impl LatentDiagnostics {
    /// Mean over the given modalities of [`LatentDiagnostics::nearest_tuple_coherence`] (`None`
    /// when it was not measured).
    pub fn nearest_tuple_mean(&self) -> Option<f64> {
        let values = &self.nearest_tuple_coherence;
        (!values.is_empty()).then(|| values.values().sum::<f64>() / values.len() as f64)
    }
}

/// Fraction of items on which every modality's predicted class is the same.
fn agreement(predictions: &[Tensor]) -> f64 {
    let mut agree = predictions[0].ones_like().to_kind(Kind::Bool);
    for p in &predictions[1..] {
        agree = agree.logical_and(&p.eq_tensor(&predictions[0]));
    }
    agree.to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

pub use mmlatent_core::probe::{class_probe, linear_probe};

/// For each row of `queries` `[n, d]`, the index of the nearest row of `pool` `[N, d]`
/// (Euclidean distance), `[n]`. Queries go in chunks so the distance matrix stays small.
pub fn nearest_rows(pool: &Tensor, queries: &Tensor) -> Tensor {
    let n = queries.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(256)
        .map(|start| Tensor::cdist(&queries.narrow(0, start, (n - start).min(256)), pool, 2.0, None).argmin(1, false))
        .collect();
    Tensor::cat(&parts, 0)
}

/// Encodes `inputs` through `view` in chunks of at most 500 tuples.
fn encode_in_chunks(view: &dyn LatentView, inputs: &[Tensor]) -> Result<Tensor> {
    let n = inputs.first().map_or(0, |x| x.size()[0]);
    let chunks: Vec<Tensor> = (0..n)
        .step_by(500)
        .map(|start| {
            let part: Vec<Tensor> = inputs.iter().map(|x| x.narrow(0, start, (n - start).min(500))).collect();
            view.encode(&part).map(|z| z.to_device(Device::Cpu))
        })
        .collect::<Result<_>>()?;
    Ok(Tensor::cat(&chunks, 0))
}

/// Measures `view` on the test tuples `real` with `samples` joint latent samples; the class
/// probes are fit on the training tuples `train` (`classes` labels).
pub fn diagnose(
    view: &dyn LatentView,
    classifiers: &Classifiers,
    names: &[String],
    (train, real): (&Batch, &Batch),
    classes: i64,
    samples: i64,
) -> Result<LatentDiagnostics> {
    let _guard = tch::no_grad_guard();
    let recon = view.reconstruct(&real.items).context("reconstructing the test tuples")?;
    let labels = real.labels.to_device(classifiers.device());
    let mut out = LatentDiagnostics { test_tuples: labels.size()[0], samples, ..Default::default() };
    let predict = |items: &[Tensor]| -> Result<Vec<Tensor>> {
        (0..items.len()).map(|m| classifiers.logits(m, &items[m]).map(|l| l.argmax(-1, false))).collect()
    };
    let predictions = predict(&recon)?;
    for (m, p) in predictions.iter().enumerate() {
        let acc = p.eq_tensor(&labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        out.reconstruction_accuracy.insert(names[m].clone(), acc);
    }
    out.reconstruction_agreement = agreement(&predictions);
    out.real_agreement = agreement(&predict(&real.items)?);

    let encoded = encode_in_chunks(view, &real.items).context("encoding the test tuples")?;
    let encoded_train = encode_in_chunks(view, &train.items).context("encoding the training tuples")?;
    let (train_labels, test_labels) = (train.labels.to_device(Device::Cpu), real.labels.to_device(Device::Cpu));
    out.probe_train_tuples = train_labels.size()[0];
    let sampled = view.sample_joint_latents(samples).context("sampling joint latents")?.to_device(Device::Cpu);
    let normal = sampled.randn_like();
    for (m, &(offset, size)) in view.latent_spans().iter().enumerate() {
        let block = |x: &Tensor| x.narrow(1, offset, size);
        let name = &names[m];
        out.latent_fd.insert(name.clone(), frechet_distance_of_features(&block(&sampled), &block(&encoded))?);
        out.standard_normal_fd.insert(name.clone(), frechet_distance_of_features(&block(&normal), &block(&encoded))?);
        out.encoded_moments.insert(name.clone(), BlockMoments::of(&block(&encoded)));
        let probe = linear_probe((&block(&encoded_train), &train_labels), (&block(&encoded), &test_labels), classes)?;
        out.probe_accuracy.insert(name.clone(), probe);
        out.sampled_moments.insert(name.clone(), BlockMoments::of(&block(&sampled)));
        let others: Vec<usize> = (0..names.len()).filter(|&k| k != m).collect();
        if !others.is_empty() {
            let looked_up = encoded_train.index_select(0, &nearest_rows(&block(&encoded_train), &block(&encoded)));
            let decoded = view.decode(&looked_up).context("decoding the nearest training tuples")?;
            let accuracies: Vec<f64> = others
                .iter()
                .map(|&k| classifiers.accuracy(k, &decoded[k].to_device(classifiers.device()), &labels))
                .collect::<Result<_>>()?;
            out.nearest_tuple_coherence.insert(name.clone(), accuracies.iter().sum::<f64>() / others.len() as f64);
        }
    }
    out.latent_fd_joint = frechet_distance_of_features(&sampled, &encoded)?;
    out.standard_normal_fd_joint = frechet_distance_of_features(&normal, &encoded)?;
    Ok(out)
}

/// Warnings when generation sits near chance although the first stage keeps the class:
/// `given_one` is the mean coherence of generation from one given modality (if measured),
/// `joint` the joint coherence, `classes` the number of classes.
pub fn warnings(diag: &LatentDiagnostics, joint: f64, given_one: Option<f64>, classes: i64) -> Vec<String> {
    let mut out = vec![];
    let k = classes.max(2) as f64;
    let m = diag.reconstruction_accuracy.len().max(1) as i32;
    let recon = diag.reconstruction_accuracy.values().sum::<f64>() / m as f64;
    let stage2 = "the autoencoders keep the class, so the latent generator (stage 2) is what fails";
    if let Some(g) = given_one {
        if g < 1.5 / k && recon > 3.0 / k {
            out.push(format!(
                "conditional generation from one modality is at chance ({:.1} %, chance {:.1} %) while the classifiers \
                 score {:.1} % on reconstructions: {stage2}",
                100.0 * g,
                100.0 / k,
                100.0 * recon
            ));
        }
    }
    if let (Some(g), Some(nearest)) = (given_one, diag.nearest_tuple_mean()) {
        if g < 0.75 * nearest && nearest > 1.5 / k {
            out.push(format!(
                "conditional generation from one modality reaches {:.1} % where looking the given latent up among \
                 encoded training tuples reaches {:.1} % (nearest-tuple coherence): the latent generator loses class \
                 information that the autoencoders keep",
                100.0 * g,
                100.0 * nearest
            ));
        }
    }
    // All M classifiers agreeing by chance: K · K^−M.
    let joint_chance = k.powi(1 - m);
    if joint < 2.0 * joint_chance + 0.02 && diag.reconstruction_agreement > 5.0 * joint_chance + 0.1 {
        out.push(format!(
            "joint coherence is near chance ({:.1} %) while {:.1} % of reconstructed test tuples agree: {stage2}",
            100.0 * joint,
            100.0 * diag.reconstruction_agreement
        ));
    }
    if diag.latent_fd_joint > 0.8 * diag.standard_normal_fd_joint {
        out.push(format!(
            "joint latent samples are about as far from the encoded latents (FD {:.2}) as a standard normal is ({:.2}): \
             the latent generator has learnt little beyond the standardisation, or a guided sampler pushes its samples \
             off the encoded latents (an unguided evaluation tells which)",
            diag.latent_fd_joint, diag.standard_normal_fd_joint
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(recon: f64, agreement: f64, fd: f64, normal_fd: f64) -> LatentDiagnostics {
        LatentDiagnostics {
            reconstruction_accuracy: (0..3).map(|m| (format!("m{m}"), recon)).collect(),
            reconstruction_agreement: agreement,
            latent_fd_joint: fd,
            standard_normal_fd_joint: normal_fd,
            ..Default::default()
        }
    }

    /// Two classes with unit-variance Gaussian features whose means differ by 2 along one of 8
    /// dimensions: the Bayes classifier, which a linear probe can represent, is right with
    /// probability Φ(1) ≈ 0.841. Labels independent of the features leave it at chance.
    #[test]
    fn linear_probe_reaches_the_bayes_accuracy_of_two_gaussians() {
        tch::manual_seed(3);
        let n = 4000;
        let draw = || {
            let y = Tensor::randint(2, [n], (Kind::Int64, Device::Cpu));
            let mut x = Tensor::randn([n, 8], (Kind::Float, Device::Cpu));
            let shift = Tensor::zeros([n, 8], (Kind::Float, Device::Cpu));
            shift.narrow(1, 0, 1).copy_(&(y.to_kind(Kind::Float) * 2.0 - 1.0).unsqueeze(1));
            x += shift;
            (x, y)
        };
        let ((x, y), (xt, yt)) = (draw(), draw());
        let accuracy = linear_probe((&x, &y), (&xt, &yt), 2).unwrap();
        assert!((accuracy - 0.8413).abs() < 0.02, "accuracy {accuracy}");
        let unrelated = || Tensor::randint(2, [n], (Kind::Int64, Device::Cpu));
        let chance = linear_probe((&x, &unrelated()), (&xt, &unrelated()), 2).unwrap();
        assert!((chance - 0.5).abs() < 0.04, "accuracy {chance}");
    }

    #[test]
    fn warns_only_when_generation_fails_and_reconstruction_does_not() {
        // Stage 2 failed: chance-level generation, good reconstructions, samples no better than N(0, I).
        let w = warnings(&diag(0.7, 0.4, 9.0, 10.0), 0.01, Some(0.1), 10);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("chance") && w[0].contains("stage 2"), "{}", w[0]);
        // A working model: no warning.
        assert!(warnings(&diag(0.7, 0.4, 1.0, 10.0), 0.3, Some(0.5), 10).is_empty());
        // Stage 1 failed too (reconstructions at chance): generation at chance is not blamed on stage 2.
        let w = warnings(&diag(0.1, 0.01, 1.0, 10.0), 0.01, Some(0.1), 10);
        assert!(w.is_empty(), "{w:?}");
    }

    /// Queries that are pool rows moved by less than half the pool's spacing find those rows,
    /// across more than one chunk of queries.
    #[test]
    fn nearest_rows_finds_the_row_each_query_was_drawn_near() {
        tch::manual_seed(5);
        let pool = Tensor::arange(1000, (Kind::Float, Device::Cpu)).view([500, 2]) * 3.0;
        let picked = Tensor::randint(500, [700], (Kind::Int64, Device::Cpu));
        let queries = pool.index_select(0, &picked) + Tensor::rand([700, 2], (Kind::Float, Device::Cpu)) - 0.5;
        assert!(nearest_rows(&pool, &queries).equal(&picked));
    }

    #[test]
    fn warns_when_given_one_falls_far_below_the_nearest_tuple_sampler() {
        let with_nearest = |value: f64| LatentDiagnostics {
            nearest_tuple_coherence: (0..3).map(|m| (format!("m{m}"), value)).collect(),
            ..diag(0.7, 0.4, 1.0, 10.0)
        };
        let w = warnings(&with_nearest(0.6), 0.3, Some(0.3), 10);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("30.0 %") && w[0].contains("60.0 %"), "{}", w[0]);
        // Near the nearest-tuple level, or with that level itself at chance: stage 1 is the limit.
        assert!(warnings(&with_nearest(0.6), 0.3, Some(0.5), 10).is_empty());
        let w = warnings(&with_nearest(0.12), 0.3, Some(0.05), 10);
        assert!(w.len() == 1 && w[0].contains("at chance"), "{w:?}");
    }
}
