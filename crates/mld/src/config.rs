//! The `[model]` table of an MLD experiment (`kind = "mld"`), parsed strictly. Each table's
//! defaults are its type's `Default` impl (serde fills every key left out from it), so a default
//! is written in one place.
//!
//! ```toml
//! [model]
//! kind = "mld"
//! [model.autoencoder]        # stage 1, shared by every modality unless overridden below
//! latent_dim = 32
//! width = 32
//! steps = 1500
//! [model.latent_dims]        # per-modality latent sizes (reference: PolyMNIST 160, MNIST 16 + SVHN 64)
//! m0 = 160
//! [model.likelihoods]        # by modality name (default: `Likelihood::default_for`; see `Likelihoods`)
//! m0 = { type = "laplace", scale = 0.75 }
//! [model.score]              # stage 2 network; its steps, lr and batch come from [train]
//! width = 256
//! [model.sampler]
//! method = "heun"
//! steps = 18
//! ```

use crate::guidance::{ConditionalGuidance, JointGuidance, OldKeys};
use anyhow::{bail, ensure, Result};
use mmlatent_core::likelihood::{Likelihood, Likelihoods};
use mmlatent_core::ModalitySpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole `[model]` table (without `kind`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MldConfig {
    pub autoencoder: AeConfig,
    /// Latent size per modality name; modalities not listed use `autoencoder.latent_dim`.
    pub latent_dims: BTreeMap<String, i64>,
    /// Likelihood of each modality (see [`Likelihoods`]: a table by modality name, one for all,
    /// or a list by position); modalities not named use the default of their kind.
    pub likelihoods: Likelihoods,
    /// How stage 2 normalises the concatenated latents before the diffusion.
    pub latent_norm: LatentNormKind,
    pub score: ScoreConfig,
    pub sampler: SamplerConfig,
}

/// The latent normalisation of stage 2 (`[model] latent_norm`), fitted on the training latents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatentNormKind {
    /// Each dimension to mean 0 and std 1 (the reference's choice).
    #[default]
    Standardize,
    /// Each modality's block centred and decorrelated to the identity covariance (ZCA), so that
    /// no direction inside a modality is much narrower than the noise the diffusion adds.
    Whiten,
}

/// Stage 1: the deterministic autoencoders — each trained alone (the seed's MLD), or, with
/// `contrastive`, together with a cross-modal term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AeConfig {
    pub latent_dim: i64,
    /// Channel width of the encoder/decoder (core `NetSize::width`).
    pub width: i64,
    pub steps: usize,
    pub lr: f64,
    pub batch_size: usize,
    /// The cross-modal variant of stage 1 (not the seed's MLD; see [`crate::contrastive`]):
    /// when on, the autoencoders train together and a contrastive term between the latents of a
    /// tuple's modalities is added to their reconstruction losses. Off (`None`, written as no
    /// table or `contrastive = false`): the seed's independent autoencoders. `contrastive = true`
    /// is the table with its defaults.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "switch_or_table")]
    pub contrastive: Option<ContrastiveConfig>,
}

/// `false` → `None`, `true` → the defaults, a table → its settings (its errors, such as an
/// unknown key, named as the table's own).
fn switch_or_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ContrastiveConfig>, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Boolean(false) => Ok(None),
        toml::Value::Boolean(true) => Ok(Some(ContrastiveConfig::default())),
        toml::Value::Table(table) => ContrastiveConfig::deserialize(table).map(Some).map_err(D::Error::custom),
        other => Err(D::Error::custom(format!("expected true, false or a table of settings, found {other}"))),
    }
}

/// `[model.autoencoder.contrastive]`: the cross-modal term of stage 1's contrastive variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContrastiveConfig {
    /// Weight λ of the contrastive term per data value of an item: the stage minimises
    /// Σ_m NLL_m + λ · D̄ · C, with D̄ the mean number of values of an item of a modality (so that
    /// λ means the same for small and large images) and C the InfoNCE loss.
    pub weight: f64,
    /// Temperature τ of the InfoNCE softmax.
    pub temperature: f64,
    /// Size of the (linear) projection of each modality's latent that the term compares.
    pub projection_dim: i64,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        Self { weight: 0.1, temperature: 0.1, projection_dim: 64 }
    }
}

