//! `mmlatent eval RUN`: the evaluation report of a trained run — classifier accuracies, joint
//! and conditional coherence, FD (classifier features) and FID (Inception, with `--fid-weights`)
//! per modality — printed as tables and written to a folder of its own, `<run>/eval/<name>/`
//! (report.json with the evaluation's provenance, report.csv, report.txt, sample grids).

use super::classifier::ClassifierArgs;
use super::common::{check_count, check_output_file, open_run, OpenedRun};
use anyhow::{bail, Context, Result};
use mmlatent_eval::classifier::{default_dir, ClassifierOptions, Classifiers};
use mmlatent_eval::provenance::{utc_now, Provenance};
use mmlatent_eval::{evaluate, EvalOptions, Report};
use mmlatent_runner::sampler::SamplerArgs;
use std::path::{Path, PathBuf};

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
        check_name(name)?;
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
    let classifier_options = args.classifier.options(opened.device);
    let (report, _) =
        evaluate_run(&opened, args.classifiers.as_deref(), &classifier_options, options, args.name.as_deref())?;
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
    dir: &Path,
    named: bool,
    options: &ClassifierOptions,
) -> Result<Classifiers> {
    let dir = dir.to_path_buf();
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

/// A folder name given with `--name`: one plain path component.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        bail!("--name {name:?}: give a plain folder name (no path separators), e.g. --name ancestral-25");
    }
    Ok(())
}

/// The folder of an evaluation under `<run>/eval/`: `name`, or `<stage>-<step>-<sampler>` of the
/// newest checkpoint set, suffixed `-2`, `-3`… rather than replacing an earlier evaluation.
fn eval_dir(opened: &OpenedRun, name: Option<&str>) -> Result<PathBuf> {
    let root = opened.run.root().join("eval");
    if let Some(name) = name {
        return Ok(root.join(name));
    }
    let newest = opened.run.stage_status()?.into_iter().max_by_key(|s| (s.written, s.step));
    let stem = match newest {
        Some(s) => format!("{}-{}-{}", s.stage, s.step, opened.sampler.short_name()),
        None => opened.sampler.short_name(),
    };
    let taken = |p: &Path| p.join("report.json").exists();
    let mut dir = root.join(&stem);
    let mut k = 2;
    while taken(&dir) {
        dir = root.join(format!("{stem}-{k}"));
        k += 1;
    }
    Ok(dir)
}

/// Evaluates an opened run: classifiers found or trained, the report printed and written with
/// its provenance and sample grids to `<run>/eval/<name>/` (see [`eval_dir`]), which is
/// returned. Shared with `quickstart`.
pub fn evaluate_run(
    opened: &OpenedRun,
    classifiers_dir: Option<&Path>,
    classifier_options: &ClassifierOptions,
    mut options: EvalOptions,
    name: Option<&str>,
) -> Result<(Report, PathBuf)> {
    let dir = match classifiers_dir {
        Some(d) => d.to_path_buf(),
        None => default_dir(&opened.dataset.name, &opened.experiment.data),
    };
    let classifiers = find_or_train_classifiers(&opened.dataset, &dir, classifiers_dir.is_some(), classifier_options)?;
    let out = eval_dir(opened, name)?;
    options.grid_dir = Some(out.clone());
    let mut report = evaluate(opened.model.as_ref(), &opened.dataset, &classifiers, &options)?;
    report.provenance = Some(Provenance {
        run: std::fs::canonicalize(opened.run.root()).unwrap_or_else(|_| opened.run.root().to_path_buf()),
        checkpoints: opened.run.stage_status()?,
        sampler: opened.sampler.clone(),
        seed: options.seed,
        classifiers: std::fs::canonicalize(&dir).unwrap_or(dir),
        classifier_accuracy: report.classifier_accuracy.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        date: utc_now(),
        command: std::env::args().collect(),
    });
    report.save(&out)?;
    println!("{}", report.to_table());
    eprintln!("wrote {}/report.{{json,csv,txt}} and sample grids", out.display());
    Ok((report, out))
}
