//! Every shipped VAE config (`configs/<dataset>-<kind>.toml`) parses strictly and builds its
//! model for its dataset's modalities; settings of another kind are rejected by name; the
//! resolved `[model]` table holds every default and parses back to the same config.

use mmlatent_core::ModalitySpec;
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{read_config, ModelFamily};
use mmlatent_vae::config::{VaeConfig, VaeKind};
use mmlatent_vae::{VaeModel, FAMILY};
use std::path::Path;
use tch::Device;

fn specs_of(dataset: &str) -> Vec<ModalitySpec> {
    match dataset {
        "default" => (0..3).map(|m| ModalitySpec::image(&format!("m{m}"), 3, 28, 28)).collect(),
        "polymnist" => (0..5).map(|m| ModalitySpec::image(&format!("m{m}"), 3, 28, 28)).collect(),
        "mnist-svhn" => vec![ModalitySpec::image("mnist", 1, 28, 28), ModalitySpec::image("svhn", 3, 32, 32)],
        "cub" => vec![ModalitySpec::image("image", 3, 64, 64), ModalitySpec::text("caption", 32, 1590)],
        other => panic!("unknown dataset prefix {other}"),
    }
}

#[test]
fn every_vae_config_parses_and_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut seen = 0;
    for dataset in ["default", "polymnist", "mnist-svhn", "cub"] {
        for kind in VaeKind::NAMES {
            let path = dir.join(format!("{dataset}-{kind}.toml"));
            let experiment = Experiment::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(experiment.model_kind().unwrap(), kind);
            let cfg = VaeConfig::from_experiment(&experiment).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(cfg.kind().name(), kind);
            VaeModel::new(cfg, &specs_of(dataset), Device::Cpu).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            seen += 1;
        }
    }
    assert_eq!(seen, 28);
}

#[test]
fn settings_of_other_kinds_and_bad_values_are_named() {
    let parse = |kind: &str, extra: &str| {
        let text = format!("[data]\npath = \"default\"\n[model]\nkind = \"{kind}\"\n{extra}");
        let e = Experiment::parse(&text, &[]).unwrap();
        VaeConfig::from_experiment(&e).map(|_| ())
    };
    let err = parse("mopoe", "k = 3").unwrap_err().to_string();
    let has = "(it has: beta, latent_dim, likelihoods, posterior, warmup, width)";
    assert_eq!(err, format!("in [model]: `k` is not a setting of mopoe {has}"));
    let err = parse("mvae", "latnet = 3").unwrap_err().to_string();
    assert!(err.contains("`latnet` is not a setting of mvae") && err.ends_with("width, subsets)"), "{err}");
    let err = parse("mmvae", "learn_aux_prior = false").unwrap_err().to_string();
    assert!(err.contains("`learn_aux_prior`") && err.ends_with("width, estimator, k)"), "{err}");
    let err = parse("nexus", "dropout = \"high\"").unwrap_err().to_string();
    assert!(err.contains("dropout") && err.contains("[model]"), "{err}");
    let err = parse("mopoe", "posterior = \"laplace\"").unwrap_err().to_string();
    assert!(err.contains("laplace"), "{err}");
    assert!(parse("mvtcae", "alpha = 1.5").unwrap_err().to_string().contains("alpha"));
    assert!(parse("mmvae", "k = 0").unwrap_err().to_string().contains("k must be at least 1"));
    assert!(parse("nexus", "msg_dim = 0").unwrap_err().to_string().contains("msg_dim"));
    assert!(parse("mmvaeplus", "k = 4\nspecific = 8\nestimator = \"dreg\"").is_ok());
    assert!(VaeKind::parse("vae").is_err());
}

/// The resolved table of each kind writes every default the user left out (the kind's own,
/// e.g. MMVAE's `k = 10`, and the kind-dependent posterior), and parses back to the same config.
#[test]
fn resolved_tables_hold_every_default_and_round_trip() {
    let experiment = |kind: &str, extra: &str| {
        Experiment::parse(&format!("[data]\npath = \"default\"\n[model]\nkind = \"{kind}\"\n{extra}"), &[]).unwrap()
    };
    let expected: [(&str, &[(&str, toml::Value)]); 7] = [
        ("mvae", &[("subsets", 0.into()), ("posterior", "gaussian".into())]),
        ("mmvae", &[("k", 10.into()), ("estimator", "dreg".into()), ("posterior", "laplace".into())]),
        (
            "mopoe",
            &[("width", 32.into()), ("beta", 1.0.into()), ("warmup", 0.into()), ("posterior", "gaussian".into())],
        ),
        ("mvtcae", &[("alpha", (5.0 / 6.0).into())]),
        ("mmjsd", &[("posterior", "gaussian".into())]),
        (
            "nexus",
            &[
                ("specific", 32.into()),
                ("msg_dim", 10.into()),
                ("top_beta", 0.1.into()),
                ("dropout", 0.2.into()),
                ("adapt_top_variance", true.into()),
            ],
        ),
        (
            "mmvaeplus",
            &[
                ("k", 10.into()),
                ("estimator", "dreg".into()),
                ("specific", 32.into()),
                ("learn_aux_prior", true.into()),
                ("posterior", "laplace".into()),
            ],
        ),
    ];
    for (kind, defaults) in expected {
        // Written with the earlier name of latent_dim: read as it, with a warning naming both.
        let e = experiment(kind, "latent = 8");
        let resolved = FAMILY.resolved_model(&e, None).unwrap();
        assert_eq!(resolved["kind"].as_str(), Some(kind));
        assert_eq!(resolved["latent_dim"].as_integer(), Some(8), "{kind}: a set value is kept");
        assert!(!resolved.contains_key("latent"), "{kind}: {resolved:?}");
        let configured = FAMILY.configure(&e).unwrap();
        let warnings = configured.warnings();
        assert!(warnings.iter().any(|w| w.contains("latent is now called latent_dim")), "{warnings:?}");
        let both = experiment(kind, "latent = 8\nlatent_dim = 8");
        let err = FAMILY.resolved_model(&both, None).unwrap_err().to_string();
        assert!(err.contains("both latent and latent_dim"), "{err}");
        let likelihoods = resolved["likelihoods"].as_table().unwrap();
        assert!(likelihoods.is_empty(), "{kind}: every modality's default: {likelihoods:?}");
        // The earlier `likelihood` (images only) is read as the one-for-all form, which means the same.
        let old = experiment(kind, "likelihood = { type = \"bernoulli\" }");
        let configured = FAMILY.configure(&old).unwrap();
        assert!(configured.warnings().iter().any(|w| w.contains("likelihood is now called likelihoods")));
        let resolved_old = FAMILY.resolved_model(&old, None).unwrap();
        assert_eq!(resolved_old["likelihoods"]["type"].as_str(), Some("bernoulli"), "{kind}");
        assert!(!resolved_old.contains_key("likelihood"), "{kind}");
        for (key, value) in defaults {
            assert_eq!(resolved.get(*key), Some(value), "{kind}: `{key}` in {resolved:?}");
        }
        let again = Experiment { model: resolved.clone(), ..e.clone() };
        let (cfg, back) = (read_config(&FAMILY, &e).unwrap().0, VaeConfig::from_experiment(&again).unwrap());
        assert_eq!(cfg, back, "{kind}");
        assert_eq!(FAMILY.resolved_model(&again, None).unwrap(), resolved, "{kind}: resolving is idempotent");
        // Through the TOML text a run folder stores, too.
        let stored = Experiment::parse(&again.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(VaeConfig::from_experiment(&stored).unwrap(), cfg, "{kind}");
    }
}
