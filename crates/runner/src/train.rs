//! Training an experiment into a run folder (what `mmlatent train` and `mmlatent.train` do).
//!
//! Everything is checked before anything is written: the config (and `--set` values), the
//! device, the dataset and the model's config against it (modality sizes, batch sizes). Only
//! then is the run folder created, and locked for the duration of training, so a failed start
//! leaves nothing behind that blocks the fixed command. A resume needs an existing run folder;
//! it keeps the stored experiment (not the config file's) and applies to it only `--set` of the
//! settings that do not change what is learnt so far ([`RESUMABLE_KEYS`]: e.g. `train.steps` to
//! extend a finished run). A new MLD run may take over the finished autoencoders of another
//! (`--autoencoders-from`, [`TrainRequest::take_over_from`]) when both agree on every setting they
//! depend on ([`mmlatent_train::family::ConfiguredFamily::reusable_stages`]).

use crate::device::parse_device;
use crate::families;
use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::device::{seed_everything, set_threads};
use mmlatent_core::precision::Precision;
use mmlatent_core::MultimodalDataset;
use mmlatent_present::grid::write_sample_grids;
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{ConfiguredFamily, PlannedStage, TrainContext};
use mmlatent_train::parallel;
use mmlatent_train::run::RunDir;
use std::path::{Path, PathBuf};
use tch::Device;

/// The `[train]` keys a resumed run may change: how long it runs, how it logs and saves, and its
/// numeric precision (the weights are fp32 either way).
pub const RESUMABLE_KEYS: [&str; 8] = [
    "train.steps",
    "train.checkpoint_every",
    "train.log_every",
    "train.keep_checkpoints",
    "train.validate_every",
    "train.sample_every",
    "train.threads",
    "train.precision",
];

/// Where an experiment comes from.
#[derive(Clone, Copy, Debug)]
pub enum ConfigSource<'a> {
    /// A TOML file, e.g. `configs/default-mld.toml`.
    File(&'a Path),
    /// TOML text (a config built in memory, e.g. from a Python dict).
    Text(&'a str),
}

/// One training request: the arguments of `mmlatent train`.
#[derive(Clone, Debug)]
pub struct TrainRequest<'a> {
    pub config: ConfigSource<'a>,
    /// Run folder (default: `runs/<experiment name>`).
    pub run: Option<PathBuf>,
    /// Continue the run in the folder from its last checkpoints.
    pub resume: bool,
    /// `section.key=value` overrides (`--set`).
    pub overrides: &'a [String],
    /// `cpu`, `cuda`, `cuda:N` or `auto`, overriding the config's `device`.
    pub device: Option<&'a str>,
    /// A finished run whose first stages the new run takes over instead of training them (MLD's
    /// autoencoders: `--autoencoders-from`), when both agree on every setting they depend on.
    pub take_over_from: Option<&'a Path>,
}

/// Reads the experiment of `source` with `overrides` applied; errors name their source as
/// [`Experiment::load`]'s do (the file, or the `--set` values when the file alone is fine).
pub fn load_experiment(source: ConfigSource, overrides: &[String]) -> Result<Experiment> {
    match source {
        ConfigSource::File(path) => Experiment::load(path, overrides),
        ConfigSource::Text(text) => match Experiment::parse(text, overrides) {
            Ok(e) => Ok(e),
            Err(e) if overrides.is_empty() || Experiment::parse(text, &[]).is_err() => Err(e.context("in the config")),
            Err(e) => Err(e.context(format!("in --set {}", overrides.join(" ")))),
        },
    }
}

