//! MMVAE+ (Palumbo et al. 2023): each modality has a shared latent u and a private latent w_m.
//! The shared posterior is the mixture (1/M) Σ_m q(u|x_m); the private one is q(w_m|x_m).
//! Stratified over m, K samples (u, w_m) ~ q(u|x_m) q(w_m|x_m) reconstruct x_m from (u, w_m)
//! and every other x_n from (u, w̃_n) with w̃_n drawn from the *auxiliary prior* r_n(w_n)
//! (a zero-centred distribution whose scale is learnt), so that u alone must carry what the
//! modalities share. Log weights:
//! log w = Σ_n log p(x_n | u, ·) + β (log p(u, w_m) − log q(u|X) − log q(w_m|x_m)),
//! combined by IWAE or DReG per m and averaged over m. Cross generation draws u from the given
//! modalities' mixture and the private latents of the generated ones from r_n.

use super::{metric, present, sample_uniform_mixture, sum_all, Loss, Objective};
use crate::dist::{mixture_log_prob, Dist, DistKind};
use crate::estimator::{bound, for_weights, loss_samples, normalised_weights, DregPath, Estimator};
use crate::frame::Frame;
use anyhow::Result;
use tch::{nn, Kind, Tensor};

pub struct Settings {
    pub shared: i64,
    pub specific: i64,
    pub beta: f64,
    pub k: i64,
    pub estimator: Estimator,
    pub learn_aux_prior: bool,
    pub kind: DistKind,
}

pub struct Mmvaeplus {
    s: Settings,
    /// Raw scale parameters of the auxiliary priors r_m, `[1, specific]` each.
    aux_raw: Vec<Tensor>,
}

impl Mmvaeplus {
    pub fn new(p: &nn::Path, m: usize, s: Settings) -> Self {
        let aux_raw = (0..m)
            .map(|i| {
                let name = format!("r{i}");
                if s.learn_aux_prior {
                    p.var(&name, &[1, s.specific], nn::Init::Const(0.0))
                } else {
                    p.zeros_no_train(&name, &[1, s.specific])
                }
            })
            .collect();
        Self { s, aux_raw }
    }

    /// The auxiliary prior r_m with parameters of shape `[..lead, specific]`.
    fn aux_prior(&self, m: usize, lead: &[i64]) -> Dist {
        let mut shape = lead.to_vec();
        shape.push(self.s.specific);
        let raw = self.aux_raw[m].expand(&shape, false);
        Dist::from_raw(self.s.kind, raw.zeros_like(), &raw)
    }
}

impl Objective for Mmvaeplus {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let (beta, est, k) = (self.s.beta * anneal, self.s.estimator, self.s.k);
        let parts: Vec<Vec<Dist>> =
            xs.iter().enumerate().map(|(i, x)| f.encode_parts(i, x, &[self.s.shared, self.s.specific])).collect();
        let qu_weights: Vec<Dist> = parts.iter().map(|p| for_weights(est, &p[0])).collect();
        let qu_refs: Vec<&Dist> = qu_weights.iter().collect();
        // Samples of every stratum; the densities below run on all strata stacked to [M·K, N, ·].
        let samples: Vec<(Tensor, Tensor)> = parts.iter().map(|p| (p[0].rsample_k(k), p[1].rsample_k(k))).collect();
        let leaves: Vec<(Tensor, Tensor)> =
            samples.iter().map(|(u, w)| (loss_samples(est, u), loss_samples(est, w))).collect();
        let lead = leaves[0].0.size()[..2].to_vec();
        let own: Vec<Tensor> = leaves.iter().map(|(u, w)| Tensor::cat(&[u, w], -1)).collect();
        // Stratum m decodes x_m from (u, w_m) and every other x_n from (u, w̃_n ~ r_n); the
        // decoders run per stratum (K·N items), which kept the working set small and measured
        // faster on CPU than one stacked call.
        let lpx = Tensor::cat(
            &leaves
                .iter()
                .enumerate()
                .map(|(m, (u, _))| {
                    sum_all(xs.iter().enumerate().map(|(n, x)| {
                        let input = if m == n {
                            own[m].shallow_clone()
                        } else {
                            Tensor::cat(&[u, &self.aux_prior(n, &lead).rsample()], -1)
                        };
                        f.log_lik(n, &f.decode(n, &input), x)
                    }))
                })
                .collect::<Vec<_>>(),
            0,
        );
        let zl = Tensor::cat(&own, 0);
        let ul = Tensor::cat(&leaves.iter().map(|(u, _)| u.shallow_clone()).collect::<Vec<_>>(), 0);
        let lpz = f.prior(&zl).log_prob(&zl);
        let lqu = mixture_log_prob(&qu_refs, &ul);
        let lqw = Tensor::cat(
            &parts.iter().zip(&leaves).map(|(p, (_, w))| for_weights(est, &p[1]).log_prob(w)).collect::<Vec<_>>(),
            0,
        );
        let lw = (lpx + (lpz - lqu - lqw) * beta).view([parts.len() as i64, k, -1]);
        let (mut surrogate, mut value, mut dreg) = (vec![], vec![], vec![]);
        for (m, ((u, w), (ul, wl))) in samples.into_iter().zip(leaves).enumerate() {
            let lw = lw.get(m as i64);
            let (s, v) = bound(est, &lw);
            if est == Estimator::Dreg {
                let weight = normalised_weights(&lw);
                dreg.push(DregPath { weight: weight.shallow_clone(), z: u, leaf: ul });
                dreg.push(DregPath { weight, z: w, leaf: wl });
            }
            surrogate.push(s);
            value.push(v);
        }
        let m = parts.len() as f64;
        let surrogate = Tensor::stack(&surrogate, 0).sum_dim_intlist(0, false, Kind::Float) / m;
        let value = Tensor::stack(&value, 0).sum_dim_intlist(0, false, Kind::Float) / m;
        Ok(Loss { loss: -surrogate.mean(Kind::Float), metrics: vec![metric("bound", &value)], dreg })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let idx = present(given);
        let (u, private): (Tensor, Box<dyn Fn(usize) -> Tensor>) = if idx.is_empty() {
            let prior = f.prior(&Tensor::zeros([n, self.s.shared + self.s.specific], (Kind::Float, f.device)));
            let z = prior.rsample();
            let u = z.narrow(-1, 0, self.s.shared);
            let kind = self.s.kind;
            let like = Tensor::zeros([n, self.s.specific], (Kind::Float, f.device));
            (u, Box::new(move |_| Dist::standard(kind, &like).rsample()))
        } else {
            let parts: Vec<Option<Dist>> = given
                .iter()
                .enumerate()
                .map(|(i, x)| x.as_ref().map(|x| f.encode_parts(i, x, &[self.s.shared, self.s.specific]).remove(0)))
                .collect();
            let experts: Vec<&Dist> = idx.iter().map(|&i| parts[i].as_ref().expect("present")).collect();
            let u = sample_uniform_mixture(&experts);
            let n = u.size()[0];
            (u, Box::new(move |m| self.aux_prior(m, &[n]).rsample()))
        };
        Ok((0..given.len()).map(|m| Tensor::cat(&[&u, &private(m)], -1)).collect())
    }
}
