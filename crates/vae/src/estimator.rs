//! Monte-Carlo objectives from log importance weights `log w = log p(X, z) − log q(z | X)`
//! of shape `[K, N]` (K samples per item): the ELBO (mean over samples), the IWAE bound
//! (Burda et al. 2016: log-mean-exp over samples) and its doubly-reparameterised gradient
//! estimator DReG (Tucker et al. 2019).
//!
//! DReG changes gradients, not values: the posterior parameters inside `log q` are cut from the
//! graph, the decoder sees the normalised weights w̃ₖ = softmax(log w)ₖ, and the encoder's path
//! through the reparameterised sample gets w̃ₖ² (eq. 5 of Tucker et al.). We obtain the second
//! factor without hooks: the loss is computed on a detached copy `leaf` of the samples, and after
//! the first backward pass `Σ z · (w̃ ∂loss/∂leaf)` is back-propagated through the encoder.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which bound (and gradient estimator) a model optimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    Elbo,
    Iwae,
    Dreg,
}

/// The encoder path of a DReG estimate, finished by [`DregPath::backward`] after the loss's
/// own backward pass.
pub struct DregPath {
    /// The samples, connected to the encoder.
    pub z: Tensor,
    /// The detached copy the loss was computed on.
    pub leaf: Tensor,
    /// Normalised importance weights w̃ `[K, N]` (no gradient).
    pub weight: Tensor,
}

/// Sends `w̃ · ∂loss/∂leaf` through the encoder for every path at once (so the encoder's path
/// carries w̃² overall). Call after the loss's own backward pass.
pub fn dreg_backward(paths: &[DregPath]) -> anyhow::Result<()> {
    let terms: Vec<Tensor> = paths
        .iter()
        .filter_map(|p| {
            let grad = p.leaf.grad();
            grad.defined().then(|| (&p.z * (grad * p.weight.unsqueeze(-1)).detach()).sum(Kind::Float))
        })
        .collect();
    if let Some(total) = terms.into_iter().reduce(|a, b| a + b) {
        total.f_backward()?;
    }
    Ok(())
}

/// The samples the loss should use: for DReG a detached leaf (see the module doc), else `z`.
/// The distribution to use inside importance weights: detached for DReG (its gradient reaches
/// the posterior's parameters only through the samples), else `d` itself.
pub fn for_weights(estimator: Estimator, d: &crate::dist::Dist) -> crate::dist::Dist {
    match estimator {
        Estimator::Dreg => d.detach(),
        _ => d.shallow_clone(),
    }
}

pub fn loss_samples(estimator: Estimator, z: &Tensor) -> Tensor {
    match estimator {
        Estimator::Dreg => z.detach().set_requires_grad(true),
        _ => z.shallow_clone(),
    }
}

/// From log weights `[K, N]`: (the per-item surrogate to maximise, the per-item bound value).
pub fn bound(estimator: Estimator, log_w: &Tensor) -> (Tensor, Tensor) {
    let k = log_w.size()[0] as f64;
    let iwae = |lw: &Tensor| lw.logsumexp([0], false) - k.ln();
    match estimator {
        Estimator::Elbo => {
            let v = log_w.mean_dim(0, false, Kind::Float);
            (v.shallow_clone(), v)
        }
        Estimator::Iwae => {
            let v = iwae(log_w);
            (v.shallow_clone(), v)
        }
        Estimator::Dreg => {
            let w = normalised_weights(log_w);
            ((w * log_w).sum_dim_intlist(0, false, Kind::Float), iwae(&log_w.detach()))
        }
    }
}

/// w̃ = softmax over samples of the (detached) log weights.
pub fn normalised_weights(log_w: &Tensor) -> Tensor {
    log_w.detach().softmax(0, Kind::Float)
}
