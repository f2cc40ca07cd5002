//! Latent distributions of the multimodal models (the VAE baselines and the EBM-prior model's
//! inference): diagonal Gaussian and Laplace posteriors and priors with reparameterised
//! sampling, log-densities and closed-form KL divergences, the (weighted) product of Gaussian
//! experts and uniform mixtures of experts.
//!
//! Every density is over the last dimension (summed), so a distribution of `[N, D]` parameters
//! evaluates `z` of shape `[N, D]` or `[K, N, D]` (broadcast) to `[N]` or `[K, N]`.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use tch::{Kind, Tensor};

/// The family of a latent distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistKind {
    /// Diagonal Gaussian; encoders emit (μ, log σ²).
    Gaussian,
    /// Diagonal Laplace; encoders emit (μ, raw scale) and the scale is `softmax(raw)·D + 1e-6`,
    /// the parameterisation of MMVAE and MMVAE+.
    Laplace,
}

/// A diagonal Gaussian or Laplace distribution. `scale` is σ (Gaussian) or b (Laplace).
#[derive(Debug)]
pub struct Dist {
    pub kind: DistKind,
    pub loc: Tensor,
    pub scale: Tensor,
}

impl Dist {
    /// N(μ, exp(log σ²)).
    pub fn gaussian(mu: Tensor, logvar: &Tensor) -> Self {
        Self { kind: DistKind::Gaussian, scale: (logvar * 0.5).exp(), loc: mu }
    }

    /// N(μ, σ²) with σ = softplus(raw) + 1e-4 (finite and positive for any raw; the EBM-prior
    /// model's encoders).
    pub fn gaussian_softplus(mu: Tensor, raw: &Tensor) -> Self {
        Self { kind: DistKind::Gaussian, scale: raw.softplus() + 1e-4, loc: mu }
    }

    /// A distribution from location and raw scale parameters of an encoder (see [`DistKind`]).
    pub fn from_raw(kind: DistKind, loc: Tensor, raw: &Tensor) -> Self {
        match kind {
            DistKind::Gaussian => Self::gaussian(loc, raw),
            DistKind::Laplace => {
                let d = *raw.size().last().expect("latent dimension") as f64;
                Self { kind, scale: raw.softmax(-1, Kind::Float) * d + 1e-6, loc }
            }
        }
    }

    /// The standard distribution (location 0, scale 1) of `kind` with parameters shaped like `like`.
    pub fn standard(kind: DistKind, like: &Tensor) -> Self {
        Self { kind, loc: like.zeros_like(), scale: like.ones_like() }
    }

    /// log σ² of a Gaussian.
    pub fn logvar(&self) -> Tensor {
        self.scale.square().log()
    }

    /// The same distribution with parameters cut off from the graph (for DReG).
    pub fn detach(&self) -> Self {
        Self { kind: self.kind, loc: self.loc.detach(), scale: self.scale.detach() }
    }

    /// The same distribution sharing its parameter tensors.
    pub fn shallow_clone(&self) -> Self {
        Self { kind: self.kind, loc: self.loc.shallow_clone(), scale: self.scale.shallow_clone() }
    }

    /// Columns `start..start + len` of the latent (for split shared/private latents).
    pub fn narrow(&self, start: i64, len: i64) -> Self {
        Self { kind: self.kind, loc: self.loc.narrow(-1, start, len), scale: self.scale.narrow(-1, start, len) }
    }

    /// A reparameterised sample of the parameters' shape.
    pub fn rsample(&self) -> Tensor {
        match self.kind {
            DistKind::Gaussian => &self.loc + &self.scale * self.loc.randn_like(),
            DistKind::Laplace => {
                // Inverse CDF: z = μ − b·sign(u)·log(1 − |u|), u ~ U(−1, 1).
                let eps = 1e-6;
                let u = self.loc.rand_like() * (2.0 - eps) - (1.0 - eps);
                &self.loc - &self.scale * u.sign() * (-u.abs()).log1p()
            }
        }
    }

    /// `k` reparameterised samples, `[k, ..parameter shape]`.
    pub fn rsample_k(&self, k: i64) -> Tensor {
        let mut shape = vec![k];
        shape.extend(self.loc.size());
        let expanded =
            Self { kind: self.kind, loc: self.loc.expand(&shape, false), scale: self.scale.expand(&shape, false) };
        expanded.rsample()
    }

    /// log density of `z`, summed over the last dimension.
    pub fn log_prob(&self, z: &Tensor) -> Tensor {
        let per_dim = match self.kind {
            DistKind::Gaussian => {
                -(z - &self.loc).square() / (self.scale.square() * 2.0) - self.scale.log() - 0.5 * (2.0 * PI).ln()
            }
            DistKind::Laplace => -(z - &self.loc).abs() / &self.scale - (&self.scale * 2.0).log(),
        };
        per_dim.sum_dim_intlist(-1, false, Kind::Float)
    }

