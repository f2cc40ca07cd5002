//! The frame every multimodal VAE shares: one encoder per modality giving a posterior over its
//! latent (the core encoder with `2 × latent` outputs: location, then log σ² or raw Laplace
//! scale), one decoder per modality with its likelihood, and the standard prior.
//!
//! Latents may carry leading sample dimensions (`[K, N, D]`): [`Frame::decode`] and
//! [`Frame::log_lik`] fold them into the batch and back.

use crate::dist::{Dist, DistKind};
use anyhow::Result;
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::nets::{self, Net, NetSize};
use mmlatent_core::ModalitySpec;
use tch::nn;
use tch::Tensor;

/// Encoders, decoders and likelihoods of all modalities.
pub struct Frame {
    pub specs: Vec<ModalitySpec>,
    pub encoders: Vec<Net>,
    pub decoders: Vec<Net>,
    pub likelihoods: Vec<Likelihood>,
    /// Family of posteriors and prior.
    pub posterior: DistKind,
    /// Latent dimension each encoder describes.
    pub enc_latent: i64,
    pub device: tch::Device,
}

impl Frame {
    /// Builds the networks under `p`: encoders of `enc_latent` latent dimensions and decoders
    /// reading `dec_latent` dimensions; modality `m` is read with `likelihoods[m]`.
    pub fn new(
        p: &nn::Path,
        specs: &[ModalitySpec],
        enc_latent: i64,
        dec_latent: i64,
        size: NetSize,
        posterior: DistKind,
        likelihoods: Vec<Likelihood>,
    ) -> Result<Self> {
        let mut encoders = vec![];
        let mut decoders = vec![];
        for (m, spec) in specs.iter().enumerate() {
            encoders.push(nets::encoder(p / format!("enc{m}"), spec, 2 * enc_latent, size)?);
            decoders.push(nets::decoder(p / format!("dec{m}"), spec, dec_latent, size)?);
        }
        Ok(Self { specs: specs.to_vec(), encoders, decoders, likelihoods, posterior, enc_latent, device: p.device() })
    }

    pub fn num_modalities(&self) -> usize {
        self.specs.len()
    }

    /// The posterior of modality `m` split into parts of the given sizes (summing to the
    /// encoder's latent), each with its own scale normalisation.
    pub fn encode_parts(&self, m: usize, x: &Tensor, parts: &[i64]) -> Vec<Dist> {
        let out = self.encoders[m].forward(x);
        let loc = out.narrow(-1, 0, self.enc_latent);
        let raw = out.narrow(-1, self.enc_latent, self.enc_latent);
        let mut start = 0;
        parts
            .iter()
            .map(|&len| {
                let d = Dist::from_raw(self.posterior, loc.narrow(-1, start, len), &raw.narrow(-1, start, len));
                start += len;
                d
            })
            .collect()
    }

    /// The posterior q(z | x_m) over the whole encoder latent.
    pub fn encode(&self, m: usize, x: &Tensor) -> Dist {
        self.encode_parts(m, x, &[self.enc_latent]).pop().expect("one part")
    }

    /// The posteriors of the modalities present in `given`.
    pub fn encode_given(&self, given: &[Option<Tensor>]) -> Vec<Option<Dist>> {
        given.iter().enumerate().map(|(m, x)| x.as_ref().map(|x| self.encode(m, x))).collect()
    }

    /// The standard prior of the frame's family, with parameters shaped like `like`.
    pub fn prior(&self, like: &Tensor) -> Dist {
        Dist::standard(self.posterior, like)
    }

    /// Raw decoder output for modality `m` from latents `[.., D]` (leading dims kept).
    pub fn decode(&self, m: usize, z: &Tensor) -> Tensor {
        let size = z.size();
        let lead = &size[..size.len() - 1];
        let out = self.decoders[m].forward(&z.reshape([-1, size[size.len() - 1]]));
        let mut shape = lead.to_vec();
        shape.extend(&out.size()[1..]);
        out.reshape(shape)
    }

    /// log p(x_m | output) per item, with the output's leading sample dims (`[K, N]` or `[N]`).
    pub fn log_lik(&self, m: usize, output: &Tensor, x: &Tensor) -> Tensor {
        let item_dims = x.dim() - 1;
        let out_size = output.size();
        let out_item_dims = match self.specs[m].kind {
            mmlatent_core::ModalityKind::Text { .. } => item_dims + 1,
            _ => item_dims,
        };
        let lead: Vec<i64> = out_size[..out_size.len() - out_item_dims].to_vec();
        let batch: i64 = lead.iter().product();
        let mut flat_out = vec![batch];
        flat_out.extend(&out_size[out_size.len() - out_item_dims..]);
        let mut x_shape = lead.clone();
        x_shape.extend(&x.size()[1..]);
        let x = x.expand(&x_shape, false).reshape([batch].iter().chain(&x.size()[1..]).copied().collect::<Vec<_>>());
        self.likelihoods[m].log_prob(&output.reshape(flat_out), &x).reshape(lead)
    }

    /// The likelihood mean of modality `m` in data space from latents `[N, D]`.
    pub fn decode_mean(&self, m: usize, z: &Tensor) -> Tensor {
        self.likelihoods[m].mean(&self.decode(m, z))
    }

    /// Σ_m log p(x_m | z) for every modality, `[..lead]`.
    pub fn log_lik_all(&self, xs: &[Tensor], z: &Tensor) -> Tensor {
        let terms = xs.iter().enumerate().map(|(m, x)| self.log_lik(m, &self.decode(m, z), x));
        terms.reduce(|a, b| a + b).expect("at least one modality")
    }

    /// Decodes the modalities not given from their decoder inputs `latents[m]`; given ones are
    /// returned as given (moved to the frame's device).
    pub fn complete(&self, given: &[Option<Tensor>], latents: &[Tensor]) -> Vec<Tensor> {
        given
            .iter()
            .enumerate()
            .map(|(m, g)| match g {
                Some(x) => x.to_device(self.device),
                None => self.decode_mean(m, &latents[m]),
            })
            .collect()
    }
}
