//! The sampler of one `sample` or `eval` call (or one `open_run` from Python): `--sampler`,
//! `--steps` and `--sampler-option` turned into overrides of the run's stored `[model]` table
//! (the stored config is never changed), and the sampler a run will use, described for reports
//! and folder names. [`SamplerArgs`] is also the CLI's flag group (clap).
//!
//! | family | `--sampler` | `--steps` | `--sampler-option` names |
//! |---|---|---|---|
//! | `mld` | `euler`, `heun`, `ancestral` (`model.sampler.method`) | `model.sampler.steps` | `repaint`, `jump_length`, `jump_n_sample`, `joint_guidance`, `conditional_guidance` (`model.sampler.*`; the guidance keys of earlier versions with a warning) |
//! | `ebm`, `ebm-generalised` | `langevin` | `model.langevin_steps` | `step_size` (`model.langevin_step_size`) |
//! | the VAEs | `prior` (ancestral sampling of the prior, the only one) | – | – |

use anyhow::{bail, Result};
pub use mmlatent_eval::provenance::SamplerInfo;
use mmlatent_train::config::Experiment;

/// Sampler choices of one call (the flags shared by `sample` and `eval`); the default keeps the
/// run's own sampler.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SamplerArgs {
    /// Sampler for this call (MLD: euler, heun, ancestral; EBM: langevin; VAEs: prior).
    #[arg(long)]
    pub sampler: Option<String>,
    /// Sampler steps for this call (MLD: time steps; EBM: Langevin steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Other sampler settings, NAME=VALUE, repeatable (MLD: repaint, jump_length, jump_n_sample,
    /// joint_guidance, conditional_guidance, e.g. joint_guidance=none or
    /// 'conditional_guidance={absent=3,min_t=0.4}'; EBM: step_size).
    #[arg(long = "sampler-option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,
}

const MLD_METHODS: [&str; 3] = ["euler", "heun", "ancestral"];
const MLD_OPTIONS: [&str; 5] = ["repaint", "jump_length", "jump_n_sample", "joint_guidance", "conditional_guidance"];
/// The guidance options of earlier versions: still read (see `mmlatent_mld::guidance::OldKeys`).
const MLD_OLD_OPTIONS: [&str; 4] =
    ["guidance", "mutual_guidance", "mutual_guidance_min_t", "conditional_guidance_min_t"];

impl SamplerArgs {
    /// The `--set`-style overrides of these flags for a run of model `kind`; errors name the
    /// flag and what the family accepts.
    pub fn overrides(&self, kind: &str) -> Result<Vec<String>> {
        let mut out = vec![];
        if self.steps == Some(0) {
            bail!("--steps 0: give at least 1");
        }
        let option = |o: &String| -> Result<(String, String)> {
            match o.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                    Ok((k.trim().to_string(), v.trim().to_string()))
                }
                _ => bail!("--sampler-option {o}: expected NAME=VALUE"),
            }
        };
        match kind {
            "mld" => {
                if let Some(s) = &self.sampler {
                    if !MLD_METHODS.contains(&s.as_str()) {
                        bail!("--sampler {s}: MLD samplers are {}", MLD_METHODS.join(", "));
                    }
                    out.push(format!("model.sampler.method=\"{s}\""));
                }
                if let Some(n) = self.steps {
                    out.push(format!("model.sampler.steps={n}"));
                }
                for o in &self.options {
                    let (k, v) = option(o)?;
                    let old = MLD_OLD_OPTIONS.contains(&k.as_str())
                        || (k == "conditional_guidance" && v.parse::<f64>().is_ok());
                    if old {
                        eprintln!(
                            "warning: --sampler-option {o}: `{k}` is from an earlier version; write joint_guidance=... \
                             or conditional_guidance=... (e.g. joint_guidance=none, \
                             'conditional_guidance={{absent=3,min_t=0.4}}')"
                        );
                    } else if !MLD_OPTIONS.contains(&k.as_str()) {
                        bail!("--sampler-option {o}: MLD sampler options are {}", MLD_OPTIONS.join(", "));
                    }
                    out.push(format!("model.sampler.{k}={v}"));
                }
            }
            "ebm" | "ebm-generalised" => {
                if let Some(s) = self.sampler.as_deref().filter(|s| *s != "langevin") {
                    bail!("--sampler {s}: the EBM samples its prior by langevin dynamics only");
                }
                if let Some(n) = self.steps {
                    out.push(format!("model.langevin_steps={n}"));
                }
                for o in &self.options {
                    let (k, v) = option(o)?;
                    if k != "step_size" {
                        bail!("--sampler-option {o}: the EBM's sampler option is step_size");
                    }
                    out.push(format!("model.langevin_step_size={v}"));
                }
            }
            _ => {
                if let Some(s) = self.sampler.as_deref().filter(|s| *s != "prior") {
                    bail!("--sampler {s}: {kind} samples its prior ancestrally (`prior`), nothing else");
                }
                if self.steps.is_some() || !self.options.is_empty() {
                    bail!("--steps / --sampler-option: {kind} has no sampler settings");
                }
            }
        }
        Ok(out)
    }
}