/// Trains the experiment of `request` (see the module doc) and returns its run folder.
pub fn train(request: &TrainRequest) -> Result<PathBuf> {
    let requested = load_experiment(request.config, request.overrides)?;
    let root = request.run.clone().unwrap_or_else(|| PathBuf::from("runs").join(requested.run_name()));
    // A worker of a data-parallel job (RANK, WORLD_SIZE, ... set) knows its rank from here on and
    // joins the job in `prepare`, once its device is known; rank 0 then does everything that
    // writes, the others follow (see mmlatent_train::parallel).
    parallel::plan_from_env()?;
    let leader = parallel::is_leader();
    if request.resume {
        if !root.join("config.toml").exists() {
            bail!(
                "--resume: {} is not a run folder (no config.toml); leave out --resume to start a new run there",
                root.display()
            );
        }
        let run = RunDir::open(&root)?;
        let _lock = if leader { Some(run.lock()?) } else { None };
        let stored = run.experiment()?;
        // The overrides apply to the stored experiment (the config file may have changed since).
        let requested = Experiment::parse(&stored.to_toml()?, request.overrides)
            .with_context(|| format!("in --set {}", request.overrides.join(" ")))?;
        let experiment = resumed(&stored, &requested, &run)?;
        let prepared = prepare(&experiment, request.device)?;
        if leader && experiment.to_toml()? != stored.to_toml()? {
            eprintln!("updating {} with the new [train] settings", run.config_path().display());
            mmlatent_train::checkpoint::write_text_atomically(&experiment.to_toml()?, &run.config_path())?;
        }
        train_prepared(&run, prepared)?;
    } else {
        let mut experiment = requested;
        if let Some(d) = request.device {
            experiment.device = d.to_string();
        }
        // The run folder's config.toml holds the `[model]` table with every default written out.
        let prepared = prepare(&experiment, None)?.resolved()?;
        let take_over = match request.take_over_from {
            Some(source) => Some(stages_to_take_over(source, &prepared)?),
            None => None,
        };
        let created = leader.then(|| RunDir::create(&root, prepared.experiment(), false)).transpose()?;
        let _lock = created.as_ref().map(RunDir::lock).transpose()?;
        if let (Some(run), Some((source, stages))) = (&created, &take_over) {
            if let Err(e) = run.take_over_stages(source, stages) {
                // The folder was made just now: remove it, so that the same command can run again.
                let _ = std::fs::remove_dir_all(&root);
                return Err(e.context(format!("taking over {} from {}", stages.join(", "), source.root().display())));
            }
            eprintln!("took over {} (finished) from {}", stages.join(", "), source.root().display());
        }
        parallel::barrier("while rank 0 creates the run folder")?;
        let run = match created {
            Some(run) => run,
            None => RunDir::open(&root)?,
        };
        train_prepared(&run, prepared)?;
    }
    Ok(root)
}

/// The run folder `source` and the stages of the prepared experiment it holds finished, for
/// `--autoencoders-from`: an error naming every setting the stages depend on where the two runs
/// differ (or when the family has no such stages, or `source` is another kind of run).
fn stages_to_take_over(source: &Path, prepared: &Prepared) -> Result<(RunDir, Vec<String>)> {
    let experiment = prepared.experiment();
    let context = || format!("--autoencoders-from {}", source.display());
    let run = RunDir::open(source).with_context(context)?;
    let stored = run.experiment().with_context(context)?;
    let (ours, theirs) = (experiment.model_kind()?, stored.model_kind()?);
    if ours != theirs {
        bail!("{}: that run trained `{theirs}`, this one trains `{ours}`", context());
    }
    let modalities = &prepared.dataset.modalities;
    let Some(wanted) = prepared.family.reusable_stages(modalities)? else {
        bail!("{}: model kind `{ours}` has no stages a run can take over from another", context());
    };
    let theirs = families::for_kind(theirs)?.configure(&stored).with_context(context)?;
    let have = theirs.resolved(Some(modalities))?.reusable_stages(modalities)?.expect("same family");
    let (wanted_leaves, have_leaves) = (leaves(&wanted.settings), leaves(&have.settings));
    let differ: Vec<String> = wanted_leaves
        .keys()
        .chain(have_leaves.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|key| wanted_leaves.get(*key) != have_leaves.get(*key))
        .map(|key| {
            let show = |v: Option<&toml::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
            format!("{key}: {} there, {} here", show(have_leaves.get(key)), show(wanted_leaves.get(key)))
        })
        .collect();
    if !differ.is_empty() {
        bail!(
            "{}: its {} were trained with other settings, so this run cannot take them over:\n  {}",
            context(),
            wanted.stages.join(", "),
            differ.join("\n  ")
        );
    }
    run.ensure_finished(&wanted.stages).with_context(context)?;
    Ok((run, wanted.stages))
}

/// The values of `table` by dotted key, nested tables flattened (`model.autoencoder.latent_dim`).
fn leaves(table: &toml::Table) -> std::collections::BTreeMap<String, toml::Value> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => {
                out.extend(leaves(inner).into_iter().map(|(k, v)| (format!("{key}.{k}"), v)));
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    out
}

