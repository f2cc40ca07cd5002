//! A trained MLD model: the autoencoders, the latent statistics and the EMA score network,
//! with [`MultimodalModel::generate`] for joint and any-subset conditional generation.

use crate::autoencoder::Autoencoder;
use crate::config::{LatentNormKind, MldConfig, SamplerConfig, SamplerMethod};
use crate::guidance::{ConditionalGuidance, JointGuidance};
use crate::sampler::{ancestral, euler_maruyama, heun, Absent, Conditioning, Denoiser, Layout, Mutual, Noised};
use crate::score_net::ScoreNet;
use crate::sde::VpSde;
use anyhow::{ensure, Result};
use mmlatent_core::model::LatentView;
use mmlatent_core::{ModalitySpec, MultimodalModel};
use mmlatent_train::checkpoint;
use mmlatent_train::run::RunDir;
use mmlatent_train::training::{self, Which};
use tch::{nn, Device, Kind, Tensor};

/// Checkpoint name of the latent statistics (mean and std per dimension).
pub const STATS: &str = "latent_stats";
/// The score network's stage, and the name of its training weights in the stage's sets.
pub const SCORE: &str = "score";
/// Checkpoint name of the EMA weights used for sampling.
pub const SCORE_EMA: &str = "score_ema";

/// The invertible affine map between the concatenated latents and the space stage 2 diffuses
/// in: x = (z − mean)·F, z = x·F⁻¹ + mean, with F block-diagonal (one block per modality, so
/// that the multi-time masking still acts modality by modality). Saved as `latent_stats`.
pub struct LatentNorm {
    /// `[1, D]`.
    pub mean: Tensor,
    /// `[D, D]` F.
    pub forward_map: Tensor,
    /// `[D, D]` F⁻¹.
    pub inverse_map: Tensor,
}

/// The (unbiased) covariance `[D, D]` of the rows of `x` `[N, D]`, in `x`'s kind.
pub fn covariance(x: &Tensor) -> Tensor {
    let centred = x - x.mean_dim(0, true, x.kind());
    centred.transpose(0, 1).matmul(&centred) / (x.size()[0].max(2) - 1) as f64
}

/// Eigenvalues of a block's covariance below this fraction of their mean are raised to it
/// before whitening, so that (numerically) empty directions are not blown up to unit variance.
const EIGEN_FLOOR: f64 = 1e-3;

impl LatentNorm {
    /// Fitted on `latents` `[N, D]` laid out as `layout`. `Standardize`: F = diag(1/std) (a
    /// (near-)constant dimension keeps std 1). `Whiten`: per block with covariance C = U Λ Uᵀ,
    /// F = U Λ^(-1/2) Uᵀ (ZCA: the whitened coordinates stay close to the original ones).
    pub fn fit(latents: &Tensor, layout: &Layout, kind: LatentNormKind) -> Self {
        let latents = latents.to_kind(Kind::Double);
        let mean = latents.mean_dim(0, true, Kind::Double);
        let (forward_map, inverse_map) = match kind {
            LatentNormKind::Standardize => {
                let std = latents.std_dim(0, false, false);
                let std = std.where_self(&std.gt(1e-6), &std.ones_like());
                (std.reciprocal().diag(0), std.diag(0))
            }
            LatentNormKind::Whiten => {
                let (mut fwd, mut inv) = (Vec::new(), Vec::new());
                for m in 0..layout.num_modalities() {
                    let (offset, size) = layout.span(m);
                    let (eigenvalues, u) = covariance(&latents.narrow(1, offset, size)).linalg_eigh("L");
                    let floor = EIGEN_FLOOR * eigenvalues.mean(Kind::Double).double_value(&[]).max(1e-12);
                    let root = eigenvalues.clamp_min(floor).sqrt();
                    fwd.push(u.matmul(&root.reciprocal().diag(0)).matmul(&u.transpose(0, 1)));
                    inv.push(u.matmul(&root.diag(0)).matmul(&u.transpose(0, 1)));
                }
                (Tensor::block_diag(&fwd), Tensor::block_diag(&inv))
            }
        };
        let f = |t: Tensor| t.to_kind(Kind::Float);
        Self { mean: f(mean), forward_map: f(forward_map), inverse_map: f(inverse_map) }
    }

    pub fn forward(&self, z: &Tensor) -> Tensor {
        (z - &self.mean).matmul(&self.forward_map)
    }

