//! Run folders: the resolved config, checkpoints, a JSONL metrics log, plots and samples.
//!
//! ```text
//! runs/<name>/
//!   config.toml          the resolved experiment (after overrides)
//!   run.lock             held (flock) by the process training into the folder
//!   checkpoints/<stage>/ checkpoint sets step-<N>/ and best-<N>/ (see [`crate::checkpoint`])
//!   checkpoints/*.safetensors  derived files (e.g. MLD's latent statistics)
//!   metrics.jsonl        one JSON object per logged step
//!   metrics.csv          the same, one row per metric, with learning rate and wall time
//!   plots/, samples/     PNG loss curves and sample grids
//! ```

use crate::config::Experiment;
use anyhow::{bail, Context, Result};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The metrics log as CSV, beside `metrics.jsonl`, with learning rate and wall time.
pub const METRICS_CSV: &str = "metrics.csv";
const METRICS_CSV_HEADER: &str = "stage,step,metric,value,lr,wall_time";

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
    /// `section.key=value` overrides applied to the stored experiment when it is read (e.g. a
    /// sampler chosen for one `sample` or `eval` call); never written back.
    overrides: Vec<String>,
}

/// Where one training stage of a run stands, from its newest checkpoint set's manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageStatus {
    pub stage: String,
    /// Steps completed at the newest checkpoint set.
    pub step: usize,
    /// Steps the stage was asked for when that set was written.
    pub total: usize,
    /// When that set was written (seconds since the Unix epoch).
    #[serde(skip)]
    pub written: u64,
}

