//! Tests of MLD that could fail: the VP-SDE marginals, clamping in the samplers, the masked
//! loss and the samplers on known scores. (The end-to-end run and the latent-moment test have
//! test binaries of their own: end_to_end.rs, latent_moments.rs.)

use mmlatent_core::likelihood::{Likelihood, Likelihoods};
use mmlatent_mld::config::MldConfig;
use mmlatent_mld::sampler::{ancestral, euler_maruyama, euler_maruyama_step, heun, renoise, Conditioning, Layout};
use mmlatent_mld::sde::VpSde;
use mmlatent_mld::train::{denoising_error, draw_conditions, masked_loss};
use mmlatent_mld::FAMILY;
use mmlatent_train::config::Experiment;
use mmlatent_train::family::ModelFamily;
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
    let flags = Tensor::from_slice(&given).view([1, 2]);
    let loss = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &flags, None).double_value(&[]);
    // Changing the target noise on the given dimensions changes nothing.
    let z2 = z.copy();
    let _ = z2.narrow(1, 0, 3).fill_(100.0);
    let loss2 = masked_loss(&den, &sde, &layout, &x0, (&t, &z2), &flags, None).double_value(&[]);
    assert_eq!(loss, loss2);
    // ...while on a generated dimension it does.
    let z3 = z.copy();
    let _ = z3.narrow(1, 3, 1).fill_(100.0);
    assert!(masked_loss(&den, &sde, &layout, &x0, (&t, &z3), &flags, None).double_value(&[]) > loss + 1.0);
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

/// An absent modality (the marginal training of `absent_p`) reaches the network at τ = 1 with
/// its latent fully noised, and leaves the loss; a modality both given and absent is given.
#[test]
fn absent_modalities_see_time_one_and_leave_the_loss() {
    let (layout, _, x0) = two_modality_setup();
    let sde = VpSde::default();
    let t = Tensor::from_slice(&[0.1f32, 0.4, 0.6, 0.9]);
    let z = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
    let seen = std::cell::RefCell::new(None);
    let den = |x: &Tensor, tau: &Tensor| {
        *seen.borrow_mut() = Some((x.copy(), tau.copy()));
        x.tanh()
    };
    // Rows 0, 1: modality 1 absent; row 2: modality 0 absent but given; row 3: nothing absent.
    let absent = Tensor::from_slice(&[false, true, false, true, true, false, false, false]).view([4, 2]);
    let given = Tensor::from_slice(&[false, false, false, false, true, false, false, false]).view([4, 2]);
    let loss = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &given, Some(&absent)).double_value(&[]);
    let (x, tau) = seen.borrow_mut().take().unwrap();
    let expected_tau = Tensor::from_slice(&[0.1f32, 1.0, 0.4, 1.0, 0.0, 0.6, 0.9, 0.9]).view([4, 2]);
    assert!(tau.allclose(&expected_tau, 1e-6, 1e-6, false), "{tau}");
    // Absent: α(1)x₀ + σ(1)z; given: clean.
    let (a1, s1) = (sde.alpha(1.0), sde.sigma(1.0));
    let gone = (&x0 * a1 + &z * s1).narrow(0, 0, 2).narrow(1, 3, 5);
    assert!(x.narrow(0, 0, 2).narrow(1, 3, 5).allclose(&gone, 1e-5, 1e-5, false));
    assert!(x.narrow(0, 2, 1).narrow(1, 0, 3).allclose(&x0.narrow(0, 2, 1).narrow(1, 0, 3), 1e-6, 1e-6, false));
    // The loss is the mean squared error over the entries neither absent nor given: rows 0, 1
    // keep modality 0 (3 entries), row 2 modality 1 (5), row 3 both (8).
    let keep: Vec<f32> = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
        .iter()
        .flat_map(|row: &[f32; 2]| std::iter::repeat_n(row[0], 3).chain(std::iter::repeat_n(row[1], 5)))
        .collect();
    let keep = Tensor::from_slice(&keep).view([4, 8]);
    let expected = ((x.tanh() - &z).square() * &keep).sum(Kind::Double).double_value(&[]) / (3.0 + 3.0 + 5.0 + 8.0);
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    // Everything left out (the one modality not given is absent): a zero loss, not 0/0.
    let everything = Tensor::from_slice(&[true, true]).view([1, 2]);
    let one = |x: &Tensor| x.narrow(0, 0, 1);
    let none =
        masked_loss(&den, &sde, &layout, &one(&x0), (&one(&t), &one(&z)), &given.narrow(0, 2, 1), Some(&everything));
    assert_eq!(none.double_value(&[]), 0.0);
}

