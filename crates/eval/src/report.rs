//! The evaluation report of a trained model: classifier accuracies, joint and conditional
//! coherence, Fréchet distances per modality for joint and conditional generation (in the
//! classifiers' feature space always, Inception FID for image modalities when weights are
//! given), as a text table like the seeds' tables, JSON, CSV, and PNG sample grids.
//!
//! Every number comes from one pass of generation: `joint_samples` joint tuples, and for every
//! non-empty proper subset `S` the first `conditional_samples` test tuples with `S` given. The
//! reference set of every distance is the real test items of the same tuples.

use crate::classifier::Classifiers;
use crate::coherence::{
    check_model, generate_conditional, generate_joint, proper_subsets, ConditionalTally, JointTally, SubsetScore,
    SubsetScores,
};
use crate::fid::{frechet_distance, Stats};
use crate::inception::InceptionV3;
use crate::latent::{self, LatentDiagnostics};
use crate::provenance::Provenance;
use anyhow::{ensure, Context, Result};
use mmlatent_core::grid::save_image_grid;
use mmlatent_core::progress::Progress;
use mmlatent_core::{ModalityKind, ModalitySpec, MultimodalDataset, MultimodalModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// What to measure and where to draw.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Joint samples for joint coherence and joint FD/FID.
    pub joint_samples: i64,
    /// Test tuples used per given subset (conditional coherence, conditional FD/FID, and the
    /// real reference set of every distance).
    pub conditional_samples: usize,
    /// Items per `generate` call.
    pub batch_size: i64,
    /// Inception-v3 weights (safetensors; see [`crate::inception`]); `None`: no FID.
    pub fid_weights: Option<PathBuf>,
    /// At most this many items per set enter an Inception FID (Inception is slow on a CPU).
    pub fid_samples: usize,
    /// Images per Inception forward pass.
    pub fid_batch: i64,
    /// Folder for the PNG sample grids (and text samples); `None`: no grids.
    pub grid_dir: Option<PathBuf>,
    /// Columns of the sample grids.
    pub grid_items: i64,
    /// Seed of the generation (the same seed gives the same report).
    pub seed: u64,
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            joint_samples: 1000,
            conditional_samples: 1000,
            batch_size: 250,
            fid_weights: None,
            fid_samples: 500,
            fid_batch: 50,
            grid_dir: None,
            grid_items: 8,
            seed: 0,
            progress: true,
        }
    }
}

/// Fréchet distances of one feature space: per modality for joint samples, per `(S → m)`
/// (with averages by `|S|`) for conditional ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FrechetScores {
    /// Modality name → distance between its joint samples and the real test items.
    pub joint: BTreeMap<String, f64>,
    pub conditional: SubsetScores,
}

/// The evaluation of one model on one dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub model: String,
    pub dataset: String,
    pub modalities: Vec<String>,
    pub num_classes: i64,
    pub joint_samples: i64,
    pub conditional_samples: usize,
    /// Modality name → test accuracy of its classifier.
    pub classifier_accuracy: BTreeMap<String, f64>,
    pub joint_coherence: f64,
    pub conditional_coherence: SubsetScores,
    /// Fréchet distance in the penultimate features of the tool's classifiers (every modality).
    pub fd: FrechetScores,
    /// Inception FID (image modalities), when weights were given.
    pub fid: Option<FrechetScores>,
    /// Items per set that entered the FID.
    pub fid_samples: Option<usize>,
    /// Stage-1 ceiling and stage-2 fit, for two-stage latent models (MLD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent: Option<LatentDiagnostics>,
    /// Problems the numbers point to (e.g. generation at chance while reconstructions are not).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// Where the numbers come from (set by the caller that loaded the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// Accumulates the features of one set of items per modality: classifier features always,
/// Inception features (images, up to a limit) when a network is given.
struct Features<'a> {
    classifiers: &'a Classifiers,
    inception: Option<&'a InceptionV3>,
    fid_limit: i64,
    fid_batch: i64,
    classifier: Vec<Vec<Tensor>>,
    inception_parts: Vec<Vec<Tensor>>,
    inception_count: Vec<i64>,
}

