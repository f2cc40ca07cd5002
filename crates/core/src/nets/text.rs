//! Text networks over fixed-length token sequences (the CUB caption architecture of MMVAE:
//! an embedding and strided 1-D convolutions, mirrored by transposed convolutions to logits).

use crate::ModalitySpec;
use anyhow::{bail, Result};
use tch::nn;

/// Three stride-2 stages need a length divisible by 8.
pub fn check_length(spec: &ModalitySpec, max_len: i64) -> Result<()> {
    if max_len < 8 || max_len % 8 != 0 {
        bail!("text modality {} has max length {max_len}; the text networks need a multiple of 8", spec.name);
    }
    Ok(())
}

fn conv1d(p: nn::Path, i: i64, o: i64) -> nn::Conv1D {
    nn::conv1d(p, i, o, 4, nn::ConvConfig { stride: 2, padding: 1, ..Default::default() })
}

fn deconv1d(p: nn::Path, i: i64, o: i64) -> nn::ConvTranspose1D {
    nn::conv_transpose1d(p, i, o, 4, nn::ConvTransposeConfig { stride: 2, padding: 1, ..Default::default() })
}

/// Token ids `[N, L]` → `[N, out_dim]`.
pub fn text_encoder(p: nn::Path, max_len: i64, vocab: i64, out_dim: i64, w: i64) -> nn::Sequential {
    let emb = 4 * w;
    nn::seq()
        .add(nn::embedding(&p / "embed", vocab, emb, Default::default()))
        .add_fn(|x| x.transpose(1, 2))
        .add(conv1d(&p / "c0", emb, 4 * w))
        .add_fn(|x| x.silu())
        .add(conv1d(&p / "c1", 4 * w, 8 * w))
        .add_fn(|x| x.silu())
        .add(conv1d(&p / "c2", 8 * w, 8 * w))
        .add_fn(|x| x.silu().flatten(1, -1))
        .add(nn::linear(&p / "out", 8 * w * (max_len / 8), out_dim, Default::default()))
}

/// `[N, in_dim]` → logits `[N, L, vocab]`.
pub fn text_decoder(p: nn::Path, in_dim: i64, max_len: i64, vocab: i64, w: i64) -> nn::Sequential {
    let l8 = max_len / 8;
    nn::seq()
        .add(nn::linear(&p / "in", in_dim, 8 * w * l8, Default::default()))
        .add_fn(move |x| x.silu().view([-1, 8 * w, l8]))
        .add(deconv1d(&p / "d0", 8 * w, 8 * w))
        .add_fn(|x| x.silu())
        .add(deconv1d(&p / "d1", 8 * w, 4 * w))
        .add_fn(|x| x.silu())
        .add(deconv1d(&p / "d2", 4 * w, 4 * w))
        .add_fn(|x| x.silu().transpose(1, 2))
        .add(nn::linear(&p / "logits", 4 * w, vocab, Default::default()))
}