    pub fn inverse(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.inverse_map) + &self.mean
    }

    pub fn save(&self, run: &RunDir) -> Result<()> {
        let tensors = [("mean", &self.mean), ("forward", &self.forward_map), ("inverse", &self.inverse_map)];
        checkpoint::save_tensors(&tensors, &run.checkpoint(STATS))
    }

    /// Loads the map of a run; runs from before whitening existed hold `mean` and `std`.
    pub fn load(run: &RunDir, dim: i64, device: Device) -> Result<Self> {
        let path = run.checkpoint(STATS);
        let tensors = checkpoint::load_tensors(&path)?;
        let take = |name: &str| checkpoint::take_tensor(&tensors, name, &path).map(|t| t.to_device(device));
        let mean = take("mean")?;
        let (forward_map, inverse_map) = match take("std") {
            Ok(std) => (std.reciprocal().view([-1]).diag(0), std.view([-1]).diag(0)),
            Err(_) => (take("forward")?, take("inverse")?),
        };
        ensure!(
            mean.size() == [1, dim] && forward_map.size() == [dim, dim] && inverse_map.size() == [dim, dim],
            "{}: statistics of shapes {:?}, {:?}, {:?} for {dim} latent dimensions (config changed since training?)",
            path.display(),
            mean.size(),
            forward_map.size(),
            inverse_map.size()
        );
        Ok(Self { mean, forward_map, inverse_map })
    }
}

/// A trained MLD model.
pub struct MldModel {
    pub modalities: Vec<ModalitySpec>,
    pub autoencoders: Vec<Autoencoder>,
    pub latent_norm: LatentNorm,
    pub layout: Layout,
    pub sde: VpSde,
    pub t_eps: f64,
    /// The sampler `generate` uses; change it freely (e.g. to trace the NFE/coherence curve).
    pub sampler: SamplerConfig,
    /// Holds the EMA weights of `net`.
    pub score_vs: nn::VarStore,
    pub net: ScoreNet,
    device: Device,
}

/// Builds the autoencoders of `cfg` for `modalities` (untrained).
pub fn build_autoencoders(cfg: &MldConfig, modalities: &[ModalitySpec], device: Device) -> Result<Vec<Autoencoder>> {
    let sizes = cfg.latent_sizes(modalities);
    let likelihoods = cfg.likelihoods_for(modalities)?;
    modalities
        .iter()
        .zip(sizes.iter().zip(&likelihoods))
        .map(|(spec, (&dim, &lik))| {
            Autoencoder::new(spec, dim, lik, cfg.autoencoder.width, cfg.autoencoder.contrastive.is_some(), device)
        })
        .collect()
}

/// Builds a score network for `layout` in `vs`.
pub fn build_score_net(vs: &nn::VarStore, layout: &Layout, cfg: &MldConfig) -> ScoreNet {
    ScoreNet::new(&(vs.root() / "score"), layout, &cfg.score)
}

/// `cfg` with the width of `run`'s score network made explicit: the configured width; else the
/// one its score stage was trained with (the input layer's rows in its newest checkpoint set),
/// so that a run keeps its width when the rule of [`crate::config::ScoreConfig::width_for`]
/// changes; else the rule's, for a score stage not started yet.
pub fn with_run_width(cfg: &MldConfig, run: &RunDir, layout: &Layout) -> Result<MldConfig> {
    let mut cfg = cfg.clone();
    if cfg.score.width.is_none() {
        // A stage whose every set is damaged gets the rule's width here; resuming it then fails
        // with the list of damaged files.
        let newest = checkpoint::latest_set(&run.stage_dir(SCORE), training::SET_PREFIX, &|_| Ok(()), &mut |_| {})
            .ok()
            .flatten();
        let trained = match newest {
            Some((dir, _)) => checkpoint::tensor_shape(&dir.join(format!("{SCORE_EMA}.safetensors")), INPUT_WEIGHT)?,
            None => None,
        };
        cfg.score.width = Some(trained.map_or_else(|| cfg.score.width_for(layout.total()), |shape| shape[0]));
    }
    Ok(cfg)
}

/// The score network's first weight, `[width, D]`, as named in its checkpoint files.
const INPUT_WEIGHT: &str = "score.input.weight";

