//! Stage 1 of MLD: one deterministic autoencoder per modality, trained alone with the
//! modality's likelihood as its loss (no KL term, no gradient shared between modalities).

use crate::config::AeConfig;
use anyhow::{Context, Result};
use mmlatent_core::checkpoint;
use mmlatent_core::config::TrainConfig;
use mmlatent_core::dataset::{to_data_space, Split};
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::nets::{self, Net, NetSize};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::run::RunDir;
use mmlatent_core::training::Stage;
use mmlatent_core::ModalitySpec;
use mmlatent_data::BatchLoader;
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
        checkpoint::load_varstore(&mut self.vs, &run.checkpoint(&Self::stage_name(&self.spec)))
            .with_context(|| format!("autoencoder of modality {}", self.spec.name))
    }
}

/// Trains (or resumes, or skips when done) the autoencoder of modality `m` on `split`, as stage
/// `ae_<modality>`. Leaves the trained weights in `ae`.
pub fn train_autoencoder(
    ae: &mut Autoencoder,
    m: usize,
    split: &Split,
    run: &RunDir,
    cfg: &AeConfig,
    train_cfg: &TrainConfig,
    seed: u64,
) -> Result<()> {
    let name = Autoencoder::stage_name(&ae.spec);
    let path = run.checkpoint(&name);
    let stage = Stage::begin(run, &name, cfg.steps, train_cfg)?;
    if stage.is_done() {
        return ae.load(run);
    }
    let mut stage = stage;
    if stage.start_step() > 0 {
        ae.load(run)?;
    }
    // Only this modality's items go through the loader.
    let single = Split { items: vec![split.items[m].shallow_clone()], labels: split.labels.shallow_clone() };
    let spec = std::slice::from_ref(&ae.spec);
    let mut loader = BatchLoader::with_skip(
        &single,
        spec,
        cfg.batch_size,
        seed ^ (m as u64 + 1),
        ae.vs.device(),
        stage.start_step(),
    );
    let mut opt = Adam::new(&ae.vs, AdamConfig::adam(cfg.lr));
    let opt_path = run.optimizer_checkpoint(&name);
    if stage.start_step() > 0 {
        opt.restore_if_present(&opt_path)?;
    }
    let save = |opt: &Adam| -> Result<()> {
        checkpoint::save_varstore(&ae.vs, &path)?;
        opt.save(&opt_path)
    };
    for step in stage.start_step()..cfg.steps {
        let batch = loader.next_batch();
        let loss = ae.loss(&batch.items[0]);
        opt.backward_step(&loss)?;
        stage.record(step, &[("nll", loss.double_value(&[]))], || save(&opt))?;
    }
    stage.finish(|| save(&opt))
}