impl Default for AeConfig {
    fn default() -> Self {
        Self { latent_dim: 32, width: 32, steps: 1500, lr: 1e-3, batch_size: 128, contrastive: None }
    }
}

/// Stage 2: the score network and its masked multi-time training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Width of the first level of the MLP U-Net (reference: 1536 PolyMNIST/CUB for 800 latent
    /// dimensions, 256 MNIST-SVHN for 80). Absent: derived from the total latent size D by
    /// [`ScoreConfig::width_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// How the network's output becomes ε̂ (see `score_net`): `residual` adds the exact noise
    /// predictor of standard-normal latents, σ(τ)·x; `direct` is the reference's plain output.
    pub parameterization: ScoreParameterization,
    /// Width of the learned embedding of the multi-time vector τ.
    pub time_dim: i64,
    /// Width multipliers of the U-Net levels (reference: `[1, 1]`).
    pub mults: Vec<i64>,
    /// GroupNorm groups (reference: 32 at width 1536); must divide every width.
    pub groups: i64,
    /// Probability that a training item (or a whole batch, see `condition_per`) conditions on
    /// a random non-empty proper subset of modalities.
    pub given_p: f64,
    /// Whether the whole batch shares one conditioning subset (`batch`, the default, as in the
    /// reference implementation) or each item draws its own (`item`).
    pub condition_per: ConditionPer,
    /// Probability that a training item leaves a random non-empty proper subset of its
    /// modalities out (τ = 1, fully noised, out of the loss): the network also learns the
    /// marginals of the rest, which mutual guidance (`[model.sampler] joint_guidance`) needs. 0: never.
    pub absent_p: f64,
    /// EMA decay of the weights used for sampling.
    pub ema: f64,
    /// Smallest diffusion time used in training and sampling.
    pub t_eps: f64,
    pub beta_min: f64,
    pub beta_max: f64,
}

/// The score network's output parameterisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreParameterization {
    #[default]
    Residual,
    Direct,
}

/// How often the conditioning subset of masked training is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionPer {
    /// Every item its own subset: each batch trains many subsets at once.
    Item,
    /// One subset per batch, as the reference does.
    #[default]
    Batch,
}

/// Smallest derived width, and the multiple that derived widths are rounded up to.
const MIN_WIDTH: i64 = 256;
const WIDTH_STEP: i64 = 128;

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            width: None,
            parameterization: ScoreParameterization::default(),
            time_dim: 128,
            mults: vec![1, 1],
            groups: 8,
            given_p: 0.3,
            condition_per: ConditionPer::default(),
            absent_p: 0.0,
            ema: 0.999,
            t_eps: 1e-3,
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }
}

/// Which integrator draws samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerMethod {
    /// Euler–Maruyama on the reverse SDE (eq. 2 of the paper): one score evaluation per step.
    Euler,
    /// Heun's second-order method on the probability-flow ODE, Karras time steps: 2·steps − 1
    /// score evaluations.
    Heun,
    /// Ancestral sampling (DDIM with η = 1): one score evaluation per step.
    Ancestral,
}

/// How samples are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WrittenSampler")]
pub struct SamplerConfig {
    pub method: SamplerMethod,
    /// Number of time steps (reference: 250 Euler–Maruyama steps under RePaint; its plain
    /// Euler–Maruyama path takes 1,000).
    pub steps: usize,
    /// RePaint-style resampling (Euler–Maruyama only), for joint and conditional generation alike
    /// (the reference samples both this way).
    pub repaint: bool,
    /// RePaint: how many steps each jump goes back up.
    pub jump_length: usize,
    /// RePaint: how many times each stretch is traversed.
    pub jump_n_sample: usize,
    /// Guidance of joint generation (see [`crate::guidance`]).
    pub joint_guidance: JointGuidance,
    /// Guidance of conditional generation (see [`crate::guidance`]).
    pub conditional_guidance: ConditionalGuidance,
    /// The guidance keys of earlier versions this config was written with (read, and warned of).
    #[serde(skip)]
    pub old_keys: Vec<&'static str>,
}

/// `[model.sampler]` as written: the keys of [`SamplerConfig`] and the guidance keys of earlier
/// versions ([`OldKeys`]).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WrittenSampler {
    method: SamplerMethod,
    steps: usize,
    repaint: bool,
    jump_length: usize,
    jump_n_sample: usize,
    joint_guidance: JointGuidance,
    /// The new table, or the old key's number.
    conditional_guidance: Option<toml::Value>,
    guidance: Option<f64>,
    mutual_guidance: Option<f64>,
    mutual_guidance_min_t: Option<f64>,
    conditional_guidance_min_t: Option<f64>,
}

