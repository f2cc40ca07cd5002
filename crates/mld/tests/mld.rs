//! Tests of MLD that could fail: the VP-SDE marginals, clamping in the samplers, the masked
//! loss, and a tiny end-to-end run reaching conditional coherence far above chance.

use mmlatent_core::config::Experiment;
use mmlatent_core::family::{ModelFamily, TrainContext};
use mmlatent_core::run::RunDir;
use mmlatent_core::MultimodalModel;
use mmlatent_mld::config::{MldConfig, SamplerMethod};
use mmlatent_mld::model::MldModel;
use mmlatent_mld::sampler::{ancestral, euler_maruyama, euler_maruyama_step, heun, renoise, Conditioning, Layout};
use mmlatent_mld::sde::VpSde;
use mmlatent_mld::train::{denoising_error, masked_loss};
use tch::{Device, Kind, Tensor};

/// Simulates the forward SDE dR = −½β(t)R dt + √β(t) dW from R_0 = 2 with many particles and
/// compares the empirical mean and std with the closed form α(t)·2 and σ(t).
#[test]
fn vp_sde_marginals_match_simulation() {
    tch::manual_seed(0);
    let sde = VpSde::default();
    let n = 40_000;
    let steps = 2000;
    let dt = 1.0 / steps as f64;
    let mut x = Tensor::full([n], 2.0, (Kind::Double, Device::Cpu));
    for i in 0..steps {
        let t = i as f64 * dt;
        let (f, g) = sde.drift_diffusion(t);
        x = &x + &x * (f * dt) + x.randn_like() * (g * dt.sqrt());
        let t_next = t + dt;
        if [250, 1000, 2000].contains(&(i + 1)) {
            let mean = x.mean(Kind::Double).double_value(&[]);
            let std = x.std(true).double_value(&[]);
            let (m, s) = (2.0 * sde.alpha(t_next), sde.sigma(t_next));
            assert!((mean - m).abs() < 0.02, "t = {t_next}: mean {mean} vs {m}");
            assert!((std - s).abs() < 0.02, "t = {t_next}: std {std} vs {s}");
        }
    }
    // The variance of R_t from R_0 = 0 solves v' = β(t)(1 − v); check σ(t)² against it.
    for t in [0.05, 0.3, 0.7] {
        let h = 1e-5;
        let v = |t: f64| sde.sigma(t).powi(2);
        let dv = (v(t + h) - v(t - h)) / (2.0 * h);
        assert!((dv - sde.beta(t) * (1.0 - v(t))).abs() < 1e-5, "variance ODE at {t}");
    }
}

fn two_modality_setup() -> (Layout, Conditioning, Tensor) {
    tch::manual_seed(1);
    let layout = Layout::new(vec![3, 5]);
    let x0 = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
    let cond = Conditioning::new(&layout, &[true, false], x0.shallow_clone());
    (layout, cond, x0)
}

/// A wild denoiser: large random outputs, so that any leak into the given dimensions shows.
fn wild(x: &Tensor, tau: &Tensor) -> Tensor {
    x.randn_like() * 1e3 + tau.sum_dim_intlist(1, true, Kind::Float)
}

/// With the exact noise predictor of a Gaussian data distribution N(μ, s²) — for which
/// ε*(x, t) = σ(t)(x − α(t)μ)/(α(t)²s² + σ(t)²) — every sampler must return samples with mean μ
/// and standard deviation s once the steps are fine enough: a check that each sampler converges to
/// the reverse dynamics. (With few steps they are biased: measured std 0.444 for ancestral at 50
/// steps, 0.533 for Heun at 18, against s = 0.5.)
#[test]
fn samplers_recover_a_gaussian_from_its_exact_score() {
    tch::manual_seed(5);
    let sde = VpSde::default();
    let (mu, s) = (1.5, 0.5);
    let exact = |x: &Tensor, tau: &Tensor| {
        let t = tau.narrow(1, 0, 1).to_kind(Kind::Double).double_value(&[0, 0]);
        let (a, sig) = (sde.alpha(t), sde.sigma(t));
        (x - a * mu) * (sig / (a * a * s * s + sig * sig))
    };
    let layout = Layout::new(vec![1]);
    let cond = Conditioning::joint(&layout, 20_000, Device::Cpu);
    for (name, out) in [
        ("euler", euler_maruyama(&exact, &sde, &cond, 500, 1e-3, None)),
        ("heun", heun(&exact, &sde, &cond, 100, 1e-3)),
        ("ancestral", ancestral(&exact, &sde, &cond, 500)),
    ] {
        let (mean, std) = (out.mean(Kind::Float).double_value(&[]), out.std(true).double_value(&[]));
        eprintln!("{name}: mean {mean:.4}, std {std:.4}");
        assert!((mean - mu).abs() < 0.02 && (std - s).abs() < 0.02, "{name}: mean {mean}, std {std}");
    }
}

