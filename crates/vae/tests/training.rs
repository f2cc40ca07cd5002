//! Every model trains through the family entry point on a tiny `squares` dataset: its loss
//! falls, the run loads back, and conditional samples are coherent above chance (judged by a
//! nearest-class-mean classifier of the generated modality, chance = 10%). The images are
//! nearly binary, so the tests use the Bernoulli likelihood, which learns them in few steps.

use mmlatent_core::MultimodalDataset;
use mmlatent_data::synthetic;
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{ModelFamily, TrainContext};
use mmlatent_train::run::RunDir;
use mmlatent_vae::FAMILY;
use tch::{Device, Kind, Tensor};

/// Training steps of the tiny runs (NEXUS trains two levels and needs more).
const STEPS: usize = 120;
const NEXUS_STEPS: usize = 200;

/// Class means of modality `m` on the training split, `[10, C·H·W]`.
fn class_means(ds: &MultimodalDataset, m: usize) -> Tensor {
    let b = ds.train.head(&ds.modalities, ds.train.len(), Device::Cpu);
    let x = b.items[m].flatten(1, -1);
    let rows: Vec<Tensor> = (0..10)
        .map(|k| {
            let idx = b.labels.eq(k).nonzero().squeeze_dim(1);
            x.index_select(0, &idx).mean_dim(0, false, Kind::Float)
        })
        .collect();
    Tensor::stack(&rows, 0)
}

/// Accuracy of nearest-class-mean predictions of `images` against `labels`.
fn accuracy(means: &Tensor, images: &Tensor, labels: &Tensor) -> f64 {
    let d = Tensor::cdist(&images.flatten(1, -1), means, 2.0, None::<i64>);
    d.argmin(1, false).eq_tensor(labels).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

fn train_and_check(kind: &str, extra: &str) {
    train_for(kind, extra, STEPS)
}

fn train_for(kind: &str, extra: &str, steps: usize) {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let ds = synthetic::squares(1000, 200, 3, 4);
    let text = format!(
        "seed = 1\n[data]\npath = \"synthetic\"\n[train]\nbatch_size = 64\nsteps = {steps}\nlr = 0.002\nlog_every = 20\n\
         checkpoint_every = 1000\n[model]\nkind = \"{kind}\"\nlatent_dim = 16\nwidth = 8\nlikelihood = {{ type = \"bernoulli\" }}\n{extra}"
    );
    let experiment = Experiment::parse(&text, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path(), &experiment, false).unwrap();
    FAMILY.train(&TrainContext::new(&experiment, &run, &ds, Device::Cpu)).unwrap();

    let losses: Vec<f64> = run.read_metrics("vae").unwrap().iter().filter_map(|r| r.get("loss")?.as_f64()).collect();
    assert_eq!(losses.len(), steps / 20);
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < first - 0.1 * first.abs().max(1.0), "{kind}: loss {first} → {last} ({losses:?})");

    // The held-out loss is logged and its best weights kept as a checkpoint set.
    assert!(run.read_metrics("vae").unwrap().iter().any(|r| r.get("val_loss").is_some_and(|v| v.is_f64())));
    assert_eq!(mmlatent_train::checkpoint::list_sets(&run.stage_dir("vae"), "best").unwrap().len(), 1);
    let model = FAMILY.load(&run, &ds, Device::Cpu).unwrap();
    assert_eq!(model.name(), kind);
    let test = ds.test.head(&ds.modalities, 200, Device::Cpu);
    let means = class_means(&ds, 1);
    // m1 given m0, and m1 given {m0, m2}.
    let given_one = vec![Some(test.items[0].shallow_clone()), None, None];
    let given_two = vec![Some(test.items[0].shallow_clone()), None, Some(test.items[2].shallow_clone())];
    let acc_one = accuracy(&means, &model.generate(&given_one, 200).unwrap()[1], &test.labels);
    let acc_two = accuracy(&means, &model.generate(&given_two, 200).unwrap()[1], &test.labels);
    let joint = model.generate(&[None, None, None], 16).unwrap();
    assert_eq!(joint[2].size(), vec![16, 1, 28, 28]);
    // Joint samples are drawn from the prior, not its mean: the items differ from one another.
    let spread = joint[0].std_dim(0, true, false).mean(tch::Kind::Float).double_value(&[]);
    assert!(spread > 1e-3, "{kind}: joint samples do not vary ({spread})");
    eprintln!("{kind}: loss {first:.1} → {last:.1}; coherence m1|m0 {acc_one:.2}, m1|m0,m2 {acc_two:.2}");
    assert!(acc_one > 0.3 && acc_two > 0.3, "{kind}: coherence {acc_one} / {acc_two} (chance 0.1)");
}

#[test]
fn mvae_trains_and_is_coherent() {
    train_and_check("mvae", "subsets = 1");
}

#[test]
fn mmvae_trains_and_is_coherent() {
    train_and_check("mmvae", "k = 2");
}

#[test]
fn mopoe_trains_and_is_coherent() {
    train_and_check("mopoe", "beta = 1.0");
}

#[test]
fn mvtcae_trains_and_is_coherent() {
    train_and_check("mvtcae", "alpha = 0.8");
}

#[test]
fn mmjsd_trains_and_is_coherent() {
    train_and_check("mmjsd", "");
}

#[test]
fn nexus_trains_and_is_coherent() {
    train_for("nexus", "specific = 16", NEXUS_STEPS);
}

#[test]
fn mmvaeplus_trains_and_is_coherent() {
    train_and_check("mmvaeplus", "k = 2\nspecific = 4");
}
