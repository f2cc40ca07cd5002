//! The one training loop of mmlatent. Every stage of every model family (MLD's autoencoders
//! and score network, the EBM, the VAE baselines) and the evaluation classifiers run through
//! [`Stage::run`]; a model supplies only its step (loss, backward pass, extra updates such as an
//! EMA) and declares what its checkpoint holds:
//!
//! ```text
//! let mut opt = Adam::new(&vs, AdamConfig::adam(cfg.lr));
//! Stage::new(run, "score", cfg.steps, cfg, seed)
//!     .weights("score", &vs)              // saved, restored, checked for NaN/∞
//!     .weights("score_ema", &ema_vs)
//!     .optimiser("adam", opt)             // moments saved; lr set per step by the schedule
//!     .validation(|| held_out_loss())     // optional: logged as val_loss, keeps a best set
//!     .run(|step, opts| { ...; opts[0].backward_step(&loss)?; Ok(vec![("loss", l)]) })?;
//! ```
//!
//! The loop owns the learning-rate schedule, logging (`metrics.jsonl`), the NaN guard,
//! checkpoint sets (see [`crate::checkpoint`]) and resumption; it reports each stage to the
//! installed [`crate::observe::Observer`] (progress bars and loss plots are the front end's).
//!
//! **Exact resume.** Nothing random is carried from one step to the next: before each step the
//! loop reseeds libtorch's global generator (CPU and CUDA) from a hash of (run seed, stage, step)
//! — [`seed_step`] — and the data loaders draw each epoch's order from (seed, epoch) alone, with
//! the position in the epoch derived from the step (`loader::StepLoader`). So a checkpoint
//! only has to hold weights, optimiser moments and extra state such as EMA weights: a run
//! resumed from step N draws exactly the noise, batches and masks of an uninterrupted run.
//! Metrics are logged at every `log_every` steps *and* at each checkpoint, so no partial
//! average is lost across a resume, and on resume `metrics.jsonl` is cut back to the
//! checkpoint's step: the resumed run's log and weights are bit-identical to an uninterrupted
//! run's on the same machine and thread count (tested on the CPU; CUDA kernels that use atomic
//! additions are not bit-reproducible even without a resume). A stage stopped on request
//! ([`crate::interrupt`]: Ctrl-C, SIGTERM) writes a set at the step it stopped after, logging
//! that step's partial average too; resumed from there its weights are again bit-identical.
//!
//! **Data-parallel jobs** ([`crate::parallel`]) run through the same loop: the stage waits for
//! every rank at its start and end, starts them from rank 0's weights, makes its optimisers
//! average gradients over the ranks, agrees once per step on the logged metrics (means over the
//! ranks) and on stop requests, and lets rank 0 alone write sets, logs and grids and validate.
//!
//! **NaN guard.** After every step the loss and metrics must be finite and so must the
//! parameters (a cheap sum per tensor); before any checkpoint is written every parameter must
//! be finite and below [`MAX_PARAMETER`] in magnitude. On failure training stops naming the last
//! complete checkpoint (or saying that none exists yet); non-finite weights are never saved.

