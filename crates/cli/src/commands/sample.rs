//! `mmlatent sample RUN`: joint samples, or samples of the other modalities given files.

use super::common::{check_count, check_output_file, open_run};
use anyhow::{bail, Context, Result};
use mmlatent_core::grid::save_image_grid;
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of a trained model.
    pub run: PathBuf,
    /// Draw N joint samples (all modalities at once).
    #[arg(long, conflicts_with = "given")]
    pub joint: Option<i64>,
    /// Condition on files: m0=a.png[,m3=b.png…] (PNG images of the modality's size).
    #[arg(long)]
    pub given: Option<String>,
    /// How many samples per given input.
    #[arg(long, default_value_t = 8)]
    pub per_input: i64,
    /// Output PNG grid.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub device: Option<String>,
}

/// The most samples one call draws into one grid.
pub const MAX_SAMPLES: i64 = 4096;

pub fn run(args: Args) -> Result<()> {
    // Arguments first: nothing is loaded for a call that cannot succeed.
    check_output_file("--out", &args.out, "png")?;
    if let Some(n) = args.joint {
        check_count("--joint", n, MAX_SAMPLES)?;
    }
    if args.given.is_some() {
        check_count("--per-input", args.per_input, MAX_SAMPLES)?;
    }
    let opened = open_run(&args.run, args.device.as_deref())?;
    let model = &opened.model;
    let specs = model.modalities().to_vec();
    let _guard = tch::no_grad_guard();
    let outputs = match (&args.joint, &args.given) {
        (Some(n), None) => model.generate(&(0..specs.len()).map(|_| None).collect::<Vec<_>>(), *n)?,
        (None, Some(given)) => {
            let mut inputs: Vec<Option<Tensor>> = (0..specs.len()).map(|_| None).collect();
            for part in given.split(',') {
                let (name, path) = part.split_once('=').with_context(|| format!("`{part}` is not name=PATH"))?;
                let index = opened.dataset.modality_index(name.trim())?;
                if inputs[index].is_some() {
                    bail!("--given names modality {} twice", name.trim());
                }
                let item = mmlatent_data::image_file::read_item(&PathBuf::from(path.trim()), &specs[index])?;
                inputs[index] = Some(item.unsqueeze(0).repeat_interleave_self_int(args.per_input, 0, None));
            }
            if inputs.iter().all(Option::is_some) {
                bail!("--given gives every modality: leave at least one out to generate it");
            }
            model.generate(&inputs, args.per_input)?
        }
        _ => bail!("say what to sample: --joint N or --given m0=PATH"),
    };
    let rows: Vec<Tensor> =
        outputs.iter().zip(&specs).filter(|(_, s)| s.is_image()).map(|(t, _)| t.to_kind(Kind::Float)).collect();
    if rows.is_empty() {
        bail!("no image modality to draw");
    }
    save_image_grid(&args.out, &rows)?;
    eprintln!("wrote {} (one row per image modality)", args.out.display());
    Ok(())
}