impl MldModel {
    /// Loads a trained run: autoencoders, statistics and the EMA score weights.
    pub fn load(run: &RunDir, modalities: &[ModalitySpec], cfg: &MldConfig, device: Device) -> Result<Self> {
        cfg.check(modalities)?;
        let mut autoencoders = build_autoencoders(cfg, modalities, device)?;
        for ae in &mut autoencoders {
            ae.load(run)?;
        }
        let layout = Layout::new(cfg.latent_sizes(modalities));
        let latent_norm = LatentNorm::load(run, layout.total(), device)?;
        let score_vs = nn::VarStore::new(device);
        let net = build_score_net(&score_vs, &layout, &with_run_width(cfg, run, &layout)?);
        training::load_weights(run, SCORE, Which::Latest, &[(SCORE_EMA, &score_vs)])?;
        Ok(Self {
            modalities: modalities.to_vec(),
            autoencoders,
            latent_norm,
            layout,
            sde: VpSde::new(cfg.score.beta_min, cfg.score.beta_max),
            t_eps: cfg.score.t_eps,
            sampler: cfg.sampler.clone(),
            score_vs,
            net,
            device,
        })
    }

    /// Score evaluations per sample of the current sampler (RePaint and guidance included): the
    /// larger of a joint and a conditional sample's, counted in items by running the sampler on
    /// one item with a denoiser that only counts, so that the samplers alone define their cost.
    pub fn score_evaluations(&self) -> usize {
        let items = std::cell::Cell::new(0);
        let counting = |x: &Tensor, _: &Tensor| {
            items.set(items.get() + x.size()[0] as usize);
            x.zeros_like()
        };
        let m = self.layout.num_modalities();
        let x0 = Tensor::zeros([1, self.layout.total()], (Kind::Float, Device::Cpu));
        let _guard = tch::no_grad_guard();
        let mut most = 0;
        for given in [vec![false; m], (0..m).map(|k| k == 0 && m > 1).collect()] {
            items.set(0);
            let _ = self.sample_with(&counting, &Conditioning::new(&self.layout, &given, x0.shallow_clone()));
            most = most.max(items.get());
        }
        most
    }

    /// Samples standardised latents under `cond` with the configured sampler.
    pub fn sample_latents(&self, cond: &Conditioning) -> Tensor {
        self.sample_with(&|x: &Tensor, tau: &Tensor| self.net.forward(x, tau), cond)
    }

    /// The configured sampler over `net`, guided as the config says for this mode: joint
    /// generation by `joint_guidance`, conditional generation by `conditional_guidance`.
    fn sample_with(&self, net: &dyn Denoiser, cond: &Conditioning) -> Tensor {
        let s = &self.sampler;
        // Only the wrapper a branch builds is initialised; `den` borrows it.
        let (mutual, absent, noised);
        let den: &dyn Denoiser = match (cond.any_given(), s.joint_guidance, s.conditional_guidance) {
            (false, JointGuidance::Mutual(w), _) | (true, _, ConditionalGuidance::Mutual(w)) => {
                mutual = Mutual { den: net, layout: &self.layout, guidance: w };
                &mutual
            }
            (true, _, ConditionalGuidance::Absent(w)) => {
                absent = Absent { den: net, cond, guidance: w };
                &absent
            }
            (true, _, ConditionalGuidance::Noised { weight }) => {
                noised = Noised { den: net, sde: &self.sde, cond, weight };
                &noised
            }
            (false, JointGuidance::None, _) | (true, _, ConditionalGuidance::None) => net,
        };
        match s.method {
            SamplerMethod::Euler => {
                let repaint = s.repaint.then_some((s.jump_length, s.jump_n_sample));
                euler_maruyama(den, &self.sde, cond, s.steps, self.t_eps, repaint)
            }
            SamplerMethod::Heun => heun(den, &self.sde, cond, s.steps, self.t_eps),
            SamplerMethod::Ancestral => ancestral(den, &self.sde, cond, s.steps),
        }
    }

    /// A data-space batch of modality `m`, on the model's device in the encoder's dtype.
    fn model_input(&self, m: usize, x: &Tensor) -> Tensor {
        let x = x.to_device(self.device);
        if self.autoencoders[m].spec.is_text() {
            x.to_kind(Kind::Int64)
        } else {
            x.to_kind(Kind::Float)
        }
    }

    /// The raw latents of one data-space batch per modality (`what` names the caller in errors).
    fn encode_each(&self, what: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let count = self.autoencoders.len();
        ensure!(inputs.len() == count, "{what}: {} inputs for {count} modalities", inputs.len());
        let _guard = tch::no_grad_guard();
        Ok(self.autoencoders.iter().enumerate().map(|(m, ae)| ae.encode(&self.model_input(m, &inputs[m]))).collect())
    }

