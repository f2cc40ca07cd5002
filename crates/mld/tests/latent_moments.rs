//! Joint samples of a trained score network against the first two moments of the latents they
//! model. In a test binary of its own, so that its random draws are its alone (see end_to_end.rs).

use mmlatent_mld::sampler::{ancestral, Conditioning, Layout};
use mmlatent_mld::sde::VpSde;
use mmlatent_mld::train::masked_loss;
use tch::{Device, Kind, Tensor};

/// Latents of five 8-dimensional modalities driven by one shared 4-dimensional factor (each
/// block a random linear map of it plus noise, standardised): joint samples of a score network
/// wider than the latent (128 for D = 40) must match the data's per-dimension means and stds and
/// the correlations between modalities. (Measured while writing this test: 32 wide, below
/// D = 40, the residual output stays overdispersed — std gap 0.14, correlation gap 0.37 — and
/// the direct output diverges — std gap 137, the "saturated blobs" of a too-narrow network.)
#[test]
fn joint_samples_match_the_latent_moments() {
    use mmlatent_core::optim::{Adam, AdamConfig};
    use mmlatent_mld::config::{ScoreConfig, ScoreParameterization};
    use mmlatent_mld::score_net::ScoreNet;
    use mmlatent_mld::train::draw_conditions;
    tch::set_num_threads(1);
    tch::manual_seed(11);
    let (m, per, n) = (5usize, 8i64, 4000i64);
    let layout = Layout::new(vec![per; m]);
    let d = layout.total();
    let mixing = Tensor::randn([4, d], (Kind::Float, Device::Cpu));
    let shared = Tensor::randn([n, 4], (Kind::Float, Device::Cpu));
    let raw = shared.matmul(&mixing) + Tensor::randn([n, d], (Kind::Float, Device::Cpu)) * 0.7;
    let data = (&raw - raw.mean_dim(0, true, Kind::Float)) / raw.std_dim(0, true, true);
    let correlations = |x: &Tensor| {
        // Correlation matrix of the per-modality block means: [M, M].
        let blocks = x.view([-1, m as i64, per]).mean_dim(2, false, Kind::Float);
        let c = &blocks - blocks.mean_dim(0, true, Kind::Float);
        let cov = c.transpose(0, 1).matmul(&c) / x.size()[0] as f64;
        let s = cov.diagonal(0, 0, 1).sqrt();
        cov / s.unsqueeze(1) / s.unsqueeze(0)
    };
    let sde = VpSde::default();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let cfg = ScoreConfig { width: Some(128), time_dim: 32, mults: vec![1], groups: 8, ..Default::default() };
    assert_eq!(cfg.parameterization, ScoreParameterization::Residual, "the default output");
    let net = ScoreNet::new(&vs.root(), &layout, &cfg);
    let mut opt = Adam::new(&vs, AdamConfig::adam(2e-3));
    let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
    for step in 0..1500 {
        let idx = Tensor::randint(n, [256], (Kind::Int64, Device::Cpu));
        let x0 = data.index_select(0, &idx);
        let t = Tensor::rand([256], (Kind::Float, Device::Cpu)) * 0.999 + 1e-3;
        let given = draw_conditions(256, m, 0.2);
        let loss = masked_loss(&den, &sde, &layout, &x0, (&t, &x0.randn_like()), &given, None);
        opt.set_lr(2e-3 * (0.5 + 0.5 * (std::f64::consts::PI * step as f64 / 1500.0).cos()));
        opt.backward_step(&loss).unwrap();
    }
    let _guard = tch::no_grad_guard();
    let samples = ancestral(&den, &sde, &Conditioning::joint(&layout, 4000, Device::Cpu), 200);
    let mean_gap = samples.mean_dim(0, false, Kind::Float).abs().max().double_value(&[]);
    let std_gap = (samples.std_dim(0, true, false) - 1.0).abs().mean(Kind::Float).double_value(&[]);
    let corr_gap = (correlations(&samples) - correlations(&data)).abs().max().double_value(&[]);
    eprintln!("mean gap {mean_gap:.3}, mean std gap {std_gap:.3}, largest correlation gap {corr_gap:.3}");

    assert!(mean_gap < 0.15, "sampled means off by {mean_gap}");
    assert!(std_gap < 0.1, "sampled stds off by {std_gap} on average");
    assert!(corr_gap < 0.2, "correlations between modalities off by {corr_gap}");
}