/// The sampler of `experiment` (overrides applied), as its family describes it; for MLD
/// without its evaluation count (the loaded model supplies it, see [`crate::open_run`]).
pub fn describe(experiment: &Experiment) -> Result<SamplerInfo> {
    crate::families::for_kind(experiment.model_kind()?)?.configure(experiment)?.sampler()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sampler: Option<&str>, steps: Option<usize>, options: &[&str]) -> SamplerArgs {
        SamplerArgs {
            sampler: sampler.map(String::from),
            steps,
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn flags_become_each_familys_keys() {
        let o = args(Some("heun"), Some(9), &["repaint=true"]).overrides("mld").unwrap();
        assert_eq!(o, vec!["model.sampler.method=\"heun\"", "model.sampler.steps=9", "model.sampler.repaint=true"]);
        let o = args(None, Some(30), &["step_size=0.2"]).overrides("ebm").unwrap();
        assert_eq!(o, vec!["model.langevin_steps=30", "model.langevin_step_size=0.2"]);
        assert!(args(None, None, &[]).overrides("mopoe").unwrap().is_empty());
    }

    #[test]
    fn wrong_flags_are_named() {
        for (a, kind, needle) in [
            (args(Some("ddim"), None, &[]), "mld", "--sampler ddim"),
            (args(None, None, &["jump=3"]), "mld", "--sampler-option jump=3"),
            (args(None, None, &["repaint"]), "mld", "NAME=VALUE"),
            (args(Some("heun"), None, &[]), "ebm", "--sampler heun"),
            (args(None, Some(5), &[]), "mopoe", "--steps"),
            (args(None, Some(0), &[]), "mld", "--steps 0"),
        ] {
            let err = a.overrides(kind).unwrap_err().to_string();
            assert!(err.contains(needle), "{kind}: {err}");
        }
    }

    /// Overrides reach the family's strict config: a bad value is an error of the config.
    #[test]
    fn described_with_overrides() {
        let base = "[data]\npath = \"default\"\n[model]\nkind = \"mld\"\n";
        let o = args(Some("ancestral"), Some(25), &[]).overrides("mld").unwrap();
        let info = describe(&Experiment::parse(base, &o).unwrap()).unwrap();
        assert_eq!(info.short_name(), "ancestral-25");
        let bad = args(None, None, &["jump_length=\"x\""]).overrides("mld").unwrap();
        assert!(describe(&Experiment::parse(base, &bad).unwrap()).is_err());
        // Guidance, new keys and old: the old `mutual_guidance=0` still turns mutual guidance off.
        let guided = format!("{base}[model.sampler]\njoint_guidance = {{ mutual = 3, min_t = 0.4 }}\n");
        let settings = |options: &[&str]| {
            let o = args(None, None, options).overrides("mld").unwrap();
            describe(&Experiment::parse(&guided, &o).unwrap()).unwrap().settings
        };
        assert_eq!(settings(&[])["joint_guidance"]["mutual"], 3.0);
        assert_eq!(settings(&["joint_guidance=none"])["joint_guidance"], "none");
        assert_eq!(settings(&["mutual_guidance=0"])["joint_guidance"], "none");
        let absent = settings(&["conditional_guidance={absent=2,min_t=0.6}"]);
        assert_eq!(
            (absent["conditional_guidance"]["absent"].as_f64(), absent["joint_guidance"]["min_t"].as_f64()),
            (Some(2.0), Some(0.4))
        );
        let bad = args(None, None, &["joint_guidance={absent=2}"]).overrides("mld").unwrap();
        let err = describe(&Experiment::parse(&guided, &bad).unwrap()).unwrap_err().to_string();
        assert!(err.contains("unknown key `absent`"), "{err}");
        let ebm = "[data]\npath = \"default\"\n[model]\nkind = \"ebm\"\n";
        let info = describe(&Experiment::parse(ebm, &[]).unwrap()).unwrap();
        assert_eq!((info.short_name(), info.evaluations_per_sample), ("langevin-60".to_string(), Some(60)));
    }
}
