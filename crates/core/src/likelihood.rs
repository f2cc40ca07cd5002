//! Per-modality likelihoods p(x | decoder output).
//!
//! Decoders emit unconstrained outputs: for images `[N, C, H, W]` (the mean is their sigmoid,
//! except Bernoulli, which reads them as logits), for text `[N, L, V]` logits, for vectors `[N, D]`
//! (identity mean). [`Likelihood::log_prob`] returns one log-density per item, summed over the
//! item's dimensions. [`Likelihoods`] is the `likelihoods` key of every family's `[model]` table.

use crate::{ModalityKind, ModalitySpec};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::PI;
use tch::{Kind, Reduction, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Likelihood {
    /// Laplace with fixed scale b: log p = −|x − μ|/b − log 2b.
    Laplace { scale: f64 },
    /// Gaussian with fixed standard deviation σ: log p = −(x − μ)²/2σ² − log σ − ½ log 2π.
    Gaussian { scale: f64 },
    /// Bernoulli with logits (for values in [0, 1], the continuous relaxation used by the field).
    Bernoulli,
    /// Categorical over a vocabulary; the target holds class ids.
    Categorical,
}

impl Likelihood {
    /// The default of image modalities: Laplace(0.75), as in MoPoE.
    pub const IMAGE_DEFAULT: Likelihood = Likelihood::Laplace { scale: 0.75 };

    /// Whether the decoder output must pass through a sigmoid to give the mean.
    fn squashes_images(&self, output: &Tensor) -> bool {
        output.dim() == 4 && !matches!(self, Likelihood::Bernoulli | Likelihood::Categorical)
    }

    /// The mean of the decoder output in data space.
    pub fn mean(&self, output: &Tensor) -> Tensor {
        match self {
            Likelihood::Bernoulli => output.sigmoid(),
            Likelihood::Categorical => output.argmax(-1, false),
            _ if self.squashes_images(output) => output.sigmoid(),
            _ => output.shallow_clone(),
        }
    }

    /// log p(target | output), one value per item (`[N]`).
    pub fn log_prob(&self, output: &Tensor, target: &Tensor) -> Tensor {
        let n = output.size()[0];
        let per_item = |t: Tensor| t.reshape([n, -1]).sum_dim_intlist(-1, false, Kind::Float);
        match *self {
            Likelihood::Laplace { scale } => {
                let mu = self.mean(output);
                per_item(-(target - mu).abs() / scale - (2.0 * scale).ln())
            }
            Likelihood::Gaussian { scale } => {
                let mu = self.mean(output);
                let sq: Tensor = (target - mu).square();
                per_item(-sq / (2.0 * scale * scale) - scale.ln() - 0.5 * (2.0 * PI).ln())
            }
            Likelihood::Bernoulli => {
                let bce = output.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::None);
                per_item(-bce)
            }
            Likelihood::Categorical => {
                // output [N, L, V] logits, target [N, L] ids.
                let logp = output.log_softmax(-1, Kind::Float);
                let picked = logp.gather(-1, &target.to_kind(Kind::Int64).unsqueeze(-1), false).squeeze_dim(-1);
                per_item(picked)
            }
        }
    }

    /// The default likelihood for a modality kind: Laplace(0.75) for images as in MoPoE,
    /// categorical for text, Gaussian(1) for vectors.
    pub fn default_for(spec: &ModalitySpec) -> Self {
        match spec.kind {
            ModalityKind::Image { .. } => Self::IMAGE_DEFAULT,
            ModalityKind::Text { .. } => Likelihood::Categorical,
            ModalityKind::Vector { .. } => Likelihood::Gaussian { scale: 1.0 },
        }
    }

    /// Whether the likelihood can model the values of `spec`: categorical reads token ids (text),
    /// the others real values (images, vectors).
    pub fn can_model(&self, spec: &ModalitySpec) -> bool {
        spec.is_text() == (*self == Likelihood::Categorical)
    }

    /// Whether one likelihood given for all modalities applies to `spec`: every image or text
    /// modality it can model (categorical: text; the others: images). Vectors keep their default
    /// unless named.
    fn applies_to_all_of(&self, spec: &ModalitySpec) -> bool {
        (spec.is_image() || spec.is_text()) && self.can_model(spec)
    }

    fn name(&self) -> &'static str {
        match self {
            Likelihood::Laplace { .. } => "laplace",
            Likelihood::Gaussian { .. } => "gaussian",
            Likelihood::Bernoulli => "bernoulli",
            Likelihood::Categorical => "categorical",
        }
    }
}