#[test]
fn samplers_never_move_given_latents() {
    let (_, cond, x0) = two_modality_setup();
    let sde = VpSde::default();
    let given = x0.narrow(1, 0, 3);
    let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu)) * 5.0;
    let stepped = euler_maruyama_step(&wild, &sde, &cond, &x, 0.5, 0.01, true);
    assert!(stepped.narrow(1, 0, 3).equal(&given));
    assert!(!stepped.narrow(1, 3, 5).equal(&x.narrow(1, 3, 5)), "generated latents must move");
    assert!(renoise(&sde, &cond, &stepped, 0.5, 0.7).narrow(1, 0, 3).equal(&given));
    for out in [
        euler_maruyama(&wild, &sde, &cond, 20, 1e-3, None),
        euler_maruyama(&wild, &sde, &cond, 20, 1e-3, Some((5, 3))),
        heun(&wild, &sde, &cond, 6, 1e-3),
        ancestral(&wild, &sde, &cond, 7),
    ] {
        assert!(out.narrow(1, 0, 3).equal(&given));
    }
}

#[test]
fn conditioned_modalities_see_time_zero_and_clean_latents() {
    let (_, cond, x0) = two_modality_setup();
    let sde = VpSde::default();
    // The denoiser checks what it is shown.
    let check = |x: &Tensor, tau: &Tensor| {
        assert!(x.narrow(1, 0, 3).equal(&x0.narrow(1, 0, 3)));
        assert_eq!(tau.size(), vec![1, 2], "one τ row shared by the batch");
        assert_eq!(tau.narrow(1, 0, 1).abs().max().double_value(&[]), 0.0);
        assert!(tau.narrow(1, 1, 1).min().double_value(&[]) > 0.0);
        x.zeros_like()
    };
    let _ = heun(&check, &sde, &cond, 4, 1e-3);
    let _ = euler_maruyama(&check, &sde, &cond, 4, 1e-3, None);
    let _ = ancestral(&check, &sde, &cond, 4);
}

/// A τ row broadcast over the batch gives the network the same output as τ repeated per item.
#[test]
fn score_net_broadcasts_a_shared_time_row() {
    use mmlatent_mld::config::ScoreConfig;
    use mmlatent_mld::score_net::ScoreNet;
    tch::manual_seed(4);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let cfg = ScoreConfig { width: Some(32), time_dim: 16, mults: vec![1, 2], groups: 4, ..Default::default() };
    let net = ScoreNet::new(&vs.root(), &Layout::new(vec![3, 5]), &cfg);
    // The output layer starts at zero: perturb it so the comparison sees the whole network.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.starts_with("out.") {
                t.copy_(&(t.randn_like() * 0.1));
            }
        }
    });
    let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu));
    let row = Tensor::from_slice(&[0.3f32, 0.0]).view([1, 2]);
    let shared = net.forward(&x, &row);
    let repeated = net.forward(&x, &row.repeat([5, 1]));
    assert!(shared.abs().max().double_value(&[]) > 0.0);
    assert!((shared - repeated).abs().max().double_value(&[]) < 1e-5);
}

