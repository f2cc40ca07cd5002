//! The training loop's observer: each stage as a [`Progress`] bar labelled with its name and its
//! place among the run's stages (`ae_m1 2/4`), showing the last logged loss, and its logged
//! metrics plotted into `plots/<stage>.png` at every checkpoint and at the end.

use crate::plot::{plot_curves, Series};
use crate::progress::Progress;
use anyhow::Result;
use mmlatent_train::observe::{Observer, StageInfo, StageObserver};
use mmlatent_train::run::RunDir;
use std::collections::BTreeMap;
use std::path::Path;

/// Draws every stage's progress and plots its losses (see the module doc); install it with
/// `mmlatent_train::observe::set_observer`.
pub struct Presenter;

impl Observer for Presenter {
    fn stage_started(&self, stage: &StageInfo) -> Box<dyn StageObserver> {
        let label = match stage.position {
            Some((i, n)) => format!("{} {i}/{n}", stage.name),
            None => stage.name.to_string(),
        };
        let progress = (!stage.quiet).then(|| {
            let mut p = Progress::new(&label, stage.total as u64);
            p.start_at(stage.start as u64);
            p
        });
        Box::new(StageView { run: stage.run.clone(), name: stage.name.to_string(), total: stage.total, progress })
    }
}

/// One stage as [`Presenter`] shows it.
struct StageView {
    run: RunDir,
    name: String,
    total: usize,
    /// None for a quiet stage.
    progress: Option<Progress>,
}

impl StageView {
    fn say(&self, line: &str) {
        match &self.progress {
            Some(p) => p.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Plots the stage's metrics; a failure is a warning, said by `say`.
    fn plot(&self, say: impl Fn(&str)) {
        if let Err(e) = plot_stage(&self.run, &self.name) {
            say(&format!("warning: no loss plot for stage {}: {e:#}", self.name));
        }
    }
}

impl StageObserver for StageView {
    fn note(&mut self, line: &str) {
        self.say(line);
    }

    fn step_done(&mut self, _step: usize, logged: Option<&[(&str, f64)]>) {
        if let Some(p) = &mut self.progress {
            if let Some(metrics) = logged {
                // The loss: the metric called `loss`, else the first one.
                let shown = metrics.iter().find(|(k, _)| *k == "loss").or(metrics.first());
                p.set_message(shown.map(|(k, v)| format!("{k} {v:.4}")).unwrap_or_default());
            }
            p.inc(1);
        }
    }

    fn checkpoint_written(&mut self, step: usize, _dir: &Path) {
        // The last one is plotted once the bar is gone (`finished`).
        if step < self.total {
            self.plot(|line| self.say(line));
        }
    }

    fn finished(mut self: Box<Self>) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        self.plot(|line| eprintln!("{line}"));
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
    use crate::progress::{self, Event};
    use mmlatent_train::config::Experiment;
    use std::sync::{Arc, Mutex};

    /// A stage's events become its bar's steps (labelled with its place, showing the loss),
    /// lines and end, and its plot at checkpoints before the last; a quiet stage has no bar but
    /// is still plotted.
    #[test]
    fn stages_become_bars_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let e = Experiment::parse("[data]\npath = \"x\"\n[model]\nkind = \"toy\"\n", &[]).unwrap();
        let run = RunDir::create(dir.path(), &e, false).unwrap();
        for step in [2, 4] {
            run.log_metrics(&serde_json::json!({"stage": "toy", "step": step, "loss": 1.0 / step as f64})).unwrap();
        }
        let _serial = progress::OBSERVER_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = seen.clone();
        let previous = progress::set_observer(Some(progress::observer(move |e| {
            let text = match *e {
                Event::Step { label: "toy 2/3", done, total, message } => format!("step {done}/{total} {message}"),
                Event::Line { label: "toy 2/3", line } => format!("line {line}"),
                Event::Finish { label: "toy 2/3", done, total, .. } => format!("finish {done}/{total}"),
                _ => return,
            };
            sink.lock().unwrap().push(text);
        })));
        let info = StageInfo {
            run: &run,
            name: "toy",
            position: Some((2, 3)),
            start: 2,
            total: 4,
            quiet: false,
            silent: false,
        };
        let mut stage = Presenter.stage_started(&info);
        stage.step_done(3, None);
        stage.note("a note");
        stage.step_done(4, Some(&[("kl", 0.5), ("loss", 0.25)]));
        let plot = run.root().join("plots/toy.png");
        stage.checkpoint_written(4, dir.path());
        assert!(!plot.exists(), "the last checkpoint is plotted at the end");
        stage.finished();
        progress::set_observer(previous);
        assert_eq!(*seen.lock().unwrap(), ["step 3/4 ", "line a note", "step 4/4 loss 0.2500", "finish 4/4"]);
        assert!(plot.exists());

        std::fs::remove_file(&plot).unwrap();
        let mut quiet = Presenter.stage_started(&StageInfo { quiet: true, ..info });
        quiet.step_done(3, Some(&[("loss", 0.5)]));
        quiet.checkpoint_written(3, dir.path());
        assert!(plot.exists());
    }
}
