//! Classifier-free guidance settings: one type per generation mode, each variant named after the
//! key that selects it, so that a combination the samplers cannot run cannot be written.
//!
//! ```toml
//! [model.sampler]
//! joint_guidance = { mutual = 3, min_t = 0.4 }        # or "none"
//! conditional_guidance = { absent = 3, min_t = 0.4 }  # or { mutual = 3, min_t = 0.4 }, { noised = 2 }, "none"
//! ```
//!
//! | key | variant | denoiser wrapper | needs `[model.score] absent_p > 0` |
//! |---|---|---|---|
//! | `mutual` | [`JointGuidance::Mutual`], [`ConditionalGuidance::Mutual`] | [`crate::sampler::Mutual`] | yes |
//! | `absent` | [`ConditionalGuidance::Absent`] | [`crate::sampler::Absent`] | yes |
//! | `noised` | [`ConditionalGuidance::Noised`] | [`crate::sampler::Noised`] | no |
//!
//! `min_t` (default 0) limits guidance to the steps with t ≥ `min_t`; the noised-copy guidance
//! fades by itself as t → 0 and takes none. A weight of 0 is `"none"`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A guidance weight w ≥ 0 and the time from which it acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weighted {
    pub weight: f64,
    /// Guidance acts only while t ≥ `min_t` (0: at every step).
    pub min_t: f64,
}

/// Guidance of joint generation (`[model.sampler] joint_guidance`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum JointGuidance {
    #[default]
    None,
    /// `{ mutual = w, min_t = t }`: each modality pushed away from its marginal prediction
    /// (UniDiffuser's guidance for M modalities).
    Mutual(Weighted),
}

/// Guidance of conditional generation (`[model.sampler] conditional_guidance`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ConditionalGuidance {
    #[default]
    None,
    /// `{ mutual = w, min_t = t }`: as in joint generation; the given modalities pull the
    /// generated ones and those pull one another.
    Mutual(Weighted),
    /// `{ absent = w, min_t = t }`: against the prediction with the given modalities left out.
    Absent(Weighted),
    /// `{ noised = w }`: against the prediction that sees the given latents only through a
    /// forward-noised copy; for networks trained without absent modalities.
    Noised { weight: f64 },
}

impl JointGuidance {
    /// The key that selects the variant and its setting, as written in a config.
    fn written(&self) -> Option<(&'static str, Weighted)> {
        match *self {
            JointGuidance::None => None,
            JointGuidance::Mutual(w) => Some(("mutual", w)),
        }
    }

    fn from_written(selected: Option<(&str, Weighted)>) -> Self {
        match selected {
            Some(("mutual", w)) => JointGuidance::Mutual(w),
            _ => JointGuidance::None,
        }
    }

    /// The same guidance for conditional generation (mutual guidance covers both modes).
    pub fn for_conditionals(&self) -> ConditionalGuidance {
        match *self {
            JointGuidance::Mutual(w) => ConditionalGuidance::Mutual(w),
            JointGuidance::None => ConditionalGuidance::None,
        }
    }

    /// Whether it needs a network trained with absent modalities.
    pub fn needs_absent_modalities(&self) -> bool {
        matches!(self, JointGuidance::Mutual(_))
    }
}

impl ConditionalGuidance {
    /// The key that selects the variant and its setting, as written in a config.
    fn written(&self) -> Option<(&'static str, Weighted)> {
        match *self {
            ConditionalGuidance::None => None,
            ConditionalGuidance::Mutual(w) => Some(("mutual", w)),
            ConditionalGuidance::Absent(w) => Some(("absent", w)),
            ConditionalGuidance::Noised { weight } => Some(("noised", Weighted { weight, min_t: 0.0 })),
        }
    }

    fn from_written(selected: Option<(&str, Weighted)>) -> Self {
        match selected {
            Some(("mutual", w)) => ConditionalGuidance::Mutual(w),
            Some(("absent", w)) => ConditionalGuidance::Absent(w),
            Some(("noised", w)) => ConditionalGuidance::Noised { weight: w.weight },
            _ => ConditionalGuidance::None,
        }
    }

    /// Whether it needs a network trained with absent modalities.
    pub fn needs_absent_modalities(&self) -> bool {
        matches!(self, ConditionalGuidance::Mutual(_) | ConditionalGuidance::Absent(_))
    }
}