    /// KL(self ‖ other) in closed form, summed over the last dimension. Both must be of one kind.
    ///
    /// Gaussian: log(σ₂/σ₁) + (σ₁² + (μ₁ − μ₂)²)/(2σ₂²) − ½.
    /// Laplace:  log(b₂/b₁) + |μ₁ − μ₂|/b₂ + (b₁/b₂)·exp(−|μ₁ − μ₂|/b₁) − 1.
    pub fn kl(&self, other: &Dist) -> Result<Tensor> {
        if self.kind != other.kind {
            bail!("no closed-form KL between a {:?} and a {:?} distribution", self.kind, other.kind);
        }
        let ratio = &self.scale / &other.scale;
        let per_dim = match self.kind {
            DistKind::Gaussian => {
                -ratio.log() + (self.scale.square() + (&self.loc - &other.loc).square()) / (other.scale.square() * 2.0)
                    - 0.5
            }
            DistKind::Laplace => {
                let gap = (&self.loc - &other.loc).abs();
                -ratio.log() + &gap / &other.scale + &ratio * (-(&gap / &self.scale)).exp() - 1.0
            }
        };
        Ok(per_dim.sum_dim_intlist(-1, false, Kind::Float))
    }

    /// KL(self ‖ standard distribution of the same kind).
    pub fn kl_standard(&self) -> Tensor {
        self.kl(&Dist::standard(self.kind, &self.loc)).expect("same kind")
    }
}

/// Product of Gaussian experts ∏ₖ qₖ(z)^{αₖ} (normalised): precision Λ = Σ αₖ/σₖ²,
/// mean Λ⁻¹ Σ αₖ μₖ/σₖ². `weights = None` means αₖ = 1 (the plain product, MVAE/MoPoE);
/// mmJSD's dynamic prior uses αₖ = 1/K. With `prior_expert` a standard normal expert
/// (weight 1, or 1/K with weights) joins the product.
pub fn product_of_experts(experts: &[&Dist], weights: Option<&[f64]>, prior_expert: bool) -> Result<Dist> {
    if experts.is_empty() && !prior_expert {
        bail!("a product of experts needs at least one expert");
    }
    if let Some(w) = weights {
        if w.len() != experts.len() + prior_expert as usize {
            bail!("{} weights for {} experts", w.len(), experts.len() + prior_expert as usize);
        }
    }
    if let Some(e) = experts.iter().find(|e| e.kind != DistKind::Gaussian) {
        bail!("a product of experts is defined here for Gaussian experts, not {:?}", e.kind);
    }
    let eps = 1e-8;
    let like = experts.first().map(|e| &e.loc);
    let (mut precision, mut weighted_mean): (Option<Tensor>, Option<Tensor>) = (None, None);
    let mut add = |mu: Tensor, var: Tensor, alpha: f64| {
        let t = (var + eps).reciprocal() * alpha;
        let m = &mu * &t;
        precision = Some(match precision.take() {
            Some(p) => p + &t,
            None => t,
        });
        weighted_mean = Some(match weighted_mean.take() {
            Some(s) => s + m,
            None => m,
        });
    };
    for (i, e) in experts.iter().enumerate() {
        add(e.loc.shallow_clone(), e.scale.square(), weights.map_or(1.0, |w| w[i]));
    }
    if prior_expert {
        let like = like.expect("prior with experts, checked above");
        add(like.zeros_like(), like.ones_like(), weights.map_or(1.0, |w| w[experts.len()]));
    }
    let precision = precision.expect("at least one expert");
    let var = precision.reciprocal();
    let mu = weighted_mean.expect("at least one expert") * &var;
    Ok(Dist { kind: DistKind::Gaussian, loc: mu, scale: var.sqrt() })
}

/// log of the uniform mixture (1/K) Σₖ qₖ(z) at `z`.
pub fn mixture_log_prob(components: &[&Dist], z: &Tensor) -> Tensor {
    let logs: Vec<Tensor> = components.iter().map(|c| c.log_prob(z)).collect();
    Tensor::stack(&logs, 0).logsumexp([0], false) - (components.len() as f64).ln()
}

/// Draws one sample per item from a uniform mixture whose components are given per item:
/// item `i` takes its sample from component `choice[i]`.
pub fn sample_mixture(components: &[&Dist], choice: &Tensor) -> Tensor {
    let samples: Vec<Tensor> = components.iter().map(|c| c.rsample()).collect();
    let stacked = Tensor::stack(&samples, 0); // [K, N, D]
    let n = stacked.size()[1];
    let idx = choice.to_kind(Kind::Int64).view([1, n, 1]).expand([1, n, stacked.size()[2]], false);
    stacked.gather(0, &idx, false).squeeze_dim(0)
}

/// One sample per item from the uniform mixture of `experts` (`[N, D]` parameters each): item
/// `i` picks its expert uniformly at random.
pub fn sample_uniform_mixture(experts: &[&Dist]) -> Tensor {
    let n = experts[0].loc.size()[0];
    let choice = Tensor::randint(experts.len() as i64, [n], (Kind::Int64, experts[0].loc.device()));
    sample_mixture(experts, &choice)
}
