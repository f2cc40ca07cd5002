//! Evaluating a trained run, as `mmlatent eval` and Python's `Model.evaluate` both do: find the
//! dataset's evaluation classifiers (or train them, in their cache folder), evaluate the model
//! (`mmlatent_eval::evaluate`), and write the report with its provenance and sample grids to a
//! folder of its own, `<run>/eval/<name>/`. The same run, options and seed give the same report
//! from either front end.

use crate::OpenedRun;
use anyhow::{bail, Result};
use mmlatent_eval::classifier::{default_dir, ClassifierOptions, Classifiers};
use mmlatent_eval::provenance::{utc_now, Provenance};
use mmlatent_eval::{evaluate, EvalOptions, Report};
use std::path::{Path, PathBuf};

/// What to evaluate with, beyond the opened run and the evaluation's own options.
pub struct EvalRequest<'a> {
    /// The classifiers' folder; `None`: the dataset's default cache folder (see
    /// [`default_dir`]).
    pub classifiers: Option<&'a Path>,
    /// How classifiers are trained when there are none (or, in the default folder, when those
    /// there were trained otherwise).
    pub classifier_options: ClassifierOptions,
    pub options: EvalOptions,
    /// The evaluation folder's name under `<run>/eval/`; `None`: see [`eval_dir`].
    pub name: Option<&'a str>,
    /// How the evaluation was asked for, recorded in its provenance (a command line).
    pub command: Vec<String>,
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
    if let Some(found) = Classifiers::load_if_present(dir, dataset, options.device)? {
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
    let trained = Classifiers::train_in(dir, dataset, options)?;
    eprintln!("saved the classifiers to {}", dir.display());
    Ok(trained)
}

/// Checks an evaluation folder's name: one plain path component.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        bail!("evaluation name {name:?}: give a plain folder name (no path separators), e.g. ancestral-25");
    }
    Ok(())
}

/// The folder of an evaluation under `<run>/eval/`: `name`, or `<stage>-<step>-<sampler>` of the
/// newest checkpoint set, suffixed `-2`, `-3`… rather than replacing an earlier evaluation.
pub fn eval_dir(opened: &OpenedRun, name: Option<&str>) -> Result<PathBuf> {
    let root = opened.run.root().join("eval");
    if let Some(name) = name {
        check_name(name)?;
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

/// Evaluates an opened run: classifiers found or trained, the report written with its
/// provenance and sample grids to `<run>/eval/<name>/` (see [`eval_dir`]), which is returned
/// with the report.
pub fn evaluate_run(opened: &OpenedRun, request: EvalRequest) -> Result<(Report, PathBuf)> {
    let dir = match request.classifiers {
        Some(d) => d.to_path_buf(),
        None => default_dir(&opened.dataset.name, &opened.experiment.data),
    };
    let classifiers =
        find_or_train_classifiers(&opened.dataset, &dir, request.classifiers.is_some(), &request.classifier_options)?;
    let out = eval_dir(opened, request.name)?;
    let options = EvalOptions { grid_dir: Some(out.clone()), ..request.options };
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
        command: request.command,
    });
    report.save(&out)?;
    Ok((report, out))
}
