//! `mmlatent sample RUN`: joint samples, or samples of the other modalities given files or
//! given modalities of the run's own test (or train) tuples; written as one PNG grid
//! (`--out x.png`) or as one file per sample in the dataset's own layout (`--out DIR`, see
//! `mmlatent_data::export`).

use super::common::{check_count, check_output_file, open_run};
use anyhow::{bail, Context, Result};
use mmlatent_core::precision::Precision;
use mmlatent_data::export::write_samples;
use mmlatent_present::grid::save_image_grid;
use mmlatent_runner::sampler::SamplerArgs;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of a trained model.
    pub run: PathBuf,
    /// Draw N joint samples (all modalities at once).
    #[arg(long, conflicts_with = "given", allow_negative_numbers = true)]
    pub joint: Option<i64>,
    /// Condition on files, m0=a.png[,m3=b.png…] (PNG images of the modality's size), or on
    /// modalities of the run's own tuples, m0[,m2…] (with --given-split).
    #[arg(long)]
    pub given: Option<String>,
    /// With --given m0,m2: the split whose tuples are conditioned on (train or test).
    #[arg(long, default_value = "test")]
    pub given_split: String,
    /// With --given m0,m2: how many tuples of the split (the first ones).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pub limit: i64,
    /// With --given m0=FILE: how many samples per given input.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub per_input: i64,
    /// A .png file: one grid (rows of --nrow tuples, one row per image modality); anything else:
    /// a new folder with one file per sample in the dataset's layout (m{k}/{i}.{label}.png;
    /// joint samples have no label and carry -1), ready for `mmlatent fid` and pytorch-fid.
    #[arg(long)]
    pub out: PathBuf,
    /// Tuples per grid row.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub nrow: i64,
    /// Seed of this call's draws (default: the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[arg(long)]
    pub device: Option<String>,
    /// fp32, or bf16: the model's networks in bf16 mixed precision (as `train.precision`), about
    /// twice as fast for MLD on CPUs with bf16 instructions; samples differ from fp32 ones.
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
}

/// The most samples one call draws.
pub const MAX_SAMPLES: i64 = 4096;

/// What to condition on.
enum Given {
    Joint(i64),
    /// (modality name, file) pairs.
    Files(Vec<(String, PathBuf)>),
    /// Modality names of the split's tuples.
    Split(Vec<String>),
}

fn parse_given(args: &Args) -> Result<Given> {
    match (&args.joint, &args.given) {
        (Some(n), None) => {
            check_count("--joint", *n, MAX_SAMPLES)?;
            Ok(Given::Joint(*n))
        }
        (None, Some(given)) => {
            let parts: Vec<&str> = given.split(',').map(str::trim).collect();
            if parts.iter().any(|p| p.is_empty()) {
                bail!("--given {given}: an empty entry");
            }
            if parts.iter().all(|p| p.contains('=')) {
                check_count("--per-input", args.per_input, MAX_SAMPLES)?;
                let files = parts
                    .iter()
                    .map(|p| {
                        let (name, path) = p.split_once('=').expect("checked");
                        (name.trim().to_string(), PathBuf::from(path.trim()))
                    })
                    .collect();
                Ok(Given::Files(files))
            } else if parts.iter().all(|p| !p.contains('=')) {
                check_count("--limit", args.limit, MAX_SAMPLES)?;
                if !["train", "test"].contains(&args.given_split.as_str()) {
                    bail!("--given-split {}: give train or test", args.given_split);
                }
                Ok(Given::Split(parts.iter().map(|p| p.to_string()).collect()))
            } else {
                bail!("--given {given}: give either files (m0=a.png,m1=b.png) or modality names (m0,m1), not both")
            }
        }
        _ => bail!("say what to sample: --joint N, --given m0=PATH or --given m0,m2 [--given-split test]"),
    }
}

/// True when `out` names a PNG grid rather than a folder of samples.
fn is_grid(out: &Path) -> bool {
    out.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

pub fn run(args: Args) -> Result<()> {
    // Arguments first: nothing is loaded for a call that cannot succeed.
    let given = parse_given(&args)?;
    check_count("--nrow", args.nrow, MAX_SAMPLES)?;
    if is_grid(&args.out) {
        check_output_file("--out", &args.out, "png")?;
    } else if args.out.is_file() {
        bail!("--out {}: is a file; name a new folder for the samples, or a .png file for a grid", args.out.display());
    } else if args.out.is_dir() && std::fs::read_dir(&args.out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        bail!("--out {}: the folder already holds files; name a new or empty folder", args.out.display());
    }
    let opened = open_run(&args.run, args.device.as_deref(), &args.sampler)?;
    args.precision.check_supported(opened.device).context("--precision")?;
    let model = &opened.model;
    let dataset = &opened.dataset;
    let specs = model.modalities().to_vec();
    let _guard = tch::no_grad_guard();
    let none = || (0..specs.len()).map(|_| None).collect::<Vec<Option<Tensor>>>();
    let mut labels: Option<Vec<i64>> = None;
    let mut inputs = none();
    let n = match &given {
        Given::Joint(n) => *n,
        Given::Files(files) => {
            for (name, path) in files {
                let index = dataset.modality_index(name)?;
                if inputs[index].is_some() {
                    bail!("--given names modality {name} twice");
                }
                let item = mmlatent_data::image_file::read_item(path, &specs[index])?;
                inputs[index] = Some(item.unsqueeze(0).repeat_interleave_self_int(args.per_input, 0, None));
            }
            args.per_input
        }
        Given::Split(names) => {
            let split = if args.given_split == "train" { &dataset.train } else { &dataset.test };
            let batch = split.head(&specs, args.limit as usize, Device::Cpu);
            for name in names {
                let index = dataset.modality_index(name)?;
                if inputs[index].is_some() {
                    bail!("--given names modality {name} twice");
                }
                inputs[index] = Some(batch.items[index].shallow_clone());
            }
            labels = Some(mmlatent_core::host::to_vec::<i64>(&batch.labels)?);
            batch.labels.size()[0]
        }
    };
    if !matches!(given, Given::Joint(_)) && inputs.iter().all(Option::is_some) {
        bail!("--given gives every modality: leave at least one out to generate it");
    }
    tch::manual_seed(args.seed.unwrap_or(opened.experiment.seed) as i64);
    let outputs = args.precision.run(|| model.generate(&inputs, n))?;
    if is_grid(&args.out) {
        let image: Vec<Tensor> =
            outputs.iter().zip(&specs).filter(|(_, s)| s.is_image()).map(|(t, _)| t.to_kind(Kind::Float)).collect();
        if image.is_empty() {
            bail!("no image modality to draw: name a folder as --out to write the samples as files");
        }
        let mut rows = vec![];
        for start in (0..n).step_by(args.nrow as usize) {
            let len = args.nrow.min(n - start);
            rows.extend(image.iter().map(|t| t.narrow(0, start, len)));
        }
        save_image_grid(&args.out, &rows)?;
        eprintln!(
            "wrote {} ({} samples, {} per row, one row per image modality; sampler {})",
            args.out.display(),
            n,
            args.nrow,
            opened.sampler.short_name()
        );
    } else {
        let written = write_samples(&args.out, &specs, &dataset.vocabularies, &outputs, labels.as_deref())
            .with_context(|| format!("--out {}", args.out.display()))?;
        eprintln!(
            "wrote {} samples ({} files) to {}/ (m{{k}}/{{i}}.{{label}}.png, labels.txt; sampler {})",
            written.samples,
            written.files,
            args.out.display().to_string().trim_end_matches('/'),
            opened.sampler.short_name()
        );
    }
    Ok(())
}
