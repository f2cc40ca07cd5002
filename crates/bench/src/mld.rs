//! Timing of MLD's workloads for `mmlatent bench mld`, mirrored by `scripts/bench_mld.py` in
//! PyTorch (same architectures, batch and thread count):
//! - `ae_step`: one Adam step of the 3×28×28 conv autoencoder (latent 32, width 32, Laplace);
//! - `ae_epoch`: a whole epoch of that autoencoder over the first modality of the dataset,
//!   batches from the training loader (shuffle, gather, conversion);
//! - `stage1_epoch`: an epoch of every modality's autoencoder (all of stage 1's work for one
//!   epoch): side by side as `train` runs them (`side_by_side`) here, one after
//!   another with every thread on the PyTorch side, as the reference trains them;
//! - `score_step`: one Adam step of the score network at the PolyMNIST size of the reference
//!   (5 × 160 latents, width 1536, time embedding 512, GroupNorm 32), joint denoising loss;
//! - `score_step_small`: the same at the default config's size (3 × 32 latents, width 256);
//! - `score_epoch`: a whole epoch of stage 2 at the small size over the dataset's tuples. mmlatent
//!   encodes the training split once before stage 2 and draws batches of latents; the reference
//!   (and the PyTorch side) encodes every batch with the frozen autoencoders. The one-off
//!   encoding is timed apart as `encode_split`;
//! - `sample_em100`: 100 Euler–Maruyama steps of the small network (a whole sampling run).
//!
//! Times are milliseconds per run ([`crate::measure`]); the expensive workloads run a
//! quarter of the repetitions after one warm-up.

use crate::measure::{time_epochs, time_runs, BenchOptions, BenchResult, Repeats, Timing};
use anyhow::{ensure, Result};
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::{ModalitySpec, MultimodalDataset, Split};
use mmlatent_mld::autoencoder::Autoencoder;
use mmlatent_mld::config::{ScoreConfig, ScoreParameterization};
use mmlatent_mld::sampler::{euler_maruyama, Conditioning, Layout};
use mmlatent_mld::score_net::ScoreNet;
use mmlatent_mld::sde::VpSde;
use mmlatent_mld::train::masked_loss;
use mmlatent_train::side_by_side::{self, Job};
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// The benchmark's autoencoder: latent 32, width 32, Laplace(0.75).
fn bench_autoencoder(spec: &ModalitySpec) -> Result<Autoencoder> {
    Autoencoder::new(spec, 32, Likelihood::Laplace { scale: 0.75 }, 32, false, Device::Cpu)
}

/// The score network sizes of the benchmark: (modalities, latent per modality, config); `big`
/// is the reference's PolyMNIST size, otherwise the default config's. The output is the plain
/// (`direct`) one of the PyTorch script it is compared with.
pub fn score_sizes(big: bool) -> (usize, i64, ScoreConfig) {
    let (m, per, width, time_dim, groups) = if big { (5, 160, 1536, 512, 32) } else { (3, 32, 256, 128, 8) };
    let cfg = ScoreConfig {
        width: Some(width),
        time_dim,
        mults: vec![1, 1],
        groups,
        parameterization: ScoreParameterization::Direct,
        ..Default::default()
    };
    (m, per, cfg)
}

/// A score network of the benchmark's size, its optimiser and one training step on `x0`.
struct ScoreBench {
    layout: Layout,
    net: ScoreNet,
    opt: Adam,
    _vs: nn::VarStore,
}

impl ScoreBench {
    fn new(big: bool) -> Self {
        let (m, per, cfg) = score_sizes(big);
        let layout = Layout::new(vec![per; m]);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ScoreNet::new(&vs.root(), &layout, &cfg);
        let opt = Adam::new(&vs, AdamConfig::adam(1e-4));
        Self { layout, net, opt, _vs: vs }
    }

    /// One Adam step of the joint denoising loss on `x0` (`[B, D]`).
    fn step(&mut self, x0: &Tensor) -> Result<()> {
        let b = x0.size()[0];
        let t = Tensor::rand([b], (Kind::Float, Device::Cpu)) * 0.999 + 1e-3;
        let z = x0.randn_like();
        let given = Tensor::zeros([1, self.layout.num_modalities() as i64], (Kind::Bool, Device::Cpu));
        let net = &self.net;
        let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
        let loss = masked_loss(&den, &VpSde::default(), &self.layout, x0, (&t, &z), &given, None);
        self.opt.backward_step(&loss)
    }
}

fn time_score_step(name: &str, opts: &BenchOptions, repeats: Repeats, big: bool) -> Result<Timing> {
    let mut bench = ScoreBench::new(big);
    let x0 = Tensor::randn([opts.batch, bench.layout.total()], (Kind::Float, Device::Cpu));
    time_runs(name, repeats, || bench.step(&x0))
}

