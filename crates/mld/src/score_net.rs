//! The score network of MLD: an MLP "U-Net" on the concatenated latents, conditioned on the
//! multi-time vector τ = [t_1 … t_M] through a learned embedding (Linear → GELU → Linear).
//!
//! Every block is residual: GroupNorm → SiLU → Linear, plus the projected time embedding, then
//! GroupNorm → SiLU → Linear, plus a (linear) skip. Down levels keep their activations for skip
//! connections that the up levels concatenate; the input projection is concatenated before the
//! last block. The output layer starts at zero.
//!
//! Output parameterisation (`[model.score] parameterization`):
//! - `residual` (default): ε̂(x, τ) = σ(τ) ⊙ x + F(x, τ), where σ(τ) is each dimension's
//!   marginal std σ(t_m) of its modality's time. σ(t)·x is the exact noise predictor E[z | x_t]
//!   when the (standardised) latents are N(0, I) — since x_t = α x₀ + σ z with α² + σ² = 1,
//!   Cov(z, x_t) = σ I and Var(x_t) = I — so the network only learns the departure from a
//!   standard Gaussian. Without it, at high noise (ε ≈ x) the output must reproduce the identity
//!   through the width-`w` bottleneck, which a network narrower than the latent cannot: the
//!   residual ε − F(x) then keeps at least (D − w)/D of its variance in the directions the
//!   output layer cannot reach, and sampling is pulled off the data there.
//! - `direct`: ε̂ = F(x, τ), as in the reference implementation.

use crate::config::{ScoreConfig, ScoreParameterization};
use crate::sampler::Layout;
use crate::sde::VpSde;
use mmlatent_core::nets::fp32_output;
use mmlatent_core::nets::norm::{group_norm, GroupNorm};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// GroupNorm → SiLU → Linear, twice, with the time embedding added after the first linear map.
#[derive(Debug)]
struct ResBlock {
    norm0: GroupNorm,
    lin0: nn::Linear,
    time: nn::Linear,
    norm1: GroupNorm,
    lin1: nn::Linear,
    skip: Option<nn::Linear>,
}

impl ResBlock {
    fn new(p: nn::Path, i: i64, o: i64, time_dim: i64, groups: i64) -> Self {
        Self {
            norm0: group_norm(&p / "n0", groups, i),
            lin0: nn::linear(&p / "l0", i, o, Default::default()),
            time: nn::linear(&p / "time", time_dim, o, Default::default()),
            norm1: group_norm(&p / "n1", groups, o),
            lin1: nn::linear(&p / "l1", o, o, Default::default()),
            skip: (i != o).then(|| nn::linear(&p / "skip", i, o, Default::default())),
        }
    }

    /// `temb` is the SiLU of the shared time embedding.
    fn forward(&self, x: &Tensor, temb: &Tensor) -> Tensor {
        let h = self.lin0.forward(&self.norm0.forward(x).silu()) + self.time.forward(temb);
        let h = self.lin1.forward(&self.norm1.forward(&h).silu());
        match &self.skip {
            Some(s) => h + s.forward(x),
            None => h + x,
        }
    }
}

/// The MLP U-Net predicting ε from (noisy latents `[B, D]`, τ `[B, M]`).
#[derive(Debug)]
pub struct ScoreNet {
    input: nn::Linear,
    time0: nn::Linear,
    time1: nn::Linear,
    downs: Vec<(ResBlock, nn::Linear)>,
    mid0: ResBlock,
    mid1: ResBlock,
    ups: Vec<(ResBlock, nn::Linear)>,
    last: ResBlock,
    out_norm: GroupNorm,
    out: nn::Linear,
    /// For the residual parameterisation: the SDE and the `[M, D]` 0/1 matrix that spreads
    /// a per-modality value over that modality's latent dimensions.
    gaussian_skip: Option<(VpSde, Tensor)>,
}

impl ScoreNet {
    /// A network for latents laid out as `layout` (one entry of τ per modality).
    pub fn new(p: &nn::Path, layout: &Layout, cfg: &ScoreConfig) -> Self {
        let (latent_dim, n_modalities) = (layout.total(), layout.num_modalities() as i64);
        let (w, td, g) = (cfg.width_for(latent_dim), cfg.time_dim, cfg.groups);
        let mut dims = vec![w];
        dims.extend(cfg.mults.iter().map(|m| m * w));
        let levels: Vec<(i64, i64)> = dims.windows(2).map(|d| (d[0], d[1])).collect();
        let downs = levels
            .iter()
            .enumerate()
            .map(|(i, &(di, dout))| {
                (
                    ResBlock::new(p / format!("down{i}"), di, di, td, g),
                    nn::linear(p / format!("downl{i}"), di, dout, Default::default()),
                )
            })
            .collect();
        let mid = *dims.last().expect("at least one level");
        let ups = levels
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &(di, dout))| {
                (
                    ResBlock::new(p / format!("up{i}"), dout + di, dout, td, g),
                    nn::linear(p / format!("upl{i}"), dout, di, Default::default()),
                )
            })
            .collect();
        let zero = nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true };
        let gaussian_skip = (cfg.parameterization == ScoreParameterization::Residual)
            .then(|| (VpSde::new(cfg.beta_min, cfg.beta_max), layout.spread(p.device())));
        Self {
            input: nn::linear(p / "input", latent_dim, w, Default::default()),
            time0: nn::linear(p / "time0", n_modalities, td, Default::default()),
            time1: nn::linear(p / "time1", td, td, Default::default()),
            downs,
            mid0: ResBlock::new(p / "mid0", mid, mid, td, g),
            mid1: ResBlock::new(p / "mid1", mid, mid, td, g),
            ups,
            last: ResBlock::new(p / "last", 2 * w, w, td, g),
            out_norm: group_norm(p / "out_norm", g, w),
            out: nn::linear(p / "out", w, latent_dim, zero),
            gaussian_skip,
        }
    }

    /// ε̂(x, τ): `x` `[B, D]`, `tau` `[B, M]` or `[1, M]` (broadcast over the batch) → `[B, D]`.
    pub fn forward(&self, x: &Tensor, tau: &Tensor) -> Tensor {
        let temb = self.time1.forward(&self.time0.forward(tau).gelu("none")).silu();
        let r = self.input.forward(x);
        let mut h = r.shallow_clone();
        let mut skips = Vec::with_capacity(self.downs.len());
        for (block, down) in &self.downs {
            h = block.forward(&h, &temb);
            skips.push(h.shallow_clone());
            h = down.forward(&h);
        }
        h = self.mid1.forward(&self.mid0.forward(&h, &temb), &temb);
        for (block, up) in &self.ups {
            let skip = skips.pop().expect("one skip per level");
            h = up.forward(&block.forward(&Tensor::cat(&[h, skip], 1), &temb));
        }
        h = self.last.forward(&Tensor::cat(&[h, r], 1), &temb);
        let f = fp32_output(&self.out.forward(&self.out_norm.forward(&h).silu()));
        match &self.gaussian_skip {
            // σ(τ) per modality, spread over its dimensions: [B or 1, M] · [M, D].
            Some((sde, spread)) => f + sde.sigma_of(&tau.to_kind(Kind::Float)).matmul(spread) * x,
            None => f,
        }
    }
}