/// The `likelihoods` key of a `[model]` table, read alike by every family:
///
/// ```toml
/// # left out: each modality's default (`Likelihood::default_for`)
/// likelihoods = { type = "laplace", scale = 0.75 }     # one for every image modality
/// likelihoods = [{ type = "laplace", scale = 0.75 }, { type = "categorical" }]   # by position
/// likelihoods = { caption = { type = "categorical" } } # by modality name, the others default
/// ```
///
/// One likelihood applies to every image modality (laplace, gaussian, bernoulli) or every text
/// modality (categorical); the others keep their default, so `{ type = "laplace", … }` sets the
/// images of an image–caption set. A list of one entry means the same. A list of several needs
/// one entry per modality; names must be the dataset's. A likelihood given for a modality it
/// cannot model is an error.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Likelihoods {
    /// Each modality's default.
    #[default]
    Defaults,
    /// One likelihood for every image modality (categorical: every text modality).
    All(Likelihood),
    /// One per modality, in the dataset's order (a list of one entry is read as `All`).
    ByPosition(Vec<Likelihood>),
    /// By modality name; modalities not named keep their default.
    ByName(BTreeMap<String, Likelihood>),
}

impl Likelihoods {
    /// The likelihood of each modality of `modalities`; errors name `[model] likelihoods` and say
    /// what does not fit (a count, a name, a likelihood that cannot model its modality).
    pub fn for_modalities(&self, modalities: &[ModalitySpec]) -> Result<Vec<Likelihood>> {
        let chosen: Vec<Likelihood> = match self {
            Likelihoods::Defaults => modalities.iter().map(Likelihood::default_for).collect(),
            &Likelihoods::All(one) => {
                if !modalities.iter().any(|m| one.applies_to_all_of(m)) {
                    let what = if one == Likelihood::Categorical { "text" } else { "image" };
                    bail!(
                        "[model] likelihoods = {}: the dataset has no {what} modality for it ({}); name the \
                         modalities instead, e.g. likelihoods = {{ {} = {{ type = \"{}\" }} }}",
                        one.name(),
                        describe(modalities),
                        modalities.first().map_or("m0", |m| m.name.as_str()),
                        one.name()
                    );
                }
                let pick = |m: &ModalitySpec| if one.applies_to_all_of(m) { one } else { Likelihood::default_for(m) };
                modalities.iter().map(pick).collect()
            }
            Likelihoods::ByName(map) => {
                if let Some(name) = map.keys().find(|n| !modalities.iter().any(|m| &m.name == *n)) {
                    bail!("[model.likelihoods] `{name}` is not a modality of the dataset ({})", describe(modalities));
                }
                modalities.iter().map(|m| map.get(&m.name).copied().unwrap_or(Likelihood::default_for(m))).collect()
            }
            Likelihoods::ByPosition(list) => {
                if list.len() != modalities.len() {
                    bail!(
                        "[model] likelihoods has {} entries for {} modalities ({}): give one, or one per modality",
                        list.len(),
                        modalities.len(),
                        describe(modalities)
                    );
                }
                list.clone()
            }
        };
        for (l, m) in chosen.iter().zip(modalities) {
            if !l.can_model(m) {
                bail!("[model] likelihoods: {} cannot model modality `{}` ({})", l.name(), m.name, m.describe());
            }
        }
        Ok(chosen)
    }
}

