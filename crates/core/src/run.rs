//! Run folders: the resolved config, checkpoints, a JSONL metrics log, plots and samples.
//!
//! ```text
//! runs/<name>/
//!   config.toml          the resolved experiment (after overrides)
//!   run.lock             held (flock) by the process training into the folder
//!   checkpoints/<stage>/ checkpoint sets step-<N>/ and best-<N>/ (see [`crate::checkpoint`])
//!   checkpoints/*.safetensors  derived files (e.g. MLD's latent statistics)
//!   metrics.jsonl        one JSON object per logged step
//!   plots/, samples/     PNG loss curves and sample grids
//! ```

use crate::config::Experiment;
use anyhow::{bail, Context, Result};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

/// The exclusive hold of one process on a run folder (released when dropped or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: fs::File,
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

    /// A folder used only for training checkpoints and metrics, without an experiment (e.g.
    /// the evaluation classifiers' folder); created if needed.
    pub fn scratch(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("checkpoints"))
            .with_context(|| format!("cannot create {}", root.join("checkpoints").display()))?;
        Ok(Self { root: root.to_path_buf() })
    }

    /// Takes the folder's lock (`run.lock`, with this process's id), or fails naming the process
    /// that holds it: two processes never train into one folder.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.root.join("run.lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "run folder {} is in use by another mmlatent process (pid {}); wait for it to end or stop it first",
                self.root.display(),
                holder.trim()
            );
        }
        file.set_len(0).and_then(|_| write!(file, "{}", std::process::id())).and_then(|_| file.flush()).ok();
        Ok(RunLock { _file: file })
    }

    /// `checkpoints/<name>.safetensors`: a derived file kept beside the checkpoint sets.
    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.root.join("checkpoints").join(format!("{name}.safetensors"))
    }

    /// `checkpoints/<stage>/`: the checkpoint sets of a training stage.
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root.join("checkpoints").join(stage)
    }

    /// Any other file of the run (created folders included).
    pub fn file(&self, relative: &str) -> Result<PathBuf> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(path)
    }

    fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// Rewrites `metrics.jsonl` (atomically) without the records of `stage` after step `step`
    /// and without lines that are not JSON objects (a kill mid-line), saying how many went.
    pub fn truncate_metrics(&self, stage: &str, step: usize, report: &mut dyn FnMut(String)) -> Result<()> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(());
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let (mut kept, mut later, mut broken) = (String::new(), 0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) if v.is_object() => {
                    let after = v.get("stage").and_then(|s| s.as_str()) == Some(stage)
                        && v.get("step").and_then(|s| s.as_u64()).is_some_and(|s| s as usize > step);
                    if after {
                        later += 1;
                    } else {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
                _ => broken += 1,
            }
        }
        if later == 0 && broken == 0 {
            return Ok(());
        }
        if broken > 0 {
            report(format!("{}: dropped {broken} line(s) that are not JSON records", path.display()));
        }
        let tmp = self.root.join(".metrics.jsonl.partial");
        fs::write(&tmp, kept).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))
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

    /// Every record of `metrics.jsonl` whose `stage` field equals `stage`; lines that are not
    /// JSON are skipped with a warning naming the file and line.
    pub fn read_metrics(&self, stage: &str) -> Result<Vec<serde_json::Value>> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(vec![]);
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut out = vec![];
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                eprintln!("warning: {} line {}: not JSON, skipped", path.display(), i + 1);
                continue;
            };
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
    fn metrics_are_truncated_and_bad_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &experiment(), false).unwrap();
        for step in 1..=4 {
            run.log_metrics(&serde_json::json!({"stage": "a", "step": step, "loss": 2.0})).unwrap();
        }
        run.log_metrics(&serde_json::json!({"stage": "b", "step": 9, "loss": 3.0})).unwrap();
        let path = run.root().join("metrics.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"stage\": \"a\", \"st").unwrap();
        drop(f);
        assert_eq!(run.read_metrics("a").unwrap().len(), 4);
        let mut reports = vec![];
        run.truncate_metrics("a", 2, &mut |m| reports.push(m)).unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let steps: Vec<u64> = run.read_metrics("a").unwrap().iter().map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, vec![1, 2]);
        assert_eq!(run.read_metrics("b").unwrap().len(), 1);
    }

    #[test]
    fn a_second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &experiment(), false).unwrap();
        let held = run.lock().unwrap();
        // flock locks belong to open files: a second open in this process conflicts too.
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("in use") && err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        run.lock().unwrap();
    }
}
