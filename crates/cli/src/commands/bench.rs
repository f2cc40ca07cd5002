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
use mmlatent_core::precision::Precision;
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
    /// fp32, bf16 (mixed precision: autocast on both sides, as `train.precision = "bf16"`), or
    /// both, side by side.
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "bf16", "both"])]
    pub precision: String,
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
    let precisions = match args.precision.as_str() {
        "both" => vec![Precision::Fp32, Precision::Bf16],
        one => vec![one.parse()?],
    };
    for p in &precisions {
        p.check_supported(tch::Device::Cpu).context("bench --precision")?;
    }
    let dataset = open_default()?;
    let data_dir = repo_root().join("target/bench_data");
    write_split(&data_dir, &dataset.train)?;
    let load_before = load_average();
    let mut columns = vec![];
    for precision in precisions {
        let opts = BenchOptions {
            batch: args.batch,
            repeats: Repeats { warmup: 5, iters: args.iters },
            epochs: args.epochs,
            data_dir: data_dir.clone(),
            precision,
        };
        eprintln!("timing mmlatent {family} in {precision} (threads {}, batch {}) …", args.threads, args.batch);
        let ours = precision.run(|| match command {
            BenchCommand::Mld(_) => mmlatent_bench::mld::run(&opts, &dataset),
            BenchCommand::Vae(_) => mmlatent_bench::vae::run(&opts, &dataset),
            BenchCommand::Ebm(_) => mmlatent_bench::ebm::run(&opts, &dataset),
        })?;
        let theirs = if args.no_pytorch {
            Value::Null
        } else {
            let root = repo_root();
            let python = args.python.clone().unwrap_or_else(|| root.join(".venv/bin/python"));
            let path = root.join("scripts").join(script);
            eprintln!("timing PyTorch in {precision} ({} {}) …", python.display(), path.display());
            run_reference(&python, &path, &opts, args.threads)?
        };
        columns.push(Column { precision, ours, theirs });
    }
    print_table(&columns);
    let load = |l: Option<f64>| l.map_or("unknown".to_string(), |v| format!("{v:.2}"));
    println!("load average (1 min): {} before, {} after", load(load_before), load(load_average()));
    Ok(())
}

/// One precision's timings on both sides (`theirs` is null without the PyTorch side).
struct Column {
    precision: Precision,
    ours: BenchResult,
    theirs: Value,
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

/// Both sides in one table, per precision: timings (median [q1–q3] ms), then the ratios of
/// medians mmlatent / PyTorch in the same precision and, with both precisions, mmlatent bf16 /
/// PyTorch fp32 (the speed-up a user switching to bf16 gets over PyTorch as usually run); then
/// the values (losses) of each side.
fn print_table(columns: &[Column]) {
    let spread = |median: f64, q1: f64, q3: f64| format!("{median:.1} [{q1:.1}–{q3:.1}]");
    let reference = |c: &Column, name: &str| -> Option<(f64, f64, f64)> {
        let r = c.theirs.get("timings").and_then(|v| v.get(name))?;
        let field = |k: &str| r.get(k).and_then(Value::as_f64);
        Some((field("median")?, field("q1")?, field("q3")?))
    };
    let mut header = format!("{:<20}", "workload (ms)");
    for c in columns {
        header += &format!(" {:>24} {:>24}", format!("mmlatent {}", c.precision), format!("PyTorch {}", c.precision));
    }
    for c in columns {
        header += &format!(" {:>12}", format!("{0}/PT {0}", c.precision));
    }
    if columns.len() > 1 {
        header += &format!(" {:>12}", "bf16/PT fp32");
    }
    println!("{header}");
    let names: Vec<&str> = columns[0].ours.timings.iter().map(|t| t.name.as_str()).collect();
    for name in names {
        let ours = |c: &Column| c.ours.timings.iter().find(|t| t.name == name).map(|t| (t.median, t.q1, t.q3));
        let mut line = format!("{name:<20}");
        for c in columns {
            let cell = |v: Option<(f64, f64, f64)>| v.map_or("-".to_string(), |(m, q1, q3)| spread(m, q1, q3));
            line += &format!(" {:>24} {:>24}", cell(ours(c)), cell(reference(c, name)));
        }
        let ratio = |a: &Column, b: &Column| match (ours(a), reference(b, name)) {
            (Some((m, _, _)), Some((r, _, _))) => format!("{:.2}", m / r),
            _ => "-".into(),
        };
        for c in columns {
            line += &format!(" {:>12}", ratio(c, c));
        }
        if let [fp32, bf16] = columns {
            line += &format!(" {:>12}", ratio(bf16, fp32));
        }
        println!("{line}");
    }
    for c in columns {
        for (name, value) in &c.ours.values {
            let py = c.theirs.get("values").and_then(|v| v.get(name)).and_then(Value::as_f64);
            let py = py.map_or("-".to_string(), |v| format!("{v:.3}"));
            println!("{:<20} {value:>24.3} {py:>24}", format!("{name} ({})", c.precision));
        }
    }
}
