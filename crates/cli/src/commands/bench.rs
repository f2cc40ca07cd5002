//! `mmlatent bench ...`: benchmarks against PyTorch references (the workloads and their
//! measurement are `mmlatent-bench`'s).
//!
//! Each benchmark times its workloads in Rust, then runs the PyTorch script of the same
//! architectures (`scripts/bench_*.py`, with the project's virtualenv Python) with the same
//! threads, batch and repetitions on the same training tuples (written once to
//! `target/bench_data/`), and prints both side by side: median milliseconds with their
//! quartiles, the ratio mmlatent / PyTorch of the medians, and the machine's load average
//! before and after (a loaded machine makes every ratio doubtful).

use anyhow::{bail, Context, Result};
use mmlatent_bench::measure::{load_average, run_reference, write_split, BenchOptions, BenchResult, Repeats};
use mmlatent_core::MultimodalDataset;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// MLD: autoencoder and score-network steps and epochs, and a sampling run.
    Mld(BenchArgs),
    /// Multimodal VAEs: MoPoE and MMVAE+ steps, epochs and losses against MultiVae.
    Vae(BenchArgs),
    /// The EBM-prior model: training step and epoch, and 1,000 joint samples.
    Ebm(BenchArgs),
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// libtorch (and PyTorch) CPU threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Batch size of every workload.
    #[arg(long, allow_negative_numbers = true, default_value_t = 256)]
    pub batch: i64,
    /// Timed repetitions per step workload (median and quartiles are reported).
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Whole epochs of the bundled default set timed per epoch workload (0: skip them).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Python interpreter with torch (default: .venv/bin/python of the repository).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch side.
    #[arg(long)]
    pub no_pytorch: bool,
}

pub fn run(command: BenchCommand) -> Result<()> {
    let (args, family, script) = match &command {
        BenchCommand::Mld(a) => (a, "mld", "bench_mld.py"),
        BenchCommand::Vae(a) => (a, "vae", "bench_vae.py"),
        BenchCommand::Ebm(a) => (a, "ebm", "bench_ebm.py"),
    };
    if args.batch < 1 {
        bail!("--batch must be at least 1, got {}", args.batch);
    }
    tch::set_num_threads(args.threads as i32);
    let dataset = open_default()?;
    let data_dir = repo_root().join("target/bench_data");
    write_split(&data_dir, &dataset.train)?;
    let opts = BenchOptions {
        batch: args.batch,
        repeats: Repeats { warmup: 5, iters: args.iters },
        epochs: args.epochs,
        data_dir,
    };
    let load_before = load_average();
    eprintln!("timing mmlatent {family} (threads {}, batch {}) …", args.threads, args.batch);
    let ours = match command {
        BenchCommand::Mld(_) => mmlatent_bench::mld::run(&opts, &dataset)?,
        BenchCommand::Vae(_) => mmlatent_bench::vae::run(&opts, &dataset)?,
        BenchCommand::Ebm(_) => mmlatent_bench::ebm::run(&opts, &dataset)?,
    };
    let theirs = if args.no_pytorch {
        Value::Null
    } else {
        let root = repo_root();
        let python = args.python.clone().unwrap_or_else(|| root.join(".venv/bin/python"));
        let path = root.join("scripts").join(script);
        eprintln!("timing PyTorch ({} {}) …", python.display(), path.display());
        run_reference(&python, &path, &opts, args.threads)?
    };
    print_table(&ours, &theirs);
    let load = |l: Option<f64>| l.map_or("unknown".to_string(), |v| format!("{v:.2}"));
    println!("load average (1 min): {} before, {} after", load(load_before), load(load_average()));
    Ok(())
}

fn open_default() -> Result<MultimodalDataset> {
    mmlatent_data::open(&mmlatent_train::config::DataConfig::bundled())
        .context("bench: cannot open the bundled default dataset")
}

/// The repository root: the working directory when it holds `scripts/`, else the source tree.
fn repo_root() -> PathBuf {
    if Path::new("scripts").is_dir() {
        PathBuf::from(".")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }
}

/// The two sides in one table: timings (median [q1–q3] ms, ratio of medians), then values.
fn print_table(ours: &BenchResult, theirs: &Value) {
    let spread = |median: f64, q1: f64, q3: f64| format!("{median:.1} [{q1:.1}–{q3:.1}]");
    println!(
        "{:<20} {:>26} {:>26} {:>7}",
        "workload (ms)", "mmlatent median [q1–q3]", "PyTorch median [q1–q3]", "ratio"
    );
    for t in &ours.timings {
        let reference = theirs.get("timings").and_then(|v| v.get(&t.name));
        let field = |k: &str| reference.and_then(|r| r.get(k)).and_then(Value::as_f64);
        let (py, ratio) = match (field("median"), field("q1"), field("q3")) {
            (Some(m), Some(q1), Some(q3)) => (spread(m, q1, q3), format!("{:.2}", t.median / m)),
            _ => ("-".into(), "-".into()),
        };
        println!("{:<20} {:>26} {py:>26} {ratio:>7}", t.name, spread(t.median, t.q1, t.q3));
    }
    for (name, value) in &ours.values {
        let py = theirs.get("values").and_then(|v| v.get(name)).and_then(Value::as_f64);
        let py = py.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!("{name:<20} {value:>26.3} {py:>26}");
    }
}