    fn generate_chunk(&self, given: &[Option<Tensor>], n: i64) -> Vec<Tensor> {
        let parts: Vec<Tensor> = given
            .iter()
            .zip(&self.autoencoders)
            .enumerate()
            .map(|(m, (g, ae))| match g {
                Some(x) => ae.encode(&self.model_input(m, x)),
                None => Tensor::zeros([n, ae.latent_dim], (Kind::Float, self.device)),
            })
            .collect();
        let x0 = self.latent_norm.forward(&Tensor::cat(&parts, 1));
        let flags: Vec<bool> = given.iter().map(Option::is_some).collect();
        let cond = Conditioning::new(&self.layout, &flags, x0);
        let z = self.latent_norm.inverse(&self.sample_latents(&cond));
        given
            .iter()
            .enumerate()
            .map(|(m, g)| match g {
                Some(x) => x.to_device(self.device),
                None => self.decode_block(m, &z),
            })
            .collect()
    }

    /// Modality `m`'s block of the (not standardised) latents `z`, decoded into data space.
    fn decode_block(&self, m: usize, z: &Tensor) -> Tensor {
        let (offset, size) = self.layout.span(m);
        self.autoencoders[m].decode(&z.narrow(1, offset, size))
    }
}

/// Largest batch sampled at once by `generate`.
const CHUNK: i64 = 2048;

impl LatentView for MldModel {
    fn latent_spans(&self) -> Vec<(i64, i64)> {
        (0..self.layout.num_modalities()).map(|m| self.layout.span(m)).collect()
    }

    fn encode(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let parts = self.encode_each("encode", inputs)?;
        Ok(self.latent_norm.forward(&Tensor::cat(&parts, 1)))
    }

    fn reconstruct(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let latents = self.encode_each("reconstruct", inputs)?;
        let _guard = tch::no_grad_guard();
        Ok(self.autoencoders.iter().zip(&latents).map(|(ae, z)| ae.decode(z)).collect())
    }

    fn sample_joint_latents(&self, n: i64) -> Result<Tensor> {
        ensure!(n > 0, "sample_joint_latents: asked for {n} samples");
        let _guard = tch::no_grad_guard();
        let chunks: Vec<Tensor> = (0..n)
            .step_by(CHUNK as usize)
            .map(|start| self.sample_latents(&Conditioning::joint(&self.layout, CHUNK.min(n - start), self.device)))
            .collect();
        Ok(Tensor::cat(&chunks, 0))
    }

    fn decode(&self, latents: &Tensor) -> Result<Vec<Tensor>> {
        ensure!(
            latents.dim() == 2 && latents.size()[1] == self.layout.total(),
            "decode: latents of shape {:?}, expected [n, {}]",
            latents.size(),
            self.layout.total()
        );
        let _guard = tch::no_grad_guard();
        let z = self.latent_norm.inverse(&latents.to_device(self.device));
        Ok((0..self.autoencoders.len()).map(|m| self.decode_block(m, &z)).collect())
    }
}

impl MultimodalModel for MldModel {
    fn latent_view(&self) -> Option<&dyn LatentView> {
        Some(self)
    }

    fn evaluations_per_sample(&self) -> Option<usize> {
        Some(self.score_evaluations())
    }

    /// `mld`, or `mld-contrastive` for the contrastive variant of stage 1: reports never show the
    /// variant as the seed's MLD.
    fn name(&self) -> &str {
        if self.autoencoders.iter().any(|ae| ae.trained_jointly) {
            "mld-contrastive"
        } else {
            "mld"
        }
    }

    fn modalities(&self) -> &[ModalitySpec] {
        &self.modalities
    }

    fn device(&self) -> Device {
        self.device
    }

    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let mut chunks: Vec<Vec<Tensor>> = vec![];
        for start in (0..n).step_by(CHUNK as usize) {
            let len = CHUNK.min(n - start);
            let part: Vec<Option<Tensor>> = given.iter().map(|g| g.as_ref().map(|t| t.narrow(0, start, len))).collect();
            chunks.push(self.generate_chunk(&part, len));
        }
        Ok((0..self.modalities.len())
            .map(|m| Tensor::cat(&chunks.iter().map(|c| c[m].shallow_clone()).collect::<Vec<_>>(), 0))
            .collect())
    }
}
