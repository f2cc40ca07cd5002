//! Stage 1 must keep what the modalities share even where it is a small part of the pixels:
//! on the "hidden patch" set (`mmlatent_data::synthetic::hidden_patch`) two modalities carry
//! their class in a 5×5 flat patch on uniform noise, and an autoencoder trained on its own
//! reconstruction has no reason to keep it (the noise costs far more). The stage-1 settings of
//! `configs/default-mld.toml` (fewer steps) must keep it — a linear probe on those modalities'
//! latents far above chance, as the run's stage-1 report (`stage1.json`) measures it — and the
//! seed's independent autoencoders, trained the same way, are shown to lose it. In a test binary
//! of its own: it reseeds libtorch's global generator.

use mmlatent_train::config::Experiment;
use mmlatent_train::family::{ModelFamily, TrainContext};
use mmlatent_train::run::RunDir;
use tch::Device;

/// The shipped config with the hidden-patch set's sizes and a short stage 1; `extra` more
/// overrides.
fn experiment(extra: &[&str]) -> Experiment {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/default-mld.toml")).unwrap();
    let mut overrides: Vec<String> = [
        "data.path=\"synthetic\"",
        "model.autoencoder.steps=300",
        "model.autoencoder.batch_size=64",
        "train.steps=1",
        "train.threads=1",
        "train.checkpoint_every=1000",
        "train.log_every=100",
        "train.sample_every=1000",
    ]
    .map(String::from)
    .to_vec();
    overrides.extend(extra.iter().map(|s| s.to_string()));
    Experiment::parse(&text, &overrides).unwrap()
}

/// Trains `experiment` on the set and returns each modality's linear probe on its latents.
fn probes(experiment: &Experiment, dataset: &mmlatent_core::MultimodalDataset) -> Vec<f64> {
    tch::set_num_threads(1);
    tch::manual_seed(11);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path(), experiment, false).unwrap();
    mmlatent_mld::FAMILY.train(&TrainContext::new(experiment, &run, dataset, Device::Cpu)).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.root().join(mmlatent_mld::stage1::FILE)).unwrap()).unwrap();
    report["modalities"].as_array().unwrap().iter().map(|m| m["probe"].as_f64().unwrap()).collect()
}

#[test]
fn the_default_stage_1_keeps_a_class_hidden_under_noise() {
    let dataset = mmlatent_data::synthetic::hidden_patch(3000, 600, 2, 4);
    let default = probes(&experiment(&[]), &dataset);
    let independent = probes(&experiment(&["model.autoencoder.contrastive=false"]), &dataset);
    eprintln!("linear probes (chance 0.1): default {default:.3?}, independent autoencoders {independent:.3?}");
    assert!(default[0] > 0.8, "the plain modality's class is lost: {default:?}");
    for m in 1..3 {
        assert!(default[m] > 0.5, "the default stage 1 lost the hidden class of m{m}: probe {:.3}", default[m]);
        assert!(
            default[m] > independent[m] + 0.2,
            "m{m}: the default stage 1 ({:.3}) keeps no more of the hidden class than independent autoencoders ({:.3})",
            default[m],
            independent[m]
        );
    }
}
