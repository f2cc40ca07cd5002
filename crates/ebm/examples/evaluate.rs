//! Scores a trained EBM run with the project's evaluation (classifier coherence and
//! classifier-feature Fréchet distances), training the dataset's classifiers when missing.
//!
//! ```text
//! cargo run --release -p mmlatent-ebm --example evaluate -- RUN CLASSIFIER_DIR [OUT_DIR]
//! ```
//!
//! (`mmlatent eval RUN` does the same for every family; this example needs only this crate.)
//! It also prints the joint coherence of the same model with z drawn from the base N(0, I)
//! instead of the EBM prior (0 Langevin steps): the ablation of the poster's "p₀ vs p_α".

use anyhow::{Context, Result};
use mmlatent_ebm::{EbmConfig, EbmModel, FAMILY};
use mmlatent_eval::coherence::joint_coherence;
use mmlatent_eval::{evaluate, ClassifierOptions, Classifiers, EvalOptions};
use mmlatent_train::family::ModelFamily;
use mmlatent_train::run::RunDir;
use std::path::PathBuf;
use tch::Device;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: evaluate RUN CLASSIFIER_DIR [OUT_DIR]";
    let run = RunDir::open(args.first().context(usage)?.as_ref())?;
    let classifier_dir = PathBuf::from(args.get(1).context(usage)?);
    let experiment = run.experiment()?;
    tch::set_num_threads(2);
    let dataset = mmlatent_data::open(&experiment.data)?;
    let (classifiers, trained) = Classifiers::load_or_train(&classifier_dir, &dataset, &ClassifierOptions::default())?;
    if trained {
        eprintln!("trained classifiers into {}", classifier_dir.display());
    }
    let model = FAMILY.load(&run, &dataset, Device::Cpu)?;
    let out = args.get(2).map(PathBuf::from).unwrap_or_else(|| run.root().join("eval"));
    let options = EvalOptions { grid_dir: Some(out.join("samples")), ..EvalOptions::default() };
    let report = evaluate(model.as_ref(), &dataset, &classifiers, &options)?;
    report.save(&out)?;
    println!("{}", report.to_table());

    let mut config: EbmConfig = experiment.model_config()?;
    config.langevin_steps = 0;
    let base_prior = EbmModel::new(experiment.model_kind()?, &dataset.modalities, &config, Device::Cpu)?;
    mmlatent_ebm::train::load_trained(&base_prior, &run)?;
    tch::manual_seed(options.seed as i64);
    let p0 = joint_coherence(&base_prior, &classifiers, options.joint_samples, options.batch_size)?;
    println!("joint coherence with z ~ N(0, I) instead of p_α: {:.2} %", 100.0 * p0);
    Ok(())
}
