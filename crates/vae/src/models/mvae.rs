//! MVAE (Wu & Goodman 2018): the joint posterior is the product of the unimodal Gaussian
//! experts and a prior expert N(0, I). The sub-sampled objective sums the ELBO of the full
//! tuple, the ELBO of every single modality and the ELBOs of `extra` random subsets; each
//! subset's ELBO reconstructs only the modalities of the subset.

use super::{metric, shared_latents, sum_all, Loss, Objective};
use crate::dist::{product_of_experts, Dist};
use crate::frame::Frame;
use anyhow::Result;
use mmlatent_core::modality::subsets;
use tch::{Kind, Tensor};

pub struct Mvae {
    pub beta: f64,
    pub extra: usize,
    /// Subsets of size 2..M−1, among which the extra ones are drawn.
    middle: Vec<Vec<usize>>,
}

impl Mvae {
    pub fn new(beta: f64, extra: usize, m: usize) -> Self {
        let middle = subsets(m).into_iter().filter(|s| s.len() > 1 && s.len() < m).collect();
        Self { beta, extra, middle }
    }

    /// The subsets whose ELBOs form this step's objective.
    fn subsets(&self, m: usize) -> Vec<Vec<usize>> {
        let mut sets = vec![(0..m).collect::<Vec<_>>()];
        if m > 1 {
            sets.extend((0..m).map(|i| vec![i]));
        }
        if !self.middle.is_empty() {
            for _ in 0..self.extra {
                let j =
                    Tensor::randint(self.middle.len() as i64, [1], (Kind::Int64, tch::Device::Cpu)).int64_value(&[0]);
                sets.push(self.middle[j as usize].clone());
            }
        }
        sets
    }
}

impl Objective for Mvae {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let q: Vec<Dist> = xs.iter().enumerate().map(|(i, x)| f.encode(i, x)).collect();
        let (mut recs, mut kls) = (vec![], vec![]);
        for s in self.subsets(xs.len()) {
            let joint = product_of_experts(&s.iter().map(|&i| &q[i]).collect::<Vec<_>>(), None, true)?;
            let z = joint.rsample();
            recs.push(-sum_all(s.iter().map(|&i| f.log_lik(i, &f.decode(i, &z), &xs[i]))));
            kls.push(joint.kl_standard());
        }
        let (rec, kl) = (sum_all(recs), sum_all(kls));
        let loss = (&rec + &kl * (self.beta * anneal)).mean(Kind::Float);
        Ok(Loss { loss, metrics: vec![metric("rec", &rec), metric("kl", &kl)], dreg: vec![] })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        shared_latents(f, given, n, |experts| Ok(product_of_experts(experts, None, true)?.rsample()))
    }
}
