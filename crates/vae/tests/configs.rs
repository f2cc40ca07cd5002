//! Every shipped VAE config (`configs/<dataset>-<kind>.toml`) parses strictly and builds its
//! model for its dataset's modalities; settings of another kind are rejected by name.

use mmlatent_core::config::Experiment;
use mmlatent_core::ModalitySpec;
use mmlatent_vae::config::{VaeConfig, VaeKind};
use mmlatent_vae::VaeModel;
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
            let kind = VaeKind::parse(kind).unwrap();
            let cfg =
                VaeConfig::from_experiment(&experiment, kind).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            VaeModel::new(kind, cfg, &specs_of(dataset), Device::Cpu)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
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
        VaeConfig::from_experiment(&e, VaeKind::parse(kind).unwrap()).map(|_| ())
    };
    let err = parse("mopoe", "k = 3").unwrap_err().to_string();
    assert!(err.contains("`k`") && err.contains("mopoe"), "{err}");
    let err = parse("mvae", "latnet = 3").unwrap_err().to_string();
    assert!(err.contains("latnet"), "{err}");
    let err = parse("mopoe", "posterior = \"laplace\"").unwrap_err().to_string();
    assert!(err.contains("laplace"), "{err}");
    assert!(parse("mvtcae", "alpha = 1.5").is_err());
    assert!(parse("mmvae", "k = 0").is_err());
    assert!(parse("mmvaeplus", "k = 4\nspecific = 8\nestimator = \"dreg\"").is_ok());
    assert!(VaeKind::parse("vae").is_err());
}