/// The stored experiment of a resumed run with the resumable `[train]` settings of `requested`
/// (the stored one with the `--set` overrides); any other change is refused rather than
/// silently ignored. The `[model]` tables are compared as `family` resolves them, so a setting
/// written out or left to its default is the same setting.
fn resumed(stored: &Experiment, requested: &Experiment, run: &RunDir) -> Result<Experiment> {
    // The keys of RESUMABLE_KEYS are taken from `requested` (removed where it leaves them out),
    // so that list is the only place that says which settings a resume may change.
    let mut train = toml::Table::try_from(&stored.train)?;
    let wanted = toml::Table::try_from(&requested.train)?;
    for key in RESUMABLE_KEYS {
        let name = key.strip_prefix("train.").expect("RESUMABLE_KEYS are [train] keys");
        match wanted.get(name) {
            Some(value) => train.insert(name.to_string(), value.clone()),
            None => train.remove(name),
        };
    }
    let mut experiment = stored.clone();
    experiment.train = train.try_into()?;
    let family = families::for_kind(stored.model_kind()?)?;
    let resolved = |e: &Experiment| -> Result<String> { family.configure(e)?.resolved(None)?.experiment().to_toml() };
    if resolved(&experiment)? != resolved(requested)? {
        bail!(
            "--set cannot change the experiment of the run in {} when resuming, except {} (it keeps its stored \
             config); edit {} instead, or start a new run",
            run.root().display(),
            RESUMABLE_KEYS.join(", "),
            run.config_path().display()
        );
    }
    Ok(experiment)
}

/// What training needs, found and checked before a run folder is touched.
pub struct Prepared {
    pub device: Device,
    pub dataset: MultimodalDataset,
    /// The model family with the experiment's `[model]` table read (once, in [`prepare`]).
    pub family: Box<dyn ConfiguredFamily>,
}

impl Prepared {
    /// The experiment to train.
    pub fn experiment(&self) -> &Experiment {
        self.family.experiment()
    }

    /// The same, with the experiment's `[model]` table resolved for the dataset (every default
    /// and derived value written out): what a new run folder stores.
    pub fn resolved(self) -> Result<Self> {
        let family = self.family.resolved(Some(&self.dataset.modalities))?;
        Ok(Self { family, ..self })
    }
}

/// Checks `experiment` against its device, dataset and model family (see the module doc), with
/// `device` overriding the experiment's own setting. Prints the config's warnings. A worker of
/// a planned data-parallel job joins it here (on `cuda:LOCAL_RANK` for a CUDA device) and checks
/// that every rank trains the same experiment on the same data.
pub fn prepare(experiment: &Experiment, device: Option<&str>) -> Result<Prepared> {
    let family = families::for_kind(experiment.model_kind()?)?
        .configure(experiment)
        .with_context(|| format!("model kind `{}`", experiment.model_kind().unwrap_or("?")))?;
    for warning in experiment.train.warnings().iter().chain(family.warnings()) {
        eprintln!("warning: {warning}");
    }
    let mut device = parse_device(device.unwrap_or(&experiment.device))?;
    parallel::local_batch(experiment.train.batch_size)?;
    if let (Some(job), Device::Cuda(_)) = (parallel::planned(), device) {
        // One GPU per process, chosen by the launcher's LOCAL_RANK (as torchrun does).
        let count = tch::Cuda::device_count();
        if job.local_rank as i64 >= count {
            bail!(
                "LOCAL_RANK={} but this machine shows {count} CUDA device(s): start at most one process per GPU",
                job.local_rank
            );
        }
        device = Device::Cuda(job.local_rank);
    }
    experiment.train.precision.check_supported(device).context("train.precision")?;
    parallel::join(device)?;
    if let Some(m) = parallel::planned().filter(|m| m.rank == 0) {
        let backend = if device == Device::Cpu { "Gloo" } else { "NCCL" };
        let processes = if m.world == 1 { "1 process".to_string() } else { format!("{} processes", m.world) };
        eprintln!("data-parallel training: {processes} (c10d, {backend}); rank 0 writes the run");
    }
    let dataset = mmlatent_data::open(&experiment.data).context("cannot open the experiment's dataset")?;
    ensure!(
        !dataset.train.is_empty(),
        "dataset {} at {} has no training tuples",
        dataset.name,
        experiment.data.path.display()
    );
    dataset.ensure_batch_fits("train.batch_size", experiment.train.batch_size)?;
    family.check(&dataset).with_context(|| format!("model kind `{}`", experiment.model_kind().unwrap_or("?")))?;
    // The ranks of a data-parallel job must train the same thing on the same data.
    let what = format!("{}\n{} {} {}", experiment.to_toml()?, dataset.name, dataset.train.len(), dataset.test.len());
    parallel::ensure_same("experiment and dataset (config, --set values, data files)", &what)?;
    Ok(Prepared { device, dataset, family })
}