/// Reads `"none"` or a table with exactly one of `keys` (the weight) and, unless the key is
/// `noised`, an optional `min_t`. A weight of 0 reads as `"none"`.
fn read(value: toml::Value, keys: &[&'static str]) -> Result<Option<(&'static str, Weighted)>, String> {
    let expected = || {
        let tables: Vec<String> = keys.iter().map(|k| format!("{{ {k} = <weight> }}")).collect();
        format!("\"none\" or one of {}", tables.join(", "))
    };
    let mut table = match value {
        toml::Value::String(s) if s == "none" => return Ok(None),
        toml::Value::Table(t) => t,
        other => return Err(format!("expected {}, found {other}", expected())),
    };
    let min_t = match table.remove("min_t") {
        None => None,
        Some(v) => Some(number(&v).ok_or_else(|| format!("min_t must be a number, found {v}"))?),
    };
    let mut chosen = vec![];
    for key in keys {
        if let Some(v) = table.remove(*key) {
            let weight = number(&v).ok_or_else(|| format!("{key} must be a number (the weight), found {v}"))?;
            chosen.push((*key, weight));
        }
    }
    if let Some(unknown) = table.keys().next() {
        return Err(format!("unknown key `{unknown}`: expected {}", expected()));
    }
    let (key, weight) = match chosen.as_slice() {
        [one] => *one,
        [] => return Err(format!("names no guidance: expected {}", expected())),
        _ => {
            let names: Vec<&str> = chosen.iter().map(|(k, _)| *k).collect();
            return Err(format!("{} select different guidance: keep one", names.join(" and ")));
        }
    };
    let weight = checked_weight(key, weight)?;
    if key == "noised" && min_t.is_some() {
        return Err("noised takes no min_t (its guidance fades by itself as t → 0)".into());
    }
    let min_t = checked_time("min_t", min_t.unwrap_or(0.0))?;
    Ok((weight > 0.0).then_some((key, Weighted { weight, min_t })))
}

/// `v` if it is a guidance weight (finite, ≥ 0); else an error naming `key`.
fn checked_weight(key: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{key} must be a finite weight ≥ 0, got {v}"))
    }
}

/// `v` if it is a time in [0, 1]; else an error naming `key`.
fn checked_time(key: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{key} must lie in [0, 1], got {v}"))
    }
}

/// A TOML integer or float as a number.
pub(crate) fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// Writes `"none"` or `{ key = weight, min_t = t }` (no `min_t` for `noised`).
fn write<S: Serializer>(selected: Option<(&'static str, Weighted)>, s: S) -> Result<S::Ok, S::Error> {
    match selected {
        None => s.serialize_str("none"),
        Some((key, w)) => {
            let mut table = toml::Table::new();
            table.insert(key.into(), w.weight.into());
            if key != "noised" {
                table.insert("min_t".into(), w.min_t.into());
            }
            table.serialize(s)
        }
    }
}

/// As a config writes it: `"none"` or `{ key = w, min_t = t }`.
fn show(selected: Option<(&'static str, Weighted)>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match selected {
        None => write!(f, "\"none\""),
        Some(("noised", w)) => write!(f, "{{ noised = {} }}", w.weight),
        Some((key, w)) => write!(f, "{{ {key} = {}, min_t = {} }}", w.weight, w.min_t),
    }
}

impl std::fmt::Display for JointGuidance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        show(self.written(), f)
    }
}

impl std::fmt::Display for ConditionalGuidance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        show(self.written(), f)
    }
}

impl Serialize for JointGuidance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write(self.written(), s)
    }
}

impl<'de> Deserialize<'de> for JointGuidance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let selected = read(toml::Value::deserialize(d)?, &["mutual"]).map_err(D::Error::custom)?;
        Ok(Self::from_written(selected))
    }
}

impl Serialize for ConditionalGuidance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write(self.written(), s)
    }
}

impl<'de> Deserialize<'de> for ConditionalGuidance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let selected = read(toml::Value::deserialize(d)?, &["mutual", "absent", "noised"]).map_err(D::Error::custom)?;
        Ok(Self::from_written(selected))
    }
}

