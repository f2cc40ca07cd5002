//! mmJSD (Sutter et al. 2020): the unimodal posteriors and the prior are regularised towards
//! their *dynamic prior* f = ∏_k q_k^{1/(M+1)} (a weighted product of experts over
//! q_1 … q_M and p), through the generalised Jensen–Shannon divergence
//! JS = Σ_k (1/(M+1)) KL(q_k ‖ f) (their eq. 7, with the abstract mean as the PoE of eq. 9).
//! Reconstructions use z from the uniform mixture of the same M + 1 components (the reference's
//! deterministic per-block selection) and cover every modality.

use super::{block_choice, metric, sample_uniform_mixture, shared_latents, sum_all, Loss, Objective};
use crate::dist::{product_of_experts, sample_mixture, Dist};
use crate::frame::Frame;
use anyhow::Result;
use tch::{Kind, Tensor};

pub struct Mmjsd {
    pub beta: f64,
}

impl Objective for Mmjsd {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let mut q: Vec<Dist> = xs.iter().enumerate().map(|(i, x)| f.encode(i, x)).collect();
        let k = q.len() + 1;
        let weights = vec![1.0 / k as f64; k];
        let dynamic = product_of_experts(&q.iter().collect::<Vec<_>>(), Some(&weights), true)?;
        q.push(f.prior(&q[0].loc));
        let js = sum_all(q.iter().map(|qk| qk.kl(&dynamic)).collect::<Result<Vec<_>>>()?) / k as f64;
        let n = xs[0].size()[0];
        let z = sample_mixture(&q.iter().collect::<Vec<_>>(), &block_choice(n, k, f.device));
        let rec = -f.log_lik_all(xs, &z);
        let loss = (&rec + &js * (self.beta * anneal)).mean(Kind::Float);
        Ok(Loss { loss, metrics: vec![metric("rec", &rec), metric("js", &js)], dreg: vec![] })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        shared_latents(f, given, n, |experts| Ok(sample_uniform_mixture(experts)))
    }
}
