//! MoPoE (Sutter et al. 2021, "Generalized multimodal ELBO"): the joint posterior is the
//! uniform mixture over all 2^M − 1 non-empty subsets S of the products of experts q_S
//! (a prior expert joins only the full set, as in the reference). The objective is
//! E_{q}[Σ_m log p(x_m | z)] − β (1/|S|) Σ_S KL(q_S ‖ p), the KL of a mixture bounded by the
//! mixture of KLs; z is drawn with the deterministic per-block component selection.

use super::{block_choice, metric, shared_latents, Loss, Objective};
use crate::dist::{product_of_experts, sample_mixture, Dist};
use crate::frame::Frame;
use anyhow::Result;
use mmlatent_core::modality::subsets;
use tch::{Kind, Tensor};

pub struct Mopoe {
    pub beta: f64,
    pub subsets: Vec<Vec<usize>>,
}

impl Mopoe {
    pub fn new(beta: f64, m: usize) -> Self {
        Self { beta, subsets: subsets(m) }
    }

    /// q_S: the product of the experts of `subset` (with the prior expert for the full set).
    fn fuse(experts: &[&Dist], m: usize) -> Result<Dist> {
        product_of_experts(experts, None, experts.len() == m)
    }
}

impl Objective for Mopoe {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let m = xs.len();
        let q: Vec<Dist> = xs.iter().enumerate().map(|(i, x)| f.encode(i, x)).collect();
        let fused = self
            .subsets
            .iter()
            .map(|s| Self::fuse(&s.iter().map(|&i| &q[i]).collect::<Vec<_>>(), m))
            .collect::<Result<Vec<_>>>()?;
        let kl =
            Tensor::stack(&fused.iter().map(Dist::kl_standard).collect::<Vec<_>>(), 0).mean_dim(0, false, Kind::Float);
        let n = xs[0].size()[0];
        let z = sample_mixture(&fused.iter().collect::<Vec<_>>(), &block_choice(n, fused.len(), f.device));
        let rec = -f.log_lik_all(xs, &z);
        let loss = (&rec + &kl * (self.beta * anneal)).mean(Kind::Float);
        Ok(Loss { loss, metrics: vec![metric("rec", &rec), metric("kl", &kl)], dreg: vec![] })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        shared_latents(f, given, n, |experts| Ok(Self::fuse(experts, given.len())?.rsample()))
    }
}