/// The guidance keys of earlier versions, read as edits of the two settings in the order of
/// their old precedence (`conditional_guidance` over `mutual_guidance` over `guidance`), so that
/// an old run's config means what it meant and `--sampler-option mutual_guidance=0` still turns
/// mutual guidance off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OldKeys {
    pub guidance: Option<f64>,
    pub mutual_guidance: Option<f64>,
    pub mutual_guidance_min_t: Option<f64>,
    /// `conditional_guidance = <number>` (the new key takes a table).
    pub conditional_guidance: Option<f64>,
    pub conditional_guidance_min_t: Option<f64>,
}

impl OldKeys {
    /// The old keys that are present, by name.
    pub fn present(&self) -> Vec<&'static str> {
        [
            ("guidance", self.guidance),
            ("mutual_guidance", self.mutual_guidance),
            ("mutual_guidance_min_t", self.mutual_guidance_min_t),
            ("conditional_guidance", self.conditional_guidance),
            ("conditional_guidance_min_t", self.conditional_guidance_min_t),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|_| k))
        .collect()
    }

    /// `(joint, conditional)` with these keys applied; errors name the old key.
    pub fn apply(
        &self,
        mut joint: JointGuidance,
        mut conditional: ConditionalGuidance,
    ) -> Result<(JointGuidance, ConditionalGuidance), String> {
        if let Some(w) = self.guidance {
            match checked_weight("guidance", w)? {
                0.0 if matches!(conditional, ConditionalGuidance::Noised { .. }) => {
                    conditional = ConditionalGuidance::None
                }
                0.0 => {}
                w => conditional = ConditionalGuidance::Noised { weight: w },
            }
        }
        if self.mutual_guidance.is_some() || self.mutual_guidance_min_t.is_some() {
            let previous = match joint {
                JointGuidance::Mutual(w) => w,
                JointGuidance::None => Weighted { weight: 0.0, min_t: 0.0 },
            };
            let w = Weighted {
                weight: checked_weight("mutual_guidance", self.mutual_guidance.unwrap_or(previous.weight))?,
                min_t: checked_time("mutual_guidance_min_t", self.mutual_guidance_min_t.unwrap_or(previous.min_t))?,
            };
            joint = if w.weight > 0.0 { JointGuidance::Mutual(w) } else { JointGuidance::None };
            // Mutual guidance also guided conditional generation where nothing else did.
            if matches!(conditional, ConditionalGuidance::None | ConditionalGuidance::Mutual(_)) {
                conditional = joint.for_conditionals();
            }
        }
        if self.conditional_guidance.is_some() || self.conditional_guidance_min_t.is_some() {
            let previous = match conditional {
                ConditionalGuidance::Absent(w) => w,
                _ => Weighted { weight: 0.0, min_t: 0.0 },
            };
            let w = Weighted {
                weight: checked_weight("conditional_guidance", self.conditional_guidance.unwrap_or(previous.weight))?,
                min_t: checked_time(
                    "conditional_guidance_min_t",
                    self.conditional_guidance_min_t.unwrap_or(previous.min_t),
                )?,
            };
            if w.weight > 0.0 {
                conditional = ConditionalGuidance::Absent(w);
            } else if matches!(conditional, ConditionalGuidance::Absent(_)) {
                // Off again: conditional generation falls back to what joint guidance gives it.
                conditional = joint.for_conditionals();
            }
        }
        Ok((joint, conditional))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Both {
        joint_guidance: JointGuidance,
        conditional_guidance: ConditionalGuidance,
    }

    fn parse(text: &str) -> Result<Both, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Each variant is selected by its key and written back the same way; a weight of 0 is none.
    #[test]
    fn variants_are_named_by_their_keys_and_round_trip() {
        let both =
            parse("joint_guidance = { mutual = 3, min_t = 0.4 }\nconditional_guidance = { absent = 2.5, min_t = 0.6 }")
                .unwrap();
        assert_eq!(both.joint_guidance, JointGuidance::Mutual(Weighted { weight: 3.0, min_t: 0.4 }));
        assert_eq!(both.conditional_guidance, ConditionalGuidance::Absent(Weighted { weight: 2.5, min_t: 0.6 }));
        assert_eq!(parse(&toml::to_string(&both).unwrap()).unwrap(), both);
        let both = parse("joint_guidance = \"none\"\nconditional_guidance = { noised = 2 }").unwrap();
        assert_eq!(both.conditional_guidance, ConditionalGuidance::Noised { weight: 2.0 });
        assert_eq!(parse(&toml::to_string(&both).unwrap()).unwrap(), both);
        let off = parse("joint_guidance = { mutual = 0 }\nconditional_guidance = { mutual = 0.0 }").unwrap();
        assert_eq!((off.joint_guidance, off.conditional_guidance), (JointGuidance::None, ConditionalGuidance::None));
    }

    /// What the samplers cannot run cannot be written: each refusal names what is wrong.
    #[test]
    fn impossible_settings_are_refused() {
        for (text, needle) in [
            ("joint_guidance = { absent = 3 }", "unknown key `absent`"),
            ("conditional_guidance = { mutual = 3, absent = 2 }", "mutual and absent select different guidance"),
            ("conditional_guidance = { noised = 2, min_t = 0.5 }", "noised takes no min_t"),
            ("conditional_guidance = { min_t = 0.5 }", "names no guidance"),
            ("joint_guidance = { mutual = -1 }", "finite weight"),
            ("joint_guidance = { mutual = 3, min_t = 1.5 }", "min_t must lie in [0, 1]"),
            ("joint_guidance = \"mutual\"", "expected \"none\" or one of { mutual = <weight> }"),
        ] {
            let text = format!(
                "{text}\n{}",
                if text.starts_with("joint") { "conditional_guidance = \"none\"" } else { "joint_guidance = \"none\"" }
            );
            let err = parse(&text).expect_err(needle);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    /// The old keys mean what they meant: mutual guidance covered conditional generation unless
    /// conditional guidance (against the given modalities left out) was set, and setting a weight
    /// to 0 turns that guidance off on top of a new-style setting.
    #[test]
    fn old_keys_keep_their_meaning() {
        let m = |weight, min_t| Weighted { weight, min_t };
        let old = OldKeys { mutual_guidance: Some(3.0), mutual_guidance_min_t: Some(0.4), ..OldKeys::default() };
        let got = old.apply(JointGuidance::None, ConditionalGuidance::None).unwrap();
        assert_eq!(got, (JointGuidance::Mutual(m(3.0, 0.4)), ConditionalGuidance::Mutual(m(3.0, 0.4))));
        let old = OldKeys { conditional_guidance: Some(2.0), ..old };
        let got = old.apply(JointGuidance::None, ConditionalGuidance::None).unwrap();
        assert_eq!(got, (JointGuidance::Mutual(m(3.0, 0.4)), ConditionalGuidance::Absent(m(2.0, 0.0))));
        let old = OldKeys { guidance: Some(2.0), ..OldKeys::default() };
        let got = old.apply(JointGuidance::None, ConditionalGuidance::None).unwrap();
        assert_eq!(got, (JointGuidance::None, ConditionalGuidance::Noised { weight: 2.0 }));
        // `--sampler-option mutual_guidance=0` on a run written with the new keys: unguided.
        let off = OldKeys { mutual_guidance: Some(0.0), ..OldKeys::default() };
        let got = off.apply(JointGuidance::Mutual(m(3.0, 0.4)), ConditionalGuidance::Mutual(m(3.0, 0.4))).unwrap();
        assert_eq!(got, (JointGuidance::None, ConditionalGuidance::None));
        // … and `mutual_guidance_min_t` alone changes only the time.
        let later = OldKeys { mutual_guidance_min_t: Some(0.6), ..OldKeys::default() };
        let got = later.apply(JointGuidance::Mutual(m(3.0, 0.4)), ConditionalGuidance::Absent(m(2.0, 0.4))).unwrap();
        assert_eq!(got, (JointGuidance::Mutual(m(3.0, 0.6)), ConditionalGuidance::Absent(m(2.0, 0.4))));
        let bad = OldKeys { conditional_guidance_min_t: Some(2.0), ..OldKeys::default() };
        assert!(bad
            .apply(JointGuidance::None, ConditionalGuidance::None)
            .unwrap_err()
            .contains("conditional_guidance_min_t"));
    }
}
