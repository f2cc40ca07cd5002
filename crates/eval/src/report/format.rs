//! A report as text tables in the seeds' layout, JSON and CSV.

use super::{FrechetScores, Report};
use crate::coherence::{SubsetScore, SubsetScores};
use crate::latent;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// `v` to 5 significant digits (at most 8 decimals), trailing zeros dropped: `0.095`, not
/// `0.09500000000000001`; `1234.6`, not `1234.5678`.
pub fn round(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (4 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Lays out rows of cells in aligned columns (first column left-aligned, others right).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| if c == 0 { format!("{s:<w$}", w = widths[c]) } else { format!("{s:>w$}", w = widths[c]) })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// `m0→m1`, `m0,m1→m2`.
fn arrow(e: &SubsetScore) -> String {
    format!("{}→{}", e.given.join(","), e.target)
}

impl Report {
    /// Per-(S→m) columns when there are few of them (two or three modalities, as in the
    /// seeds' tables), else the averages by number of given modalities.
    fn conditional_columns(&self) -> bool {
        self.conditional_coherence.entries.len() <= 6
    }

    /// The report as text tables in the layout of the seeds' tables (coherence in %, ↑;
    /// quality as Fréchet distances, ↓).
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} on {} ({} modalities, {} classes): {} joint samples, {} test tuples per given subset",
            self.model,
            self.dataset,
            self.modalities.len(),
            self.num_classes,
            self.joint_samples,
            self.conditional_samples
        );
        let mut acc = vec![vec!["Classifier accuracy (%)".to_string()], vec!["test".to_string()]];
        for (name, a) in &self.classifier_accuracy {
            acc[0].push(name.clone());
            acc[1].push(pct(*a));
        }
        let _ = writeln!(out, "\n{}", table(&acc));

        let per_entry = self.conditional_columns();
        let columns = |s: &SubsetScores| -> Vec<(String, f64)> {
            if per_entry {
                s.entries.iter().map(|e| (arrow(e), e.value)).collect()
            } else {
                s.by_size.iter().map(|a| (format!("given {}", a.size), a.value)).collect()
            }
        };
        let coh = columns(&self.conditional_coherence);
        let mut rows = vec![vec!["Coherence (%↑)".to_string(), "Joint".to_string()]];
        rows[0].extend(coh.iter().map(|(h, _)| h.clone()));
        let mut row = vec![self.model.clone(), pct(self.joint_coherence)];
        row.extend(coh.iter().map(|(_, v)| pct(*v)));
        rows.push(row);
        let _ = writeln!(out, "{}", table(&rows));

        let mut rows = vec![vec!["Quality (↓)".to_string()]];
        rows[0].extend(self.modalities.iter().map(|m| format!("Joint({m})")));
        let fd_cols = columns(&self.fd.conditional);
        rows[0].extend(fd_cols.iter().map(|(h, _)| h.clone()));
        let quality_row = |label: &str, s: &FrechetScores| {
            let mut row = vec![label.to_string()];
            row.extend(self.modalities.iter().map(|m| s.joint.get(m).map(|v| num(*v)).unwrap_or_else(|| "-".into())));
            let cols = columns(&s.conditional);
            for (h, _) in &fd_cols {
                row.push(cols.iter().find(|(c, _)| c == h).map(|(_, v)| num(*v)).unwrap_or_else(|| "-".into()));
            }
            row
        };
        rows.push(quality_row("FD (classifier features)", &self.fd));
        if let Some(fid) = &self.fid {
            rows.push(quality_row(&format!("FID (Inception, {} items)", self.fid_samples.unwrap_or(0)), fid));
        }
        let _ = writeln!(out, "{}", table(&rows));

        if !per_entry {
            let mut rows = vec![vec!["Per subset S→m".to_string(), "coherence %".to_string(), "FD".to_string()]];
            if self.fid.is_some() {
                rows[0].push("FID".to_string());
            }
            for e in &self.conditional_coherence.entries {
                let given: Vec<&str> = e.given.iter().map(String::as_str).collect();
                let mut row = vec![arrow(e), pct(e.value)];
                row.push(self.fd.conditional.get(&given, &e.target).map(num).unwrap_or_else(|| "-".into()));
                if let Some(fid) = &self.fid {
                    row.push(fid.conditional.get(&given, &e.target).map(num).unwrap_or_else(|| "-".into()));
                }
                rows.push(row);
            }
            let _ = writeln!(out, "{}", table(&rows));
        }
        if let Some(d) = &self.latent {
            let _ = writeln!(
                out,
                "Latent model: stage-1 ceiling on {} test tuples, stage-2 fit of {} joint latent samples",
                d.test_tuples, d.samples
            );
            let mut rows = vec![vec!["Latent (standardised)".to_string()]];
            rows[0].extend(self.modalities.iter().cloned());
            rows[0].push("all".to_string());
            let per = |label: &str, f: &dyn Fn(&str) -> String, all: String| {
                let mut row = vec![label.to_string()];
                row.extend(self.modalities.iter().map(|m| f(m)));
                row.push(all);
                row
            };
            let get = |map: &BTreeMap<String, f64>, m: &str, fmt: fn(f64) -> String| {
                map.get(m).map(|v| fmt(*v)).unwrap_or_else(|| "-".into())
            };
            rows.push(per(
                "classifier % on reconstructions",
                &|m| get(&d.reconstruction_accuracy, m, pct),
                format!("agree {} (real {})", pct(d.reconstruction_agreement), pct(d.real_agreement)),
            ));
            if !d.probe_accuracy.is_empty() {
                let label = format!("class probe % ({} train tuples)", d.probe_train_tuples);
                rows.push(per(&label, &|m| get(&d.probe_accuracy, m, pct), String::new()));
            }
            if let Some(mean) = d.nearest_tuple_mean() {
                rows.push(per(
                    "nearest-tuple coherence % from m",
                    &|m| get(&d.nearest_tuple_coherence, m, pct),
                    format!("mean {}", pct(mean)),
                ));
            }
            rows.push(per("FD sampled vs encoded", &|m| get(&d.latent_fd, m, num), num(d.latent_fd_joint)));
            rows.push(per(
                "FD N(0, I) vs encoded",
                &|m| get(&d.standard_normal_fd, m, num),
                num(d.standard_normal_fd_joint),
            ));
            let moments = |map: &BTreeMap<String, latent::BlockMoments>, m: &str| {
                map.get(m).map(|b| format!("{:.2} ± {:.2}", b.mean, b.std)).unwrap_or_else(|| "-".into())
            };
            rows.push(per("encoded mean ± std", &|m| moments(&d.encoded_moments, m), String::new()));
            rows.push(per("sampled mean ± std", &|m| moments(&d.sampled_moments, m), String::new()));
            let _ = writeln!(out, "{}", table(&rows));
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        let _ = writeln!(out, "evaluated in {:.1}s", self.seconds);
        if let Some(p) = &self.provenance {
            let stages: Vec<String> =
                p.checkpoints.iter().map(|c| format!("{} {}/{}", c.stage, c.step, c.total)).collect();
            let evaluations =
                p.sampler.evaluations_per_sample.map(|n| format!(", {n} evaluations per sample")).unwrap_or_default();
            let _ = writeln!(
                out,
                "checkpoints {}; sampler {}{evaluations}; seed {}; classifiers {}; mmlatent {}, {}",
                stages.join(", "),
                p.sampler.short_name(),
                p.seed,
                p.classifiers.display(),
                p.version,
                p.date
            );
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The report as CSV rows `metric,given,target,value` (`given` joins names with `+`; for
    /// averages by subset size it is the size).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("metric,given,target,value\n");
        let mut line = |metric: &str, given: &str, target: &str, value: f64| {
            let _ = writeln!(out, "{metric},{given},{target},{}", round(value));
        };
        for (m, a) in &self.classifier_accuracy {
            line("classifier_accuracy", "", m, *a);
        }
        line("joint_coherence", "", "", self.joint_coherence);
        let subset_rows = |metric: &str, s: &SubsetScores, line: &mut dyn FnMut(&str, &str, &str, f64)| {
            for e in &s.entries {
                line(metric, &e.given.join("+"), &e.target, e.value);
            }
            for a in &s.by_size {
                line(&format!("{metric}_by_size"), &a.size.to_string(), "", a.value);
            }
        };
        subset_rows("conditional_coherence", &self.conditional_coherence, &mut line);
        for (prefix, scores) in [("fd", Some(&self.fd)), ("fid", self.fid.as_ref())] {
            if let Some(s) = scores {
                for (m, v) in &s.joint {
                    line(&format!("{prefix}_joint"), "", m, *v);
                }
                subset_rows(&format!("{prefix}_conditional"), &s.conditional, &mut line);
            }
        }
        if let Some(d) = &self.latent {
            for (m, v) in &d.reconstruction_accuracy {
                line("reconstruction_accuracy", "", m, *v);
            }
            line("reconstruction_agreement", "", "", d.reconstruction_agreement);
            line("real_agreement", "", "", d.real_agreement);
            for (m, v) in &d.probe_accuracy {
                line("latent_probe_accuracy", "", m, *v);
            }
            for (m, v) in &d.nearest_tuple_coherence {
                line("nearest_tuple_coherence", m, "", *v);
            }
            for (m, v) in &d.latent_fd {
                line("latent_fd", "", m, *v);
            }
            line("latent_fd", "", "all", d.latent_fd_joint);
            for (m, v) in &d.standard_normal_fd {
                line("standard_normal_latent_fd", "", m, *v);
            }
            line("standard_normal_latent_fd", "", "all", d.standard_normal_fd_joint);
        }
        out
    }

    /// Writes `report.json`, `report.csv` and `report.txt` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        mmlatent_train::checkpoint::save_json(self, &dir.join("report.json"))?;
        for (name, text) in [("report.csv", self.to_csv()), ("report.txt", self.to_table())] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(entries: &[(&[&str], &str, f64)]) -> SubsetScores {
        SubsetScores::new(
            entries
                .iter()
                .map(|(g, t, v)| SubsetScore {
                    given: g.iter().map(|s| s.to_string()).collect(),
                    target: t.to_string(),
                    value: *v,
                })
                .collect(),
        )
    }

    #[test]
    fn many_modalities_are_summarised_by_subset_size() {
        let names = ["a", "b", "c", "d"];
        let mut entries: Vec<(&[&str], &str, f64)> = vec![];
        let singles: Vec<[&str; 1]> = names.iter().map(|n| [*n]).collect();
        for (i, s) in singles.iter().enumerate() {
            for t in names.iter().filter(|t| **t != names[i]) {
                entries.push((&s[..], t, 0.5));
            }
        }
        entries.push((&["a", "b", "c"], "d", 0.9));
        let coherence = scores(&entries);
        let report = Report {
            model: "m".into(),
            dataset: "d".into(),
            modalities: names.iter().map(|s| s.to_string()).collect(),
            num_classes: 10,
            joint_samples: 10,
            conditional_samples: 10,
            classifier_accuracy: names.iter().map(|n| (n.to_string(), 0.99)).collect(),
            joint_coherence: 0.25,
            conditional_coherence: coherence.clone(),
            fd: FrechetScores { joint: BTreeMap::new(), conditional: coherence },
            fid: None,
            fid_samples: None,
            latent: None,
            warnings: vec![],
            seconds: 1.0,
            provenance: None,
        };
        let table = report.to_table();
        // Averages by |S| in the main table, every S→m below it.
        assert!(table.contains("given 1") && table.contains("given 3"), "{table}");
        assert!(table.contains("a,b,c→d") && table.contains("90.00"), "{table}");
        assert!(table.contains("50.00") && table.contains("25.00"), "{table}");
        assert!(report.to_csv().contains("conditional_coherence_by_size,3,,0.9"));
        let report = Report { joint_coherence: 0.1 - 0.005, ..report };
        assert!(report.to_csv().contains("\njoint_coherence,,,0.095\n"), "{}", report.to_csv());
    }

    #[test]
    fn numbers_are_rounded_to_five_significant_digits() {
        assert_eq!(round(0.09500000000000001), "0.095");
        assert_eq!(round(1234.5678), "1234.6");
        assert_eq!(round(123456.7), "123457");
        assert_eq!(round(-0.000123456), "-0.00012346");
        assert_eq!(round(0.0), "0");
        assert_eq!(round(2.0), "2");
    }
}
