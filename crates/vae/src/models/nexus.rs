//! NEXUS (Vasco et al. 2022): a hierarchy of latents. Bottom level: each modality is its own
//! VAE with latent z_m (ELBO_m = log p(x_m|z_m) − β KL(q(z_m|x_m) ‖ N(0, I))). Top level: each
//! (detached) z_m sends a message h_m = g_m(z_m); the messages are averaged — during training
//! over a random proper subset with probability `dropout` (forced perceptual dropout) — and
//! encoded into the joint latent q(z_σ | h̄); top decoders reconstruct every z_m from z_σ
//! under N(·, s²I) (s = 1, or adapted to the batch's error), regularised by top_β KL(q(z_σ|·) ‖ N(0, I)). Generation goes down the
//! hierarchy: z_σ (prior, or from the given modalities' messages) → z_m → x_m.

use super::{metric, present, sum_all, Loss, Objective};
use crate::dist::Dist;
use crate::frame::Frame;
use anyhow::Result;
use mmlatent_core::nets::mlp;
use std::f64::consts::PI;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

pub struct Settings {
    /// Dimension of the joint latent z_σ.
    pub joint: i64,
    /// Dimension of each modality latent z_m.
    pub modality: i64,
    pub msg_dim: i64,
    pub hidden: i64,
    pub beta: f64,
    pub top_beta: f64,
    pub dropout: f64,
    /// Adapt the variance of the top decoders to their batch error (else unit variance).
    pub adaptive: bool,
}

pub struct Nexus {
    s: Settings,
    messages: Vec<nn::Sequential>,
    joint_encoder: nn::Sequential,
    top_decoders: Vec<nn::Sequential>,
}

impl Nexus {
    pub fn new(p: &nn::Path, m: usize, s: Settings) -> Self {
        let messages = (0..m).map(|i| mlp(p / format!("msg{i}"), &[s.modality, s.hidden, s.msg_dim])).collect();
        let joint_encoder = mlp(p / "joint", &[s.msg_dim, s.hidden, s.hidden, 2 * s.joint]);
        let top_decoders =
            (0..m).map(|i| mlp(p / format!("top{i}"), &[s.joint, s.hidden, s.hidden, s.modality])).collect();
        Self { s, messages, joint_encoder, top_decoders }
    }

    /// q(z_σ | mean of the kept messages); `keep` is `[N, M]` (1 = the message counts).
    fn joint_posterior(&self, msgs: &[Tensor], keep: &Tensor) -> Dist {
        let stacked = Tensor::stack(msgs, 1); // [N, M, msg]
        let keep = keep.to_kind(Kind::Float).unsqueeze(-1);
        let mean =
            (stacked * &keep).sum_dim_intlist(1, false, Kind::Float) / keep.sum_dim_intlist(1, false, Kind::Float);
        let out = self.joint_encoder.forward(&mean);
        Dist::gaussian(out.narrow(-1, 0, self.s.joint), &out.narrow(-1, self.s.joint, self.s.joint))
    }

    /// Forced perceptual dropout: each row keeps all M messages, or with probability `dropout`
    /// a uniformly sized random proper subset of them.
    fn dropout_mask(&self, n: i64, m: i64, device: tch::Device) -> Tensor {
        let all = Tensor::ones([n, m], (Kind::Bool, device));
        if m < 2 || self.s.dropout <= 0.0 {
            return all;
        }
        let ranks = Tensor::rand([n, m], (Kind::Float, device)).argsort(1, false).argsort(1, false);
        let sizes = Tensor::randint_low(1, m, [n, 1], (Kind::Int64, device));
        let subset = ranks.lt_tensor(&sizes);
        let drop = Tensor::rand([n, 1], (Kind::Float, device)).lt(self.s.dropout);
        subset.where_self(&drop, &all)
    }
}

impl Objective for Nexus {
    fn loss(&self, f: &Frame, xs: &[Tensor], anneal: f64) -> Result<Loss> {
        let (mut bottom, mut zs, mut msgs) = (vec![], vec![], vec![]);
        for (m, x) in xs.iter().enumerate() {
            let q = f.encode(m, x);
            let z = q.rsample();
            bottom.push(-f.log_lik(m, &f.decode(m, &z), x) + q.kl_standard() * (self.s.beta * anneal));
            let z = z.detach();
            msgs.push(self.messages[m].forward(&z));
            zs.push(z);
        }
        let n = xs[0].size()[0];
        let keep = self.dropout_mask(n, xs.len() as i64, f.device);
        let q_joint = self.joint_posterior(&msgs, &keep);
        let z_joint = q_joint.rsample();
        // −log N(z_m; top_m(z_σ), s²), summed over modalities; s = 1, or with `adaptive` the
        // root-mean-square error of the batch per latent dimension (the reference adapts one
        // variance per modality; per dimension, the few informative dimensions of z_m stand out
        // from the many that stay at the prior's noise).
        let top_rec = sum_all(zs.iter().enumerate().map(|(m, z)| {
            let err = (self.top_decoders[m].forward(&z_joint) - z).square();
            let var = if self.s.adaptive { err.mean_dim(0, true, Kind::Float) + 1e-6 } else { err.ones_like() };
            (&err / (&var * 2.0) + var.log() * 0.5 + 0.5 * (2.0 * PI).ln()).sum_dim_intlist(-1, false, Kind::Float)
        }));
        let top_kl = q_joint.kl_standard();
        let bottom = sum_all(bottom);
        let total = &bottom + &top_rec + &top_kl * (self.s.top_beta * anneal);
        Ok(Loss {
            loss: total.mean(Kind::Float),
            metrics: vec![metric("bottom", &bottom), metric("top_rec", &top_rec), metric("top_kl", &top_kl)],
            dreg: vec![],
        })
    }

    fn latents(&self, f: &Frame, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let idx = present(given);
        let z_joint = if idx.is_empty() {
            Tensor::randn([n, self.s.joint], (Kind::Float, f.device))
        } else {
            let msgs: Vec<Tensor> = idx
                .iter()
                .map(|&m| {
                    let z = f.encode(m, given[m].as_ref().expect("present")).rsample();
                    self.messages[m].forward(&z)
                })
                .collect();
            let rows = msgs[0].size()[0];
            self.joint_posterior(&msgs, &Tensor::ones([rows, msgs.len() as i64], (Kind::Bool, f.device))).rsample()
        };
        Ok(self.top_decoders.iter().map(|d| d.forward(&z_joint)).collect())
    }
}
