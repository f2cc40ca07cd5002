//! The EBM objective's sign, the prior's density, the mixture posterior, generation shapes,
//! checkpoints and config errors.

use mmlatent_core::likelihood::{Likelihood, Likelihoods};
use mmlatent_core::{ModalitySpec, MultimodalModel};
use mmlatent_ebm::energy::{standard_normal_log_density, EnergyPrior};
use mmlatent_ebm::model::EbmModel;
use mmlatent_ebm::train::{train_step, Optimisers};
use mmlatent_ebm::{EbmConfig, FAMILY, KIND_BASE, KIND_GENERALISED};
use mmlatent_train::config::Experiment;
use mmlatent_train::family::ModelFamily;
use std::f64::consts::PI;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn gap(prior: &EnergyPrior, post: &Tensor, samples: &Tensor) -> f64 {
    let l = prior.loss(post, samples);
    l.energy_posterior - l.energy_prior
}

#[test]
fn one_ebm_step_lowers_posterior_energy_relative_to_prior_samples() {
    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = EnergyPrior::new(vs.root(), 4, 32, 2);
    let posterior = Tensor::randn([256, 4], (Kind::Float, Device::Cpu)) * 0.3 + 2.0;
    let samples = prior.sample(256, 60, 0.4, Device::Cpu);
    let mut opt = nn::Sgd::default().build(&vs, 1e-2).unwrap();
    let before = gap(&prior, &posterior, &samples);
    let loss = prior.loss(&posterior, &samples);
    assert!((loss.loss.double_value(&[]) - before).abs() < 1e-5);
    opt.backward_step(&loss.loss);
    let after = gap(&prior, &posterior, &samples);
    assert!(after < before - 1e-4, "gap {before} → {after}");
    // A few more steps keep separating them: posterior energy falls below prior energy.
    for _ in 0..20 {
        opt.backward_step(&prior.loss(&posterior, &samples).loss);
    }
    assert!(gap(&prior, &posterior, &samples) < after - 1e-3);
}

#[test]
fn prior_log_density_is_tilted_standard_normal() {
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = EnergyPrior::new(vs.root(), 3, 16, 1);
    let z = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).view([1, 3]);
    let expect = -prior.energy(&z).double_value(&[0]) - 0.5 * (0.25 + 1.0 + 4.0) - 1.5 * (2.0 * PI).ln();
    let got = prior.unnormalised_log_density(&z).double_value(&[0]);
    assert!((got - expect).abs() < 1e-4, "{got} vs {expect}");
    assert!((standard_normal_log_density(&z.zeros_like()).double_value(&[0]) + 1.5 * (2.0 * PI).ln()).abs() < 1e-5);
}

fn small_config() -> EbmConfig {
    EbmConfig {
        latent_dim: 4,
        width: 4,
        energy_hidden: 16,
        langevin_steps: 5,
        private_dim: None,
        ..EbmConfig::default()
    }
}

fn modalities() -> Vec<ModalitySpec> {
    vec![ModalitySpec::image("a", 1, 28, 28), ModalitySpec::text("t", 8, 11), ModalitySpec::vector("v", 3)]
}

fn batch(n: i64) -> Vec<Tensor> {
    vec![
        Tensor::rand([n, 1, 28, 28], (Kind::Float, Device::Cpu)),
        Tensor::randint(11, [n, 8], (Kind::Int64, Device::Cpu)),
        Tensor::randn([n, 3], (Kind::Float, Device::Cpu)),
    ]
}

#[test]
fn both_kinds_train_generate_and_round_trip_checkpoints() {
    tch::manual_seed(3);
    let dir = tempfile::tempdir().unwrap();
    for kind in [KIND_BASE, KIND_GENERALISED] {
        let model = EbmModel::new(kind, &modalities(), &small_config(), Device::Cpu).unwrap();
        assert_eq!(model.is_generalised(), kind == KIND_GENERALISED);
        let mut opt = Optimisers::new(&model, 1e-3).unwrap();
        let x = batch(6);
        let first = model.objective(&x).unwrap();
        assert_eq!(first.posterior_z.size(), vec![18, 4]);
        let mut last = f64::INFINITY;
        for _ in 0..30 {
            let m = train_step(&model, &mut opt, &x).unwrap();
            assert!(m.loss.is_finite() && m.energy_gap().is_finite());
            last = m.loss;
        }
        assert!(last < first.loss.double_value(&[]), "{kind}: loss did not fall ({last})");

        let joint = model.generate(&[None, None, None], 5).unwrap();
        assert_eq!(joint[0].size(), vec![5, 1, 28, 28]);
        assert_eq!((joint[1].size(), joint[1].kind()), (vec![5, 8], Kind::Int64));
        assert_eq!(joint[2].size(), vec![5, 3]);
        // Joint samples are drawn, not a fixed point: the items differ from one another.
        let spread = joint[0].std_dim(0, true, false).mean(Kind::Float).double_value(&[]);
        assert!(spread > 1e-3, "{kind}: joint samples do not vary ({spread})");
        let given = batch(4);
        let cond = model.generate(&[Some(given[0].shallow_clone()), None, Some(given[2].shallow_clone())], 99).unwrap();
        assert!(cond[0].equal(&given[0]) && cond[2].equal(&given[2]));
        assert_eq!(cond[1].size(), vec![4, 8]);
        assert!(model.generate(&[None, None], 3).is_err());

        let path = dir.path().join(format!("{kind}.safetensors"));
        model.save(&path).unwrap();
        let mut other = EbmModel::new(kind, &modalities(), &small_config(), Device::Cpu).unwrap();
        other.load(&path).unwrap();
        let z = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        assert!(model.prior().energy(&z).allclose(&other.prior().energy(&z), 1e-6, 1e-6, false));
        let e1 = model.encode(0, &given[0]).shared.loc;
        assert!(e1.allclose(&other.encode(0, &given[0]).shared.loc, 1e-6, 1e-6, false));
        // A checkpoint of the other kind does not fit.
        let wrong = if kind == KIND_BASE { KIND_GENERALISED } else { KIND_BASE };
        let mut mismatched = EbmModel::new(wrong, &modalities(), &small_config(), Device::Cpu).unwrap();
        let err = format!("{:#}", mismatched.load(&path).unwrap_err());
        assert!(err.contains(&format!("{kind}.safetensors")), "{err}");
    }
}

