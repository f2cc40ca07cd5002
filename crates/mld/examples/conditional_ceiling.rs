//! What given-1 coherence an ideal stage 2 could reach with a run's autoencoders: conditional
//! "samplers" that look the given latent up among encoded training tuples instead of running the
//! score network, decoded and classified as `eval` does.
//!
//! `cargo run --release -p mmlatent-mld --example conditional_ceiling -- RUN --classifiers DIR [N_TRAIN] [N_TEST] [K]`
//!
//! For each given modality m and test tuple, over the standardised latents of m:
//! - **nearest tuple**: the other modalities' latents of the training tuple whose m-latent is
//!   nearest. This draws from the encoded data's own conditional p(z_k | z_m) (in the limit of
//!   many tuples), which is what a perfect score network samples; `eval` reports it too
//!   (`latent::nearest_rows`), over 20,000 training tuples.
//! - **class vote**: the label that most of the K nearest training tuples carry (the class a
//!   non-parametric probe reads off z_m), then the nearest tuple of that label. This is a generator
//!   that always draws the most likely class, as strong guidance would; it uses the labels, so it
//!   bounds what any sampler of these latents can reach rather than being one.
//! - **own tuple**: the test tuple's own other latents (the reconstructions), the bound when the
//!   class is passed on without loss.

use anyhow::{Context, Result};
use mmlatent_eval::classifier::Classifiers;
use mmlatent_mld::config::MldConfig;
use mmlatent_mld::model::build_autoencoders;
use mmlatent_train::run::RunDir;
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: conditional_ceiling RUN --classifiers DIR [N_TRAIN] [N_TEST] [K]";
    let run_path = args.first().context(usage)?;
    let flag = args.iter().position(|a| a == "--classifiers").context(usage)?;
    let classifier_dir = args.get(flag + 1).context(usage)?;
    let numbers: Vec<i64> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 0 && *i != flag && *i != flag + 1)
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let (n_train, n_test, k_vote) = (
        numbers.first().copied().unwrap_or(20_000),
        numbers.get(1).copied().unwrap_or(1_000),
        numbers.get(2).copied().unwrap_or(25),
    );
    let run = RunDir::open(std::path::Path::new(run_path))?;
    let experiment = run.experiment()?;
    mmlatent_core::device::set_threads(experiment.train.threads);
    let dataset = mmlatent_data::open(&experiment.data)?;
    let cfg: MldConfig = experiment.model_config()?;
    let mut autoencoders = build_autoencoders(&cfg, &dataset.modalities, Device::Cpu)?;
    for ae in &mut autoencoders {
        ae.load(&run)?;
    }
    let classifiers = Classifiers::load(std::path::Path::new(classifier_dir), Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let train = dataset.train.head(&dataset.modalities, n_train as usize, Device::Cpu);
    let test = dataset.test.head(&dataset.modalities, n_test as usize, Device::Cpu);
    let encode =
        |items: &[Tensor]| -> Vec<Tensor> { autoencoders.iter().zip(items).map(|(ae, x)| ae.encode(x)).collect() };
    let (z_train, z_test) = (encode(&train.items), encode(&test.items));
    let (y_train, y_test) = (&train.labels, &test.labels);
    let classes = dataset.num_classes;

    // Coherence of "generating" modality k as the latents z_train[k][rows], against the test labels.
    let coherence = |k: usize, latents: &Tensor| classifiers.accuracy(k, &autoencoders[k].decode(latents), y_test);
    let modalities = autoencoders.len();
    println!("{n_train} training / {n_test} test tuples, class vote over {k_vote} neighbours; coherence (%) to the other modalities");
    println!("{:<8} {:>10} {:>12} {:>10} {:>10}", "given", "vote acc", "nearest", "vote", "own");
    let mut totals = [0.0f64; 3];
    for m in 0..modalities {
        let (mean, std) = (z_train[m].mean_dim(0, false, Kind::Float), z_train[m].std_dim(0, true, false));
        let standardise = |z: &Tensor| (z - &mean) / (&std + 1e-6);
        let (pool, queries) = (standardise(&z_train[m]), standardise(&z_test[m]));
        let distances = Tensor::cdist(&queries, &pool, 2.0, None);
        // Sorted nearest first: column 0 is each query's nearest training tuple.
        let (_, neighbours) = distances.topk(k_vote, 1, false, true);
        let nearest = neighbours.select(1, 0);
        let votes = y_train
            .index_select(0, &neighbours.view([-1]))
            .view([n_test, k_vote])
            .one_hot(classes)
            .sum_dim_intlist(1, false, Kind::Float);
        let vote = votes.argmax(1, false);
        let vote_accuracy = vote.eq_tensor(y_test).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        // The nearest training tuple whose label is the vote: distances to tuples of other labels
        // are pushed out of reach.
        let other_label = y_train.unsqueeze(0).ne_tensor(&vote.unsqueeze(1));
        let voted = distances.masked_fill(&other_label, f64::INFINITY).argmin(1, false);
        let mut row = [0.0f64; 3];
        for k in (0..modalities).filter(|&k| k != m) {
            row[0] += coherence(k, &z_train[k].index_select(0, &nearest))?;
            row[1] += coherence(k, &z_train[k].index_select(0, &voted))?;
            row[2] += coherence(k, &z_test[k])?;
        }
        for (total, value) in totals.iter_mut().zip(row.iter_mut()) {
            *value *= 100.0 / (modalities - 1) as f64;
            *total += *value / modalities as f64;
        }
        println!(
            "{:<8} {:>10.1} {:>12.1} {:>10.1} {:>10.1}",
            autoencoders[m].spec.name,
            100.0 * vote_accuracy,
            row[0],
            row[1],
            row[2]
        );
    }
    println!("{:<8} {:>10} {:>12.1} {:>10.1} {:>10.1}", "mean", "", totals[0], totals[1], totals[2]);
    Ok(())
}