impl Default for WrittenSampler {
    fn default() -> Self {
        let d = SamplerConfig::default();
        Self {
            method: d.method,
            steps: d.steps,
            repaint: d.repaint,
            jump_length: d.jump_length,
            jump_n_sample: d.jump_n_sample,
            joint_guidance: d.joint_guidance,
            conditional_guidance: None,
            guidance: None,
            mutual_guidance: None,
            mutual_guidance_min_t: None,
            conditional_guidance_min_t: None,
        }
    }
}

impl TryFrom<WrittenSampler> for SamplerConfig {
    type Error = String;

    fn try_from(w: WrittenSampler) -> Result<Self, String> {
        // A number is the old key's weight; anything else the new setting.
        let (conditional, old_conditional) = match w.conditional_guidance {
            None => (ConditionalGuidance::None, None),
            Some(v) => match crate::guidance::number(&v) {
                Some(x) => (ConditionalGuidance::None, Some(x)),
                None => (ConditionalGuidance::deserialize(v).map_err(|e| format!("conditional_guidance: {e}"))?, None),
            },
        };
        let old = OldKeys {
            guidance: w.guidance,
            mutual_guidance: w.mutual_guidance,
            mutual_guidance_min_t: w.mutual_guidance_min_t,
            conditional_guidance: old_conditional,
            conditional_guidance_min_t: w.conditional_guidance_min_t,
        };
        let (joint_guidance, conditional_guidance) = old.apply(w.joint_guidance, conditional)?;
        Ok(Self {
            method: w.method,
            steps: w.steps,
            repaint: w.repaint,
            jump_length: w.jump_length,
            jump_n_sample: w.jump_n_sample,
            joint_guidance,
            conditional_guidance,
            old_keys: old.present(),
        })
    }
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            method: SamplerMethod::Euler,
            steps: 250,
            repaint: false,
            jump_length: 10,
            jump_n_sample: 10,
            joint_guidance: JointGuidance::None,
            conditional_guidance: ConditionalGuidance::None,
            old_keys: vec![],
        }
    }
}

impl SamplerConfig {
    /// A warning for each guidance key of an earlier version, naming the settings that replace it.
    pub fn warnings(&self) -> Vec<String> {
        if self.old_keys.is_empty() {
            return vec![];
        }
        vec![format!(
            "[model.sampler] {} {} replaced by joint_guidance and conditional_guidance; this config reads as \
             joint_guidance = {} and conditional_guidance = {}",
            self.old_keys.join(", "),
            if self.old_keys.len() == 1 { "is" } else { "are" },
            self.joint_guidance,
            self.conditional_guidance
        )]
    }
}

impl ScoreConfig {
    /// The width used for latents of total size `latent_dim`: the configured one, or the rule
    /// w = max(256, D′ rounded up to a multiple of 128) with D′ = D for the `direct` output and
    /// D′ = D/2 for the `residual` one.
    /// - `direct`: a width below D is a bottleneck between the D-dimensional input and the
    ///   D-dimensional ε̂ (at high noise ε̂ ≈ x); the reference's ratios are 1536/800 ≈ 1.9 on
    ///   PolyMNIST and 256/80 = 3.2 on MNIST-SVHN.
    /// - `residual`: σ(τ)·x carries the identity, so the network learns only its departure and
    ///   needs no width ≥ D; a width of D costs about (D/w)² as much per step.
    pub fn width_for(&self, latent_dim: i64) -> i64 {
        let needed = match self.parameterization {
            ScoreParameterization::Direct => latent_dim,
            ScoreParameterization::Residual => (latent_dim + 1) / 2,
        };
        self.width.unwrap_or_else(|| ((needed + WIDTH_STEP - 1) / WIDTH_STEP * WIDTH_STEP).max(MIN_WIDTH))
    }
}