#[test]
fn loss_ignores_conditioned_dimensions() {
    let (layout, _, x0) = two_modality_setup();
    let sde = VpSde::default();
    let t = Tensor::from_slice(&[0.1f32, 0.4, 0.6, 0.9]);
    let z = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
    // A denoiser depending on its input, so that the clean given latents matter to it.
    let den = |x: &Tensor, tau: &Tensor| x.tanh() + tau.mean_dim(1, true, Kind::Float);
    let given = [true, false];
    let loss = masked_loss(&den, &sde, &layout, &x0, &t, &z, &given).double_value(&[]);
    // Changing the target noise on the given dimensions changes nothing.
    let z2 = z.copy();
    let _ = z2.narrow(1, 0, 3).fill_(100.0);
    let loss2 = masked_loss(&den, &sde, &layout, &x0, &t, &z2, &given).double_value(&[]);
    assert_eq!(loss, loss2);
    // ...while on a generated dimension it does.
    let z3 = z.copy();
    let _ = z3.narrow(1, 3, 1).fill_(100.0);
    assert!(masked_loss(&den, &sde, &layout, &x0, &t, &z3, &given).double_value(&[]) > loss + 1.0);
    // The gradient of the loss w.r.t. the prediction on given dimensions is zero, and the loss
    // is a mean over the diffused dimensions only (rescaled: unit error gives loss 1).
    let mask = layout.dim_mask(&given, Device::Cpu);
    let eps = (z.copy() + 1.0).set_requires_grad(true);
    let err = denoising_error(&eps, &z, &mask);
    assert!((err.double_value(&[]) - 1.0).abs() < 1e-6);
    err.backward();
    let grad = eps.grad();
    assert_eq!(grad.narrow(1, 0, 3).abs().max().double_value(&[]), 0.0);
    assert!(grad.narrow(1, 3, 5).abs().min().double_value(&[]) > 0.0);
}

/// Nearest class mean (of the training images) as a tiny classifier of one modality.
fn nearest_mean_classifier(images: &Tensor, labels: &Tensor, classes: i64) -> Tensor {
    let flat = images.to_kind(Kind::Float).flatten(1, -1) / 255.0;
    let means: Vec<Tensor> = (0..classes)
        .map(|k| flat.index_select(0, &labels.eq(k).nonzero().squeeze_dim(1)).mean_dim(0, false, Kind::Float))
        .collect();
    Tensor::stack(&means, 0)
}

fn classify(means: &Tensor, x: &Tensor) -> Tensor {
    let flat = x.to_kind(Kind::Float).flatten(1, -1);
    let d = (flat.unsqueeze(1) - means.unsqueeze(0)).square().sum_dim_intlist(-1, false, Kind::Float);
    d.argmin(1, false)
}

const TINY: &str = r#"
seed = 3
[data]
path = "synthetic"
[train]
batch_size = 128
steps = 1000
lr = 2e-3
checkpoint_every = 1000
log_every = 50
[model]
kind = "mld"
[model.autoencoder]
latent_dim = 8
width = 16
steps = 300
lr = 2e-3
batch_size = 64
[model.likelihoods]
m0 = { type = "bernoulli" }
m1 = { type = "bernoulli" }
m2 = { type = "bernoulli" }
m3 = { type = "bernoulli" }
m4 = { type = "bernoulli" }
[model.score]
time_dim = 32
mults = [1]
groups = 8
d = 0.5
ema = 0.99
[model.sampler]
method = "ancestral"
steps = 25
"#;

