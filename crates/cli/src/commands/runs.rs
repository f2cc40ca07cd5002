//! `mmlatent runs [DIR]`: the run folders under DIR (default `runs/`), one line each — model,
//! dataset, steps done/asked per stage, state (finished, running: a process holds its lock,
//! stopped) and the headline numbers of its newest evaluation. [`RunSummary`] is also what
//! `mmlatent report` puts side by side.

use anyhow::{bail, Context, Result};
use mmlatent_eval::Report;
use mmlatent_train::run::{RunDir, StageStatus};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A folder of run folders (or one run folder).
    #[arg(default_value = "runs")]
    pub dir: PathBuf,
}

/// What `runs` and `report` know about one run folder.
pub struct RunSummary {
    pub path: PathBuf,
    pub model: String,
    pub dataset: String,
    pub stages: Vec<StageStatus>,
    pub state: &'static str,
    /// The newest evaluation (its folder and report), if any.
    pub eval: Option<(PathBuf, Report)>,
}

impl RunSummary {
    /// Reads the run folder `path` (its config, checkpoint manifests, lock and evaluations).
    pub fn read(path: &Path) -> Result<Self> {
        let run = RunDir::open(path)?;
        let experiment = run.experiment()?;
        let dataset = match experiment.data.format.as_str() {
            "auto" => experiment.data.path.display().to_string(),
            format => format!("{} ({format})", experiment.data.path.display()),
        };
        Ok(Self {
            path: path.to_path_buf(),
            model: experiment.model_kind()?.to_string(),
            dataset,
            stages: run.stage_status()?,
            state: run.state()?.name(),
            eval: newest_eval(path)?,
        })
    }

    /// `ae_m0 800/800, score 8000/8000`, or `-` before the first checkpoint.
    pub fn steps(&self) -> String {
        if self.stages.is_empty() {
            return "-".into();
        }
        self.stages.iter().map(|s| format!("{} {}/{}", s.stage, s.step, s.total)).collect::<Vec<_>>().join(", ")
    }

    /// `joint 22.5 %, given 1 37.5 %, given 2 45.9 %` of the newest evaluation, or `-`.
    pub fn headline(&self) -> String {
        let Some((_, report)) = &self.eval else { return "-".into() };
        let mut parts = vec![format!("joint {:.1} %", 100.0 * report.joint_coherence)];
        for a in &report.conditional_coherence.by_size {
            parts.push(format!("given {} {:.1} %", a.size, 100.0 * a.value));
        }
        parts.join(", ")
    }
}

/// The evaluation folders of a run (`eval/<name>/report.json`, and a `eval/report.json` of an
/// older mmlatent), newest last by the report file's time.
pub fn eval_folders(run: &Path) -> Result<Vec<PathBuf>> {
    let root = run.join("eval");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = vec![];
    let mut consider = |dir: PathBuf| {
        if let Ok(meta) = std::fs::metadata(dir.join("report.json")) {
            found.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), dir));
        }
    };
    if root.is_dir() {
        consider(root.clone());
        for entry in std::fs::read_dir(&root).with_context(|| format!("cannot list {}", root.display()))?.flatten() {
            if entry.path().is_dir() {
                consider(entry.path());
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, d)| d).collect())
}

/// The newest evaluation of a run whose report can be read (unreadable ones are warned about).
fn newest_eval(run: &Path) -> Result<Option<(PathBuf, Report)>> {
    for dir in eval_folders(run)?.into_iter().rev() {
        let path = dir.join("report.json");
        match mmlatent_train::checkpoint::load_json::<Report>(&path) {
            Ok(report) => return Ok(Some((dir, report))),
            Err(e) => eprintln!("warning: {e:#}; skipped"),
        }
    }
    Ok(None)
}

/// The run folders of `dir`: itself when it is one, else its sub-folders that are, by name.
pub fn find_runs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    if dir.join("config.toml").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    runs.sort();
    Ok(runs)
}

pub fn run(args: Args) -> Result<()> {
    let runs = find_runs(&args.dir)?;
    if runs.is_empty() {
        println!("no run folders in {}", args.dir.display());
        return Ok(());
    }
    let mut rows = vec![vec![
        "run".to_string(),
        "model".into(),
        "dataset".into(),
        "steps done/asked".into(),
        "state".into(),
        "last eval".into(),
    ]];
    for path in runs {
        match RunSummary::read(&path) {
            Ok(s) => rows.push(vec![
                path.display().to_string(),
                s.model.clone(),
                s.dataset.clone(),
                s.steps(),
                s.state.to_string(),
                s.headline(),
            ]),
            Err(e) => eprintln!("warning: {}: {e:#}", path.display()),
        }
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}
