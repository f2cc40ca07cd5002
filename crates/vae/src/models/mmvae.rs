//! MMVAE (Shi et al. 2019): the joint posterior is the uniform mixture of the unimodal experts
//! q(z|X) = (1/M) Σ_m q(z|x_m). Training is stratified over the mixture: for each m, K samples
//! z ~ q(z|x_m) reconstruct every modality, with log weights
//! log w = Σ_n log p(x_n|z) + β (log p(z) − log q(z|X)), combined by the ELBO, IWAE or DReG
//! estimator per m and averaged over m (the "looser" bound of the reference).

use super::{metric, sample_uniform_mixture, shared_latents, Loss, Objective};
use crate::dist::{mixture_log_prob, Dist};
use crate::estimator::{bound, for_weights, loss_samples, normalised_weights, DregPath, Estimator};
use crate::frame::Frame;
use anyhow::Result;
use tch::{Kind, Tensor};

pub struct Mmvae {
    pub beta: f64,
    pub k: i64,
    pub estimator: Estimator,
}

impl Objective for Mmvae {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let beta = self.beta * anneal;
        let q: Vec<Dist> = xs.iter().enumerate().map(|(i, x)| f.encode(i, x)).collect();
        // DReG: the posterior parameters inside log q carry no gradient.
        let q_weights: Vec<Dist> = q.iter().map(|d| for_weights(self.estimator, d)).collect();
        let q_refs: Vec<&Dist> = q_weights.iter().collect();
        // All strata at once: the samples of every q(z|x_m) are stacked to [M·K, N, D] so that
        // each decoder runs once per step.
        let zs: Vec<Tensor> = q.iter().map(|qm| qm.rsample_k(self.k)).collect();
        let leaves: Vec<Tensor> = zs.iter().map(|z| loss_samples(self.estimator, z)).collect();
        let zl = Tensor::cat(&leaves, 0);
        let lpx = f.log_lik_all(xs, &zl);
        let lpz = f.prior(&zl).log_prob(&zl);
        let lqz = mixture_log_prob(&q_refs, &zl);
        let lw = (lpx + (lpz - lqz) * beta).view([q.len() as i64, self.k, -1]);
        let (mut surrogate, mut value, mut dreg) = (vec![], vec![], vec![]);
        for (m, (z, leaf)) in zs.into_iter().zip(leaves).enumerate() {
            let lw = lw.get(m as i64);
            let (s, v) = bound(self.estimator, &lw);
            if self.estimator == Estimator::Dreg {
                dreg.push(DregPath { weight: normalised_weights(&lw), z, leaf });
            }
            surrogate.push(s);
            value.push(v);
        }
        let m = q.len() as f64;
        let surrogate = Tensor::stack(&surrogate, 0).sum_dim_intlist(0, false, Kind::Float) / m;
        let value = Tensor::stack(&value, 0).sum_dim_intlist(0, false, Kind::Float) / m;
        Ok(Loss { loss: -surrogate.mean(Kind::Float), metrics: vec![metric("bound", &value)], dreg })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        shared_latents(f, given, n, |experts| Ok(sample_uniform_mixture(experts)))
    }
}