/// Per-item conditioning draws: about a fraction d of the rows condition on something, never on
/// everything, and every non-empty proper subset of five modalities turns up.
#[test]
fn per_item_conditions_are_proper_subsets_at_rate_d() {
    tch::manual_seed(4);
    let flags = draw_conditions(20000, 5, 0.3);
    assert_eq!(flags.size(), [20000, 5]);
    let count = flags.to_kind(Kind::Int64).sum_dim_intlist(1, false, Kind::Int64);
    let rate = count.gt(0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    assert!((rate - 0.3).abs() < 0.02, "conditioned fraction {rate}");
    assert_eq!(count.eq(5).sum(Kind::Int64).int64_value(&[]), 0, "a row conditioned on every modality");
    let weights = Tensor::from_slice(&[1i64, 2, 4, 8, 16]);
    let codes = (flags.to_kind(Kind::Int64) * weights.view([1, 5])).sum_dim_intlist(1, false, Kind::Int64);
    let (distinct, _, _) = codes.unique_dim(0, true, false, false);
    assert_eq!(distinct.size()[0], 31, "the empty set and all 30 proper subsets");
}

/// A batch with one conditioning subset per item gives the same loss as the items taken one by
/// one with their own subset, weighted by how many entries each diffuses: masks, clamping and τ
/// are applied row by row.
#[test]
fn per_item_loss_matches_item_by_item() {
    let layout = Layout::new(vec![3, 5]);
    let sde = VpSde::default();
    tch::manual_seed(9);
    let x0 = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
    let z = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
    let t = Tensor::from_slice(&[0.2f32, 0.5, 0.8]);
    let den = |x: &Tensor, tau: &Tensor| x.tanh() * 0.5 + tau.sum_dim_intlist(1, true, Kind::Float);
    let rows = [[true, false], [false, true], [false, false]];
    let flags = Tensor::from_slice(&rows.concat()).view([3, 2]);
    let batch = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &flags, None).double_value(&[]);
    let (mut total, mut entries) = (0.0, 0.0);
    for (i, row) in rows.iter().enumerate() {
        let one = |x: &Tensor| x.narrow(0, i as i64, 1);
        let f = Tensor::from_slice(row).view([1, 2]);
        let kept = row.iter().zip([3.0, 5.0]).filter(|(g, _)| !**g).map(|(_, s)| s).sum::<f64>();
        total += kept * masked_loss(&den, &sde, &layout, &one(&x0), (&one(&t), &one(&z)), &f, None).double_value(&[]);
        entries += kept;
    }
    assert!((batch - total / entries).abs() < 1e-6, "{batch} vs {}", total / entries);
}

/// Whitening maps each modality's block to zero mean and identity covariance, leaves the blocks'
/// cross-correlations to the data (the map is block-diagonal), and inverts exactly; standardising
/// gives unit per-dimension stds; a run saved before whitening existed (mean and std) loads.
#[test]
fn latent_norm_whitens_each_block_and_inverts() {
    use mmlatent_mld::config::LatentNormKind;
    use mmlatent_mld::model::{covariance, LatentNorm};
    tch::manual_seed(21);
    let layout = Layout::new(vec![3, 4]);
    let cpu = (Kind::Float, Device::Cpu);
    // Correlated latents with very different scales, within and across the blocks.
    let mixing = Tensor::randn([7, 7], cpu) * Tensor::from_slice(&[5.0f32, 0.1, 1.0, 3.0, 0.05, 1.0, 0.5]).view([7, 1]);
    let z = Tensor::randn([20000, 7], cpu).matmul(&mixing) + 2.0;
    let white = LatentNorm::fit(&z, &layout, LatentNormKind::Whiten);
    let x = white.forward(&z);
    let c = covariance(&x);
    for (offset, size) in [(0, 3), (3, 4)] {
        let block = c.narrow(0, offset, size).narrow(1, offset, size);
        let gap = (block - Tensor::eye(size, cpu)).abs().max().double_value(&[]);
        assert!(gap < 1e-3, "block at {offset}: covariance off the identity by {gap}");
    }
    assert!(c.narrow(0, 0, 3).narrow(1, 3, 4).abs().max().double_value(&[]) > 0.05, "cross-block correlation kept");
    assert_eq!(white.forward_map.narrow(0, 0, 3).narrow(1, 3, 4).abs().max().double_value(&[]), 0.0);
    assert!((white.inverse(&x) - &z).abs().max().double_value(&[]) < 1e-3 * z.abs().max().double_value(&[]));
    let standard = LatentNorm::fit(&z, &layout, LatentNormKind::Standardize);
    let s = standard.forward(&z).std_dim(0, true, false);
    assert!((s - 1.0).abs().max().double_value(&[]) < 1e-4);

    // A run from before whitening: `latent_stats` holds mean and std.
    let dir = tempfile::tempdir().unwrap();
    let experiment = Experiment::parse("[data]\npath = \"synthetic\"\n[model]\nkind = \"mld\"\n", &[]).unwrap();
    let run = mmlatent_train::run::RunDir::create(dir.path(), &experiment, false).unwrap();
    let (mean, std) = (z.mean_dim(0, true, Kind::Float), z.std_dim(0, true, true));
    let path = run.checkpoint(mmlatent_mld::model::STATS);
    mmlatent_train::checkpoint::save_tensors(&[("mean", &mean), ("std", &std)], &path).unwrap();
    let old = LatentNorm::load(&run, 7, Device::Cpu).unwrap();
    assert!((old.forward(&z) - standard.forward(&z)).abs().max().double_value(&[]) < 1e-3);
    assert!(LatentNorm::load(&run, 8, Device::Cpu).is_err(), "a latent size that does not match is refused");
}

