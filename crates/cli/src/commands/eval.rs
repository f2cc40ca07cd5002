//! `mmlatent eval RUN`: the evaluation report of a trained run — classifier accuracies, joint
//! and conditional coherence, FD (classifier features) and FID (Inception, with `--fid-weights`)
//! per modality — printed as tables and written to `<run>/eval/` (report.json, report.csv,
//! report.txt, sample grids).

use super::classifier::ClassifierArgs;
use super::common::{check_count, check_output_file, open_run, OpenedRun};
use anyhow::{Context, Result};
use mmlatent_eval::classifier::{default_dir, ClassifierOptions, Classifiers};
use mmlatent_eval::{evaluate, EvalOptions, Report};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of a trained model.
    pub run: PathBuf,
    /// Inception-v3 weights for FID (safetensors; convert pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth with scripts/convert_inception.py).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Also write the JSON report here (it is always written to <run>/eval/report.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the CSV report here (always written to <run>/eval/report.csv).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Joint samples, and test tuples per given subset.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// At most this many items per set enter an Inception FID.
    #[arg(long, default_value_t = 500)]
    pub fid_samples: usize,
    /// Items per generation call.
    #[arg(long, default_value_t = 250)]
    pub batch: i64,
    /// Folder of the dataset's classifiers (default: runs/classifiers/<dataset name>; trained
    /// there when missing).
    #[arg(long)]
    pub classifiers: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto (default: the run's device).
    #[arg(long)]
    pub device: Option<String>,
    /// Seed of the generation (default: the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
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
    let opened = open_run(&args.run, args.device.as_deref())?;
    let options = EvalOptions {
        joint_samples: args.samples as i64,
        conditional_samples: args.samples,
        batch_size: args.batch,
        fid_weights: args.fid_weights.clone(),
        fid_samples: args.fid_samples,
        seed: args.seed.unwrap_or(opened.experiment.seed),
        ..EvalOptions::default()
    };
    let classifier_options = args.classifier.options(opened.device);
    let report = evaluate_run(&opened, args.classifiers.as_deref(), &classifier_options, options)?;
    for (path, text) in [(&args.json, report.to_json()?), (&args.csv, report.to_csv())] {
        if let Some(path) = path {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Finds the classifiers of `dataset` and trains (and saves) them when there are none. In a
/// folder the user named they are used as they are; in the default folder they are used only
/// when trained with the asked recipe (`options`), and retrained otherwise — so classifiers of
/// a quick test run are never silently reused for real numbers.
pub fn find_or_train_classifiers(
    dataset: &mmlatent_core::MultimodalDataset,
    dir: Option<&Path>,
    options: &ClassifierOptions,
) -> Result<Classifiers> {
    let named = dir.is_some();
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| default_dir(&dataset.name));
    if let Some(found) = Classifiers::load_if_present(&dir, dataset, options.device)? {
        match found.info().recipe_difference(options) {
            Some(difference) if !named => {
                eprintln!("the classifiers in {} were {difference}: training them again there", dir.display())
            }
            _ => {
                let accuracy: Vec<String> =
                    found.test_accuracy().iter().map(|a| format!("{:.1}%", 100.0 * a)).collect();
                eprintln!("using the classifiers in {} (test accuracy {})", dir.display(), accuracy.join(", "));
                return Ok(found);
            }
        }
    } else {
        eprintln!(
            "no classifiers for dataset {} in {}: training them there ({} steps)",
            dataset.name,
            dir.display(),
            options.steps
        );
    }
    let trained = Classifiers::train_in(&dir, dataset, options)?;
    eprintln!("saved the classifiers to {}", dir.display());
    Ok(trained)
}

/// Evaluates an opened run: classifiers found or trained, the report printed and written to
/// `<run>/eval/` with its sample grids. Shared with `quickstart`.
pub fn evaluate_run(
    opened: &OpenedRun,
    classifiers_dir: Option<&Path>,
    classifier_options: &ClassifierOptions,
    mut options: EvalOptions,
) -> Result<Report> {
    let classifiers = find_or_train_classifiers(&opened.dataset, classifiers_dir, classifier_options)?;
    let out = opened.run.root().join("eval");
    options.grid_dir = Some(out.clone());
    let report = evaluate(opened.model.as_ref(), &opened.dataset, &classifiers, &options)?;
    report.save(&out)?;
    println!("{}", report.to_table());
    eprintln!("wrote {}/report.{{json,csv,txt}} and sample grids", out.display());
    Ok(report)
}
