//! Experiments as TOML files (`configs/<dataset>-<model>.toml`).
//!
//! The top level fixes what every experiment has (`seed`, `device`, `[data]`, `[train]`);
//! the `[model]` table (with its `kind`) is handed to the model family, which parses it into
//! its own strict struct. Unknown keys are errors that name the key, everywhere.
//! `--set section.key=value` overrides are applied to the TOML before parsing.
//!
//! The `[data]` table's type, [`DataConfig`], is core's (`mmlatent_core::dataset`, re-exported
//! here): the data layer opens datasets from it without knowing the training runtime.

use anyhow::{anyhow, bail, Context, Result};
use mmlatent_core::precision::Precision;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;

pub use mmlatent_core::dataset::DataConfig;

/// One experiment: data × model × training settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Free-form name used for the default run folder (`runs/<name>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of every random choice (weights, shuffling, sampling).
    #[serde(default)]
    pub seed: u64,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    #[serde(default = "default_device")]
    pub device: String,
    pub data: DataConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Model-specific table; `kind` names the model family.
    pub model: toml::Table,
}

fn default_device() -> String {
    "cpu".to_string()
}

/// Settings shared by every training loop.
/// A key left out takes its value from [`TrainConfig::default`], where every default is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub batch_size: usize,
    /// Optimisation steps of the stage this table configures: the whole training of a
    /// one-stage family; MLD's score network (its autoencoders have `[model.autoencoder]`'s).
    pub steps: usize,
    pub lr: f64,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Append a line to the metrics log every this many steps.
    pub log_every: usize,
    /// libtorch CPU threads; default: libtorch's choice.
    pub threads: Option<usize>,
    /// `"fp32"`, or `"bf16"` mixed precision (libtorch's autocast around each step's forward
    /// pass and loss; fp32 weights, optimiser state and backward pass): see
    /// [`mmlatent_core::precision`].
    pub precision: Precision,
    /// How the learning rate moves over the steps (see [`TrainConfig::lr_factor`]).
    pub lr_schedule: LrSchedule,
    /// Steps of linear warm-up from lr/warmup_steps to lr (0: none).
    pub warmup_steps: usize,
    /// How many checkpoint sets of each stage are kept (the newest ones; at least 1).
    pub keep_checkpoints: usize,
    /// Measure the held-out loss every this many steps, for stages that have one (logged as
    /// `val_loss`, the best set kept as `best-<step>`); default: at every checkpoint.
    pub validate_every: Option<usize>,
    /// Write sample grids of the model as it stands to `samples/step-<N>/` every this many
    /// steps of the model's last stage (at the first checkpoint at or past each multiple: the
    /// grids are drawn from the checkpoint just written); default: only at the end, into
    /// `samples/`.
    pub sample_every: Option<usize>,
}

/// Learning-rate schedules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` throughout (after the warm-up).
    #[default]
    Constant,
    /// Half a cosine from `lr` down to 0 at the last step (after the warm-up), as in SGDR
    /// (Loshchilov & Hutter 2017) without restarts.
    Cosine,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 128,
            steps: 1000,
            lr: 1e-3,
            checkpoint_every: 500,
            log_every: 25,
            threads: None,
            precision: Precision::Fp32,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            keep_checkpoints: 2,
            validate_every: None,
            sample_every: None,
        }
    }
}

