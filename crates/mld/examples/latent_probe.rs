//! How much of the class the autoencoders' latents keep: a linear probe (multinomial logistic
//! regression) and a one-hidden-layer probe on each modality's standardised latents and on their
//! concatenation, fit on training tuples, scored on test tuples.
//!
//! `cargo run --release -p mmlatent-mld --example latent_probe -- RUN [N_TRAIN] [N_TEST] [--classifiers DIR]`
//!
//! With `--classifiers`, also the evaluation classifiers' accuracy on the test tuples' reconstructions.
//!
//! Conditional generation from modality m can agree with the label at most as often as the class
//! can be read off m's latent; when the probe reads it far better than conditional samples
//! transfer it, stage 2 is the bottleneck, not stage 1.

use anyhow::{Context, Result};
use mmlatent_eval::latent::class_probe;
use mmlatent_mld::autoencoder::Autoencoder;
use mmlatent_mld::config::MldConfig;
use mmlatent_mld::model::build_autoencoders;
use mmlatent_train::run::RunDir;
use tch::{Device, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run_path = args.first().context("usage: latent_probe RUN [N_TRAIN] [N_TEST]")?;
    let n_train: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let n_test: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let run = RunDir::open(std::path::Path::new(run_path))?;
    let experiment = run.experiment()?;
    mmlatent_core::device::set_threads(experiment.train.threads);
    let dataset = mmlatent_data::open(&experiment.data)?;
    let cfg: MldConfig = experiment.model_config()?;
    // Only the autoencoders are needed (the run may have no score network yet). One whose
    // checkpoint does not load (not trained yet, another config) is left out, with a note; each
    // kept one stays paired with its modality's index.
    let autoencoders: Vec<(usize, Autoencoder)> = build_autoencoders(&cfg, &dataset.modalities, Device::Cpu)?
        .into_iter()
        .enumerate()
        .filter_map(|(m, mut ae)| match ae.load(&run) {
            Ok(()) => Some((m, ae)),
            Err(e) => {
                println!("{}: left out ({e:#})", ae.spec.name);
                None
            }
        })
        .collect();
    let classes = dataset.num_classes;
    let _guard = tch::no_grad_guard();
    let (train_batch, test_batch) = (
        dataset.train.head(&dataset.modalities, n_train, Device::Cpu),
        dataset.test.head(&dataset.modalities, n_test, Device::Cpu),
    );
    let encode =
        |items: &[Tensor]| -> Vec<Tensor> { autoencoders.iter().map(|(m, ae)| ae.encode(&items[*m])).collect() };
    let (mut train, mut test) = (encode(&train_batch.items), encode(&test_batch.items));
    train.push(Tensor::cat(&train, 1));
    test.push(Tensor::cat(&test, 1));
    let (y_train, y_test) = (&train_batch.labels, &test_batch.labels);
    if let Some(dir) = args.iter().position(|a| a == "--classifiers").and_then(|i| args.get(i + 1)) {
        let classifiers = mmlatent_eval::classifier::Classifiers::load(std::path::Path::new(dir), Device::Cpu)?;
        for ((m, ae), latents) in autoencoders.iter().zip(&test) {
            let accuracy = classifiers.accuracy(*m, &ae.decode(latents), y_test)?;
            println!("{}: classifier accuracy on reconstructions {:.1} %", ae.spec.name, 100.0 * accuracy);
        }
    }
    println!("{} train / {} test tuples; probe test accuracy (%)", y_train.size()[0], y_test.size()[0]);
    println!("{:<8} {:>8} {:>8}", "latent", "linear", "mlp 256");
    for (k, (a, b)) in train.iter().zip(&test).enumerate() {
        let name = autoencoders.get(k).map_or("all".to_string(), |(_, ae)| ae.spec.name.clone());
        let linear = class_probe((a, y_train), (b, y_test), classes, 0)?;
        let mlp = class_probe((a, y_train), (b, y_test), classes, 256)?;
        println!("{:<8} {:>8.1} {:>8.1}", name, 100.0 * linear, 100.0 * mlp);
    }
    Ok(())
}