/// Every shipped MLD config parses strictly, and its sampler/score settings are valid; its
/// resolved table writes the defaults it leaves out and parses back to the same config.
#[test]
fn shipped_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in ["default", "polymnist", "mnist-svhn", "cub"] {
        let path = dir.join(format!("{name}-mld.toml"));
        let experiment = Experiment::load(&path, &[]).unwrap();
        assert_eq!(experiment.model_kind().unwrap(), "mld");
        let cfg: MldConfig = experiment.model_config().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        // Validation without the dataset: check against the modalities the config names, or the
        // bundled set's three where it names none (text where its likelihood is categorical).
        let named = match &cfg.likelihoods {
            Likelihoods::ByName(map) => map.clone(),
            _ => Default::default(),
        };
        let names: std::collections::BTreeSet<&String> = cfg.latent_dims.keys().chain(named.keys()).collect();
        let mut specs: Vec<mmlatent_core::ModalitySpec> = names
            .into_iter()
            .map(|n| match named.get(n) {
                Some(Likelihood::Categorical) => mmlatent_core::ModalitySpec::text(n, 8, 100),
                _ => mmlatent_core::ModalitySpec::image(n, 3, 28, 28),
            })
            .collect();
        if specs.is_empty() {
            specs = (0..3).map(|k| mmlatent_core::ModalitySpec::image(&format!("m{k}"), 3, 28, 28)).collect();
        }
        cfg.check(&specs).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let resolved = FAMILY.resolved_model(&experiment, None).unwrap();
        assert_eq!(resolved["kind"].as_str(), Some("mld"));
        let score = resolved["score"].as_table().unwrap();
        // None of the shipped configs sets these.
        for (key, value) in [("t_eps", 1e-3), ("beta_min", 0.1), ("beta_max", 20.0)] {
            assert_eq!(score[key].as_float(), Some(value), "{name}: score.{key}");
        }
        // With the dataset's modalities the derived score width is written too (the rule's for
        // the total latent size), and nothing else changes.
        let with_width = FAMILY.resolved_model(&experiment, Some(&specs)).unwrap();
        let total: i64 = cfg.latent_sizes(&specs).iter().sum();
        let width = with_width["score"]["width"].as_integer();
        assert_eq!(width, Some(cfg.score.width_for(total)), "{name}: the derived width");
        let mut without = with_width.clone();
        if cfg.score.width.is_none() {
            without["score"].as_table_mut().unwrap().remove("width");
        }
        assert_eq!(without, resolved, "{name}: only the width is added");
        let stored = Experiment::parse(&Experiment { model: resolved, ..experiment }.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(stored.model_config::<MldConfig>().unwrap(), cfg, "{name}: the resolved table round-trips");
    }
}