impl TrainConfig {
    /// The factor multiplying the base learning rate(s) at 0-based `step` of a stage `total`
    /// steps long: a linear warm-up (step + 1)/warmup_steps, then 1 (constant) or
    /// ½(1 + cos(π·progress)) (cosine), where progress runs from 0 after the warm-up to 1 at the
    /// stage's last step.
    pub fn lr_factor(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.lr_schedule {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Errors for settings no run can use, naming the key.
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("train.batch_size", self.batch_size),
            ("train.steps", self.steps),
            ("train.checkpoint_every", self.checkpoint_every),
            ("train.log_every", self.log_every),
            ("train.keep_checkpoints", self.keep_checkpoints),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!("{key} must be at least 1, got 0");
            }
        }
        if self.threads == Some(0) {
            bail!("train.threads must be at least 1 (or left out for libtorch's choice), got 0");
        }
        if self.validate_every == Some(0) {
            bail!("train.validate_every must be at least 1 (or left out: at every checkpoint), got 0");
        }
        if self.sample_every == Some(0) {
            bail!("train.sample_every must be at least 1 (or left out: grids only at the end), got 0");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("train.lr must be a positive number, got {}", self.lr);
        }
        Ok(())
    }

    /// Settings a run accepts but a user probably did not mean, as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = vec![];
        if self.warmup_steps >= self.steps {
            out.push(format!(
                "train.warmup_steps = {} is not shorter than train.steps = {}: the learning rate never reaches \
                 train.lr",
                self.warmup_steps, self.steps
            ));
        }
        out
    }
}

impl Experiment {
    /// Reads a TOML file, applies `key.path=value` overrides, and parses it strictly. Errors
    /// name their source: the file, or the `--set` overrides when the file alone is fine.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        match Self::parse(&text, overrides) {
            Ok(e) => Ok(e),
            Err(e) if overrides.is_empty() || Self::parse(&text, &[]).is_err() => {
                Err(e.context(format!("in config {}", path.display())))
            }
            Err(e) => {
                Err(e.context(format!("in --set {} (applied to config {})", overrides.join(" "), path.display())))
            }
        }
    }

    /// Parses TOML text with overrides (see [`Experiment::load`]).
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let experiment: Experiment = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{}", e.to_string().trim_end()))?;
        experiment.check()?;
        Ok(experiment)
    }

    fn check(&self) -> Result<()> {
        if self.model_kind().is_err() {
            bail!("[model] needs `kind = \"...\"` naming the model (e.g. \"mld\", \"ebm\", \"mopoe\")");
        }
        self.train.check()?;
        for (key, value) in [("data.max_train", self.data.max_train), ("data.max_test", self.data.max_test)] {
            if value == Some(0) {
                bail!("{key} must be at least 1 (or left out for the whole split), got 0");
            }
        }
        Ok(())
    }

    /// The `kind` of the `[model]` table.
    pub fn model_kind(&self) -> Result<&str> {
        self.model.get("kind").and_then(|v| v.as_str()).ok_or_else(|| anyhow!("[model] has no string `kind`"))
    }

    /// Parses the `[model]` table (without `kind`) into a model family's own config struct,
    /// which should use `#[serde(deny_unknown_fields)]` so that typos are reported.
    pub fn model_config<T: DeserializeOwned>(&self) -> Result<T> {
        let mut table = self.model.clone();
        table.remove("kind");
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("in [model]: {}", e.to_string().trim_end()))
    }

    /// The `[model]` table of `config`, a family's typed config, under this experiment's `kind`:
    /// the inverse of [`Experiment::model_config`].
    pub fn model_table_of<T: Serialize>(&self, config: &T) -> Result<toml::Table> {
        let mut table = match toml::Value::try_from(config)? {
            toml::Value::Table(t) => t,
            other => bail!("a [model] config serializes to a table, not {}", other.type_str()),
        };
        table.insert("kind".into(), self.model_kind()?.into());
        Ok(table)
    }

    /// The resolved experiment as TOML (what a run folder stores).
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Name for the default run folder.
    pub fn run_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("run-{}", self.model_kind().unwrap_or("model")))
    }
}