/// `epochs` epochs of `ae` (with its optimiser `opt`) over `single`, a split of its modality
/// alone, timed as `name`.
fn time_autoencoder_epochs(
    name: &str,
    (ae, opt): (&Autoencoder, &mut Adam),
    single: &Split,
    opts: &BenchOptions,
    epochs: usize,
) -> Result<Timing> {
    time_epochs(name, single, std::slice::from_ref(&ae.spec), opts.batch as usize, epochs, |_, items| {
        opt.backward_step(&ae.loss(&items[0]))
    })
}

/// `ae_epoch`: the benchmark autoencoder over the first modality of `dataset`.
fn time_ae_epoch(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<Timing> {
    let ae = bench_autoencoder(&dataset.modalities[0])?;
    let mut opt = Adam::new(&ae.vs, AdamConfig::adam(1e-3));
    time_autoencoder_epochs("ae_epoch", (&ae, &mut opt), &dataset.train.modality(0), opts, opts.epochs)
}

/// `stage1_epoch`: one epoch of a benchmark autoencoder per modality of `dataset`, run as
/// `train` runs stage 1.
fn time_stage1_epoch(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<Timing> {
    let mut aes: Vec<Autoencoder> = dataset.modalities.iter().map(bench_autoencoder).collect::<Result<_>>()?;
    let mut opts_of: Vec<Adam> = aes.iter().map(|ae| Adam::new(&ae.vs, AdamConfig::adam(1e-3))).collect();
    let mut ms = vec![];
    for _ in 0..opts.epochs.max(1) {
        let start = Instant::now();
        let jobs: Vec<Job> = aes
            .iter_mut()
            .zip(opts_of.iter_mut())
            .enumerate()
            .map(|(m, (ae, opt))| {
                let single = dataset.train.modality(m);
                // Autocast is per thread: each job enters the benchmark's precision on its own.
                Box::new(move || {
                    opts.precision.run(|| time_autoencoder_epochs("", (&*ae, opt), &single, opts, 1)).map(drop)
                }) as Job
            })
            .collect();
        side_by_side::run(jobs, Device::Cpu)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_runs("stage1_epoch", ms))
}

/// `encode_split` and `score_epoch`: stage 2 at the small size over `dataset`'s training tuples,
/// encoded once by (untrained) benchmark autoencoders of its first `m` modalities.
fn time_score_epoch(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<Vec<Timing>> {
    let mut bench = ScoreBench::new(false);
    let m = bench.layout.num_modalities();
    ensure!(
        dataset.num_modalities() >= m,
        "bench mld: score_epoch needs {m} modalities, the dataset has {}",
        dataset.num_modalities()
    );
    let aes: Vec<Autoencoder> = dataset.modalities[..m].iter().map(bench_autoencoder).collect::<Result<_>>()?;
    let start = Instant::now();
    let blocks: Vec<Tensor> = aes.iter().enumerate().map(|(i, ae)| ae.encode_split(&dataset.train, i, 1024)).collect();
    let latents = Tensor::cat(&blocks, 1);
    let encode = Timing::from_runs("encode_split", vec![start.elapsed().as_secs_f64() * 1e3]);
    let split = Split { items: vec![latents], labels: dataset.train.labels.shallow_clone() };
    let spec = ModalitySpec::vector("latents", bench.layout.total());
    let epoch = time_epochs("score_epoch", &split, &[spec], opts.batch as usize, opts.epochs, |_, items| {
        bench.step(&items[0])
    })?;
    Ok(vec![encode, epoch])
}

/// Runs every workload with the current libtorch thread setting; the epoch workloads (when
/// `opts.epochs > 0`) on `dataset`'s training split.
pub fn run(opts: &BenchOptions, dataset: &MultimodalDataset) -> Result<BenchResult> {
    tch::manual_seed(0);
    let spec = ModalitySpec::image("m0", 3, 28, 28);
    let ae = bench_autoencoder(&spec)?;
    let mut opt = Adam::new(&ae.vs, AdamConfig::adam(1e-3));
    let x = Tensor::rand([opts.batch, 3, 28, 28], (Kind::Float, Device::Cpu));
    let mut timings = vec![time_runs("ae_step", opts.repeats, || opt.backward_step(&ae.loss(&x)))?];
    if opts.epochs > 0 {
        timings.push(time_ae_epoch(opts, dataset)?);
        timings.push(time_stage1_epoch(opts, dataset)?);
    }
    // The reference-size network is ~40× the small one: fewer repetitions.
    timings.push(time_score_step("score_step", opts, opts.repeats.few(), true)?);
    timings.push(time_score_step("score_step_small", opts, opts.repeats, false)?);
    if opts.epochs > 0 {
        timings.extend(time_score_epoch(opts, dataset)?);
    }

    let sampling = ScoreBench::new(false);
    let den = |x: &Tensor, tau: &Tensor| sampling.net.forward(x, tau);
    let (layout, sde) = (&sampling.layout, VpSde::default());
    let _guard = tch::no_grad_guard();
    let cond = Conditioning::joint(layout, opts.batch, Device::Cpu);
    timings.push(time_runs("sample_em100", opts.repeats.few(), || {
        let _ = euler_maruyama(&den, &sde, &cond, 100, 1e-3, None);
        Ok(())
    })?);
    Ok(BenchResult { timings, values: vec![] })
}