impl<'a> Features<'a> {
    fn new(classifiers: &'a Classifiers, inception: Option<&'a InceptionV3>, options: &EvalOptions) -> Self {
        let m = classifiers.modalities().len();
        Self {
            classifiers,
            inception,
            fid_limit: options.fid_samples as i64,
            fid_batch: options.fid_batch,
            classifier: (0..m).map(|_| vec![]).collect(),
            inception_parts: (0..m).map(|_| vec![]).collect(),
            inception_count: vec![0; m],
        }
    }

    fn add(&mut self, m: usize, x: &Tensor) -> Result<()> {
        self.classifier[m].push(self.classifiers.features(m, x)?.to_device(Device::Cpu));
        if let Some(inception) = self.inception {
            let spec = &self.classifiers.modalities()[m];
            let room = (self.fid_limit - self.inception_count[m]).min(x.size()[0]);
            if spec.is_image() && room > 0 {
                self.inception_parts[m].push(inception.features(&x.narrow(0, 0, room), self.fid_batch)?);
                self.inception_count[m] += room;
            }
        }
        Ok(())
    }

    fn stats(parts: &[Tensor], what: &str) -> Result<Option<Stats>> {
        if parts.is_empty() {
            return Ok(None);
        }
        Stats::from_features(&Tensor::cat(parts, 0)).with_context(|| what.to_string()).map(Some)
    }

    /// (classifier-feature stats, Inception stats) of modality `m`.
    fn stats_of(&self, m: usize) -> Result<(Option<Stats>, Option<Stats>)> {
        let name = &self.classifiers.modalities()[m].name;
        Ok((
            Self::stats(&self.classifier[m], &format!("classifier features of {name}"))?,
            Self::stats(&self.inception_parts[m], &format!("Inception features of {name}"))?,
        ))
    }
}

/// Distances of a generated set's features to the reference of the same modality.
fn distances(
    generated: &(Option<Stats>, Option<Stats>),
    reference: &(Option<Stats>, Option<Stats>),
) -> Result<(Option<f64>, Option<f64>)> {
    let d = |a: &Option<Stats>, b: &Option<Stats>| match (a, b) {
        (Some(a), Some(b)) => frechet_distance(a, b).map(Some),
        _ => Ok(None),
    };
    Ok((d(&generated.0, &reference.0)?, d(&generated.1, &reference.1)?))
}