/// Trains a checked experiment into `run` (shared with `quickstart`); the caller holds the lock.
pub fn train_prepared(run: &RunDir, prepared: Prepared) -> Result<()> {
    let Prepared { device, dataset, family } = prepared;
    let experiment = family.experiment();
    set_threads(experiment.train.threads);
    seed_everything(experiment.seed);
    let leader = parallel::is_leader();
    if leader {
        eprintln!(
            "training {} on {} ({} train / {} test tuples, {} modalities) on {:?}{} → {}",
            experiment.model_kind()?,
            dataset.name,
            dataset.train.len(),
            dataset.test.len(),
            dataset.num_modalities(),
            device,
            match experiment.train.precision {
                Precision::Fp32 => "",
                Precision::Bf16 => " in bf16 mixed precision",
            },
            run.root().display()
        );
        eprintln!("stages: {}", PlannedStage::describe(&family.stages(&dataset.modalities)));
    }
    // The model as its newest checkpoints stand, drawn into grids under `samples/<sub>`.
    let grids_in = |sub: &str| -> Result<(usize, PathBuf)> {
        let model = family.load(run, &dataset, device)?;
        let dir = run.root().join("samples").join(sub);
        Ok((write_sample_grids(model.as_ref(), &dataset, &dir, experiment.seed)?, dir))
    };
    let snapshot = |step: usize| grids_in(&format!("step-{step}")).map(|_| ());
    // The dataset's evaluation classifiers, if they are in their cache already (never trained
    // here): a model's reports read its reconstructions with them.
    let classifiers = if leader { cached_classifiers(experiment, &dataset, device) } else { None };
    let judge = |m: usize, x: &tch::Tensor| -> Result<tch::Tensor> {
        Ok(classifiers.as_ref().expect("judge only with classifiers").logits(m, x)?.argmax(-1, false))
    };
    let judge: Option<mmlatent_train::family::Judge> = classifiers.is_some().then_some(&judge);
    family.train(&TrainContext {
        snapshot: Some(&snapshot),
        judge,
        ..TrainContext::new(experiment, run, &dataset, device)
    })?;
    if !leader {
        return Ok(());
    }
    match grids_in("") {
        Ok((n, dir)) => eprintln!("wrote {n} sample grids to {}", dir.display()),
        Err(e) => eprintln!("warning: no sample grids: {e:#}"),
    }
    Ok(())
}

/// The evaluation classifiers of the experiment's dataset in their default cache folder, when
/// they are there and load; `None` otherwise (a failure to load them is a note, not an error).
fn cached_classifiers(
    experiment: &Experiment,
    dataset: &mmlatent_core::MultimodalDataset,
    device: tch::Device,
) -> Option<mmlatent_eval::classifier::Classifiers> {
    let dir = mmlatent_eval::classifier::default_dir(&dataset.name, &experiment.data);
    match mmlatent_eval::classifier::Classifiers::load_if_present(&dir, dataset, device) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("note: the evaluation classifiers in {} are not used: {e:#}", dir.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "name = \"t\"\n[data]\npath = \"default\"\n[model]\nkind = \"mld\"\n";

    #[test]
    fn text_configs_name_the_set_values_that_break_them() {
        let ok = load_experiment(ConfigSource::Text(CONFIG), &["train.steps=3".into()]).unwrap();
        assert_eq!(ok.train.steps, 3);
        let bad_set = load_experiment(ConfigSource::Text(CONFIG), &["train.stepz=3".into()]).unwrap_err();
        assert!(format!("{bad_set:#}").starts_with("in --set train.stepz=3: "), "{bad_set:#}");
        assert!(format!("{bad_set:#}").contains("stepz"), "{bad_set:#}");
        let bad_text = load_experiment(ConfigSource::Text("[model]\n"), &["train.steps=3".into()]).unwrap_err();
        assert!(format!("{bad_text:#}").starts_with("in the config: "), "{bad_text:#}");
    }

    #[test]
    fn resuming_a_folder_that_is_no_run_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("missing");
        let request = TrainRequest {
            config: ConfigSource::Text(CONFIG),
            run: Some(root.clone()),
            resume: true,
            overrides: &[],
            device: None,
            take_over_from: None,
        };
        let err = train(&request).unwrap_err();
        assert!(format!("{err:#}").contains("is not a run folder (no config.toml)"), "{err:#}");
        assert!(!root.exists());
    }
}
