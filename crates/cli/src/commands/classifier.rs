//! `mmlatent classifier train DATA --out DIR`: one classifier per modality, trained on a
//! dataset's labels and saved (safetensors + JSON with test accuracies) for evaluation.

use anyhow::Result;
use mmlatent_core::device::seed_everything;
use mmlatent_eval::classifier::{default_dir, ClassifierOptions, Classifiers};
use mmlatent_runner::device::parse_device;
use mmlatent_train::config::DataConfig;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ClassifierCommand {
    /// Train one classifier per modality on a dataset's labels.
    Train(TrainArgs),
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A dataset folder, or `default` for the bundled dataset.
    pub data: PathBuf,
    /// Dataset format (auto detects it).
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Output folder (default: where `eval` looks, a folder of the user's cache tied to the
    /// dataset's resolved path: ~/.cache/mmlatent/classifiers/<dataset>-<key>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu (default), cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[command(flatten)]
    pub options: ClassifierArgs,
}

/// Training settings of the classifiers (shared with `eval`, which trains them when missing).
#[derive(clap::Args, Clone, Debug)]
pub struct ClassifierArgs {
    /// Adam steps.
    #[arg(long, default_value_t = ClassifierOptions::default().steps)]
    pub classifier_steps: usize,
    #[arg(long, default_value_t = ClassifierOptions::default().batch_size)]
    pub classifier_batch: usize,
    /// Channel width of the classifiers' encoders.
    #[arg(long, allow_negative_numbers = true, default_value_t = ClassifierOptions::default().width)]
    pub classifier_width: i64,
    #[arg(long, default_value_t = 0)]
    pub classifier_seed: u64,
}

impl ClassifierArgs {
    /// Errors for settings no training can use.
    pub fn check(&self) -> Result<()> {
        super::common::check_count("--classifier-steps", self.classifier_steps as i64, i64::MAX)?;
        super::common::check_count("--classifier-batch", self.classifier_batch as i64, i64::MAX)?;
        super::common::check_count("--classifier-width", self.classifier_width, 4096)
    }

    pub fn options(&self, device: tch::Device) -> ClassifierOptions {
        ClassifierOptions {
            steps: self.classifier_steps,
            batch_size: self.classifier_batch,
            width: self.classifier_width,
            seed: self.classifier_seed,
            device,
            progress: true,
            ..ClassifierOptions::default()
        }
    }
}

pub fn run(command: ClassifierCommand) -> Result<()> {
    match command {
        ClassifierCommand::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> Result<()> {
    args.options.check()?;
    let config = DataConfig { path: args.data.clone(), format: args.format.clone(), max_train: None, max_test: None };
    let dataset = mmlatent_data::open(&config)?;
    let device = parse_device(&args.device)?;
    seed_everything(args.options.classifier_seed);
    let out = args.out.clone().unwrap_or_else(|| default_dir(&dataset.name, &config));
    eprintln!(
        "training {} classifiers on {} ({} train / {} test tuples) on {device:?} → {}",
        dataset.num_modalities(),
        dataset.name,
        dataset.train.len(),
        dataset.test.len(),
        out.display()
    );
    let classifiers = Classifiers::train_in(&out, &dataset, &args.options.options(device))?;
    for (spec, acc) in dataset.modalities.iter().zip(classifiers.test_accuracy()) {
        println!("{:<12} {:<32} test accuracy {:.2}%", spec.name, spec.describe(), 100.0 * acc);
    }
    println!("saved to {}", out.display());
    Ok(())
}