/// Five modalities, so that the score network's input (5 × 8 latents) and the subsets it must
/// condition on are those of a PolyMNIST-like set; the width is the derived one.
#[test]
fn five_modality_end_to_end_run_is_coherent() {
    let started = std::time::Instant::now();
    // One libtorch thread: the tests of the workspace run side by side on few cores.
    tch::set_num_threads(1);
    tch::manual_seed(3);
    let m = 5;
    let dataset = mmlatent_data::synthetic::squares(1000, 200, m, 5);
    let dir = tempfile::tempdir().unwrap();
    let experiment = Experiment::parse(TINY, &[]).unwrap();
    let run = RunDir::create(dir.path(), &experiment, false).unwrap();
    let ctx = TrainContext { experiment: &experiment, run: &run, dataset: &dataset, device: Device::Cpu };
    mmlatent_mld::FAMILY.train(&ctx).unwrap();
    assert!(run.root().join("plots/score.png").exists() && run.root().join("plots/ae_m0.png").exists());
    // Each stage keeps its optimiser state beside its weights, for resumption.
    for stage in ["ae_m0", "ae_m4", "score"] {
        let sets = mmlatent_core::checkpoint::list_sets(&run.stage_dir(stage), "step").unwrap();
        let (_, newest) = sets.last().expect("a checkpoint set");
        assert!(newest.join("adam.adam.safetensors").exists(), "no optimiser state for {stage}");
    }
    // The score loss fell.
    let losses: Vec<f64> = run.read_metrics("score").unwrap().iter().filter_map(|r| r["loss"].as_f64()).collect();
    assert!(losses.last().unwrap() < &(0.8 * losses[0]), "{losses:?}");
    // A finished run trains nothing again.
    let again = std::time::Instant::now();
    mmlatent_mld::FAMILY.train(&ctx).unwrap();
    assert!(again.elapsed().as_secs_f64() < 5.0);

    let cfg: MldConfig = experiment.model_config().unwrap();
    let mut model = MldModel::load(&run, &dataset.modalities, &cfg, Device::Cpu).unwrap();
    let _guard = tch::no_grad_guard();
    let test = dataset.test.head(&dataset.modalities, 200, Device::Cpu);
    let means: Vec<Tensor> =
        (0..m).map(|k| nearest_mean_classifier(&dataset.train.items[k], &dataset.train.labels, 10)).collect();
    // The classifier itself is good on real test images.
    let real = classify(&means[1], &test.items[1]).eq_tensor(&test.labels).to_kind(Kind::Float).mean(Kind::Float);
    assert!(real.double_value(&[]) > 0.9);
    let coherence = |out: &[Tensor], targets: &[usize]| -> f64 {
        targets
            .iter()
            .map(|&k| {
                let hit = classify(&means[k], &out[k]).eq_tensor(&test.labels).to_kind(Kind::Float);
                hit.mean(Kind::Float).double_value(&[])
            })
            .sum::<f64>()
            / targets.len() as f64
    };
    for method in [SamplerMethod::Ancestral, SamplerMethod::Euler] {
        model.sampler.method = method;
        model.sampler.steps = if method == SamplerMethod::Ancestral { 25 } else { 100 };
        // One given (m0), and two given (m1, m3).
        for given in [vec![0], vec![1, 3]] {
            let inputs: Vec<Option<Tensor>> =
                (0..m).map(|k| given.contains(&k).then(|| test.items[k].shallow_clone())).collect();
            let out = model.generate(&inputs, 0).unwrap();
            for &k in &given {
                assert!(out[k].equal(&test.items[k]), "given inputs come back as given");
            }
            assert_eq!(out[2].size(), vec![200, 1, 28, 28]);
            let targets: Vec<usize> = (0..m).filter(|k| !given.contains(k)).collect();
            let acc = coherence(&out, &targets);
            eprintln!("{method:?}: coherence {given:?} → {targets:?} = {acc:.3} (chance 0.1)");
            assert!(acc > 0.6, "{method:?}: conditional coherence {acc} given {given:?} is not clearly above chance");
        }
    }
    let joint = model.generate(&(0..m).map(|_| None).collect::<Vec<_>>(), 200).unwrap();
    let classes: Vec<Tensor> = (0..m).map(|k| classify(&means[k], &joint[k])).collect();
    let mut agree = classes[0].ones_like().to_kind(Kind::Bool);
    for c in &classes[1..] {
        agree = agree.logical_and(&c.eq_tensor(&classes[0]));
    }
    let agree = agree.to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    eprintln!("joint coherence = {agree:.3}; total {:.1}s", started.elapsed().as_secs_f64());
    assert!(agree > 0.4, "joint coherence of 5 modalities {agree} (chance 1e-4)");
}

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
    use mmlatent_mld::train::draw_condition;
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
        let given = draw_condition(m, 0.2);
        let loss = masked_loss(&den, &sde, &layout, &x0, &t, &x0.randn_like(), &given);
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

/// Every shipped MLD config parses strictly, and its sampler/score settings are valid.
#[test]
fn shipped_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in ["default", "polymnist", "mnist-svhn", "cub"] {
        let path = dir.join(format!("{name}-mld.toml"));
        let experiment = Experiment::load(&path, &[]).unwrap();
        assert_eq!(experiment.model_kind().unwrap(), "mld");
        let cfg: MldConfig = experiment.model_config().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        // Validation without the dataset: check against the modalities the config names.
        let specs: Vec<mmlatent_core::ModalitySpec> = cfg
            .latent_dims
            .keys()
            .chain(cfg.likelihoods.keys())
            .map(|n| mmlatent_core::ModalitySpec::image(n, 3, 28, 28))
            .collect();
        cfg.validate(&specs).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    }
}