/// Whether a run is training, has finished every stage it started, or stopped before the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// A process holds the run's lock.
    Running,
    /// Every stage with checkpoints reached its asked steps.
    Finished,
    /// Not running, and some stage (or every stage: no checkpoint yet) is short of its steps.
    Stopped,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
        }
    }
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
        let run = Self { root: root.to_path_buf(), overrides: vec![] };
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
        let run = Self { root: root.to_path_buf(), overrides: vec![] };
        if !run.config_path().exists() {
            bail!("{} is not a run folder (no config.toml)", root.display());
        }
        Ok(run)
    }

    /// The same run, read with `overrides` (`section.key=value`) applied to its stored
    /// experiment by [`RunDir::experiment`]; the stored `config.toml` is left as it is.
    pub fn with_overrides(mut self, overrides: Vec<String>) -> Self {
        self.overrides = overrides;
        self
    }

    /// The experiment stored in the run folder (with this handle's overrides applied).
    pub fn experiment(&self) -> Result<Experiment> {
        Experiment::load(&self.config_path(), &self.overrides)
    }

    /// The stages that have checkpoint sets, each with its newest set's step and asked steps,
    /// by name. Only the manifests are read (no checksum), so listing many runs is cheap.
    pub fn stage_status(&self) -> Result<Vec<StageStatus>> {
        let dir = self.root.join("checkpoints");
        let mut out = vec![];
        if !dir.is_dir() {
            return Ok(out);
        }
        let mut stages: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        stages.sort();
        for stage_dir in stages {
            let sets = crate::checkpoint::list_sets(&stage_dir, crate::training::SET_PREFIX)?;
            let Some((_, newest)) = sets.last() else { continue };
            let manifest_path = newest.join(crate::checkpoint::MANIFEST);
            let Ok(manifest) = crate::checkpoint::load_json::<crate::checkpoint::SetManifest>(&manifest_path) else {
                continue;
            };
            let written = fs::metadata(&manifest_path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            out.push(StageStatus { stage: manifest.stage, step: manifest.step, total: manifest.total, written });
        }
        Ok(out)
    }

    /// True while a process holds the run's lock (tested without taking or writing it).
    pub fn is_locked(&self) -> bool {
        let Ok(file) = fs::File::open(self.root.join("run.lock")) else { return false };
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            // SAFETY: as above; releases the shared lock just taken.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
        !free
    }

    /// Running (locked), finished (every stage with checkpoints at its asked steps) or stopped.
    pub fn state(&self) -> Result<RunState> {
        if self.is_locked() {
            return Ok(RunState::Running);
        }
        let stages = self.stage_status()?;
        Ok(if !stages.is_empty() && stages.iter().all(|s| s.step >= s.total) {
            RunState::Finished
        } else {
            RunState::Stopped
        })
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
        Ok(Self { root: root.to_path_buf(), overrides: vec![] })
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

    /// An error unless every one of `stages` has a final checkpoint set (`step == total`).
    pub fn ensure_finished(&self, stages: &[String]) -> Result<()> {
        let status = self.stage_status()?;
        for stage in stages {
            match status.iter().find(|s| &s.stage == stage) {
                Some(s) if s.step == s.total => {}
                Some(s) => bail!(
                    "stage {stage} of {} is not finished (step {} of {}): finish it with `mmlatent train --resume`",
                    self.root.display(),
                    s.step,
                    s.total
                ),
                None => bail!("{} has no checkpoint of stage {stage}", self.root.display()),
            }
        }
        Ok(())
    }

    /// Copies the finished `stages` of `source` into this run: their checkpoint sets (each stage
    /// folder copied aside, then renamed into place) and their rows of `metrics.jsonl` and
    /// `metrics.csv`.
    pub fn take_over_stages(&self, source: &RunDir, stages: &[String]) -> Result<()> {
        source.ensure_finished(stages)?;
        for stage in stages {
            let (from, to) = (source.stage_dir(stage), self.stage_dir(stage));
            if to.exists() {
                bail!("{} already has stage {stage}", self.root.display());
            }
            let partial = to.with_file_name(format!(".{stage}.partial"));
            let _ = fs::remove_dir_all(&partial);
            copy_folder(&from, &partial)?;
            fs::rename(&partial, &to)
                .with_context(|| format!("cannot rename {} to {}", partial.display(), to.display()))?;
            for record in source.read_metrics(stage)? {
                self.log_metrics(&record)?;
            }
        }
        let csv = source.root.join(METRICS_CSV);
        if csv.exists() {
            let text = fs::read_to_string(&csv).with_context(|| format!("cannot read {}", csv.display()))?;
            let rows: String = text
                .lines()
                .skip(1)
                .filter(|row| stages.iter().any(|s| row.split(',').next() == Some(s.as_str())))
                .map(|row| format!("{row}\n"))
                .collect();
            let path = self.root.join(METRICS_CSV);
            let header = if path.exists() { String::new() } else { format!("{METRICS_CSV_HEADER}\n") };
            let _lock = Self::metrics_lock();
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            f.write_all(format!("{header}{rows}").as_bytes())
                .with_context(|| format!("cannot append to {}", path.display()))?;
        }
        Ok(())
    }

    /// Any other file of the run (created folders included).
    pub fn file(&self, relative: &str) -> Result<PathBuf> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(path)
    }

    /// Held while the metrics files are read or written: stages trained side by side
    /// ([`crate::side_by_side`]) log into the same files from several threads.
    fn metrics_lock() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The highest step of `stage` recorded in `metrics.jsonl`; `None` when the log holds no
    /// record of the stage (or there is no log). Lines that are not JSON records are skipped.
    pub fn last_logged_step(&self, stage: &str) -> Result<Option<usize>> {
        let _lock = Self::metrics_lock();
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v.get("stage").and_then(|s| s.as_str()) == Some(stage))
            .filter_map(|v| v.get("step").and_then(|s| s.as_u64()))
            .map(|s| s as usize)
            .max())
    }

    /// A check for [`crate::checkpoint::latest_set`]: a set of `stage` must not stand beyond
    /// what the run's log recorded of that stage (training logs every checkpoint's step before
    /// writing the set), else its manifest does not belong to this run's history.
    pub fn log_agrees(&self, stage: &str) -> Result<impl Fn(&crate::checkpoint::SetManifest) -> Result<()>> {
        let logged = self.last_logged_step(stage)?;
        let log = self.metrics_path();
        Ok(move |m: &crate::checkpoint::SetManifest| match logged {
            Some(last) if m.step > last => anyhow::bail!(
                "its manifest records step {}, but {} records stage {} only up to step {last}; the manifest does \
                 not belong to this run's history",
                m.step,
                log.display(),
                m.stage
            ),
            _ => Ok(()),
        })
    }

    /// Rewrites `metrics.jsonl` (atomically) without the records of `stage` after step `step`
    /// and without lines that are not JSON objects (a kill mid-line), saying how many went;
    /// `metrics.csv` loses the same steps' rows.
    pub fn truncate_metrics(&self, stage: &str, step: usize, report: &mut dyn FnMut(String)) -> Result<()> {
        if !crate::parallel::is_leader() {
            return Ok(()); // rank 0 keeps the job's log
        }
        let _lock = Self::metrics_lock();
        self.truncate_metrics_csv(stage, step)?;
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

    /// Rewrites `metrics.csv` without the rows of `stage` after `step` and without broken rows.
    fn truncate_metrics_csv(&self, stage: &str, step: usize) -> Result<()> {
        let path = self.root.join(METRICS_CSV);
        if !path.exists() {
            return Ok(());
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut kept = format!("{METRICS_CSV_HEADER}\n");
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            let Some(row_step) = cells.get(1).and_then(|s| s.parse::<usize>().ok()).filter(|_| cells.len() == 6) else {
                continue;
            };
            if !(cells[0] == stage && row_step > step) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        if kept == text {
            return Ok(());
        }
        let tmp = self.root.join(".metrics.csv.partial");
        fs::write(&tmp, kept).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))
    }

    /// Appends one row per metric to `metrics.csv` (`stage,step,metric,value,lr,wall_time`;
    /// `lr` empty when not given, `wall_time` in seconds since the Unix epoch), writing the
    /// header first when the file is new.
    pub fn log_metrics_csv(&self, stage: &str, step: usize, metrics: &[(&str, f64)], lr: Option<f64>) -> Result<()> {
        if !crate::parallel::is_leader() {
            return Ok(()); // rank 0 keeps the job's log
        }
        let _lock = Self::metrics_lock();
        let path = self.root.join(METRICS_CSV);
        let fresh = !path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let lr = lr.map(|v| v.to_string()).unwrap_or_default();
        let mut text = String::new();
        if fresh {
            text.push_str(METRICS_CSV_HEADER);
            text.push('\n');
        }
        for (k, v) in metrics {
            text.push_str(&format!("{stage},{step},{k},{v},{lr},{wall:.3}\n"));
        }
        f.write_all(text.as_bytes()).with_context(|| format!("cannot append to {}", path.display()))
    }

    /// Appends one JSON object to `metrics.jsonl`.
    pub fn log_metrics(&self, record: &serde_json::Value) -> Result<()> {
        if !crate::parallel::is_leader() {
            return Ok(()); // rank 0 keeps the job's log
        }
        let _lock = Self::metrics_lock();
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
        let text = {
            let _lock = Self::metrics_lock();
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
        };
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

/// Copies the folder `from` (files and sub-folders) to the new folder `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {} to {}", entry.path().display(), target.display()))?;
        }
    }
    Ok(())
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
            run.log_metrics_csv("a", step, &[("loss", 2.0), ("kl", 0.5)], Some(0.001)).unwrap();
        }
        run.log_metrics_csv("b", 9, &[("loss", 3.0)], None).unwrap();
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
        let csv = fs::read_to_string(run.root().join(METRICS_CSV)).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], "stage,step,metric,value,lr,wall_time");
        assert_eq!(rows.len(), 1 + 2 * 2 + 1, "{csv}");
        assert!(rows[1].starts_with("a,1,loss,2,0.001,") && rows[5].starts_with("b,9,loss,3,,"), "{csv}");
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

    /// Stage steps come from the newest set's manifest; the state follows the lock and them.
    #[test]
    fn stage_status_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &experiment(), false).unwrap();
        assert_eq!(run.state().unwrap(), RunState::Stopped);
        let write = |stage: &str, step: usize, total: usize| {
            let set = run.stage_dir(stage).join(crate::checkpoint::set_name("step", step));
            fs::create_dir_all(&set).unwrap();
            let m = crate::checkpoint::SetManifest { stage: stage.into(), step, total, ..Default::default() };
            crate::checkpoint::save_json(&m, &set.join(crate::checkpoint::MANIFEST)).unwrap();
        };
        write("ae_m0", 5, 5);
        write("score", 4, 8);
        write("score", 6, 8);
        let status = run.stage_status().unwrap();
        let steps: Vec<(&str, usize, usize)> = status.iter().map(|s| (s.stage.as_str(), s.step, s.total)).collect();
        assert_eq!(steps, vec![("ae_m0", 5, 5), ("score", 6, 8)]);
        assert_eq!(run.state().unwrap(), RunState::Stopped);
        write("score", 8, 8);
        assert_eq!(run.state().unwrap(), RunState::Finished);
        let held = run.lock().unwrap();
        assert!(run.is_locked());
        assert_eq!(run.state().unwrap(), RunState::Running);
        drop(held);
        assert!(!run.is_locked());
    }

    /// Overrides change what `experiment()` reads, never the stored file.
    #[test]
    fn overrides_apply_on_read_only() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::create(dir.path(), &experiment(), false).unwrap();
        let stored = fs::read_to_string(dir.path().join("config.toml")).unwrap();
        let run = RunDir::open(dir.path()).unwrap().with_overrides(vec!["seed=9".into()]);
        assert_eq!(run.experiment().unwrap().seed, 9);
        assert_eq!(fs::read_to_string(dir.path().join("config.toml")).unwrap(), stored);
    }
}
