//! Timing of MLD's workloads for `mmlatent bench mld`, mirrored by `scripts/bench_mld.py` in
//! PyTorch (same architectures, batch and thread count):
//! - `ae_step`: one Adam step of the 3×28×28 conv autoencoder (latent 32, width 32, Laplace);
//! - `score_step`: one Adam step of the score network at the PolyMNIST size of the reference
//!   (5 × 160 latents, width 1536, time embedding 512, GroupNorm 32), joint denoising loss;
//! - `score_step_small`: the same at the default config's size (3 × 32 latents, width 256);
//! - `sample_em100`: 100 Euler–Maruyama steps of the small network (a whole sampling run).
//!
//! Every time is the median over `iters` runs after `warmup` runs (a quarter of the runs after
//! one warm-up for `score_step` and `sample_em100`), in milliseconds.

use crate::autoencoder::Autoencoder;
use crate::config::{ScoreConfig, ScoreParameterization};
use crate::sampler::{euler_maruyama, Conditioning, Layout};
use crate::score_net::ScoreNet;
use crate::sde::VpSde;
use crate::train::masked_loss;
use anyhow::Result;
use mmlatent_core::likelihood::Likelihood;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::ModalitySpec;
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// What to time.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch: i64,
    pub warmup: usize,
    pub iters: usize,
}

/// One timed workload: its name (shared with the PyTorch script) and median milliseconds.
#[derive(Clone, Debug)]
pub struct Timing {
    pub name: &'static str,
    pub ms: f64,
}

fn median_ms(opts: &BenchOptions, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..opts.warmup {
        f()?;
    }
    let mut times: Vec<f64> = (0..opts.iters.max(1))
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Options for the expensive workloads: one warm-up run and a quarter of the repetitions.
fn few(opts: &BenchOptions) -> BenchOptions {
    BenchOptions { warmup: 1, iters: opts.iters.div_ceil(4).max(3), ..opts.clone() }
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

fn time_score_step(opts: &BenchOptions, big: bool) -> Result<f64> {
    let (m, per, cfg) = score_sizes(big);
    let layout = Layout::new(vec![per; m]);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ScoreNet::new(&vs.root(), &layout, &cfg);
    let mut opt = Adam::new(&vs, AdamConfig::adam(1e-4));
    let sde = VpSde::default();
    let x0 = Tensor::randn([opts.batch, layout.total()], (Kind::Float, Device::Cpu));
    let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
    let given = Tensor::zeros([1, m as i64], (Kind::Bool, Device::Cpu));
    median_ms(opts, || {
        let t = Tensor::rand([opts.batch], (Kind::Float, Device::Cpu)) * 0.999 + 1e-3;
        let z = x0.randn_like();
        let loss = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &given, None);
        opt.backward_step(&loss)
    })
}

/// Runs every workload with the current libtorch thread setting.
pub fn run(opts: &BenchOptions) -> Result<Vec<Timing>> {
    tch::manual_seed(0);
    let spec = ModalitySpec::image("m0", 3, 28, 28);
    let ae = Autoencoder::new(&spec, 32, Likelihood::Laplace { scale: 0.75 }, 32, Device::Cpu)?;
    let mut opt = Adam::new(&ae.vs, AdamConfig::adam(1e-3));
    let x = Tensor::rand([opts.batch, 3, 28, 28], (Kind::Float, Device::Cpu));
    let ae_ms = median_ms(opts, || opt.backward_step(&ae.loss(&x)))?;

    // The reference-size network is ~40× the small one: fewer repetitions.
    let score_ms = time_score_step(&few(opts), true)?;
    let small_ms = time_score_step(opts, false)?;

    let (m, per, cfg) = score_sizes(false);
    let layout = Layout::new(vec![per; m]);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ScoreNet::new(&vs.root(), &layout, &cfg);
    let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
    let sde = VpSde::default();
    let sample_ms = {
        let _guard = tch::no_grad_guard();
        let cond = Conditioning::joint(&layout, opts.batch, Device::Cpu);
        median_ms(&few(opts), || {
            let _ = euler_maruyama(&den, &sde, &cond, 100, 1e-3, None);
            Ok(())
        })?
    };
    Ok(vec![
        Timing { name: "ae_step", ms: ae_ms },
        Timing { name: "score_step", ms: score_ms },
        Timing { name: "score_step_small", ms: small_ms },
        Timing { name: "sample_em100", ms: sample_ms },
    ])
}
