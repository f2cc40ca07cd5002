//! MVTCAE (Hwang et al. 2021): a total-correlation objective. With the joint posterior
//! q(z|X) = ∏_m q(z|x_m) (product of experts), it maximises
//! ((M − α)/M) Σ_m E_q[log p(x_m|z)] − β [(1 − α) KL(q(z|X) ‖ p(z)) + (α/M) Σ_m KL(q(z|X) ‖ q(z|x_m))],
//! the VIB term plus the conditional VIB terms that bound the total correlation (their eq. 9).

use super::{metric, shared_latents, sum_all, Loss, Objective};
use crate::dist::{product_of_experts, Dist};
use crate::frame::Frame;
use anyhow::Result;
use tch::{Kind, Tensor};

pub struct Mvtcae {
    pub beta: f64,
    pub alpha: f64,
}

impl Objective for Mvtcae {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let m = xs.len() as f64;
        let q: Vec<Dist> = xs.iter().enumerate().map(|(i, x)| f.encode(i, x)).collect();
        let joint = product_of_experts(&q.iter().collect::<Vec<_>>(), None, false)?;
        let z = joint.rsample();
        let rec = -f.log_lik_all(xs, &z);
        let kl_joint = joint.kl_standard();
        let cvib = sum_all(q.iter().map(|qm| joint.kl(qm)).collect::<Result<Vec<_>>>()?);
        let reg = &kl_joint * (1.0 - self.alpha) + &cvib * (self.alpha / m);
        let loss = (&rec * ((m - self.alpha) / m) + &reg * (self.beta * anneal)).mean(Kind::Float);
        Ok(Loss {
            loss,
            metrics: vec![metric("rec", &rec), metric("kl", &kl_joint), metric("cvib", &cvib)],
            dreg: vec![],
        })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        shared_latents(f, given, n, |experts| Ok(product_of_experts(experts, None, false)?.rsample()))
    }
}
