//! Per-modality likelihoods p(x | decoder output).
//!
//! Decoders emit unconstrained outputs: for images `[N, C, H, W]` (the mean is their sigmoid,
//! except Bernoulli, which reads them as logits), for text `[N, L, V]` logits, for vectors `[N, D]`
//! (identity mean). [`Likelihood::log_prob`] returns one log-density per item, summed over the
//! item's dimensions.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use tch::{Kind, Reduction, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Likelihood {
    /// Laplace with fixed scale b: log p = −|x − μ|/b − log 2b.
    Laplace { scale: f64 },
    /// Gaussian with fixed standard deviation σ: log p = −(x − μ)²/2σ² − log σ − ½ log 2π.
    Gaussian { scale: f64 },
    /// Bernoulli with logits (for values in [0, 1], the continuous relaxation used by the field).
    Bernoulli,
    /// Categorical over a vocabulary; the target holds class ids.
    Categorical,
}

impl Likelihood {
    /// The default of image modalities: Laplace(0.75), as in MoPoE.
    pub const IMAGE_DEFAULT: Likelihood = Likelihood::Laplace { scale: 0.75 };

    /// Whether the decoder output must pass through a sigmoid to give the mean.
    fn squashes_images(&self, output: &Tensor) -> bool {
        output.dim() == 4 && !matches!(self, Likelihood::Bernoulli | Likelihood::Categorical)
    }

    /// The mean of the decoder output in data space.
    pub fn mean(&self, output: &Tensor) -> Tensor {
        match self {
            Likelihood::Bernoulli => output.sigmoid(),
            Likelihood::Categorical => output.argmax(-1, false),
            _ if self.squashes_images(output) => output.sigmoid(),
            _ => output.shallow_clone(),
        }
    }

    /// log p(target | output), one value per item (`[N]`).
    pub fn log_prob(&self, output: &Tensor, target: &Tensor) -> Tensor {
        let n = output.size()[0];
        let per_item = |t: Tensor| t.reshape([n, -1]).sum_dim_intlist(-1, false, Kind::Float);
        match *self {
            Likelihood::Laplace { scale } => {
                let mu = self.mean(output);
                per_item(-(target - mu).abs() / scale - (2.0 * scale).ln())
            }
            Likelihood::Gaussian { scale } => {
                let mu = self.mean(output);
                let sq: Tensor = (target - mu).square();
                per_item(-sq / (2.0 * scale * scale) - scale.ln() - 0.5 * (2.0 * PI).ln())
            }
            Likelihood::Bernoulli => {
                let bce = output.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::None);
                per_item(-bce)
            }
            Likelihood::Categorical => {
                // output [N, L, V] logits, target [N, L] ids.
                let logp = output.log_softmax(-1, Kind::Float);
                let picked = logp.gather(-1, &target.to_kind(Kind::Int64).unsqueeze(-1), false).squeeze_dim(-1);
                per_item(picked)
            }
        }
    }

    /// The default likelihood for a modality kind: Laplace(0.75) for images as in MoPoE,
    /// categorical for text, Gaussian(1) for vectors.
    pub fn default_for(spec: &crate::ModalitySpec) -> Self {
        match spec.kind {
            crate::ModalityKind::Image { .. } => Self::IMAGE_DEFAULT,
            crate::ModalityKind::Text { .. } => Likelihood::Categorical,
            crate::ModalityKind::Vector { .. } => Likelihood::Gaussian { scale: 1.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn gaussian_and_laplace_match_closed_forms() {
        let out = Tensor::from_slice(&[0.5f32, -1.0]).view([1, 2]);
        let x = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let g = Likelihood::Gaussian { scale: 2.0 }.log_prob(&out, &x).double_value(&[0]);
        let expect = [(0.5f64, 1.0f64), (-1.0, 0.0)]
            .iter()
            .map(|(m, v)| -(v - m) * (v - m) / 8.0 - 2f64.ln() - 0.5 * (2.0 * PI).ln())
            .sum::<f64>();
        close(g, expect);
        let l = Likelihood::Laplace { scale: 0.5 }.log_prob(&out, &x).double_value(&[0]);
        let expect = [(0.5f64, 1.0f64), (-1.0, 0.0)].iter().map(|(m, v)| -(v - m).abs() / 0.5 - 1f64.ln()).sum::<f64>();
        close(l, expect);
    }

    #[test]
    fn image_means_are_squashed_and_categorical_picks_ids() {
        let out = Tensor::zeros([2, 1, 2, 2], (Kind::Float, Device::Cpu));
        let mean = Likelihood::Laplace { scale: 0.75 }.mean(&out);
        close(mean.mean(Kind::Float).double_value(&[]), 0.5);
        let logits = Tensor::from_slice(&[0.0f32, 10.0, 10.0, 0.0]).view([1, 2, 2]);
        let ids = Tensor::from_slice(&[1i64, 0]).view([1, 2]);
        let lp = Likelihood::Categorical.log_prob(&logits, &ids).double_value(&[0]);
        close(lp, 2.0 * -(1.0 + (-10f64).exp()).ln());
        assert!(Likelihood::Categorical.mean(&logits).equal(&ids));
    }

    #[test]
    fn bernoulli_is_negative_bce() {
        let logits = Tensor::from_slice(&[0.0f32]).view([1, 1]);
        let x = Tensor::from_slice(&[1.0f32]).view([1, 1]);
        close(Likelihood::Bernoulli.log_prob(&logits, &x).double_value(&[0]), -(2f64.ln()));
    }
}
