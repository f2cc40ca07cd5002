//! `mmlatent bench ...`: benchmarks against PyTorch references.
//!
//! Each benchmark times its workloads in Rust, runs the PyTorch script of the same
//! architectures (`scripts/bench_*.py`, with the project's virtualenv Python) with the same
//! threads and batch, and prints both side by side with the ratio mmlatent / PyTorch.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// MLD: autoencoder and score-network training steps, and a sampling run.
    Mld(BenchArgs),
    /// Multimodal VAEs: MoPoE and MMVAE+ training steps and losses against MultiVae.
    Vae(BenchArgs),
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// libtorch (and PyTorch) CPU threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Batch size of every workload.
    #[arg(long, default_value_t = 256)]
    pub batch: i64,
    /// Timed repetitions per workload (the median is reported).
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Python interpreter with torch (default: .venv/bin/python of the repository).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch side.
    #[arg(long)]
    pub no_pytorch: bool,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Mld(args) => {
            tch::set_num_threads(args.threads as i32);
            let opts = mmlatent_mld::bench::BenchOptions { batch: args.batch, warmup: 5, iters: args.iters };
            eprintln!("timing mmlatent (threads {}, batch {}) …", args.threads, args.batch);
            let ours: Vec<(String, f64)> =
                mmlatent_mld::bench::run(&opts)?.into_iter().map(|t| (t.name.to_string(), t.ms)).collect();
            compare(&ours, "bench_mld.py", &args)
        }
        BenchCommand::Vae(args) => {
            tch::set_num_threads(args.threads as i32);
            let data_dir = repo_root().join("target/bench_vae");
            let opts = mmlatent_vae::bench::BenchOptions { batch: args.batch, warmup: 5, iters: args.iters, data_dir };
            eprintln!("timing mmlatent (threads {}, batch {}) …", args.threads, args.batch);
            let default = mmlatent_core::config::DataConfig {
                path: PathBuf::from("default"),
                format: "default".into(),
                max_train: None,
                max_test: None,
            };
            let dataset = mmlatent_data::open(&default).context("bench: cannot open the bundled default dataset")?;
            compare(&mmlatent_vae::bench::run(&opts, &dataset)?, "bench_vae.py", &args)
        }
    }
}

/// The repository root: the working directory when it holds `scripts/`, else the source tree.
fn repo_root() -> PathBuf {
    if Path::new("scripts").is_dir() {
        PathBuf::from(".")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }
}

/// Runs `scripts/<script>` (which prints a JSON object of median milliseconds by workload) and
/// prints it beside `ours`.
fn compare(ours: &[(String, f64)], script: &str, args: &BenchArgs) -> Result<()> {
    let reference = if args.no_pytorch {
        serde_json::Map::new()
    } else {
        let root = repo_root();
        let python = args.python.clone().unwrap_or_else(|| root.join(".venv/bin/python"));
        let path = root.join("scripts").join(script);
        eprintln!("timing PyTorch ({} {}) …", python.display(), path.display());
        let out = Command::new(&python)
            .arg(&path)
            .args(["--threads", &args.threads.to_string(), "--batch", &args.batch.to_string()])
            .args(["--iters", &args.iters.to_string()])
            .output()
            .with_context(|| format!("cannot run {} (pass --python, or --no-pytorch)", python.display()))?;
        if !out.status.success() {
            bail!("{} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        serde_json::from_str(line).with_context(|| format!("{} printed no JSON object: {text}", path.display()))?
    };
    println!("{:<20} {:>14} {:>14} {:>8}", "workload", "mmlatent ms", "PyTorch ms", "ratio");
    for (name, ms) in ours {
        match reference.get(name).and_then(|v| v.as_f64()) {
            Some(py) => println!("{name:<20} {ms:>14.2} {py:>14.2} {:>8.2}", ms / py),
            None => println!("{name:<20} {ms:>14.2} {:>14} {:>8}", "-", "-"),
        }
    }
    Ok(())
}