/// "m0 (image 1×28×28), caption (text ≤32 tokens, vocabulary 1800)", for messages.
fn describe(modalities: &[ModalitySpec]) -> String {
    modalities.iter().map(|m| format!("{} ({})", m.name, m.describe())).collect::<Vec<_>>().join(", ")
}

impl Serialize for Likelihoods {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Likelihoods::Defaults => BTreeMap::<String, Likelihood>::new().serialize(s),
            Likelihoods::All(one) => one.serialize(s),
            Likelihoods::ByPosition(list) => list.serialize(s),
            Likelihoods::ByName(map) => map.serialize(s),
        }
    }
}

/// A table with a `type` key is one likelihood; any other table is by modality name (empty: the
/// defaults); an array is by position (empty: the defaults; one entry: that one, as `All`).
impl<'de> Deserialize<'de> for Likelihoods {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(d)?;
        let one = |v: toml::Value, what: &str| {
            Likelihood::deserialize(v).map_err(|e| D::Error::custom(format!("{what}: {e}")))
        };
        match value {
            toml::Value::Table(t) if t.contains_key("type") => {
                one(toml::Value::Table(t), "likelihoods").map(Likelihoods::All)
            }
            toml::Value::Table(t) if t.is_empty() => Ok(Likelihoods::Defaults),
            toml::Value::Table(t) => t
                .into_iter()
                .map(|(name, v)| Ok((name.clone(), one(v, &format!("likelihoods.{name}"))?)))
                .collect::<Result<_, _>>()
                .map(Likelihoods::ByName),
            toml::Value::Array(a) if a.is_empty() => Ok(Likelihoods::Defaults),
            toml::Value::Array(a) if a.len() == 1 => {
                one(a.into_iter().next().expect("one entry"), "likelihoods[0]").map(Likelihoods::All)
            }
            toml::Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| one(v, &format!("likelihoods[{i}]")))
                .collect::<Result<_, _>>()
                .map(Likelihoods::ByPosition),
            other => Err(D::Error::custom(format!(
                "likelihoods: expected a likelihood ({{ type = \"laplace\", scale = 0.75 }}), a list of them or a \
                 table by modality name, found {}",
                other.type_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn gaussian_and_laplace_match_closed_forms() {
        let out = Tensor::from_slice(&[0.5f32, -1.0]).view([1, 2]);
        let x = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let g = Likelihood::Gaussian { scale: 2.0 }.log_prob(&out, &x).double_value(&[0]);
        let expect = [(0.5f64, 1.0f64), (-1.0, 0.0)]
            .iter()
            .map(|(m, v)| -(v - m) * (v - m) / 8.0 - 2f64.ln() - 0.5 * (2.0 * PI).ln())
            .sum::<f64>();
        close(g, expect);
        let l = Likelihood::Laplace { scale: 0.5 }.log_prob(&out, &x).double_value(&[0]);
        let expect = [(0.5f64, 1.0f64), (-1.0, 0.0)].iter().map(|(m, v)| -(v - m).abs() / 0.5 - 1f64.ln()).sum::<f64>();
        close(l, expect);
    }

    #[test]
    fn image_means_are_squashed_and_categorical_picks_ids() {
        let out = Tensor::zeros([2, 1, 2, 2], (Kind::Float, Device::Cpu));
        let mean = Likelihood::Laplace { scale: 0.75 }.mean(&out);
        close(mean.mean(Kind::Float).double_value(&[]), 0.5);
        let logits = Tensor::from_slice(&[0.0f32, 10.0, 10.0, 0.0]).view([1, 2, 2]);
        let ids = Tensor::from_slice(&[1i64, 0]).view([1, 2]);
        let lp = Likelihood::Categorical.log_prob(&logits, &ids).double_value(&[0]);
        close(lp, 2.0 * -(1.0 + (-10f64).exp()).ln());
        assert!(Likelihood::Categorical.mean(&logits).equal(&ids));
    }

    #[test]
    fn bernoulli_is_negative_bce() {
        let logits = Tensor::from_slice(&[0.0f32]).view([1, 1]);
        let x = Tensor::from_slice(&[1.0f32]).view([1, 1]);
        close(Likelihood::Bernoulli.log_prob(&logits, &x).double_value(&[0]), -(2f64.ln()));
    }

    /// The four shapes of the `likelihoods` key read alike, round-trip through TOML, and refuse
    /// what cannot be meant (a wrong count, an unknown name, a likelihood that cannot model its
    /// modality), naming it.
    #[test]
    fn every_shape_of_likelihoods_reads_alike_and_refuses_what_does_not_fit() {
        #[derive(Deserialize, Serialize)]
        struct T {
            #[serde(default)]
            likelihoods: Likelihoods,
        }
        let image_caption = [ModalitySpec::image("image", 3, 8, 8), ModalitySpec::text("caption", 4, 10)];
        let laplace = Likelihood::Laplace { scale: 0.5 };
        let read = |text: &str| -> Likelihoods { toml::from_str::<T>(text).unwrap().likelihoods };
        let resolve = |text: &str| read(text).for_modalities(&image_caption).map_err(|e| e.to_string());
        let defaults = vec![Likelihood::IMAGE_DEFAULT, Likelihood::Categorical];
        let image_laplace = vec![laplace, Likelihood::Categorical];
        for (text, expected) in [
            ("", defaults.clone()),
            ("likelihoods = []", defaults.clone()),
            ("likelihoods = {}", defaults),
            ("likelihoods = { type = \"laplace\", scale = 0.5 }", image_laplace.clone()),
            ("likelihoods = [{ type = \"laplace\", scale = 0.5 }]", image_laplace.clone()),
            ("likelihoods = { image = { type = \"laplace\", scale = 0.5 } }", image_laplace.clone()),
            ("likelihoods = [{ type = \"laplace\", scale = 0.5 }, { type = \"categorical\" }]", image_laplace),
        ] {
            assert_eq!(resolve(text).unwrap(), expected, "{text}");
            let again = toml::to_string(&T { likelihoods: read(text) }).unwrap();
            assert_eq!(read(&again), read(text), "{text} → {again}");
        }
        assert_eq!(read("likelihoods = [{ type = \"bernoulli\" }]"), Likelihoods::All(Likelihood::Bernoulli));
        for (text, needle) in [
            (
                "likelihoods = [{ type = \"bernoulli\" }, { type = \"bernoulli\" }]",
                "bernoulli cannot model modality `caption` (text ≤4 tokens, vocabulary 10)",
            ),
            (
                "likelihoods = { caption = { type = \"gaussian\", scale = 1.0 } }",
                "gaussian cannot model modality `caption`",
            ),
            (
                "likelihoods = { photo = { type = \"bernoulli\" } }",
                "`photo` is not a modality of the dataset (image (image 3×8×8), caption (text ≤4 tokens, vocabulary 10))",
            ),
            (
                "likelihoods = [{ type = \"bernoulli\" }, { type = \"categorical\" }, { type = \"bernoulli\" }]",
                "3 entries for 2 modalities",
            ),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let images = [ModalitySpec::image("m0", 1, 8, 8)];
        let err = read("likelihoods = { type = \"categorical\" }").for_modalities(&images).unwrap_err().to_string();
        assert!(err.contains("categorical: the dataset has no text modality"), "{err}");
        let vectors = [ModalitySpec::vector("v", 3), ModalitySpec::image("m0", 1, 8, 8)];
        let one = read("likelihoods = { type = \"laplace\", scale = 0.5 }").for_modalities(&vectors).unwrap();
        assert_eq!(one, vec![Likelihood::Gaussian { scale: 1.0 }, laplace], "vectors keep their default unless named");
        for (text, needle) in [
            ("likelihoods = 3", "found integer"),
            ("likelihoods = { image = { type = \"poisson\" } }", "likelihoods.image"),
            ("likelihoods = [{ type = \"laplace\" }, { type = \"bernoulli\" }]", "likelihoods[0]"),
        ] {
            let err = toml::from_str::<T>(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