use crate::checkpoint::{self, SetManifest, SetPart};
use crate::config::TrainConfig;
use crate::family::Snapshot;
use crate::interrupt;
use crate::observe::{self, StageInfo, StageObserver};
use crate::parallel;
use crate::run::RunDir;
use anyhow::{bail, Context, Result};
use mmlatent_core::optim::Adam;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// The metrics of one step as (name, value); the first one is the loss.
pub type Metrics = Vec<(&'static str, f64)>;

/// Folder prefix of the regular checkpoint sets (`step-<N>`).
pub const SET_PREFIX: &str = "step";
/// Folder prefix of the set with the lowest held-out loss (`best-<N>`).
pub const BEST_PREFIX: &str = "best";
/// Parameters larger than this in magnitude count as diverged: never saved.
pub const MAX_PARAMETER: f64 = 1e15;

thread_local! {
    /// True while a stage's snapshot runs: it loads the stage's newest, unfinished set on
    /// purpose, so [`load_weights`] does not warn about it.
    static IN_SNAPSHOT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A held-out loss measured by the caller, with further held-out metrics to log beside it (see
/// [`Stage::validation`], [`Stage::validation_parts`]).
type Validation<'a> = Box<dyn FnMut() -> Result<(f64, Vec<(String, f64)>)> + 'a>;

/// One training stage of a run (e.g. `ae_m0`, `score`, `ebm`, `vae`, `classifiers`).
pub struct Stage<'a> {
    run: &'a RunDir,
    name: String,
    total: usize,
    cfg: TrainConfig,
    seed: u64,
    schedule: bool,
    quiet: bool,
    weights: Vec<(String, &'a VarStore)>,
    optimiser_names: Vec<String>,
    optimisers: Vec<Adam>,
    base_lrs: Vec<f64>,
    validation: Option<Validation<'a>>,
    /// This stage's place among the run's stages, `(i, n)`, 1-based (for the observer).
    position: Option<(usize, usize)>,
    snapshot: Option<Snapshot<'a>>,
}

/// Where a stage stands while it trains: what its log records, checkpoints and messages need.
#[derive(Default)]
struct Progress {
    /// The newest complete set, `(step, folder)`: found on resume or written since.
    last_set: Option<(usize, PathBuf)>,
    /// The lowest held-out loss so far (kept in the sets' manifests).
    best_val: Option<f64>,
    /// The loss of the latest step (none before the first step of this process).
    last_loss: Option<f64>,
    /// Sums and counts of the metrics since the last log record, by name.
    pending: Vec<(&'static str, f64, usize)>,
}

/// What [`Stage::run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The step training started from (0: fresh; the checkpoint's step when resumed).
    pub start: usize,
    /// False when the stage had already finished (its final weights were loaded).
    pub trained: bool,
}

impl<'a> Stage<'a> {
    /// Stage `name` of `run`, `total` steps long, with the logging, checkpointing, schedule and
    /// precision settings of `cfg` and the run's `seed`. The stage's length is `total` alone:
    /// `cfg.steps`, like `cfg.lr` and `cfg.batch_size`, is the caller's to read (a family whose
    /// stages have steps of their own passes each its own).
    pub fn new(run: &'a RunDir, name: &str, total: usize, cfg: &TrainConfig, seed: u64) -> Self {
        Self {
            run,
            name: name.to_string(),
            total,
            cfg: cfg.clone(),
            seed,
            schedule: true,
            quiet: false,
            weights: vec![],
            optimiser_names: vec![],
            optimisers: vec![],
            base_lrs: vec![],
            validation: None,
            position: None,
            snapshot: None,
        }
    }

    /// This is stage `i` of the run's `n` (1-based), told to the observer (a progress bar shows
    /// `i/n` beside the stage's name).
    pub fn position(mut self, i: usize, n: usize) -> Self {
        self.position = Some((i, n));
        self
    }

    /// Calls `snapshot(step)` after the first checkpoint at or past each multiple of
    /// `train.sample_every`, before the last step (the end of training is the caller's); its
    /// failure is a warning.
    pub fn snapshots(mut self, snapshot: Option<Snapshot<'a>>) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Adds a set of weights to the checkpoint (`<name>.safetensors`): restored on resume,
    /// checked by the NaN guard, saved in every set.
    pub fn weights(mut self, name: &str, vs: &'a VarStore) -> Self {
        self.weights.push((name.to_string(), vs));
        self
    }

    /// Adds an optimiser (its moments saved as `<name>.adam.safetensors`). Its learning rate at
    /// creation is the base rate the schedule scales; the step closure gets it by index.
    pub fn optimiser(mut self, name: &str, adam: Adam) -> Self {
        self.optimiser_names.push(name.to_string());
        self.base_lrs.push(adam.lr());
        self.optimisers.push(adam);
        self
    }

    /// Keeps the optimisers' learning rates constant (no warm-up or cosine schedule).
    pub fn constant_lr(mut self) -> Self {
        self.schedule = false;
        self
    }

    /// Asks the observer for no progress display (tests, nested work).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// A held-out loss, measured every `train.validate_every` steps (default: at each checkpoint)
    /// and at the end, with libtorch's generator reseeded so that it does not disturb resumption.
    /// It is logged as `val_loss`, must be finite, and the lowest one's weights are kept as the
    /// set `best-<step>` (see [`load_weights`] with [`Which::Best`]). The closure should not
    /// train: run it under `tch::no_grad`.
    pub fn validation(mut self, mut held_out_loss: impl FnMut() -> Result<f64> + 'a) -> Self {
        self.validation = Some(Box::new(move || Ok((held_out_loss()?, vec![]))));
        self
    }

    /// [`Stage::validation`] whose closure also returns parts to log beside `val_loss` (e.g. the
    /// held-out loss of each modality of a stage that trains several networks); only the first
    /// value picks the best set.
    pub fn validation_parts(mut self, held_out: impl FnMut() -> Result<(f64, Vec<(String, f64)>)> + 'a) -> Self {
        self.validation = Some(Box::new(held_out));
        self
    }

    /// Runs the stage: resumes from its newest complete checkpoint set (falling back to older
    /// ones when it is damaged), or returns at once with the final weights loaded when it has
    /// finished, else calls `step(step, optimisers)` for each remaining step.
    pub fn run(mut self, mut step: impl FnMut(usize, &mut [Adam]) -> Result<Metrics>) -> Result<Outcome> {
        let mut notes: Vec<String> = vec![];
        let latest = self.newest_set(&mut notes)?;
        let (start, mut progress) = self.resume(latest.as_ref())?;
        self.agree_on_start(start)?;
        if start >= self.total {
            return self.end_where_it_stands(start, latest.as_ref(), notes);
        }
        self.prune_beyond(start, &mut notes)?;
        self.start_from_leaders_weights()?;
        let mut observer = self.start_observer(start, notes, &progress.last_set);

        let _training = interrupt::Training::start();
        for s in start..self.total {
            let completed = s + 1;
            let (metrics, interrupted) = self.step_on_every_rank(s, &mut step, &progress.last_set)?;
            self.guard_and_add(completed, &metrics, &mut progress)?;
            let checkpoint_due = self.checkpoint_due(completed) || interrupted;
            let logged = self.log_if_due(completed, checkpoint_due, &mut progress)?;
            let val_loss = self.validate_if_due(s, &mut progress)?;
            observer.step_done(completed, logged.as_deref());
            checkpoint::fault_point("abort_after_step", &self.name, completed);
            if checkpoint_due {
                let previous_set = progress.last_set.as_ref().map_or(start, |(step, _)| *step);
                let dir = self.write_checkpoint(completed, val_loss, &mut progress)?;
                observer.checkpoint_written(completed, &dir);
                if interrupted {
                    let (stage, total) = (self.name.clone(), self.total);
                    return Err(interrupt::Interrupted { stage, step: completed, total, set: dir }.into());
                }
                self.snapshot_if_due(completed, previous_set, observer.as_mut());
            }
        }
        // The next stage (or the caller) may read this stage's final set: rank 0 has written it.
        parallel::barrier(&format!("after stage {}", self.name))?;
        observer.finished();
        Ok(Outcome { start, trained: true })
    }

    /// The newest complete set of the stage (older ones when it is damaged, `notes` saying
    /// why), once every rank has arrived; a run folder of an older mmlatent is refused.
    fn newest_set(&self, notes: &mut Vec<String>) -> Result<Option<(PathBuf, SetManifest)>> {
        let stage_dir = self.run.stage_dir(&self.name);
        // In a data-parallel job every rank reads the checkpoints only once all have arrived
        // (rank 0 may still have been writing the previous stage's last set).
        parallel::barrier(&format!("before stage {}", self.name))?;
        let agrees = self.run.log_agrees(&self.name)?;
        let latest = checkpoint::latest_set(&stage_dir, SET_PREFIX, &agrees, &mut |m| notes.push(m)).map_err(|e| {
            anyhow::anyhow!(
                "cannot resume stage {} of run {}: {e}\nRestore the damaged files (from a backup or a copy of the run) \
                 and resume again, or move {} aside to train this stage again from step 0.",
                self.name,
                self.run.root().display(),
                stage_dir.display()
            )
        })?;
        if latest.is_none() && legacy_checkpoint(self.run, &self.name).is_some() {
            bail!(
                "run {} was written by an older mmlatent (checkpoints/{}.safetensors, no checkpoint sets): it \
                 cannot be resumed by this version; its trained weights can still be sampled and evaluated",
                self.run.root().display(),
                self.name
            );
        }
        Ok(latest)
    }

    /// Loads the set `latest` (if any) into the weights and optimisers: the step to start from
    /// and the progress recorded with it.
    fn resume(&mut self, latest: Option<&(PathBuf, SetManifest)>) -> Result<(usize, Progress)> {
        Ok(match latest {
            Some((dir, manifest)) => {
                self.restore(dir)?;
                let progress = Progress {
                    last_set: Some((manifest.step, dir.clone())),
                    best_val: manifest.best_val,
                    ..Progress::default()
                };
                (manifest.step, progress)
            }
            None => (0, Progress::default()),
        })
    }

    /// Checks that every rank of a data-parallel job resumes at step `start`.
    fn agree_on_start(&self, start: usize) -> Result<()> {
        let (_, job_start) = parallel::agree(false, &[start as f64])?;
        if job_start[0] != start as f64 {
            bail!(
                "{}stage {}: this rank resumes at step {start} but not every rank does (do all ranks see the same \
                 run folder {}?)",
                parallel::rank_prefix(),
                self.name,
                self.run.root().display()
            );
        }
        Ok(())
    }

    /// A stage resumed at step `start`, at or past its end: an unfinished one ends there when
    /// asked for exactly `start` steps (its set `latest` becoming final) and refuses fewer; the
    /// `notes` go to stderr.
    fn end_where_it_stands(
        &self,
        start: usize,
        latest: Option<&(PathBuf, SetManifest)>,
        mut notes: Vec<String>,
    ) -> Result<Outcome> {
        let (dir, manifest) = latest.expect("start > 0 comes from a set");
        if !manifest.is_final() {
            // An unfinished stage asked for no more steps than it has run: it can end where
            // it stands, not go back.
            if start > self.total {
                bail!(
                    "stage {} of run {} stands at step {start} of {}; {} steps would end it before its newest \
                     checkpoint: ask for at least {start} (exactly {start} ends the stage there)",
                    self.name,
                    self.run.root().display(),
                    manifest.total,
                    self.total
                );
            }
            if parallel::is_leader() {
                checkpoint::mark_final(dir)?;
            }
            notes.push(format!(
                "stage {} ends at step {start} as asked (it was planned for {} steps)",
                self.name, manifest.total
            ));
        } else if start > self.total {
            notes.push(format!(
                "stage {} finished with {start} steps, more than the {} asked for; keeping its weights",
                self.name, self.total
            ));
        }
        for note in notes {
            eprintln!("warning: {note}");
        }
        Ok(Outcome { start, trained: false })
    }

    /// Whatever lies beyond the resume point `start` goes (partial sets, best sets and log
    /// lines of steps to be run again), except sets that failed verification: they are moved
    /// aside, never deleted, in case their files can be recovered. Rank 0's work.
    fn prune_beyond(&self, start: usize, notes: &mut Vec<String>) -> Result<()> {
        if !parallel::is_leader() {
            return Ok(());
        }
        let stage_dir = self.run.stage_dir(&self.name);
        for (step, dir) in checkpoint::list_sets(&stage_dir, SET_PREFIX)? {
            if step > start {
                let aside = checkpoint::set_aside(&dir)?;
                notes.push(format!("the unusable set is kept as {}", aside.display()));
            }
        }
        checkpoint::remove_sets(&stage_dir, BEST_PREFIX, |s| s > start)?;
        self.run.truncate_metrics(&self.name, start, &mut |m| notes.push(m))
    }

    /// Every rank starts from rank 0's weights and averages its gradients with the others'.
    fn start_from_leaders_weights(&mut self) -> Result<()> {
        for (_, vs) in &self.weights {
            // In name order: a VarStore's map iterates in a different order in each process.
            let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            parallel::broadcast_from_leader(&named.into_iter().map(|(_, t)| t).collect::<Vec<_>>())?;
        }
        for opt in &mut self.optimisers {
            opt.exchange_gradients(|| Box::new(parallel::GradientAverager::default()));
        }
        Ok(())
    }

    /// Tells the observer that the stage starts at step `start`, with the `notes` gathered so far
    /// and where it resumes from.
    fn start_observer(
        &self,
        start: usize,
        notes: Vec<String>,
        last_set: &Option<(usize, PathBuf)>,
    ) -> Box<dyn StageObserver> {
        let info = StageInfo {
            run: self.run,
            name: &self.name,
            position: self.position,
            start,
            total: self.total,
            quiet: self.quiet,
            silent: !parallel::is_leader(),
        };
        let mut observer = observe::stage_started(&info);
        for note in notes {
            observer.note(&format!("warning: {note}"));
        }
        if let Some((step, dir)) = last_set {
            observer.note(&format!("{}: resuming at step {step}/{} from {}", self.name, self.total, dir.display()));
        }
        observer
    }

    /// The factor of the learning-rate schedule at step `s` (1 when the rates are constant).
    fn lr_factor(&self, s: usize) -> f64 {
        if self.schedule {
            self.cfg.lr_factor(s, self.total)
        } else {
            1.0
        }
    }

    /// Step `s` (0-based): reseeds libtorch's generator, sets the scheduled learning rates, runs
    /// `step` in the configured precision, and agrees with the other ranks on the metrics (their
    /// means replace this rank's) and on whether to stop after this step.
    fn step_on_every_rank(
        &mut self,
        s: usize,
        step: &mut impl FnMut(usize, &mut [Adam]) -> Result<Metrics>,
        last_set: &Option<(usize, PathBuf)>,
    ) -> Result<(Metrics, bool)> {
        seed_step(self.seed, &self.name, s, 0);
        let factor = self.lr_factor(s);
        for (opt, base) in self.optimisers.iter_mut().zip(&self.base_lrs) {
            opt.set_lr(base * factor);
        }
        // bf16 mixed precision: the step's forward pass and loss under autocast (its backward
        // pass and update run in fp32 inside the optimiser).
        let optimisers = &mut self.optimisers;
        let mut metrics = self
            .cfg
            .precision
            .run(|| step(s, optimisers))
            .with_context(|| format!("stage {}, step {}; {}", self.name, s + 1, last_checkpoint(last_set)))?;
        let completed = s + 1;
        // A stop asked for during this step (on any rank): log, checkpoint and end here.
        // Taken once, so the log and the checkpoint agree; the logged metrics are the means
        // over the ranks.
        let wants_stop = completed < self.total && interrupt::take();
        let values: Vec<f64> = metrics.iter().map(|(_, v)| *v).collect();
        let (interrupted, means) = parallel::agree(wants_stop, &values)?;
        for ((_, v), mean) in metrics.iter_mut().zip(means) {
            *v = mean;
        }
        Ok((metrics, interrupted))
    }

    /// The NaN guard after step `completed`: every metric must be finite (they join the pending
    /// means of the next log record), and so must the weights (the cheap check).
    fn guard_and_add(&self, completed: usize, metrics: &Metrics, progress: &mut Progress) -> Result<()> {
        for (k, v) in metrics {
            if !v.is_finite() {
                bail!(
                    "stage {}: {k} became {v} at step {} — training stopped. {}. Lower the learning rate or \
                     check the data.",
                    self.name,
                    completed,
                    last_checkpoint(&progress.last_set)
                );
            }
            match progress.pending.iter_mut().find(|(name, _, _)| name == k) {
                Some(entry) => {
                    entry.1 += v;
                    entry.2 += 1;
                }
                None => progress.pending.push((k, *v, 1)),
            }
        }
        progress.last_loss = metrics.first().map(|(_, v)| *v).or(progress.last_loss);
        self.check_weights(completed, false, &progress.last_set)
    }

    /// Whether a checkpoint set is written after step `completed`: every `checkpoint_every`
    /// steps and at the end (and when stopped on request, which the caller adds).
    fn checkpoint_due(&self, completed: usize) -> bool {
        completed.is_multiple_of(self.cfg.checkpoint_every.max(1)) || completed == self.total
    }

    /// Logs the pending means after step `completed` every `log_every` steps and at each
    /// checkpoint; returns what was logged.
    fn log_if_due(&self, completed: usize, checkpoint_due: bool, progress: &mut Progress) -> Result<Option<Metrics>> {
        if !(completed.is_multiple_of(self.cfg.log_every.max(1)) || checkpoint_due) {
            return Ok(None);
        }
        let lr = self.base_lrs.first().map(|b| b * self.lr_factor(completed - 1));
        Ok(Some(self.log(completed, std::mem::take(&mut progress.pending), lr)?))
    }

    /// After step `s` (0-based), when due and on rank 0: measures the held-out loss (with
    /// libtorch's generator reseeded), logs it, and keeps the weights as the best set when it is
    /// the lowest so far. Returns it.
    fn validate_if_due(&mut self, s: usize, progress: &mut Progress) -> Result<Option<f64>> {
        let completed = s + 1;
        let validate_every = self.cfg.validate_every.unwrap_or(self.cfg.checkpoint_every.max(1)).max(1);
        let validate_due = completed.is_multiple_of(validate_every) || completed == self.total;
        let (Some(validate), true, true) = (self.validation.as_mut(), validate_due, parallel::is_leader()) else {
            return Ok(None);
        };
        seed_step(self.seed, &self.name, s, 1);
        let (v, parts) =
            validate().with_context(|| format!("stage {}: held-out loss at step {completed}", self.name))?;
        if !v.is_finite() {
            bail!(
                "stage {}: the held-out loss became {v} at step {completed} — training stopped. {}.",
                self.name,
                last_checkpoint(&progress.last_set)
            );
        }
        self.log_validation(completed, v, &parts)?;
        if progress.best_val.is_none_or(|b| v < b) {
            progress.best_val = Some(v);
            self.check_weights(completed, true, &progress.last_set)?;
            let stage_dir = self.run.stage_dir(&self.name);
            let manifest = self.manifest(completed, progress.last_loss, Some(v), progress.best_val);
            checkpoint::write_set(&stage_dir, BEST_PREFIX, &manifest, &self.parts())?;
            checkpoint::remove_sets(&stage_dir, BEST_PREFIX, |b| b < completed)?;
        }
        Ok(Some(v))
    }

    /// Appends the held-out loss `val_loss` of step `step` and its `parts` to both logs.
    fn log_validation(&self, step: usize, val_loss: f64, parts: &[(String, f64)]) -> Result<()> {
        let mut record = serde_json::Map::new();
        record.insert("stage".into(), self.name.clone().into());
        record.insert("step".into(), step.into());
        record.insert("val_loss".into(), val_loss.into());
        for (name, value) in parts {
            record.insert(name.clone(), (*value).into());
        }
        self.run.log_metrics(&serde_json::Value::Object(record))?;
        let mut logged: Vec<(&str, f64)> = vec![("val_loss", val_loss)];
        logged.extend(parts.iter().map(|(name, value)| (name.as_str(), *value)));
        self.run.log_metrics_csv(&self.name, step, &logged, None)
    }

    /// The checkpoint set of step `completed`, after the full NaN guard: written by rank 0, which
    /// then keeps only the newest `keep_checkpoints` sets (the other ranks only name its folder).
    fn write_checkpoint(&self, completed: usize, val_loss: Option<f64>, progress: &mut Progress) -> Result<PathBuf> {
        self.check_weights(completed, true, &progress.last_set)?;
        let stage_dir = self.run.stage_dir(&self.name);
        let dir = if parallel::is_leader() {
            let manifest = self.manifest(completed, progress.last_loss, val_loss, progress.best_val);
            let dir = checkpoint::write_set(&stage_dir, SET_PREFIX, &manifest, &self.parts())?;
            let steps: Vec<usize> =
                checkpoint::list_sets(&stage_dir, SET_PREFIX)?.into_iter().map(|(s, _)| s).collect();
            let keep = self.cfg.keep_checkpoints.max(1);
            if steps.len() > keep {
                let oldest_kept = steps[steps.len() - keep];
                checkpoint::remove_sets(&stage_dir, SET_PREFIX, |s| s < oldest_kept)?;
            }
            dir
        } else {
            stage_dir.join(checkpoint::set_name(SET_PREFIX, completed))
        };
        progress.last_set = Some((completed, dir.clone()));
        Ok(dir)
    }

    /// After the set of step `completed` (the previous one at `previous_set`), before the last
    /// step: the snapshot, on rank 0, when a multiple of `sample_every` lies in (previous set, this
    /// set]. Its failure is a note.
    fn snapshot_if_due(&self, completed: usize, previous_set: usize, observer: &mut dyn StageObserver) {
        if completed >= self.total {
            return;
        }
        let sample_due = self.cfg.sample_every.is_some_and(|every| completed / every > previous_set / every);
        if let (Some(snapshot), true, true) = (self.snapshot, sample_due, parallel::is_leader()) {
            IN_SNAPSHOT.set(true);
            let result = snapshot(completed);
            IN_SNAPSHOT.set(false);
            if let Err(e) = result {
                observer.note(&format!("warning: no sample grids at step {completed}: {e:#}"));
            }
        }
    }

    /// Loads every part of the set in `dir` into the stage's weights and optimisers.
    fn restore(&mut self, dir: &Path) -> Result<()> {
        for (name, vs) in &self.weights {
            checkpoint::load_varstore(vs, &dir.join(format!("{name}.safetensors")))?;
        }
        for (name, opt) in self.optimiser_names.iter().zip(&mut self.optimisers) {
            let path = dir.join(format!("{name}.adam.safetensors"));
            let tensors = checkpoint::load_tensors(&path)?;
            opt.restore_state(&tensors, &path)?;
        }
        Ok(())
    }

    /// The files of a checkpoint set of the current state.
    fn parts(&self) -> Vec<SetPart> {
        let mut parts: Vec<SetPart> = vec![];
        for (name, vs) in &self.weights {
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            parts.push((format!("{name}.safetensors"), vars));
        }
        for (name, opt) in self.optimiser_names.iter().zip(&self.optimisers) {
            parts.push((format!("{name}.adam.safetensors"), opt.state()));
        }
        parts
    }

    fn manifest(
        &self,
        step: usize,
        last_loss: Option<f64>,
        val_loss: Option<f64>,
        best_val: Option<f64>,
    ) -> SetManifest {
        SetManifest { stage: self.name.clone(), step, total: self.total, last_loss, val_loss, best_val, files: vec![] }
    }

    /// The NaN guard on the weights after step `step`: finite sums per tensor (cheap), or with
    /// `full` every element finite and below [`MAX_PARAMETER`] (before a checkpoint).
    fn check_weights(&self, step: usize, full: bool, last_set: &Option<(usize, PathBuf)>) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, vs) in &self.weights {
            let vars: Vec<Tensor> = vs.trainable_variables().into_iter().filter(|t| t.numel() > 0).collect();
            if vars.is_empty() {
                continue;
            }
            let per_tensor: Vec<Tensor> = if full {
                vars.iter().map(|t| t.abs().max().to_kind(Kind::Double)).collect()
            } else {
                vars.iter().map(|t| t.sum(Kind::Double)).collect()
            };
            let stacked = Tensor::stack(&per_tensor, 0);
            let value =
                if full { stacked.max().double_value(&[]) } else { stacked.sum(Kind::Double).double_value(&[]) };
            let bad = !value.is_finite() || (full && value > MAX_PARAMETER);
            if bad {
                bail!(
                    "stage {}: the weights `{name}` hold NaN, infinite or exploding values (beyond {MAX_PARAMETER:e}) \
                     after step {step} — training stopped without saving them. {}. Lower the learning rate or check \
                     the data.",
                    self.name,
                    last_checkpoint(last_set)
                );
            }
        }
        Ok(())
    }

    /// Appends the means of `pending` as the record of step `step` to `metrics.jsonl`, and with
    /// the learning rate `lr` and the wall time to `metrics.csv`; returns the means.
    fn log(&self, step: usize, pending: Vec<(&'static str, f64, usize)>, lr: Option<f64>) -> Result<Metrics> {
        let mut record = serde_json::Map::new();
        record.insert("stage".into(), self.name.clone().into());
        record.insert("step".into(), step.into());
        let means: Metrics = pending.into_iter().map(|(k, sum, count)| (k, sum / count as f64)).collect();
        for (k, mean) in &means {
            record.insert(k.to_string(), (*mean).into());
        }
        self.run.log_metrics(&serde_json::Value::Object(record))?;
        self.run.log_metrics_csv(&self.name, step, &means, lr)?;
        Ok(means)
    }
}

/// "The last complete checkpoint is step N (path); --resume continues from it", or that none
/// was written yet.
fn last_checkpoint(last_set: &Option<(usize, PathBuf)>) -> String {
    match last_set {
        Some((step, dir)) => {
            format!("The last complete checkpoint is step {step} ({}); `--resume` continues from it", dir.display())
        }
        None => "No checkpoint of this stage was written yet".to_string(),
    }
}

/// Reseeds libtorch's global generator (CPU and CUDA) for step `step` of `stage`: a hash of
/// (seed, stage, step, purpose), purpose 0 for the training step and 1 for validation.
pub fn seed_step(seed: u64, stage: &str, step: usize, purpose: u64) {
    tch::manual_seed(step_seed(seed, stage, step, purpose));
}

/// The seed [`seed_step`] uses (63 bits); each rank of a data-parallel job gets its own
/// ([`parallel::seed_salt`], zero alone).
pub fn step_seed(seed: u64, stage: &str, step: usize, purpose: u64) -> i64 {
    let h = checkpoint::fnv1a(checkpoint::FNV_OFFSET, stage.as_bytes());
    let mut x = seed
        ^ parallel::seed_salt()
        ^ h.rotate_left(17)
        ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.rotate_left(40);
    // splitmix64's output mix.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 1) as i64
}

/// Which set of a stage to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The newest complete set (the final weights of a finished stage).
    Latest,
    /// The set with the lowest held-out loss; the newest set when the stage never validated.
    Best,
}

/// Loads the weights `parts` (`(name, store)` as given to [`Stage::weights`]) of a trained
/// stage of `run` — the one place through which sampling, evaluation and later stages find
/// trained weights. A stage that has not finished is used with a warning; a stage without any
/// complete set is an error.
pub fn load_weights(run: &RunDir, stage: &str, which: Which, parts: &[(&str, &VarStore)]) -> Result<SetManifest> {
    let stage_dir = run.stage_dir(stage);
    let mut warn = |m: String| eprintln!("warning: {m}");
    let agrees = run.log_agrees(stage)?;
    let best = match which {
        Which::Best => checkpoint::latest_set(&stage_dir, BEST_PREFIX, &agrees, &mut warn).unwrap_or_else(|e| {
            eprintln!("warning: {e:#}; using the newest set instead of the best");
            None
        }),
        Which::Latest => None,
    };
    let found = match best {
        Some(found) => Some(found),
        None => checkpoint::latest_set(&stage_dir, SET_PREFIX, &agrees, &mut warn).map_err(|e| {
            anyhow::anyhow!(
                "cannot load stage {stage} of run {}: {e}\nRestore the damaged files (from a backup or a copy of the \
                 run), or train the run again.",
                run.root().display()
            )
        })?,
    };
    let Some((dir, manifest)) = found else {
        if let Some(legacy) = legacy_checkpoint(run, stage) {
            return load_legacy(run, stage, &legacy, parts);
        }
        bail!(
            "run {} has no complete checkpoint of stage {stage} (in {}): train it first",
            run.root().display(),
            stage_dir.display()
        );
    };
    if !manifest.is_final() && !IN_SNAPSHOT.get() {
        eprintln!(
            "warning: stage {stage} of run {} is not finished (step {} of {}); using its checkpoint of step {}",
            run.root().display(),
            manifest.step,
            manifest.total,
            manifest.step
        );
    }
    for (name, vs) in parts {
        checkpoint::load_varstore(vs, &dir.join(format!("{name}.safetensors")))
            .with_context(|| format!("stage {stage} of run {}", run.root().display()))?;
    }
    Ok(manifest)
}

/// `checkpoints/<stage>.safetensors` of a run folder written before checkpoint sets existed.
fn legacy_checkpoint(run: &RunDir, stage: &str) -> Option<PathBuf> {
    Some(run.checkpoint(stage)).filter(|p| p.exists())
}

/// Loads a finished stage of an older run folder: part `name` from `checkpoints/<name>.safetensors`
/// when that file exists, else from `checkpoints/<stage>.safetensors` (as `v` or `<name>.v`).
fn load_legacy(run: &RunDir, stage: &str, legacy: &Path, parts: &[(&str, &VarStore)]) -> Result<SetManifest> {
    eprintln!(
        "warning: run {} predates checkpoint sets; loading stage {stage} from {}",
        run.root().display(),
        legacy.display()
    );
    for (name, vs) in parts {
        let own = run.checkpoint(name);
        let (path, prefix) = if own.exists() { (own, None) } else { (legacy.to_path_buf(), Some(*name)) };
        checkpoint::load_varstore_prefixed(vs, &path, prefix)
            .with_context(|| format!("stage {stage} of run {}", run.root().display()))?;
    }
    Ok(SetManifest { stage: stage.to_string(), ..SetManifest::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{toy_run as run_dir, toy_store as store};
    use mmlatent_core::optim::AdamConfig;
    use tch::{nn, Device};

    /// Fits the toy store's w to a target, deterministically (no random generator: other
    /// tests share it).
    fn toy_step(vs: &VarStore, step: usize, opts: &mut [Adam]) -> Result<Metrics> {
        let w = &vs.variables()["w"];
        let target = Tensor::from_slice(&[1.0f32, -2.0, 3.0, (step % 3) as f32]);
        let loss = (w - target).square().sum(Kind::Float);
        opts[0].backward_step(&loss)?;
        Ok(vec![("loss", loss.double_value(&[]))])
    }

    /// Runs a configured toy `stage` over `vs`, failing at step `fail_at` (a killed run).
    fn run_toy<'a>(stage: Stage<'a>, vs: &'a VarStore, fail_at: Option<usize>) -> Result<Outcome> {
        stage.weights("w", vs).optimiser("adam", Adam::new(vs, AdamConfig::adam(0.1))).run(|step, opts| {
            if Some(step) == fail_at {
                bail!("interrupted");
            }
            toy_step(vs, step, opts)
        })
    }

    fn train(run: &RunDir, vs: &VarStore, cfg: &TrainConfig, fail_at: Option<usize>) -> Result<Outcome> {
        run_toy(Stage::new(run, "toy", 10, cfg, 1).quiet(), vs, fail_at)
    }

    /// Snapshots come after the first checkpoint at or past each multiple of `sample_every`,
    /// never at the last step (the caller's), not again after a resume, and a failing one is
    /// only a warning.
    #[test]
    fn snapshots_follow_sample_every() {
        let cfg = TrainConfig { checkpoint_every: 3, sample_every: Some(4), ..Default::default() };
        let seen = std::cell::RefCell::new(vec![]);
        let record = |step: usize| -> Result<()> {
            seen.borrow_mut().push(step);
            bail!("no model to sample in this test")
        };
        let snapshots = |run: &RunDir, fail_at: Option<usize>| {
            let vs = store();
            run_toy(Stage::new(run, "toy", 10, &cfg, 1).quiet().snapshots(Some(&record)), &vs, fail_at)
                .map(|_| seen.take())
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(snapshots(&run_dir(a.path()), None).unwrap(), [6, 9]);
        let resumed = run_dir(b.path());
        assert!(snapshots(&resumed, Some(7)).is_err());
        assert_eq!(seen.take(), [6]);
        assert_eq!(snapshots(&resumed, None).unwrap(), [9]);
    }

    /// A stage interrupted after its checkpoint of step 4 (and after logging step 6) resumes
    /// to the same weights and the same metrics log as an uninterrupted one; old sets are
    /// pruned to `keep_checkpoints`; a finished stage trains nothing again.
    #[test]
    fn resume_is_exact_and_sets_are_pruned() {
        let cfg = TrainConfig { checkpoint_every: 4, log_every: 3, keep_checkpoints: 2, ..Default::default() };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (straight, resumed) = (run_dir(a.path()), run_dir(b.path()));
        let (vs1, vs2) = (store(), store());
        assert_eq!(train(&straight, &vs1, &cfg, None).unwrap(), Outcome { start: 0, trained: true });
        let err = format!("{:#}", train(&resumed, &vs2, &cfg, Some(6)).unwrap_err());
        assert!(err.contains("step 7") && err.contains("step 4") && err.contains("step-00000004"), "{err}");
        let vs3 = store();
        assert_eq!(train(&resumed, &vs3, &cfg, None).unwrap(), Outcome { start: 4, trained: true });
        assert!(vs1.variables()["w"].equal(&vs3.variables()["w"]));
        let log = |r: &RunDir| std::fs::read_to_string(r.root().join("metrics.jsonl")).unwrap();
        assert_eq!(log(&straight), log(&resumed));
        let sets: Vec<usize> =
            checkpoint::list_sets(&resumed.stage_dir("toy"), SET_PREFIX).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(sets, vec![8, 10]);
        let vs4 = store();
        assert_eq!(train(&resumed, &vs4, &cfg, Some(0)).unwrap(), Outcome { start: 10, trained: false });
        assert!(vs4.variables()["w"].equal(&vs1.variables()["w"]));
        let loaded = store();
        let manifest = load_weights(&resumed, "toy", Which::Latest, &[("w", &loaded)]).unwrap();
        assert!(manifest.is_final() && loaded.variables()["w"].equal(&vs1.variables()["w"]));
    }

    /// The observer hears a stage start (its place, first step and length), each step with the
    /// metrics logged at it, each checkpoint, a resume note, and the end; a failed stage does not
    /// end.
    #[test]
    fn the_observer_hears_every_stage_event() {
        use crate::observe::{self, Observer, StageObserver};
        use std::sync::{Arc, Mutex};
        type Log = Arc<Mutex<Vec<String>>>;
        /// Records the stages of one run folder (other tests train meanwhile).
        struct Recorder(PathBuf, Log);
        struct Recording(Log);
        impl Observer for Recorder {
            fn stage_started(&self, s: &StageInfo) -> Box<dyn StageObserver> {
                let log = if s.run.root() == self.0 { self.1.clone() } else { Log::default() };
                log.lock()
                    .unwrap()
                    .push(format!("start {} {:?} {}/{} {}", s.name, s.position, s.start, s.total, s.quiet));
                Box::new(Recording(log))
            }
        }
        impl StageObserver for Recording {
            fn note(&mut self, line: &str) {
                self.0.lock().unwrap().push(format!("note {}", line.split(" from ").next().unwrap()));
            }
            fn step_done(&mut self, step: usize, logged: Option<&[(&str, f64)]>) {
                let names: Vec<&str> = logged.unwrap_or_default().iter().map(|(k, _)| *k).collect();
                self.0.lock().unwrap().push(format!("step {step} {names:?}"));
            }
            fn checkpoint_written(&mut self, step: usize, dir: &Path) {
                assert!(dir.join("manifest.json").exists());
                self.0.lock().unwrap().push(format!("checkpoint {step}"));
            }
            fn finished(self: Box<Self>) {
                self.0.lock().unwrap().push("finished".into());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let log = Log::default();
        let previous = observe::set_observer(Some(Arc::new(Recorder(run.root().to_path_buf(), log.clone()))));
        let cfg = TrainConfig { checkpoint_every: 3, log_every: 2, ..Default::default() };
        let train = |fail_at: Option<usize>| {
            let vs = store();
            run_toy(Stage::new(&run, "toy", 4, &cfg, 1).position(1, 2), &vs, fail_at)
        };
        assert!(train(Some(3)).is_err());
        train(None).unwrap();
        observe::set_observer(previous);
        let expected = [
            "start toy Some((1, 2)) 0/4 false",
            "step 1 []",
            "step 2 [\"loss\"]",
            "step 3 [\"loss\"]",
            "checkpoint 3",
            "start toy Some((1, 2)) 3/4 false",
            "note toy: resuming at step 3/4",
            "step 4 [\"loss\"]",
            "checkpoint 4",
            "finished",
        ];
        assert_eq!(*log.lock().unwrap(), expected);
    }

    /// A run folder of an older mmlatent (`checkpoints/<stage>.safetensors`) still loads for
    /// sampling, but is not resumed from scratch silently.
    #[test]
    fn older_run_folders_load_but_do_not_resume() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let vs = store();
        checkpoint::save_varstore(&vs, &run.checkpoint("toy")).unwrap();
        let loaded = VarStore::new(Device::Cpu);
        let _ = loaded.root().var("w", &[4], nn::Init::Const(0.0));
        load_weights(&run, "toy", Which::Latest, &[("w", &loaded)]).unwrap();
        assert!(loaded.variables()["w"].equal(&vs.variables()["w"]));
        let cfg = TrainConfig::default();
        let err = format!("{:#}", train(&run, &store(), &cfg, None).unwrap_err());
        assert!(err.contains("older mmlatent"), "{err}");
    }

    /// A damaged newest set is reported and the previous one used.
    #[test]
    fn a_damaged_set_falls_back_to_the_previous_one() {
        let cfg = TrainConfig { checkpoint_every: 2, log_every: 1, keep_checkpoints: 3, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let vs = store();
        assert!(train(&run, &vs, &cfg, Some(7)).is_err());
        let newest = run.stage_dir("toy").join("step-00000006").join("w.safetensors");
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&newest, bytes).unwrap();
        let mut notes = vec![];
        let agrees = run.log_agrees("toy").unwrap();
        let (dir6, m) = checkpoint::latest_set(&run.stage_dir("toy"), SET_PREFIX, &agrees, &mut |n| notes.push(n))
            .unwrap()
            .unwrap();
        assert_eq!(m.step, 4, "{dir6:?}");
        assert!(notes.len() == 1 && notes[0].contains("step-00000006") && notes[0].contains("checksum"), "{notes:?}");
        assert!(notes[0].contains("falling back to the newest good set, step 4"), "{notes:?}");
        assert_eq!(train(&run, &store(), &cfg, None).unwrap().start, 4);
        // The damaged set was moved aside, not deleted.
        assert!(run.stage_dir("toy").join("damaged-step-00000006/w.safetensors").is_file());
    }

    /// The files of a stage folder, by path, with their bytes.
    fn files_of(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    out.insert(entry.path(), std::fs::read(entry.path()).unwrap());
                }
            }
        }
        out
    }

    /// When every kept set is damaged — a truncated weights file, a missing optimiser state, a
    /// manifest that is not JSON — resuming fails, naming each set and its fault, and leaves
    /// every file as it was; loading the weights fails the same way.
    #[test]
    fn a_stage_whose_every_set_is_damaged_is_not_retrained_over() {
        let cfg = TrainConfig { checkpoint_every: 2, log_every: 1, keep_checkpoints: 3, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        assert!(train(&run, &store(), &cfg, Some(7)).is_err());
        let stage = run.stage_dir("toy");
        let set = |s: usize| stage.join(checkpoint::set_name(SET_PREFIX, s));
        let weights = set(6).join("w.safetensors");
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
        std::fs::remove_file(set(4).join("adam.adam.safetensors")).unwrap();
        std::fs::write(set(2).join(checkpoint::MANIFEST), "{ not json").unwrap();
        let before = files_of(&stage);
        let err = format!("{:#}", train(&run, &store(), &cfg, None).unwrap_err());
        for needle in [
            "every checkpoint set",
            "step-00000006: ",
            "w.safetensors",
            "step-00000004: ",
            "adam.adam.safetensors: missing",
            "step-00000002: ",
            "manifest.json is not valid",
            "nothing was removed",
            "Restore the damaged files",
        ] {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        assert!(!err.contains("falling back"), "{err}");
        assert_eq!(files_of(&stage), before, "a file was changed or removed");
        let loaded = store();
        let err = format!("{:#}", load_weights(&run, "toy", Which::Latest, &[("w", &loaded)]).unwrap_err());
        assert!(err.contains("cannot load stage toy") && err.contains("step-00000006"), "{err}");
    }

    /// A manifest that disagrees with its folder (another step or stage) or that stands beyond
    /// the run's log is damaged; the newest good set is used instead.
    #[test]
    fn a_manifest_that_disagrees_with_its_folder_or_the_log_is_damaged() {
        let cfg = TrainConfig { checkpoint_every: 2, log_every: 1, keep_checkpoints: 3, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        assert!(train(&run, &store(), &cfg, Some(7)).is_err());
        let stage = run.stage_dir("toy");
        let manifest_of = |s: usize| stage.join(checkpoint::set_name(SET_PREFIX, s)).join(checkpoint::MANIFEST);
        let edit = |s: usize, f: &dyn Fn(&mut SetManifest)| {
            let mut m: SetManifest = checkpoint::load_json(&manifest_of(s)).unwrap();
            f(&mut m);
            checkpoint::save_json(&m, &manifest_of(s)).unwrap();
        };
        let agrees = run.log_agrees("toy").unwrap();
        let newest = |notes: &mut Vec<String>| {
            checkpoint::latest_set(&stage, SET_PREFIX, &agrees, &mut |n| notes.push(n)).unwrap().unwrap().1.step
        };
        // Step 6's manifest claims the stage finished: its folder says otherwise.
        edit(6, &|m| m.step = 10);
        let mut notes = vec![];
        assert_eq!(newest(&mut notes), 4);
        assert!(notes[0].contains("records step 10 but its folder is that of step 6"), "{notes:?}");
        edit(6, &|m| {
            m.step = 6;
            m.stage = "other".into();
        });
        let mut notes = vec![];
        assert_eq!(newest(&mut notes), 4);
        assert!(notes[0].contains("records stage `other`"), "{notes:?}");
        // A set renamed along with its manifest to a step the log never reached.
        edit(6, &|m| m.stage = "toy".into());
        let far = stage.join(checkpoint::set_name(SET_PREFIX, 9));
        std::fs::rename(stage.join(checkpoint::set_name(SET_PREFIX, 6)), &far).unwrap();
        let mut m: SetManifest = checkpoint::load_json(&far.join(checkpoint::MANIFEST)).unwrap();
        (m.step, m.total) = (9, 9);
        checkpoint::save_json(&m, &far.join(checkpoint::MANIFEST)).unwrap();
        let mut notes = vec![];
        assert_eq!(newest(&mut notes), 4);
        assert!(notes[0].contains("records stage toy only up to step 7"), "{notes:?}");
    }

    /// Resumed with fewer steps than it has run, an unfinished stage ends at its newest set when
    /// asked for exactly that many (its set then counts as final), and refuses fewer.
    #[test]
    fn a_stage_shortened_on_resume_ends_where_it_stands_or_refuses() {
        let cfg = TrainConfig { checkpoint_every: 2, log_every: 1, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let stage = |total: usize, fail_at: Option<usize>| {
            let vs = store();
            run_toy(Stage::new(&run, "toy", total, &cfg, 1).quiet(), &vs, fail_at)
        };
        assert!(stage(8, Some(5)).is_err());
        let err = format!("{:#}", stage(3, None).unwrap_err());
        assert!(err.contains("stands at step 4 of 8") && err.contains("ask for at least 4"), "{err}");
        let outcome = stage(4, None).unwrap();
        assert_eq!(outcome, Outcome { start: 4, trained: false });
        let loaded = store();
        let manifest = load_weights(&run, "toy", Which::Latest, &[("w", &loaded)]).unwrap();
        assert!(manifest.is_final(), "{manifest:?}");
    }

    /// The toy step, after which step `at` leaves a NaN in the weights.
    fn blow_up_at(vs: &VarStore, at: usize) -> impl FnMut(usize, &mut [Adam]) -> Result<Metrics> + '_ {
        move |step, opts| {
            let m = toy_step(vs, step, opts)?;
            if step == at {
                let mut w = vs.variables()["w"].shallow_clone();
                tch::no_grad(|| w.copy_(&Tensor::from_slice(&[f32::NAN, 0.0, 0.0, 0.0])));
            }
            Ok(m)
        }
    }

    /// Non-finite weights stop the stage naming the last complete set, and are never saved; a
    /// file holding NaN is refused on loading, naming the file and the tensor.
    #[test]
    fn the_nan_guard_checks_weights_and_names_existing_checkpoints() {
        let cfg = TrainConfig { checkpoint_every: 3, log_every: 1, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path());
        let vs = store();
        let first = Stage::new(&run, "toy", 10, &cfg, 1)
            .quiet()
            .weights("w", &vs)
            .optimiser("adam", Adam::new(&vs, AdamConfig::adam(0.1)))
            .run(blow_up_at(&vs, 1));
        let err = format!("{:#}", first.unwrap_err());
        assert!(err.contains("`w`") && err.contains("after step 2") && err.contains("No checkpoint"), "{err}");
        assert!(checkpoint::list_sets(&run.stage_dir("toy"), SET_PREFIX).unwrap().is_empty());
        let vs = store();
        let second = Stage::new(&run, "toy", 10, &cfg, 1)
            .quiet()
            .weights("w", &vs)
            .optimiser("adam", Adam::new(&vs, AdamConfig::adam(0.1)))
            .run(blow_up_at(&vs, 4));
        let err = format!("{:#}", second.unwrap_err());
        assert!(err.contains("step 3 (") && err.contains("step-00000003"), "{err}");

        let path = dir.path().join("nan.safetensors");
        checkpoint::save_tensors(&[("w", &Tensor::from_slice(&[1.0f32, f32::INFINITY]))], &path).unwrap();
        let err = format!("{:#}", checkpoint::load_tensors(&path).unwrap_err());
        assert!(err.contains("nan.safetensors") && err.contains("`w`"), "{err}");
    }
}
