//! Stage 1 of MLD: one deterministic autoencoder per modality, trained alone with the
//! modality's likelihood as its loss (no KL term, no gradient shared between modalities).

use crate::config::AeConfig;
use anyhow::{Context, Result};
use mmlatent_core::dataset::{to_data_space, Split};
use mmlatent_core::family::TrainContext;
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::loader::StepLoader;
use mmlatent_core::nets::{self, Net, NetSize};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::run::RunDir;
use mmlatent_core::side_by_side::Job;
use mmlatent_core::training::{self, Stage, Which};
use mmlatent_core::ModalitySpec;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// A deterministic autoencoder of one modality, with its own variables.
pub struct Autoencoder {
    pub spec: ModalitySpec,
    pub latent_dim: i64,
    pub likelihood: Likelihood,
    pub vs: nn::VarStore,
    encoder: Net,
    decoder: Net,
}

impl Autoencoder {
    pub fn new(
        spec: &ModalitySpec,
        latent_dim: i64,
        likelihood: Likelihood,
        width: i64,
        device: Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let size = NetSize { width };
        let encoder = nets::encoder(vs.root() / "enc", spec, latent_dim, size)?;
        let decoder = nets::decoder(vs.root() / "dec", spec, latent_dim, size)?;
        Ok(Self { spec: spec.clone(), latent_dim, likelihood, vs, encoder, decoder })
    }

    /// The stage (and checkpoint) name of this modality's autoencoder.
    pub fn stage_name(spec: &ModalitySpec) -> String {
        format!("ae_{}", spec.name)
    }

    /// Data-space batch → latents `[N, latent_dim]`.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.encoder.forward(x)
    }

    /// Latents → raw decoder output (read by the likelihood).
    pub fn decode_raw(&self, z: &Tensor) -> Tensor {
        self.decoder.forward(z)
    }

    /// Latents → data space (the likelihood's mean: images in [0, 1], text ids).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        self.likelihood.mean(&self.decode_raw(z))
    }

    /// Mean negative log-likelihood per item of the reconstruction of `x`.
    pub fn loss(&self, x: &Tensor) -> Tensor {
        -self.likelihood.log_prob(&self.decode_raw(&self.encode(x)), x).mean(Kind::Float)
    }

    /// Encodes a whole stored split (modality `m`) in batches, without gradients.
    pub fn encode_split(&self, split: &Split, m: usize, batch: i64) -> Tensor {
        let _guard = tch::no_grad_guard();
        let items = &split.items[m];
        let n = items.size()[0];
        let device = self.vs.device();
        let chunks: Vec<Tensor> = (0..n)
            .step_by(batch as usize)
            .map(|start| {
                let len = batch.min(n - start);
                self.encode(&to_data_space(&items.narrow(0, start, len), &self.spec).to_device(device))
            })
            .collect();
        Tensor::cat(&chunks, 0)
    }

    /// Loads the trained weights of this autoencoder from a run.
    pub fn load(&mut self, run: &RunDir) -> Result<()> {
        training::load_weights(run, &Self::stage_name(&self.spec), Which::Latest, &[(WEIGHTS, &self.vs)])
            .with_context(|| format!("autoencoder of modality {}", self.spec.name))?;
        Ok(())
    }
}

/// The name of the autoencoder's weights in its checkpoint sets.
pub const WEIGHTS: &str = "autoencoder";

/// The training (or resuming, or loading when done) of the autoencoder of modality `m` on the
/// training split of `ctx`, as stage `ae_<modality>` (stage m + 1 of the run's M + 1) through
/// core's training loop (constant learning rate `cfg.lr`), packed as a job that may run on
/// another thread beside the other modalities' ([`mmlatent_core::side_by_side`]). Leaves the trained weights
/// in `ae`.
pub fn training_job<'a>(ae: &'a mut Autoencoder, m: usize, ctx: &TrainContext<'a>, cfg: &'a AeConfig) -> Job<'a> {
    let name = Autoencoder::stage_name(&ae.spec);
    let (split, seed) = (&ctx.dataset.train, ctx.experiment.seed);
    // Only this modality's items go through the loader (shallow copies: a job owns what it reads).
    let single = split.modality(m);
    let (run, train, stages) = (ctx.run, &ctx.experiment.train, ctx.dataset.num_modalities() + 1);
    Box::new(move || {
        let ae = &*ae;
        let mut loader = StepLoader::new(
            &single,
            std::slice::from_ref(&ae.spec),
            cfg.batch_size,
            seed ^ (m as u64 + 1),
            ae.vs.device(),
        )?;
        Stage::new(run, &name, cfg.steps, train, seed)
            .position(m + 1, stages)
            .constant_lr()
            .weights(WEIGHTS, &ae.vs)
            .optimiser("adam", Adam::new(&ae.vs, AdamConfig::adam(cfg.lr)))
            .run(|step, opts| {
                let batch = loader.batch(step)?;
                let loss = ae.loss(&batch.items[0]);
                opts[0].backward_step(&loss)?;
                Ok(vec![("nll", loss.double_value(&[]))])
            })?;
        Ok(())
    })
}