/// `[model.score] d`, the earlier name of `given_p` (the paper's d), is read as `given_p` with a
/// warning naming both; a table with both is refused; the resolved table holds the new name only.
#[test]
fn the_earlier_name_of_given_p_is_read_with_a_warning() {
    let text = |score: &str| format!("[data]\npath = \"synthetic\"\n[model]\nkind = \"mld\"\n[model.score]\n{score}\n");
    let old = Experiment::parse(&text("d = 0.4"), &[]).unwrap();
    let configured = FAMILY.configure(&old).unwrap();
    let warnings = configured.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("[model.score] d is now called given_p; read as given_p = 0.4")),
        "{warnings:?}"
    );
    let resolved = FAMILY.resolved_model(&old, None).unwrap();
    assert_eq!(resolved["score"]["given_p"].as_float(), Some(0.4));
    assert!(resolved["score"].get("d").is_none());
    let new = Experiment::parse(&text("given_p = 0.4"), &[]).unwrap();
    assert_eq!(FAMILY.resolved_model(&new, None).unwrap(), resolved);
    assert!(FAMILY.configure(&new).unwrap().warnings().is_empty());
    let both = Experiment::parse(&text("d = 0.4\ngiven_p = 0.4"), &[]).unwrap();
    let err = FAMILY.resolved_model(&both, None).unwrap_err().to_string();
    assert!(err.contains("[model.score] sets both d and given_p"), "{err}");
}

/// A run keeps the score-network width it was trained with when the config leaves the width to
/// the rule: it is read from the newest checkpoint set, so a change of the rule cannot make an
/// older run unloadable; without a checkpoint the rule decides; a configured width always wins.
#[test]
fn a_run_keeps_the_width_its_score_network_was_trained_with() {
    use mmlatent_mld::model::{build_score_net, with_run_width, SCORE, SCORE_EMA};
    let dir = tempfile::tempdir().unwrap();
    let experiment = Experiment::parse("[data]\npath = \"synthetic\"\n[model]\nkind = \"mld\"\n", &[]).unwrap();
    let run = mmlatent_train::run::RunDir::create(dir.path(), &experiment, false).unwrap();
    let cfg: MldConfig = experiment.model_config().unwrap();
    let layout = Layout::new(vec![8, 8, 8]);
    let rule = cfg.score.width_for(24);
    assert_eq!(with_run_width(&cfg, &run, &layout).unwrap().score.width, Some(rule));

    // A score stage trained 48 wide (not the rule's width) under an older rule.
    let mut trained = cfg.clone();
    trained.score.width = Some(48);
    trained.score.groups = 8;
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _net = build_score_net(&vs, &layout, &trained);
    let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let manifest =
        mmlatent_train::checkpoint::SetManifest { stage: SCORE.into(), step: 1, total: 2, ..Default::default() };
    let part = (format!("{SCORE_EMA}.safetensors"), tensors);
    mmlatent_train::checkpoint::write_set(&run.stage_dir(SCORE), "step", &manifest, &[part]).unwrap();
    assert_ne!(rule, 48);
    assert_eq!(with_run_width(&cfg, &run, &layout).unwrap().score.width, Some(48));
    let mut configured = cfg.clone();
    configured.score.width = Some(64);
    assert_eq!(with_run_width(&configured, &run, &layout).unwrap().score.width, Some(64));
}

/// The stages `train` announces: each autoencoder with `model.autoencoder.steps`, then the
/// score network with `train.steps` (the contrastive variant: one stage 1).
#[test]
fn each_stage_is_announced_with_the_key_that_sets_its_steps() {
    use mmlatent_train::family::PlannedStage;
    let modalities =
        [mmlatent_core::ModalitySpec::image("m0", 1, 28, 28), mmlatent_core::ModalitySpec::image("m1", 1, 28, 28)];
    let text = |extra: &str| {
        format!("[data]\npath = \"synthetic\"\n[train]\nsteps = 800\n[model]\nkind = \"mld\"\n[model.autoencoder]\nsteps = 300\n{extra}")
    };
    let stages = FAMILY.configure(&Experiment::parse(&text(""), &[]).unwrap()).unwrap().stages(&modalities);
    let listed: Vec<(&str, usize, &str)> = stages.iter().map(|s| (s.name.as_str(), s.steps, s.steps_key)).collect();
    assert_eq!(
        listed,
        [
            ("ae_m0", 300, "model.autoencoder.steps"),
            ("ae_m1", 300, "model.autoencoder.steps"),
            ("score", 800, "train.steps")
        ]
    );
    assert_eq!(
        PlannedStage::describe(&stages),
        "ae_m0, ae_m1 300 steps each (model.autoencoder.steps), then score 800 steps (train.steps)"
    );
    let contrastive = Experiment::parse(&text("contrastive = true"), &[]).unwrap();
    let stages = FAMILY.configure(&contrastive).unwrap().stages(&modalities);
    assert_eq!(
        PlannedStage::describe(&stages),
        "autoencoders 300 steps (model.autoencoder.steps), then score 800 steps (train.steps)"
    );
}