/// Evaluates `model` on `dataset` with `classifiers` (see the module documentation).
pub fn evaluate(
    model: &dyn MultimodalModel,
    dataset: &MultimodalDataset,
    classifiers: &Classifiers,
    options: &EvalOptions,
) -> Result<Report> {
    let start = std::time::Instant::now();
    check_model(model, classifiers)?;
    classifiers.check_fits(dataset).context("the classifiers do not fit the dataset")?;
    ensure!(options.joint_samples >= 2, "need at least 2 joint samples, got {}", options.joint_samples);
    let n_test = options.conditional_samples.min(dataset.test.len());
    ensure!(n_test >= 2, "need at least 2 test tuples, the dataset {} has {}", dataset.name, dataset.test.len());
    let inception = match &options.fid_weights {
        Some(path) => Some(InceptionV3::load(path, classifiers.device())?),
        None => None,
    };
    let specs = dataset.modalities.clone();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let subsets = proper_subsets(specs.len());
    let batch = options.batch_size.max(1);
    tch::manual_seed(options.seed as i64);

    let per_subset = (n_test as i64 + batch - 1) / batch;
    let joint_batches = (options.joint_samples + batch - 1) / batch;
    let mut progress = options
        .progress
        .then(|| Progress::new("evaluation", (joint_batches + per_subset * subsets.len() as i64 + 2) as u64));
    let mut step = |message: &str| {
        if let Some(p) = &mut progress {
            p.set_message(message.to_string());
            p.inc(1);
        }
    };

    // The real reference: the test tuples that conditional generation starts from.
    let real = dataset.test.head(&specs, n_test, classifiers.device());
    let mut reference = Features::new(classifiers, inception.as_ref(), options);
    for (m, x) in real.items.iter().enumerate() {
        reference.add(m, x)?;
    }
    let reference: Vec<(Option<Stats>, Option<Stats>)> =
        (0..specs.len()).map(|m| reference.stats_of(m)).collect::<Result<_>>()?;
    step("reference features");

    // Joint generation.
    let mut tally = JointTally::default();
    let mut joint_features = Features::new(classifiers, inception.as_ref(), options);
    let mut joint_grid: Option<Vec<Tensor>> = None;
    generate_joint(model, options.joint_samples, batch, |outputs| {
        tally.add(classifiers, outputs)?;
        for (m, x) in outputs.iter().enumerate() {
            joint_features.add(m, x)?;
        }
        if joint_grid.is_none() {
            joint_grid = Some(outputs.iter().map(|t| t.narrow(0, 0, options.grid_items.min(t.size()[0]))).collect());
        }
        step("joint");
        Ok(())
    })?;
    let mut fd = FrechetScores::default();
    let mut fid = inception.as_ref().map(|_| FrechetScores::default());
    for m in 0..specs.len() {
        let (d, i) = distances(&joint_features.stats_of(m)?, &reference[m])?;
        if let Some(d) = d {
            fd.joint.insert(names[m].clone(), d);
        }
        if let (Some(i), Some(f)) = (i, fid.as_mut()) {
            f.joint.insert(names[m].clone(), i);
        }
    }
    drop(joint_features);
    if let (Some(dir), Some(grid)) = (&options.grid_dir, &joint_grid) {
        save_samples(dir, "joint", &specs, &dataset.vocabularies, &[], grid, None)?;
    }

    // Conditional generation, subset by subset.
    let mut coherence_entries = vec![];
    let (mut fd_entries, mut fid_entries) = (vec![], vec![]);
    for subset in &subsets {
        let label = subset.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>().join("+");
        let mut tally = ConditionalTally::new(subset, specs.len());
        let mut features = Features::new(classifiers, inception.as_ref(), options);
        let mut grid: Option<(Vec<Tensor>, Vec<Tensor>)> = None;
        generate_conditional(model, &dataset.test, subset, n_test, batch, |outputs, real| {
            tally.add(classifiers, outputs, real)?;
            for (m, x) in outputs.iter().enumerate().filter(|(m, _)| !subset.contains(m)) {
                features.add(m, x)?;
            }
            if grid.is_none() {
                let k = options.grid_items.min(real.labels.size()[0]);
                grid = Some((
                    real.items.iter().map(|t| t.narrow(0, 0, k)).collect(),
                    outputs.iter().map(|t| t.narrow(0, 0, k)).collect(),
                ));
            }
            step(&format!("given {label}"));
            Ok(())
        })?;
        coherence_entries.extend(tally.scores(&specs));
        let given: Vec<String> = subset.iter().map(|&i| names[i].clone()).collect();
        for m in (0..specs.len()).filter(|m| !subset.contains(m)) {
            let (d, i) = distances(&features.stats_of(m)?, &reference[m])?;
            let entry = |value| SubsetScore { given: given.clone(), target: names[m].clone(), value };
            if let Some(d) = d {
                fd_entries.push(entry(d));
            }
            if let Some(i) = i {
                fid_entries.push(entry(i));
            }
        }
        if let (Some(dir), Some((inputs, outputs))) = (&options.grid_dir, &grid) {
            save_samples(dir, &format!("given_{label}"), &specs, &dataset.vocabularies, subset, outputs, Some(inputs))?;
        }
    }
    fd.conditional = SubsetScores::new(fd_entries);
    if let Some(f) = fid.as_mut() {
        f.conditional = SubsetScores::new(fid_entries);
    }
    let conditional_coherence = SubsetScores::new(coherence_entries);
    let latent = match model.latent_view() {
        Some(view) => Some(latent::diagnose(view, classifiers, &names, &real, options.joint_samples)?),
        None => None,
    };
    step("latent diagnostics");
    let warnings = latent
        .as_ref()
        .map(|d| latent::warnings(d, tally.value(), conditional_coherence.average(1), dataset.num_classes))
        .unwrap_or_default();
    if let Some(p) = progress {
        p.finish();
    }

    Ok(Report {
        model: model.name().to_string(),
        dataset: dataset.name.clone(),
        modalities: names.clone(),
        num_classes: dataset.num_classes,
        joint_samples: options.joint_samples,
        conditional_samples: n_test,
        classifier_accuracy: names.iter().cloned().zip(classifiers.test_accuracy().iter().copied()).collect(),
        joint_coherence: tally.value(),
        conditional_coherence,
        fd,
        fid_samples: inception.as_ref().map(|_| options.fid_samples.min(n_test)),
        fid,
        latent,
        warnings,
        seconds: start.elapsed().as_secs_f64(),
        provenance: None,
    })
}

