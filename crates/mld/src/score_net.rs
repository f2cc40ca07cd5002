//! The score network of MLD: an MLP "U-Net" on the concatenated latents, conditioned on the
//! multi-time vector τ = [t_1 … t_M] through a learned embedding (Linear → GELU → Linear).
//!
//! Every block is residual: GroupNorm → SiLU → Linear, plus the projected time embedding, then
//! GroupNorm → SiLU → Linear, plus a (linear) skip. Down levels keep their activations for skip
//! connections that the up levels concatenate; the input projection is concatenated before the
//! last block. The output layer starts at zero and predicts the noise ε of the forward process.

use crate::config::ScoreConfig;
use mmlatent_core::nets::norm::{group_norm, GroupNorm};
use tch::nn::{self, Module};
use tch::Tensor;

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
}

impl ScoreNet {
    /// A network for latents of total size `latent_dim` and `n_modalities` entries of τ.
    pub fn new(p: &nn::Path, latent_dim: i64, n_modalities: i64, cfg: &ScoreConfig) -> Self {
        let (w, td, g) = (cfg.width, cfg.time_dim, cfg.groups);
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
        self.out.forward(&self.out_norm.forward(&h).silu())
    }
}
