//! `mmlatent quickstart`: the main job on the bundled default dataset, from nothing to a
//! coherence table. Builds the default dataset (Fashion-MNIST in three textured modalities) and
//! draws a grid of its tuples, trains MLD with `configs/default-mld.toml` (both stages,
//! resumable: running it again continues or re-evaluates), trains the evaluation classifiers,
//! then writes joint and conditional sample grids and the coherence table, and says where.

use super::classifier::ClassifierArgs;
use super::common::open_run;
use anyhow::Result;
use mmlatent_eval::EvalOptions;
use mmlatent_present::grid::save_image_grid;
use mmlatent_runner::evaluate::{evaluate_run, EvalRequest};
use mmlatent_runner::train::{prepare, train_prepared};
use mmlatent_train::config::Experiment;
use mmlatent_train::run::RunDir;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// The experiment quickstart runs, compiled in so the binary works from any folder.
const DEFAULT_MLD: &str = include_str!("../../../../configs/default-mld.toml");

#[derive(clap::Args)]
pub struct Args {
    /// Run folder (re-running with the same folder resumes, then re-evaluates).
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long)]
    pub device: Option<String>,
    /// Override a value of configs/default-mld.toml, e.g. --set train.steps=2000 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<std::ffi::OsString>,
    /// Joint samples, and test tuples per given subset, for the coherence table.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    #[command(flatten)]
    pub classifier: ClassifierArgs,
}

pub fn run(args: Args) -> Result<()> {
    super::common::check_count("--samples", args.samples as i64, i64::MAX)?;
    args.classifier.check()?;
    let overrides = super::common::set_arguments(&args.overrides)?;
    let mut experiment = Experiment::parse(DEFAULT_MLD, &overrides)?;
    if let Some(d) = &args.device {
        experiment.device = d.clone();
    }
    // A run folder from an earlier quickstart is continued with its stored experiment; a new
    // one is created only once everything is checked, with its `[model]` table resolved.
    let existing = if args.out.join("config.toml").exists() { Some(RunDir::open(&args.out)?) } else { None };
    let experiment = match &existing {
        Some(run) => run.experiment()?,
        None => experiment,
    };
    let prepared = prepare(&experiment, args.device.as_deref())?;
    let (run, prepared) = match existing {
        Some(run) => (run, prepared),
        None => {
            let prepared = prepared.resolved()?;
            (RunDir::create(&args.out, prepared.experiment(), false)?, prepared)
        }
    };
    let lock = run.lock()?;

    eprintln!("[1/4] the bundled default dataset");
    let dataset = &prepared.dataset;
    let tuples = run.file("samples/dataset.png")?;
    save_image_grid(&tuples, &one_tuple_per_class(dataset))?;
    eprintln!(
        "      {} train / {} test tuples of {} modalities; one tuple per class → {}",
        dataset.train.len(),
        dataset.test.len(),
        dataset.num_modalities(),
        tuples.display()
    );

    eprintln!("[2/4] training MLD (autoencoders, then the score network)");
    train_prepared(&run, prepared)?;
    drop(lock);

    eprintln!("[3/4] classifiers and [4/4] evaluation");
    let opened = open_run(run.root(), args.device.as_deref(), &Default::default())?;
    let options = EvalOptions {
        joint_samples: args.samples as i64,
        conditional_samples: args.samples,
        seed: experiment.seed,
        ..EvalOptions::default()
    };
    let (report, eval_dir) = evaluate_run(
        &opened,
        EvalRequest {
            classifiers: None,
            classifier_options: args.classifier.options(opened.device),
            options,
            name: None,
            command: std::env::args().collect(),
        },
    )?;
    println!("{}", report.to_table());
    println!();
    println!("quickstart done in {}:", run.root().display());
    println!(
        "  joint coherence {:.2} %; conditional coherence by number of given modalities:",
        100.0 * report.joint_coherence
    );
    for size in 1..opened.dataset.num_modalities() {
        if let Some(c) = report.conditional_coherence.average(size) {
            println!("    {size} given: {:.2} %", 100.0 * c);
        }
    }
    println!("  dataset grid      {}", tuples.display());
    println!("  sample grids      {}/", eval_dir.display());
    println!("  report            {}/report.txt (also .json, .csv)", eval_dir.display());
    println!("  loss plots        {}/plots/", run.root().display());
    println!("  next: mmlatent sample {} --joint 16 --out joint.png", run.root().display());
    Ok(())
}

/// The first test tuple of each class: one grid row per modality, one column per class.
fn one_tuple_per_class(dataset: &mmlatent_core::MultimodalDataset) -> Vec<Tensor> {
    let labels = Vec::<i64>::try_from(&dataset.test.labels).unwrap_or_default();
    let picks: Vec<i64> =
        (0..dataset.num_classes).filter_map(|k| labels.iter().position(|&l| l == k).map(|i| i as i64)).collect();
    let batch = dataset.test.batch(&dataset.modalities, &Tensor::from_slice(&picks), Device::Cpu);
    batch
        .items
        .iter()
        .zip(&dataset.modalities)
        .filter(|(_, spec)| spec.is_image())
        .map(|(t, _)| t.to_kind(Kind::Float))
        .collect()
}