/// Applies `a.b.c=value` to a TOML table. The value is read as TOML (`3`, `1e-4`, `true`,
/// `"text"`, `[1, 2]`); anything that does not parse as TOML is taken as a string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| anyhow!("override `{assignment}` is not of the form section.key=value"))?;
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {}", value.trim())) {
        Ok(mut t) => t.remove("v").expect("parsed table has v"),
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("override `{assignment}` has an empty key");
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| anyhow!("override `{assignment}`: `{part}` is not a table"))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
seed = 3
[data]
path = "default"
[train]
steps = 10
[model]
kind = "mld"
width = 64
"#;

    /// Warm-up climbs linearly to lr; cosine then falls through lr/2 at mid-way to 0 at the end.
    #[test]
    fn learning_rate_schedules() {
        let e =
            Experiment::parse(BASE, &["train.lr_schedule=\"cosine\"".into(), "train.warmup_steps=2".into()]).unwrap();
        let t = TrainConfig { steps: 12, lr: 0.1, ..e.train };
        assert_eq!(t.lr_schedule, LrSchedule::Cosine);
        let lr: Vec<f64> = (0..12).map(|s| t.lr * t.lr_factor(s, t.steps)).collect();
        assert!((lr[0] - 0.05).abs() < 1e-12 && (lr[1] - 0.1).abs() < 1e-12, "{lr:?}");
        assert!((lr[2] - 0.1).abs() < 1e-12 && (lr[7] - 0.05).abs() < 1e-12, "{lr:?}");
        assert!(lr[2..].windows(2).all(|w| w[1] < w[0]) && lr[11] < 0.003, "{lr:?}");
        let constant = TrainConfig { lr: 0.1, ..TrainConfig::default() };
        assert!((0..50).all(|s| constant.lr * constant.lr_factor(s, 50) == 0.1));
        let err = format!("{:#}", Experiment::parse(BASE, &["train.lr_schedule=\"linear\"".into()]).unwrap_err());
        assert!(err.contains("linear"), "{err}");
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[derive(Debug)]
    struct Toy {
        width: i64,
    }

    #[test]
    fn parses_and_overrides() {
        let e = Experiment::parse(BASE, &["train.lr=0.5".into(), "model.width=8".into()]).unwrap();
        assert_eq!(e.seed, 3);
        assert_eq!(e.train.steps, 10);
        assert_eq!(e.train.lr, 0.5);
        assert_eq!(e.model_kind().unwrap(), "mld");
        assert_eq!(e.model_config::<Toy>().unwrap().width, 8);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Experiment::parse(BASE, &["train.stepz=3".into()]).unwrap_err().to_string();
        assert!(err.contains("stepz"), "{err}");
        let e = Experiment::parse(BASE, &["model.depth=3".into()]).unwrap();
        let err = e.model_config::<Toy>().unwrap_err().to_string();
        assert!(err.contains("depth") && err.contains("[model]"), "{err}");
        let err = Experiment::parse(&format!("colour = 1\n{BASE}"), &[]).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_overrides_are_errors() {
        assert!(Experiment::parse(BASE, &["train.lr".into()]).is_err());
        assert!(Experiment::parse(BASE, &["seed.x=1".into()]).is_err());
        let err = Experiment::parse(BASE, &["train.lr=-1".into()]).unwrap_err().to_string();
        assert!(err.contains("train.lr"), "{err}");
    }

    /// Settings no run can use are errors naming the key; a warm-up as long as the run is a
    /// warning.
    #[test]
    fn unusable_settings_are_named() {
        for key in [
            "train.steps",
            "train.checkpoint_every",
            "train.log_every",
            "train.keep_checkpoints",
            "train.threads",
            "train.validate_every",
            "train.sample_every",
            "train.batch_size",
            "data.max_train",
            "data.max_test",
        ] {
            let err = Experiment::parse(BASE, &[format!("{key}=0")]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let e = Experiment::parse(BASE, &["train.warmup_steps=10".into()]).unwrap();
        assert!(e.train.warnings()[0].contains("train.warmup_steps"));
        assert!(Experiment::parse(BASE, &[]).unwrap().train.warnings().is_empty());
    }

    #[test]
    fn resolved_config_round_trips() {
        let e = Experiment::parse(BASE, &[]).unwrap();
        let again = Experiment::parse(&e.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(again.train.steps, 10);
        assert_eq!(again.model, e.model);
    }
}
