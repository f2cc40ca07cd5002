//! The `[model]` table of a VAE experiment. Common keys serve every kind; a key that only some
//! kinds read (e.g. `k` for MMVAE/MMVAE+) is an error for the others, so that a config never
//! silently carries a setting that does nothing.

use crate::dist::DistKind;
use crate::estimator::Estimator;
use anyhow::{bail, Result};
use mmlatent_core::config::Experiment;
use mmlatent_core::likelihood::Likelihood;
use serde::{Deserialize, Serialize};

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

    /// The kind-specific keys this kind reads.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Self::Mvae => &["subsets"],
            Self::Mmvae => &["k", "estimator"],
            Self::Mopoe | Self::Mmjsd => &[],
            Self::Mvtcae => &["alpha"],
            Self::Nexus => &["specific", "msg_dim", "top_beta", "dropout", "adapt_top_variance"],
            Self::Mmvaeplus => &["k", "estimator", "specific", "learn_aux_prior"],
        }
    }
}

/// Every key of the `[model]` table; see each field for the kinds that read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Dimension of the shared latent (NEXUS: of the joint latent z_σ).
    #[serde(default = "default_latent")]
    pub latent: i64,
    /// Channel width of the conv nets (see `mmlatent_core::nets::NetSize`).
    #[serde(default = "default_width")]
    pub width: i64,
    /// Weight of the KL (or prior/posterior) term.
    #[serde(default = "default_one")]
    pub beta: f64,
    /// Linear KL annealing from 0 to `beta` over this many steps (0: none).
    #[serde(default)]
    pub warmup: usize,
    /// Posterior/prior family; default Laplace for MMVAE and MMVAE+, Gaussian for the others
    /// (product-of-experts models need Gaussian).
    #[serde(default)]
    pub posterior: Option<DistKind>,
    /// Likelihood of image modalities (default Laplace with scale 0.75, as in MoPoE); text is
    /// categorical, vectors Gaussian(1).
    #[serde(default)]
    pub likelihood: Option<Likelihood>,
    /// MVAE: random subsets added to the sub-sampled ELBO (besides the joint and unimodal ones).
    #[serde(default)]
    pub subsets: Option<usize>,
    /// MMVAE, MMVAE+: importance samples per item.
    #[serde(default)]
    pub k: Option<i64>,
    /// MMVAE, MMVAE+: `elbo`, `iwae` or `dreg` (default `dreg`).
    #[serde(default)]
    pub estimator: Option<Estimator>,
    /// MVTCAE: α weighting the conditional-VIB terms against the joint KL.
    #[serde(default)]
    pub alpha: Option<f64>,
    /// MMVAE+: modality-specific latent dimension; NEXUS: modality latent dimension.
    #[serde(default)]
    pub specific: Option<i64>,
    /// MMVAE+: learn the scale of the auxiliary priors r(w_m) (default true).
    #[serde(default)]
    pub learn_aux_prior: Option<bool>,
    /// NEXUS: dimension of the messages from modality latents to the joint latent.
    #[serde(default)]
    pub msg_dim: Option<i64>,
    /// NEXUS: β of the top (joint) level (default 0.1: at 1 the top level collapses onto the
    /// prior on small data, the joint latent then carrying nothing across modalities).
    #[serde(default)]
    pub top_beta: Option<f64>,
    /// NEXUS: probability of forced perceptual dropout (aggregate a random proper subset).
    #[serde(default)]
    pub dropout: Option<f64>,
    /// NEXUS: adapt the top decoders' variance to their batch error (default true).
    #[serde(default)]
    pub adapt_top_variance: Option<bool>,
}

fn default_latent() -> i64 {
    32
}
fn default_width() -> i64 {
    32
}
fn default_one() -> f64 {
    1.0
}

impl VaeConfig {
    /// Parses and checks the `[model]` table of `experiment` for `kind`.
    pub fn from_experiment(experiment: &Experiment, kind: VaeKind) -> Result<Self> {
        let cfg: VaeConfig = experiment.model_config()?;
        cfg.check(kind)?;
        Ok(cfg)
    }

    /// Rejects keys of other kinds and out-of-range values.
    pub fn check(&self, kind: VaeKind) -> Result<()> {
        let set = [
            ("subsets", self.subsets.is_some()),
            ("k", self.k.is_some()),
            ("estimator", self.estimator.is_some()),
            ("alpha", self.alpha.is_some()),
            ("specific", self.specific.is_some()),
            ("learn_aux_prior", self.learn_aux_prior.is_some()),
            ("msg_dim", self.msg_dim.is_some()),
            ("top_beta", self.top_beta.is_some()),
            ("dropout", self.dropout.is_some()),
            ("adapt_top_variance", self.adapt_top_variance.is_some()),
        ];
        for (key, present) in set {
            if present && !kind.own_keys().contains(&key) {
                bail!("in [model]: `{key}` is not a setting of {} (it has: {})", kind.name(), describe_keys(kind));
            }
        }
        if self.latent <= 0 || self.width <= 0 {
            bail!("in [model]: latent and width must be positive (got {} and {})", self.latent, self.width);
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            bail!("in [model]: beta must be a non-negative number, got {}", self.beta);
        }
        if self.k.is_some_and(|k| k < 1) {
            bail!("in [model]: k must be at least 1");
        }
        if self.specific.is_some_and(|s| s < 1) || self.msg_dim.is_some_and(|s| s < 1) {
            bail!("in [model]: specific and msg_dim must be positive");
        }
        if self.alpha.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            bail!("in [model]: alpha must lie in [0, 1]");
        }
        if self.dropout.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            bail!("in [model]: dropout must lie in [0, 1]");
        }
        let posterior = self.posterior(kind);
        if posterior == DistKind::Laplace && !matches!(kind, VaeKind::Mmvae | VaeKind::Mmvaeplus) {
            bail!(
                "in [model]: {} fuses Gaussian experts; posterior = \"laplace\" is for mmvae and mmvaeplus",
                kind.name()
            );
        }
        Ok(())
    }

    /// The posterior/prior family in effect.
    pub fn posterior(&self, kind: VaeKind) -> DistKind {
        self.posterior.unwrap_or(match kind {
            VaeKind::Mmvae | VaeKind::Mmvaeplus => DistKind::Laplace,
            _ => DistKind::Gaussian,
        })
    }

    /// β after linear warm-up at `step`.
    pub fn beta_at(&self, step: usize) -> f64 {
        if self.warmup == 0 {
            self.beta
        } else {
            self.beta * ((step + 1) as f64 / self.warmup as f64).min(1.0)
        }
    }
}

fn describe_keys(kind: VaeKind) -> String {
    let own = kind.own_keys();
    let mut keys = vec!["latent", "width", "beta", "warmup", "posterior", "likelihood"];
    keys.extend(own);
    keys.join(", ")
}
