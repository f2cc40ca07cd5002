//! The `[model]` table of a VAE experiment: the keys every kind reads ([`CommonConfig`]) and
//! those of its kind ([`VaeOptions`], one struct per kind with its defaults beside it). A key of
//! another kind is an error naming the kind's keys, so that a config never silently carries a
//! setting that does nothing. Parsed, a [`VaeConfig`] holds every value in effect: the models
//! read no defaults of their own, and serialized back it is the resolved table of a run folder.

use crate::dist::DistKind;
use crate::estimator::Estimator;
use anyhow::{anyhow, bail, Result};
use mmlatent_core::likelihood::Likelihoods;
use mmlatent_train::config::Experiment;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The seven multimodal VAEs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaeKind {
    Mvae,
    Mmvae,
    Mopoe,
    Mvtcae,
    Mmjsd,
    Nexus,
    Mmvaeplus,
}

impl VaeKind {
    pub const NAMES: [&'static str; 7] = ["mvae", "mmvae", "mopoe", "mvtcae", "mmjsd", "nexus", "mmvaeplus"];

    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "mvae" => Self::Mvae,
            "mmvae" => Self::Mmvae,
            "mopoe" => Self::Mopoe,
            "mvtcae" => Self::Mvtcae,
            "mmjsd" => Self::Mmjsd,
            "nexus" => Self::Nexus,
            "mmvaeplus" => Self::Mmvaeplus,
            other => bail!("`{other}` is not a VAE kind (one of {})", Self::NAMES.join(", ")),
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether the kind mixes its experts (Laplace posteriors allowed, and its default) rather
    /// than multiplying Gaussian ones.
    fn takes_laplace(self) -> bool {
        matches!(self, Self::Mmvae | Self::Mmvaeplus)
    }
}

/// The keys every kind reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommonConfig {
    /// Dimension of the shared latent (NEXUS: of the joint latent z_σ); `latent` in configs of
    /// earlier versions.
    pub latent_dim: i64,
    /// Channel width of the conv nets (see `mmlatent_core::nets::NetSize`).
    pub width: i64,
    /// Weight of the KL (or prior/posterior) term.
    pub beta: f64,
    /// Linear KL annealing from 0 to `beta` over this many steps (0: none).
    pub warmup: usize,
    /// Posterior/prior family. Its default depends on the kind: Laplace for MMVAE and MMVAE+,
    /// Gaussian for the others (product-of-experts models need Gaussian); [`VaeConfig::parse`]
    /// fills it in.
    pub posterior: DistKind,
    /// Likelihood of each modality (see [`Likelihoods`]: one for all images, a list by position
    /// or a table by name; `likelihood` in configs of earlier versions); default: Laplace with
    /// scale 0.75 for images (as in MoPoE), categorical for text, Gaussian(1) for vectors.
    pub likelihoods: Likelihoods,
}

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            latent_dim: 32,
            width: 32,
            beta: 1.0,
            warmup: 0,
            posterior: DistKind::Gaussian,
            likelihoods: Likelihoods::Defaults,
        }
    }
}

/// MVAE's own keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MvaeOptions {
    /// Random subsets added to the sub-sampled ELBO (besides the joint and unimodal ones).
    pub subsets: usize,
}

/// MMVAE's own keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmvaeOptions {
    /// Importance samples per item.
    pub k: i64,
    /// `elbo`, `iwae` or `dreg`.
    pub estimator: Estimator,
}

impl Default for MmvaeOptions {
    fn default() -> Self {
        Self { k: 10, estimator: Estimator::Dreg }
    }
}

/// MVTCAE's own keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MvtcaeOptions {
    /// α weighting the conditional-VIB terms against the joint KL.
    pub alpha: f64,
}

impl Default for MvtcaeOptions {
    fn default() -> Self {
        Self { alpha: 5.0 / 6.0 }
    }
}

/// NEXUS's own keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NexusOptions {
    /// Dimension of each modality latent.
    pub specific: i64,
    /// Dimension of the messages from modality latents to the joint latent.
    pub msg_dim: i64,
    /// β of the top (joint) level (0.1: at 1 the top level collapses onto the prior on small
    /// data, the joint latent then carrying nothing across modalities).
    pub top_beta: f64,
    /// Probability of forced perceptual dropout (aggregate a random proper subset).
    pub dropout: f64,
    /// Adapt the top decoders' variance to their batch error.
    pub adapt_top_variance: bool,
}

impl Default for NexusOptions {
    fn default() -> Self {
        Self { specific: 32, msg_dim: 10, top_beta: 0.1, dropout: 0.2, adapt_top_variance: true }
    }
}

/// MMVAE+'s own keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmvaeplusOptions {
    /// Importance samples per item.
    pub k: i64,
    /// `elbo`, `iwae` or `dreg`.
    pub estimator: Estimator,
    /// Dimension of each modality-specific latent.
    pub specific: i64,
    /// Learn the scale of the auxiliary priors r(w_m).
    pub learn_aux_prior: bool,
}

impl Default for MmvaeplusOptions {
    fn default() -> Self {
        let MmvaeOptions { k, estimator } = MmvaeOptions::default();
        Self { k, estimator, specific: 32, learn_aux_prior: true }
    }
}

/// The kind of a VAE (`[model] kind`) with its own keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VaeOptions {
    Mvae(MvaeOptions),
    Mmvae(MmvaeOptions),
    Mopoe,
    Mvtcae(MvtcaeOptions),
    Mmjsd,
    Nexus(NexusOptions),
    Mmvaeplus(MmvaeplusOptions),
}