/// Writes `<dir>/<stem>.png` — for conditional samples, the given inputs (image modalities of
/// `subset`) as the first rows, then the generated image modalities — and `<dir>/<stem>.txt`
/// with generated text decoded through the dataset's vocabularies.
fn save_samples(
    dir: &Path,
    stem: &str,
    specs: &[ModalitySpec],
    vocabularies: &[Option<Vec<String>>],
    subset: &[usize],
    outputs: &[Tensor],
    inputs: Option<&Vec<Tensor>>,
) -> Result<()> {
    let mut rows = vec![];
    if let Some(inputs) = inputs {
        rows.extend(subset.iter().filter(|&&m| specs[m].is_image()).map(|&m| inputs[m].to_kind(Kind::Float)));
    }
    rows.extend(
        (0..specs.len())
            .filter(|m| !subset.contains(m) && specs[*m].is_image())
            .map(|m| outputs[m].to_kind(Kind::Float)),
    );
    if !rows.is_empty() {
        save_image_grid(&dir.join(format!("{stem}.png")), &rows)?;
    }
    let mut text = String::new();
    for (m, spec) in specs.iter().enumerate() {
        if let (ModalityKind::Text { .. }, Some(vocab)) = (&spec.kind, vocabularies.get(m).and_then(Option::as_ref)) {
            let (source, role) = match inputs {
                Some(inputs) if subset.contains(&m) => (&inputs[m], "given"),
                _ => (&outputs[m], "generated"),
            };
            for line in decode_text(source, vocab) {
                let _ = writeln!(text, "{} ({role}): {line}", spec.name);
            }
        }
    }
    if !text.is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{stem}.txt"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Token ids `[N, L]` → sentences, dropping `<pad>`/`<bos>` and stopping at `<eos>`.
pub fn decode_text(ids: &Tensor, vocabulary: &[String]) -> Vec<String> {
    let ids = ids.to_device(Device::Cpu).to_kind(Kind::Int64);
    let n = ids.size()[0];
    (0..n)
        .map(|i| {
            let row: Vec<i64> = Vec::try_from(ids.get(i)).unwrap_or_default();
            let mut words = vec![];
            for id in row {
                let word = vocabulary.get(id as usize).map(String::as_str).unwrap_or("<unk>");
                match word {
                    "<eos>" => break,
                    "<pad>" | "<bos>" => {}
                    w => words.push(w),
                }
            }
            words.join(" ")
        })
        .collect()
}

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
        mmlatent_core::checkpoint::save_json(self, &dir.join("report.json"))?;
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

    #[test]
    fn text_is_decoded_up_to_eos() {
        let vocab: Vec<String> =
            ["<pad>", "<bos>", "<eos>", "<unk>", "a", "bird"].iter().map(|s| s.to_string()).collect();
        let ids = Tensor::from_slice(&[1i64, 4, 5, 2, 5, 0, 4, 0, 5, 9]).view([2, 5]);
        assert_eq!(decode_text(&ids, &vocab), vec!["a bird".to_string(), "a bird <unk>".to_string()]);
    }
}
