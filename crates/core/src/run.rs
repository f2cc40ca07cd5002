//! Run folders: the resolved config, checkpoints, a JSONL metrics log, plots and samples.
//!
//! ```text
//! runs/<name>/
//!   config.toml          the resolved experiment (after overrides)
//!   checkpoints/         <stage>.safetensors + <stage>.state.json (step reached)
//!   metrics.jsonl        one JSON object per logged step
//!   plots/, samples/     PNG loss curves and sample grids
//! ```

use crate::checkpoint;
use crate::config::Experiment;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

/// How far a training stage got; saved beside its checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StageState {
    pub step: usize,
    pub done: bool,
    /// The last logged loss, for resuming plots and reports.
    #[serde(default)]
    pub last_loss: Option<f64>,
}

impl RunDir {
    /// Creates a new run folder for `experiment`. With `resume`, an existing folder is reopened
    /// (its stored config wins); without it, an existing non-empty folder is an error.
    pub fn create(root: &Path, experiment: &Experiment, resume: bool) -> Result<Self> {
        let run = Self { root: root.to_path_buf() };
        if run.config_path().exists() {
            if !resume {
                bail!(
                    "run folder {} already holds a run: pass --resume to continue it, or choose another --run",
                    root.display()
                );
            }
            return Ok(run);
        }
        for sub in ["checkpoints", "plots", "samples"] {
            fs::create_dir_all(root.join(sub))
                .with_context(|| format!("cannot create {}", root.join(sub).display()))?;
        }
        let tmp = root.join(".config.toml.partial");
        fs::write(&tmp, experiment.to_toml()?).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, run.config_path())?;
        Ok(run)
    }

    /// Opens an existing run folder.
    pub fn open(root: &Path) -> Result<Self> {
        let run = Self { root: root.to_path_buf() };
        if !run.config_path().exists() {
            bail!("{} is not a run folder (no config.toml)", root.display());
        }
        Ok(run)
    }

    /// The experiment stored in the run folder.
    pub fn experiment(&self) -> Result<Experiment> {
        Experiment::load(&self.config_path(), &[])
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `checkpoints/<stage>.safetensors`.
    pub fn checkpoint(&self, stage: &str) -> PathBuf {
        self.root.join("checkpoints").join(format!("{stage}.safetensors"))
    }

    /// `checkpoints/<stage>.adam.safetensors`: the optimiser state saved beside the weights.
    pub fn optimizer_checkpoint(&self, stage: &str) -> PathBuf {
        self.root.join("checkpoints").join(format!("{stage}.adam.safetensors"))
    }

    /// Any other file of the run (created folders included).
    pub fn file(&self, relative: &str) -> Result<PathBuf> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(path)
    }

    /// The saved state of a stage, if any.
    pub fn stage_state(&self, stage: &str) -> Result<Option<StageState>> {
        let path = self.root.join("checkpoints").join(format!("{stage}.state.json"));
        if !path.exists() {
            return Ok(None);
        }
        checkpoint::load_json(&path).map(Some)
    }

    /// Records a stage's state; call after its checkpoint is written.
    pub fn save_stage_state(&self, stage: &str, state: &StageState) -> Result<()> {
        checkpoint::save_json(state, &self.root.join("checkpoints").join(format!("{stage}.state.json")))
    }

    /// Appends one JSON object to `metrics.jsonl`.
    pub fn log_metrics(&self, record: &serde_json::Value) -> Result<()> {
        let path = self.root.join("metrics.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{record}").with_context(|| format!("cannot append to {}", path.display()))
    }

    /// Every record of `metrics.jsonl` whose `stage` field equals `stage`.
    pub fn read_metrics(&self, stage: &str) -> Result<Vec<serde_json::Value>> {
        let path = self.root.join("metrics.jsonl");
        if !path.exists() {
            return Ok(vec![]);
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut out = vec![];
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            if v.get("stage").and_then(|s| s.as_str()) == Some(stage) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> Experiment {
        Experiment::parse("[data]\npath = \"default\"\n[model]\nkind = \"toy\"\n", &[]).unwrap()
    }

    #[test]
    fn create_refuses_to_overwrite_without_resume() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        let run = RunDir::create(&root, &experiment(), false).unwrap();
        assert!(RunDir::create(&root, &experiment(), false).is_err());
        RunDir::create(&root, &experiment(), true).unwrap();
        assert_eq!(run.experiment().unwrap().model_kind().unwrap(), "toy");
    }

    #[test]
    fn metrics_and_state_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &experiment(), false).unwrap();
        run.log_metrics(&serde_json::json!({"stage": "a", "step": 1, "loss": 2.0})).unwrap();
        run.log_metrics(&serde_json::json!({"stage": "b", "step": 1, "loss": 3.0})).unwrap();
        assert_eq!(run.read_metrics("a").unwrap().len(), 1);
        assert_eq!(run.stage_state("a").unwrap(), None);
        let s = StageState { step: 7, done: false, last_loss: Some(1.5) };
        run.save_stage_state("a", &s).unwrap();
        assert_eq!(run.stage_state("a").unwrap(), Some(s));
    }
}
