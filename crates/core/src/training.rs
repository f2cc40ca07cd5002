//! Bookkeeping shared by every training stage: where to resume, metrics lines, a progress bar,
//! a guard against non-finite losses, periodic atomic checkpoints and a loss plot at the end.
//!
//! ```text
//! let mut stage = Stage::begin(run, "score", cfg.steps, &cfg)?;
//! if !stage.is_done() {
//!     if stage.start_step() > 0 { checkpoint::load_varstore(&mut vs, &run.checkpoint("score"))?; }
//!     for step in stage.start_step()..cfg.steps {
//!         let loss = ...;
//!         stage.record(step, &[("loss", loss)], || checkpoint::save_varstore(&vs, &run.checkpoint("score")))?;
//!     }
//!     stage.finish(|| checkpoint::save_varstore(&vs, &run.checkpoint("score")))?;
//! }
//! ```

use crate::config::TrainConfig;
use crate::plot::{plot_curves, Series};
use crate::progress::Progress;
use crate::run::{RunDir, StageState};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// One training stage of a run (e.g. `ae_m0`, `score`, `vae`).
pub struct Stage<'a> {
    run: &'a RunDir,
    name: String,
    total: usize,
    start: usize,
    done: bool,
    log_every: usize,
    checkpoint_every: usize,
    progress: Option<Progress>,
    /// Running sums of the metrics since the last log line.
    pending: BTreeMap<String, (f64, usize)>,
    last_loss: Option<f64>,
}

impl<'a> Stage<'a> {
    /// Opens stage `name` of `run` for `total` steps, resuming from its saved state if any.
    pub fn begin(run: &'a RunDir, name: &str, total: usize, cfg: &TrainConfig) -> Result<Self> {
        let state = run.stage_state(name)?.unwrap_or_default();
        let done = state.done && state.step >= total;
        let start = state.step.min(total);
        let progress = (!done).then(|| {
            let mut p = Progress::new(name, total as u64);
            p.start_at(start as u64);
            p
        });
        if start > 0 && !done {
            eprintln!("{name}: resuming at step {start}/{total}");
        }
        Ok(Self {
            run,
            name: name.to_string(),
            total,
            start,
            done,
            log_every: cfg.log_every.max(1),
            checkpoint_every: cfg.checkpoint_every.max(1),
            progress,
            pending: BTreeMap::new(),
            last_loss: state.last_loss,
        })
    }

    /// True when the stage already finished in an earlier invocation.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The first step to run (0 for a fresh stage); when > 0 the caller restores its checkpoint.
    pub fn start_step(&self) -> usize {
        self.start
    }

    /// Records the metrics of step `step` (0-based). The first metric is the loss. A non-finite
    /// value stops training with an error; the last checkpoint on disk is left untouched. Every
    /// `checkpoint_every` steps `save` writes a checkpoint and the stage state is recorded.
    pub fn record(&mut self, step: usize, metrics: &[(&str, f64)], save: impl FnOnce() -> Result<()>) -> Result<()> {
        for (k, v) in metrics {
            if !v.is_finite() {
                bail!(
                    "stage {}: {k} became {v} at step {} — training stopped; the last good checkpoint ({}) is kept. \
                     Lower the learning rate or check the data.",
                    self.name,
                    step + 1,
                    self.run.checkpoint(&self.name).display()
                );
            }
            let e = self.pending.entry(k.to_string()).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
        if let Some((_, loss)) = metrics.first() {
            self.last_loss = Some(*loss);
        }
        let completed = step + 1;
        if completed.is_multiple_of(self.log_every) || completed == self.total {
            let mut record = serde_json::Map::new();
            record.insert("stage".into(), self.name.clone().into());
            record.insert("step".into(), completed.into());
            let mut message = String::new();
            for (k, (sum, count)) in std::mem::take(&mut self.pending) {
                let mean = sum / count as f64;
                if message.is_empty() {
                    message = format!("{k} {mean:.4}");
                }
                record.insert(k, mean.into());
            }
            self.run.log_metrics(&serde_json::Value::Object(record))?;
            if let Some(p) = &mut self.progress {
                p.set_message(message);
            }
        }
        if let Some(p) = &mut self.progress {
            p.inc(1);
        }
        if completed.is_multiple_of(self.checkpoint_every) && completed < self.total {
            save()?;
            self.run.save_stage_state(
                &self.name,
                &StageState { step: completed, done: false, last_loss: self.last_loss },
            )?;
        }
        Ok(())
    }

    /// Writes the final checkpoint, marks the stage done and plots its metrics.
    pub fn finish(mut self, save: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        save()?;
        self.run
            .save_stage_state(&self.name, &StageState { step: self.total, done: true, last_loss: self.last_loss })?;
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        plot_stage(self.run, &self.name)
    }
}

/// Plots every metric logged for `stage` into `plots/<stage>.png`.
pub fn plot_stage(run: &RunDir, stage: &str) -> Result<()> {
    let records = run.read_metrics(stage)?;
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &records {
        let step = r.get("step").and_then(|s| s.as_f64()).unwrap_or(0.0);
        if let Some(obj) = r.as_object() {
            for (k, v) in obj {
                if k != "stage" && k != "step" {
                    if let Some(v) = v.as_f64() {
                        series.entry(k.clone()).or_default().push((step, v));
                    }
                }
            }
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let series: Vec<Series> = series.into_iter().map(|(name, points)| Series { name, points }).collect();
    plot_curves(&run.file(&format!("plots/{stage}.png"))?, &format!("{stage}: training"), "step", &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Experiment;
    use std::cell::Cell;

    fn run_dir(dir: &std::path::Path) -> RunDir {
        let e = Experiment::parse("[data]\npath = \"x\"\n[model]\nkind = \"toy\"\n", &[]).unwrap();
        RunDir::create(dir, &e, false).unwrap()
    }

    #[test]
    fn resumes_where_it_stopped_and_refuses_nan() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let cfg = TrainConfig { checkpoint_every: 4, log_every: 2, ..Default::default() };
        let saves = Cell::new(0);
        let save = || {
            saves.set(saves.get() + 1);
            Ok(())
        };
        let mut stage = Stage::begin(&run, "s", 10, &cfg).unwrap();
        for step in 0..6 {
            stage.record(step, &[("loss", 1.0 / (1.0 + step as f64))], save).unwrap();
        }
        assert_eq!(saves.get(), 1);
        // A NaN stops the stage without saving.
        let err = stage.record(6, &[("loss", f64::NAN)], save).unwrap_err().to_string();
        assert!(err.contains("NaN") && err.contains("s.safetensors"), "{err}");
        assert_eq!(saves.get(), 1);
        drop(stage);

        let stage = Stage::begin(&run, "s", 10, &cfg).unwrap();
        assert_eq!(stage.start_step(), 4);
        stage.finish(save).unwrap();
        assert!(Stage::begin(&run, "s", 10, &cfg).unwrap().is_done());
        assert_eq!(run.read_metrics("s").unwrap().len(), 3);
        assert!(run.root().join("plots/s.png").exists());
    }
}
