//! `mmlatent eval RUN`: the evaluation report of a trained run — classifier accuracies, joint
//! and conditional coherence, FD (classifier features) and FID (Inception, with `--fid-weights`)
//! per modality — printed as tables and written to a folder of its own, `<run>/eval/<name>/`
//! (report.json with the evaluation's provenance, report.csv, report.txt, sample grids). The
//! work is `mmlatent_runner::evaluate`, shared with Python's `Model.evaluate`.

use super::classifier::ClassifierArgs;
use super::common::{check_count, check_output_file, open_run};
use anyhow::{Context, Result};
use mmlatent_eval::EvalOptions;
use mmlatent_runner::evaluate::{check_name, evaluate_run, EvalRequest};
use mmlatent_runner::sampler::SamplerArgs;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of a trained model.
    pub run: PathBuf,
    /// Inception-v3 weights for FID (safetensors; convert pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth with scripts/convert_inception.py).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Also write the JSON report here (it is always written to <run>/eval/<name>/report.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the CSV report here (always written to <run>/eval/<name>/report.csv).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Joint samples, and test tuples per given subset.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// At most this many items per set enter an Inception FID.
    #[arg(long, default_value_t = 500)]
    pub fid_samples: usize,
    /// Items per generation call.
    #[arg(long, allow_negative_numbers = true, default_value_t = 250)]
    pub batch: i64,
    /// Folder of the dataset's classifiers (default: a folder of the user's cache tied to the
    /// dataset's resolved path, ~/.cache/mmlatent/classifiers/<dataset>-<key>; trained there
    /// when missing).
    #[arg(long)]
    pub classifiers: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto (default: the run's device).
    #[arg(long)]
    pub device: Option<String>,
    /// Seed of the generation (default: the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Name of this evaluation's folder, <run>/eval/<name>/ (replaced when it exists; default:
    /// the newest checkpoint's stage and step and the sampler, e.g. score-8000-ancestral-50,
    /// with -2, -3… added rather than replacing an earlier evaluation).
    #[arg(long)]
    pub name: Option<String>,
    /// Only the given subsets of at most K modalities (0: joint generation only). With many
    /// modalities the subsets are many (30 for five): a quicker look.
    #[arg(long, value_name = "K")]
    pub max_given: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub classifier: ClassifierArgs,
}

pub fn run(args: Args) -> Result<()> {
    // Arguments first: an evaluation takes minutes, and should not fail at its end.
    check_count("--samples", args.samples as i64, i64::MAX)?;
    check_count("--fid-samples", args.fid_samples as i64, i64::MAX)?;
    check_count("--batch", args.batch, 1 << 20)?;
    args.classifier.check()?;
    for (flag, path, ext) in [("--json", &args.json, "json"), ("--csv", &args.csv, "csv")] {
        if let Some(path) = path {
            check_output_file(flag, path, ext)?;
        }
    }
    if let Some(weights) = &args.fid_weights {
        if !weights.is_file() {
            anyhow::bail!("--fid-weights {}: file not found", weights.display());
        }
    }
    if let Some(name) = &args.name {
        check_name(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    }
    let opened = open_run(&args.run, args.device.as_deref(), &args.sampler)?;
    let options = EvalOptions {
        joint_samples: args.samples as i64,
        conditional_samples: args.samples,
        batch_size: args.batch,
        fid_weights: args.fid_weights.clone(),
        fid_samples: args.fid_samples,
        seed: args.seed.unwrap_or(opened.experiment.seed),
        max_given: args.max_given,
        ..EvalOptions::default()
    };
    let (report, out) = evaluate_run(
        &opened,
        EvalRequest {
            classifiers: args.classifiers.as_deref(),
            classifier_options: args.classifier.options(opened.device),
            options,
            name: args.name.as_deref(),
            command: std::env::args().collect(),
        },
    )?;
    println!("{}", report.to_table());
    eprintln!("wrote {}/report.{{json,csv,txt}} and sample grids", out.display());
    for (path, text) in [(&args.json, report.to_json()?), (&args.csv, report.to_csv())] {
        if let Some(path) = path {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
