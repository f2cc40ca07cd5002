//! `mmlatent fid DIR_A DIR_B --weights FILE`: Fréchet Inception Distance between two folders of
//! images, as pytorch-fid computes it (see `mmlatent_eval::inception`).

use anyhow::Result;
use mmlatent_eval::fid::fid_of_folders;
use mmlatent_eval::inception::InceptionV3;
use mmlatent_runner::device::parse_device;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// First folder of images (PNG, JPEG, …).
    pub dir_a: PathBuf,
    /// Second folder of images.
    pub dir_b: PathBuf,
    /// Inception weights: a safetensors file (convert pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth once with scripts/convert_inception.py).
    #[arg(long)]
    pub weights: PathBuf,
    /// At most this many images of each folder (its first ones in file-name order); default: all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub max_images: Option<u64>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// cpu (default), cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: Args) -> Result<()> {
    let device = parse_device(&args.device)?;
    let model = InceptionV3::load(&args.weights, device)?;
    let limit = args.max_images.map(|n| n as usize);
    let fid = fid_of_folders(&model, (&args.dir_a, &args.dir_b), limit, args.batch, true)?;
    println!("FID: {fid}");
    Ok(())
}