impl MldConfig {
    /// Checks the values and that every per-modality key names a modality of the dataset.
    pub fn check(&self, modalities: &[ModalitySpec]) -> Result<()> {
        let names: Vec<&str> = modalities.iter().map(|m| m.name.as_str()).collect();
        self.likelihoods.for_modalities(modalities)?;
        for key in self.latent_dims.keys() {
            if !names.contains(&key.as_str()) {
                bail!("[model]: `{key}` is not a modality of the dataset (it has {})", names.join(", "));
            }
        }
        for (name, &dim) in &self.latent_dims {
            ensure!(dim > 0, "[model.latent_dims] {name} must be positive, got {dim}");
        }
        let a = &self.autoencoder;
        ensure!(a.latent_dim > 0 && a.width > 0, "[model.autoencoder] latent_dim and width must be positive");
        ensure!(a.batch_size > 0 && a.lr > 0.0, "[model.autoencoder] batch_size and lr must be positive");
        ensure!(a.steps > 0, "[model.autoencoder] steps must be at least 1, got 0");
        if let Some(c) = &a.contrastive {
            ensure!(
                modalities.len() >= 2,
                "[model.autoencoder.contrastive] needs at least two modalities to contrast, the dataset has {}",
                modalities.len()
            );
            ensure!(c.weight.is_finite() && c.weight > 0.0, "[model.autoencoder.contrastive] weight must be positive");
            ensure!(
                c.temperature.is_finite() && c.temperature > 0.0,
                "[model.autoencoder.contrastive] temperature must be positive"
            );
            ensure!(c.projection_dim > 0, "[model.autoencoder.contrastive] projection_dim must be positive");
        }
        let s = &self.score;
        let width = s.width_for(self.latent_sizes(modalities).iter().sum());
        ensure!(width > 0 && s.time_dim > 0 && s.groups > 0, "[model.score] width, time_dim, groups must be positive");
        ensure!(!s.mults.is_empty() && s.mults.iter().all(|&m| m > 0), "[model.score] mults must be positive");
        for w in std::iter::once(width).chain(s.mults.iter().map(|m| m * width)) {
            ensure!(w % s.groups == 0, "[model.score] groups = {} does not divide the width {w}", s.groups);
        }
        ensure!((0.0..=1.0).contains(&s.given_p), "[model.score] given_p must lie in [0, 1], got {}", s.given_p);
        ensure!((0.0..=1.0).contains(&s.absent_p), "[model.score] absent_p must lie in [0, 1], got {}", s.absent_p);
        ensure!((0.0..1.0).contains(&s.ema), "[model.score] ema must lie in [0, 1), got {}", s.ema);
        ensure!(s.t_eps > 0.0 && s.t_eps < 0.5, "[model.score] t_eps must lie in (0, 0.5), got {}", s.t_eps);
        ensure!(0.0 < s.beta_min && s.beta_min < s.beta_max, "[model.score] need 0 < beta_min < beta_max");
        let p = &self.sampler;
        ensure!(p.steps >= 2, "[model.sampler] steps must be at least 2, got {}", p.steps);
        ensure!(p.jump_length >= 1 && p.jump_n_sample >= 1, "[model.sampler] jump_length, jump_n_sample ≥ 1");
        let needs_absent = [
            ("joint_guidance", p.joint_guidance.needs_absent_modalities(), p.joint_guidance.to_string()),
            (
                "conditional_guidance",
                p.conditional_guidance.needs_absent_modalities(),
                p.conditional_guidance.to_string(),
            ),
        ];
        for (key, needs, value) in needs_absent {
            ensure!(
                !needs || s.absent_p > 0.0,
                "[model.sampler] {key} = {value} needs a score network trained with [model.score] absent_p > 0 \
                 (this one never saw a modality left out, so it has nothing to guide against)"
            );
        }
        Ok(())
    }

    /// The latent size of each modality.
    pub fn latent_sizes(&self, modalities: &[ModalitySpec]) -> Vec<i64> {
        modalities.iter().map(|m| *self.latent_dims.get(&m.name).unwrap_or(&self.autoencoder.latent_dim)).collect()
    }

    /// The checkpoint stages of stage 1: one per modality (`ae_<name>`) for the seed's
    /// independent autoencoders, one for the contrastive variant's joint training.
    pub fn stage1_stages(&self, modalities: &[ModalitySpec]) -> Vec<String> {
        match self.autoencoder.contrastive {
            None => modalities.iter().map(crate::autoencoder::Autoencoder::stage_name).collect(),
            Some(_) => vec![crate::contrastive::STAGE.to_string()],
        }
    }