#[test]
fn blow_up_stops_training_with_a_clear_message() {
    let mut cfg = small_config();
    cfg.max_energy_gap = 1e-9;
    let model = EbmModel::new(KIND_BASE, &modalities(), &cfg, Device::Cpu).unwrap();
    let mut opt = Optimisers::new(&model, 1e-3).unwrap();
    let err = train_step(&model, &mut opt, &batch(4)).err().unwrap().to_string();
    assert!(err.contains("blew up") && err.contains("max_energy_gap"), "{err}");
}

#[test]
fn bad_configs_are_errors() {
    let mut cfg = small_config();
    cfg.private_dim = Some(4);
    let err = EbmModel::new(KIND_BASE, &modalities(), &cfg, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("private_dim"), "{err}");
    let mut cfg = small_config();
    cfg.likelihoods = Likelihoods::ByPosition(vec![Likelihood::Bernoulli, Likelihood::Categorical]);
    let err = EbmModel::new(KIND_BASE, &modalities(), &cfg, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("likelihoods has 2 entries"), "{err}");
    let mut cfg = small_config();
    cfg.langevin_step_size = 0.0;
    assert!(EbmModel::new(KIND_GENERALISED, &modalities(), &cfg, Device::Cpu).is_err());
    assert!(EbmModel::new("vae", &modalities(), &small_config(), Device::Cpu).is_err());
}

/// Every shipped EBM config parses strictly and builds a model on its dataset's modalities; its
/// resolved table writes the defaults (the generalised model's private latent size too) and
/// parses back to the same config.
#[test]
fn shipped_configs_build_models() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let polymnist: Vec<ModalitySpec> = (0..5).map(|m| ModalitySpec::image(&format!("m{m}"), 3, 28, 28)).collect();
    let default: Vec<ModalitySpec> = polymnist[..3].to_vec();
    let mnist_svhn = vec![ModalitySpec::image("mnist", 1, 28, 28), ModalitySpec::image("svhn", 3, 32, 32)];
    let cub = vec![ModalitySpec::image("image", 3, 64, 64), ModalitySpec::text("caption", 32, 1500)];
    let mut seen = 0;
    for (prefix, modalities) in
        [("default", &default), ("polymnist", &polymnist), ("mnist-svhn", &mnist_svhn), ("cub", &cub)]
    {
        for kind in [KIND_BASE, KIND_GENERALISED] {
            let path = root.join(format!("{prefix}-{kind}.toml"));
            let experiment = Experiment::load(&path, &[]).unwrap();
            assert_eq!(experiment.model_kind().unwrap(), kind, "{}", path.display());
            let config: EbmConfig = experiment.model_config().unwrap();
            let model = EbmModel::new(kind, modalities, &config, Device::Cpu).unwrap();
            assert_eq!(model.is_generalised(), kind == KIND_GENERALISED);
            let resolved = FAMILY.resolved_model(&experiment, None).unwrap();
            assert_eq!(resolved["kind"].as_str(), Some(kind));
            assert_eq!(resolved["ebm_beta1"].as_float(), Some(config.ebm_beta1));
            assert_eq!(resolved["max_energy_gap"].as_float(), Some(config.max_energy_gap));
            let private_dim = config.private_dim_for(kind).unwrap();
            assert_eq!(
                resolved.get("private_dim").and_then(|v| v.as_integer()),
                (private_dim > 0).then_some(private_dim)
            );
            let stored =
                Experiment::parse(&Experiment { model: resolved, ..experiment }.to_toml().unwrap(), &[]).unwrap();
            let back: EbmConfig = stored.model_config().unwrap();
            assert_eq!(back, EbmConfig { private_dim: (private_dim > 0).then_some(private_dim), ..config });
            seen += 1;
        }
    }
    assert_eq!(seen, 8);
}