impl VaeOptions {
    /// The kind these options belong to.
    pub fn kind(&self) -> VaeKind {
        match self {
            Self::Mvae(_) => VaeKind::Mvae,
            Self::Mmvae(_) => VaeKind::Mmvae,
            Self::Mopoe => VaeKind::Mopoe,
            Self::Mvtcae(_) => VaeKind::Mvtcae,
            Self::Mmjsd => VaeKind::Mmjsd,
            Self::Nexus(_) => VaeKind::Nexus,
            Self::Mmvaeplus(_) => VaeKind::Mmvaeplus,
        }
    }

    /// `kind`'s options from a table of its own keys only (absent ones take their defaults).
    fn parse(kind: VaeKind, table: toml::Table) -> Result<Self> {
        Ok(match kind {
            VaeKind::Mvae => Self::Mvae(from_table(table)?),
            VaeKind::Mmvae => Self::Mmvae(from_table(table)?),
            VaeKind::Mopoe => Self::Mopoe,
            VaeKind::Mvtcae => Self::Mvtcae(from_table(table)?),
            VaeKind::Mmjsd => Self::Mmjsd,
            VaeKind::Nexus => Self::Nexus(from_table(table)?),
            VaeKind::Mmvaeplus => Self::Mmvaeplus(from_table(table)?),
        })
    }
}

/// The whole `[model]` table of a VAE, every value resolved; serialized (with `kind`) it is the
/// table a run folder stores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaeConfig {
    /// The keys every kind reads.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// The kind and its own keys.
    #[serde(flatten)]
    pub options: VaeOptions,
}

impl VaeConfig {
    /// Parses and checks the `[model]` table of `experiment` (its `kind` names the VAE).
    pub fn from_experiment(experiment: &Experiment) -> Result<Self> {
        let kind = VaeKind::parse(experiment.model_kind()?)?;
        let mut table = experiment.model.clone();
        table.remove("kind");
        Self::parse(kind, table)
    }

    /// Parses and checks the keys of a `[model]` table (without `kind`) for `kind`: common keys
    /// go to [`CommonConfig`], the kind's own to its [`VaeOptions`], anything else is an error
    /// listing the keys `kind` has.
    pub fn parse(kind: VaeKind, table: toml::Table) -> Result<Self> {
        let common_keys = keys_of(&CommonConfig::default());
        let own_keys = keys_of(&VaeOptions::parse(kind, toml::Table::new())?);
        let (mut common, mut own) = (toml::Table::new(), toml::Table::new());
        for (key, value) in table {
            if common_keys.contains(&key) {
                common.insert(key, value);
            } else if own_keys.contains(&key) {
                own.insert(key, value);
            } else {
                let has: Vec<&str> = common_keys.iter().chain(&own_keys).map(String::as_str).collect();
                bail!("in [model]: `{key}` is not a setting of {} (it has: {})", kind.name(), has.join(", "));
            }
        }
        if !common.contains_key("posterior") {
            let posterior = if kind.takes_laplace() { DistKind::Laplace } else { DistKind::Gaussian };
            common.insert("posterior".into(), toml::Value::try_from(posterior)?);
        }
        let config = Self { common: from_table(common)?, options: VaeOptions::parse(kind, own)? };
        config.check()?;
        Ok(config)
    }

    /// The kind of VAE.
    pub fn kind(&self) -> VaeKind {
        self.options.kind()
    }

    /// Rejects out-of-range values.
    pub fn check(&self) -> Result<()> {
        let c = &self.common;
        if c.latent_dim <= 0 || c.width <= 0 {
            bail!("in [model]: latent_dim and width must be positive (got {} and {})", c.latent_dim, c.width);
        }
        if !(c.beta >= 0.0 && c.beta.is_finite()) {
            bail!("in [model]: beta must be a non-negative number, got {}", c.beta);
        }
        let (k, specific) = match &self.options {
            VaeOptions::Mmvae(o) => (Some(o.k), None),
            VaeOptions::Mmvaeplus(o) => (Some(o.k), Some(o.specific)),
            VaeOptions::Nexus(o) => {
                if o.msg_dim < 1 {
                    bail!("in [model]: msg_dim must be positive, got {}", o.msg_dim);
                }
                if !(0.0..=1.0).contains(&o.dropout) {
                    bail!("in [model]: dropout must lie in [0, 1], got {}", o.dropout);
                }
                (None, Some(o.specific))
            }
            VaeOptions::Mvtcae(o) if !(0.0..=1.0).contains(&o.alpha) => {
                bail!("in [model]: alpha must lie in [0, 1], got {}", o.alpha)
            }
            _ => (None, None),
        };
        if let Some(k) = k.filter(|&k| k < 1) {
            bail!("in [model]: k must be at least 1, got {k}");
        }
        if let Some(s) = specific.filter(|&s| s < 1) {
            bail!("in [model]: specific must be positive, got {s}");
        }
        if c.posterior == DistKind::Laplace && !self.kind().takes_laplace() {
            bail!(
                "in [model]: {} fuses Gaussian experts; posterior = \"laplace\" is for mmvae and mmvaeplus",
                self.kind().name()
            );
        }
        Ok(())
    }

    /// β after linear warm-up at `step`.
    pub fn beta_at(&self, step: usize) -> f64 {
        let c = &self.common;
        if c.warmup == 0 {
            c.beta
        } else {
            c.beta * ((step + 1) as f64 / c.warmup as f64).min(1.0)
        }
    }
}

/// A table deserialized strictly, its errors under `[model]`.
fn from_table<T: DeserializeOwned>(table: toml::Table) -> Result<T> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow!("in [model]: {}", e.to_string().trim_end()))
}

/// The keys `value` serializes to (but `kind`): the fields of a config struct.
fn keys_of(value: &impl Serialize) -> Vec<String> {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(t)) => t.into_iter().map(|(k, _)| k).filter(|k| k != "kind").collect(),
        _ => unreachable!("a config struct serializes to a table"),
    }
}
