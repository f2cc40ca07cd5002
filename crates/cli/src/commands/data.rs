//! `mmlatent data build|inspect`: build datasets in the field's formats and summarise them.

use anyhow::{Context, Result};
use mmlatent_data::{default, inspect, mnist_svhn, polymnist, Format};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Print a dataset's format, modalities, shapes and tuple and class counts.
    Inspect {
        /// A dataset folder, or `default` for the bundled dataset.
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The format (`auto` detects it from the folder).
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Build a dataset folder.
    #[command(subcommand)]
    Build(BuildCommand),
}

#[derive(clap::Subcommand)]
pub enum BuildCommand {
    /// Pair MNIST and SVHN digits by label (MoPoE/MLD recipe), stored as index files.
    MnistSvhn {
        /// MNIST IDX folder (train-/t10k-images-idx3-ubyte[.gz] and labels).
        #[arg(long)]
        mnist: PathBuf,
        /// SVHN folder (train_32x32.mat, test_32x32.mat).
        #[arg(long)]
        svhn: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Random permutations of each side per class (20 in MoPoE/MLD, 30 in MMVAE).
        #[arg(long, default_value_t = 20)]
        dm: usize,
        /// At most this many items per class on each side.
        #[arg(long, default_value_t = mnist_svhn::DEFAULT_MAX_PER_CLASS)]
        max_per_class: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Make a PolyMNIST-format dataset from an IDX source and one background image per modality.
    Polymnist {
        /// IDX folder with train and test images and labels (MNIST, Fashion-MNIST, ...).
        #[arg(long)]
        source: PathBuf,
        /// Background images, one per modality.
        #[arg(long, num_args = 1.., required = true)]
        backgrounds: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Training tuples (default: as many as the source's training items).
        #[arg(long)]
        train: Option<usize>,
        /// Test tuples (default: as many as the source's test items).
        #[arg(long)]
        test: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write the bundled default dataset in PolyMNIST format.
    Default {
        #[arg(long)]
        out: PathBuf,
        /// Train on Fashion-MNIST's 60k training set from /usr/share/datasets/fashion-mnist.
        #[arg(long)]
        full: bool,
    },
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Inspect { dir, json, format } => {
            let format = match format.as_str() {
                "auto" => mmlatent_data::detect(&dir)?,
                name => Format::parse(name)?,
            };
            let dataset = mmlatent_data::load(format, &dir)
                .with_context(|| format!("cannot load the {} dataset at {}", format.name(), dir.display()))?;
            dataset.check()?;
            let summary = inspect::summarize(&dataset, format, &dir.display().to_string());
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", inspect::render(&summary));
            }
            Ok(())
        }
        DataCommand::Build(build) => run_build(build),
    }
}

fn run_build(build: BuildCommand) -> Result<()> {
    let start = Instant::now();
    match build {
        BuildCommand::MnistSvhn { mnist, svhn, out, dm, max_per_class, seed } => {
            let m = mnist_svhn::build(&mnist, &svhn, &out, dm, max_per_class, seed)?;
            println!(
                "wrote {} MNIST-SVHN pairs for training and {} for test (dm = {dm}, seed {seed}) to {} in {:.1} s",
                m.train_pairs,
                m.test_pairs,
                out.display(),
                start.elapsed().as_secs_f64()
            );
        }
        BuildCommand::Polymnist { source, backgrounds, out, train, test, seed } => {
            let s = polymnist::build(&source, &backgrounds, &out, train, test, seed)?;
            println!(
                "wrote a PolyMNIST dataset of {} modalities ({} train and {} test tuples, {} PNG files) to {} in {:.1} s",
                s.modalities,
                s.train,
                s.test,
                s.files,
                out.display(),
                start.elapsed().as_secs_f64()
            );
        }
        BuildCommand::Default { out, full } => {
            let dataset = default::dataset(full)?;
            let files = polymnist::write(&dataset, &out)?;
            println!(
                "wrote the {} dataset ({} train and {} test tuples of {} modalities, {files} PNG files) to {} in {:.1} s",
                dataset.name,
                dataset.train.len(),
                dataset.test.len(),
                dataset.num_modalities(),
                out.display(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
