//! Stage 1 of MLD: one deterministic autoencoder per modality, trained alone with the
//! modality's likelihood as its loss (no KL term, no gradient shared between modalities) — the
//! seed's MLD. The contrastive variant trains the same autoencoders together
//! ([`crate::contrastive`]).

use crate::config::AeConfig;
use anyhow::{Context, Result};
use mmlatent_core::dataset::{to_data_space, Split};
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::nets::{self, Net, NetSize};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::ModalitySpec;
use mmlatent_train::family::TrainContext;
use mmlatent_train::loader::StepLoader;
use mmlatent_train::run::RunDir;
use mmlatent_train::side_by_side::Job;
use mmlatent_train::training::{self, Stage, Which};
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
    /// Trained together with the others (the contrastive variant): its weights are part
    /// `ae_<modality>` of the joint stage's sets, not a stage of their own.
    pub trained_jointly: bool,
}

impl Autoencoder {
    pub fn new(
        spec: &ModalitySpec,
        latent_dim: i64,
        likelihood: Likelihood,
        width: i64,
        trained_jointly: bool,
        device: Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let size = NetSize { width };
        let encoder = nets::encoder(vs.root() / "enc", spec, latent_dim, size)?;
        let decoder = nets::decoder(vs.root() / "dec", spec, latent_dim, size)?;
        Ok(Self { spec: spec.clone(), latent_dim, likelihood, vs, encoder, decoder, trained_jointly })
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
        self.reconstruction_loss(&self.encode(x), x)
    }

    /// Mean negative log-likelihood per item of `x` under the decoding of its latents `z`.
    pub fn reconstruction_loss(&self, z: &Tensor, x: &Tensor) -> Tensor {
        -self.likelihood.log_prob(&self.decode_raw(z), x).mean(Kind::Float)
    }

    /// The mean reconstruction loss of the stored items `items` (raw, as a split keeps them),
    /// without gradients, in batches.
    pub fn held_out_loss(&self, items: &Tensor, batch: i64) -> f64 {
        let _guard = tch::no_grad_guard();
        let n = items.size()[0];
        let device = self.vs.device();
        let mut total = 0.0;
        for start in (0..n).step_by(batch.max(1) as usize) {
            let len = batch.min(n - start);
            let x = to_data_space(&items.narrow(0, start, len), &self.spec).to_device(device);
            total += self.loss(&x).double_value(&[]) * len as f64;
        }
        total / n.max(1) as f64
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

    /// Where a run keeps this autoencoder's trained weights: (stage, part of its sets).
    pub fn checkpoint_place(&self) -> (String, String) {
        if self.trained_jointly {
            (crate::contrastive::STAGE.to_string(), Self::stage_name(&self.spec))
        } else {
            (Self::stage_name(&self.spec), WEIGHTS.to_string())
        }
    }

    /// Loads the trained weights of this autoencoder from a run.
    pub fn load(&mut self, run: &RunDir) -> Result<()> {
        let (stage, part) = self.checkpoint_place();
        training::load_weights(run, &stage, Which::Latest, &[(&part, &self.vs)])
            .with_context(|| format!("autoencoder of modality {}", self.spec.name))?;
        Ok(())
    }
}

/// The name of the autoencoder's weights in its checkpoint sets.
pub const WEIGHTS: &str = "autoencoder";

/// The training (or resuming, or loading when done) of the autoencoder of modality `m` on the
/// training split of `ctx`, as stage `ae_<modality>` (stage m + 1 of the run's M + 1) through
/// the training loop (constant learning rate `cfg.lr`), packed as a job that may run on
/// another thread beside the other modalities' ([`mmlatent_train::side_by_side`]). With `held_out`
/// (the modality's raw held-out items) it logs their reconstruction loss as `val_loss`. Leaves
/// the trained weights in `ae`.
pub fn training_job<'a>(
    ae: &'a mut Autoencoder,
    m: usize,
    ctx: &TrainContext<'a>,
    cfg: &'a AeConfig,
    held_out: Option<Tensor>,
) -> Job<'a> {
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
        let mut stage = Stage::new(run, &name, cfg.steps, train, seed)
            .position(m + 1, stages)
            .constant_lr()
            .weights(WEIGHTS, &ae.vs)
            .optimiser("adam", Adam::new(&ae.vs, AdamConfig::adam(cfg.lr)));
        if let Some(items) = &held_out {
            stage = stage.validation(move || Ok(ae.held_out_loss(items, crate::contrastive::HELD_OUT_BATCH)));
        }
        stage.run(|step, opts| {
            let batch = loader.batch(step)?;
            let loss = ae.loss(&batch.items[0]);
            opts[0].backward_step(&loss)?;
            Ok(vec![("nll", loss.double_value(&[]))])
        })?;
        Ok(())
    })
}