    /// The run's stage count for `num_modalities` modalities: stage 1's stages, then the score
    /// network.
    pub fn stage_count(&self, num_modalities: usize) -> usize {
        self.autoencoder.contrastive.as_ref().map_or(num_modalities, |_| 1) + 1
    }

    /// The likelihood of each modality.
    pub fn likelihoods_for(&self, modalities: &[ModalitySpec]) -> Result<Vec<Likelihood>> {
        self.likelihoods.for_modalities(modalities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guidance that needs absent modalities is refused for a network trained without them,
    /// the key named; the old keys are read and warned of with the settings that replace them.
    #[test]
    fn guidance_settings_are_checked() {
        let modalities = [ModalitySpec::image("m0", 1, 28, 28), ModalitySpec::image("m1", 1, 28, 28)];
        let with = |absent_p: f64, sampler: &str| {
            let cfg: MldConfig = toml::from_str(&format!("[score]\nabsent_p = {absent_p}\n[sampler]\n{sampler}"))
                .map_err(|e| e.to_string())?;
            cfg.check(&modalities).map_err(|e| e.to_string()).map(|_| cfg)
        };
        let ok = with(0.2, "joint_guidance = { mutual = 3, min_t = 0.4 }\nconditional_guidance = { absent = 3 }");
        assert!(ok.unwrap().sampler.warnings().is_empty());
        assert!(with(0.0, "conditional_guidance = { noised = 2 }").is_ok(), "noised needs no absent modalities");
        for (absent_p, sampler, needle) in [
            (0.0, "conditional_guidance = { absent = 3 }", "conditional_guidance = { absent = 3, min_t = 0 } needs"),
            (0.0, "joint_guidance = { mutual = 3 }", "joint_guidance = { mutual = 3, min_t = 0 } needs"),
            (0.0, "mutual_guidance = 3", "needs a score network trained with [model.score] absent_p > 0"),
            (0.2, "conditional_guidance = -1", "conditional_guidance must be a finite weight"),
            (0.2, "conditional_guidance_min_t = 1.5", "conditional_guidance_min_t must lie in [0, 1]"),
            (0.2, "conditional_guidance = { absent = 3, noised = 1 }", "absent and noised select different"),
        ] {
            let err = with(absent_p, sampler).expect_err(needle);
            assert!(err.contains(needle), "{sampler}: {err}");
        }
        let old = with(0.2, "mutual_guidance = 3\nmutual_guidance_min_t = 0.4\nconditional_guidance = 2").unwrap();
        let warning = old.sampler.warnings().join("\n");
        assert!(
            warning.contains("mutual_guidance, mutual_guidance_min_t, conditional_guidance are replaced")
                && warning.contains("joint_guidance = { mutual = 3, min_t = 0.4 }")
                && warning.contains("conditional_guidance = { absent = 2, min_t = 0 }"),
            "{warning}"
        );
    }

    /// The contrastive variant is off by default and when `false`, on with its defaults when
    /// `true`, and a table's settings are checked (an unknown key named); the resolved config of
    /// the seed's MLD has no such table.
    #[test]
    fn the_contrastive_variant_is_a_switch_or_a_table() {
        let parse = |text: &str| toml::from_str::<AeConfig>(text).map_err(|e| e.to_string());
        assert_eq!(parse("").unwrap().contrastive, None);
        assert_eq!(parse("contrastive = false").unwrap().contrastive, None);
        assert_eq!(parse("contrastive = true").unwrap().contrastive, Some(ContrastiveConfig::default()));
        let table = parse("[contrastive]\nweight = 0.5").unwrap().contrastive.unwrap();
        assert_eq!((table.weight, table.temperature), (0.5, ContrastiveConfig::default().temperature));
        let err = parse("[contrastive]\nweigth = 0.5").unwrap_err();
        assert!(err.contains("weigth"), "{err}");
        assert!(parse("contrastive = 3").unwrap_err().contains("true, false or a table"));
        assert!(!toml::to_string(&AeConfig::default()).unwrap().contains("contrastive"));
        let modalities = [ModalitySpec::image("m0", 1, 28, 28)];
        let mut cfg = MldConfig::default();
        cfg.autoencoder.contrastive = Some(ContrastiveConfig::default());
        assert!(cfg.check(&modalities).unwrap_err().to_string().contains("at least two modalities"));
    }
}
