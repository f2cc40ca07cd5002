//! Encoders and decoders chosen by modality kind and size, shared by every model family.
//!
//! | modality                 | encoder / decoder                                    |
//! |--------------------------|------------------------------------------------------|
//! | image 28×28 or 32×32     | [`image::conv_encoder`] / [`image::conv_decoder`]     |
//! | image 64×64              | [`image::resnet_encoder`] / [`image::resnet_decoder`] |
//! | text (length ÷ 8)        | [`text::text_encoder`] / [`text::text_decoder`]       |
//! | vector                   | [`mlp`]                                              |
//!
//! Encoders map a batch in data space to `[N, out_dim]` (models that need a mean and a
//! log-variance ask for `2 × latent` and split). Decoders map `[N, in_dim]` to the raw output
//! that the modality's [`crate::likelihood::Likelihood`] reads. Every network built here returns
//! fp32 even when it runs in bf16 ([`fp32_output`], see [`crate::precision`]).

pub mod image;
pub mod norm;
pub mod text;

use crate::{ModalityKind, ModalitySpec};
use anyhow::{bail, Result};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// A boxed network: every encoder, decoder and MLP of the project.
pub type Net = Box<dyn Module>;

/// Size of the networks; `width` is the channel count of the first conv layer (doubled per
/// down-sampling) or the hidden width of MLPs divided by 8.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetSize {
    pub width: i64,
}

impl Default for NetSize {
    fn default() -> Self {
        Self { width: 32 }
    }
}

/// An encoder for `spec` giving `[N, out_dim]`.
pub fn encoder(p: nn::Path, spec: &ModalitySpec, out_dim: i64, size: NetSize) -> Result<Net> {
    Ok(Box::new(Fp32Output(match spec.kind {
        ModalityKind::Image { channels, height, width } => match (height, width) {
            (28, 28) | (32, 32) => image::conv_encoder(p, channels, height, out_dim, size.width),
            (64, 64) => image::resnet_encoder(p, channels, out_dim, size.width),
            _ => bail!("no image encoder for {height}×{width} images of modality {} (28, 32 or 64 square)", spec.name),
        },
        ModalityKind::Text { max_len, vocab_size } => {
            text::check_length(spec, max_len)?;
            text::text_encoder(p, max_len, vocab_size, out_dim, size.width)
        }
        ModalityKind::Vector { dim } => mlp(p, &[dim, 8 * size.width, 8 * size.width, out_dim]),
    })))
}

/// A decoder for `spec` from `[N, in_dim]`.
pub fn decoder(p: nn::Path, spec: &ModalitySpec, in_dim: i64, size: NetSize) -> Result<Net> {
    Ok(Box::new(Fp32Output(match spec.kind {
        ModalityKind::Image { channels, height, width } => match (height, width) {
            (28, 28) | (32, 32) => image::conv_decoder(p, in_dim, channels, height, size.width),
            (64, 64) => image::resnet_decoder(p, in_dim, channels, size.width),
            _ => bail!("no image decoder for {height}×{width} images of modality {} (28, 32 or 64 square)", spec.name),
        },
        ModalityKind::Text { max_len, vocab_size } => {
            text::check_length(spec, max_len)?;
            text::text_decoder(p, in_dim, max_len, vocab_size, size.width)
        }
        ModalityKind::Vector { dim } => mlp(p, &[in_dim, 8 * size.width, 8 * size.width, dim]),
    })))
}

/// A multilayer perceptron `dims[0] → … → dims[last]` with SiLU between layers (none after
/// the last), fp32 out.
pub fn mlp(p: nn::Path, dims: &[i64]) -> nn::Sequential {
    let mut seq = nn::seq();
    for (i, w) in dims.windows(2).enumerate() {
        seq = seq.add(nn::linear(&p / format!("l{i}"), w[0], w[1], Default::default()));
        if i + 2 < dims.len() {
            seq = seq.add_fn(|x| x.silu());
        }
    }
    seq.add_fn(fp32_output)
}

/// A network's output in fp32: under bf16 autocast ([`crate::precision`]) the last layer gives
/// bf16, and what reads it (likelihoods, KL terms, energies, losses and their sums) must not.
/// Other kinds pass unchanged.
pub fn fp32_output(x: &Tensor) -> Tensor {
    match x.kind() {
        Kind::BFloat16 | Kind::Half => x.to_kind(Kind::Float),
        _ => x.shallow_clone(),
    }
}

/// `M` with its output through [`fp32_output`].
#[derive(Debug)]
struct Fp32Output<M>(M);

impl<M: Module> Module for Fp32Output<M> {
    fn forward(&self, x: &Tensor) -> Tensor {
        fp32_output(&self.0.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    fn round_trip(spec: ModalitySpec) {
        let vs = nn::VarStore::new(Device::Cpu);
        let enc = encoder(vs.root() / "enc", &spec, 10, NetSize::default()).unwrap();
        let dec = decoder(vs.root() / "dec", &spec, 10, NetSize::default()).unwrap();
        let x = match spec.kind {
            ModalityKind::Text { vocab_size, .. } => {
                Tensor::randint(vocab_size, spec.batch_shape(3), (Kind::Int64, Device::Cpu))
            }
            _ => Tensor::rand(spec.batch_shape(3), (Kind::Float, Device::Cpu)),
        };
        let z = enc.forward(&x);
        assert_eq!(z.size(), vec![3, 10], "{}", spec.describe());
        let out = dec.forward(&z);
        let mut expect = spec.batch_shape(3);
        if let ModalityKind::Text { vocab_size, .. } = spec.kind {
            expect.push(vocab_size);
        }
        assert_eq!(out.size(), expect, "{}", spec.describe());
    }

    #[test]
    fn every_kind_round_trips_shapes() {
        round_trip(ModalitySpec::image("a", 1, 28, 28));
        round_trip(ModalitySpec::image("b", 3, 28, 28));
        round_trip(ModalitySpec::image("c", 3, 32, 32));
        round_trip(ModalitySpec::image("d", 3, 64, 64));
        round_trip(ModalitySpec::text("e", 32, 50));
        round_trip(ModalitySpec::vector("f", 10));
    }

    #[test]
    fn unsupported_sizes_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = encoder(vs.root(), &ModalitySpec::image("x", 3, 30, 30), 4, NetSize::default()).err().unwrap();
        assert!(err.to_string().contains("30×30"));
        assert!(decoder(vs.root(), &ModalitySpec::text("t", 30, 5), 4, NetSize::default()).is_err());
    }
}
