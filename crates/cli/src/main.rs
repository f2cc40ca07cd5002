//! `mmlatent`: multimodal generative modelling from the command line.
//!
//! Each sub-command lives in its own module under `commands/`; model families, training and
//! opening runs are `mmlatent_runner`'s, progress bars, plots and image grids
//! `mmlatent_present`'s, the benchmarks' workloads `mmlatent_bench`'s.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mmlatent", version, about = "Multimodal generative models: MLD, EBM prior, multimodal VAEs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the bundled default dataset, train MLD on it, sample and evaluate.
    Quickstart(commands::quickstart::Args),
    /// Build and inspect datasets.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Train a model from a TOML experiment (configs/<dataset>-<model>.toml).
    Train(commands::train::Args),
    /// Draw joint or conditional samples from a trained run.
    Sample(commands::sample::Args),
    /// Train the per-modality classifiers used by evaluation.
    #[command(subcommand)]
    Classifier(commands::classifier::ClassifierCommand),
    /// Evaluate a trained run: coherence, FID, sample grids.
    Eval(commands::eval::Args),
    /// List run folders: model, dataset, steps, state, last evaluation.
    Runs(commands::runs::Args),
    /// One self-contained HTML page comparing runs: results table, sample grids, loss plots.
    Report(commands::report::Args),
    /// Fréchet Inception Distance between two folders of images.
    Fid(commands::fid::Args),
    /// Time training steps and sampling against PyTorch references.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

/// The exit status of a run stopped by a signal (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// Ctrl-C, SIGTERM or SIGHUP: a training stage finishes its step, checkpoints and stops
/// (`mmlatent_train::interrupt`); outside training, or on a second signal, the process exits at
/// once.
fn install_interrupt_handler() {
    let handler = || {
        if commands::workers::forward_interrupt() {
            eprintln!("\nasking the workers to checkpoint and stop (interrupt again to stop them at once)");
        } else if mmlatent_train::interrupt::request() {
            // In a data-parallel job rank 0 speaks for all.
            if !mmlatent_train::parallel::is_leader() {
                return;
            }
            eprintln!(
                "\nstopping after this step and writing a checkpoint (interrupt again to stop at once, losing the \
                 steps since the last checkpoint)"
            );
        } else {
            eprintln!("\ninterrupted");
            std::process::exit(EXIT_INTERRUPTED.into());
        }
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("warning: Ctrl-C will stop training without a checkpoint ({e})");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mmlatent_runner::install_presentation();
    install_interrupt_handler();
    commands::workers::stop_when_the_launcher_dies();
    let result = match cli.command {
        Command::Quickstart(a) => commands::quickstart::run(a),
        Command::Data(c) => commands::data::run(c),
        Command::Train(a) => commands::train::run(a),
        Command::Sample(a) => commands::sample::run(a),
        Command::Classifier(c) => commands::classifier::run(c),
        Command::Eval(a) => commands::eval::run(a),
        Command::Runs(a) => commands::runs::run(a),
        Command::Report(a) => commands::report::run(a),
        Command::Fid(a) => commands::fid::run(a),
        Command::Bench(c) => commands::bench::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if mmlatent_train::interrupt::is_interrupted(&e) => {
            if mmlatent_train::parallel::is_leader() {
                eprintln!("{e:#}");
            }
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {}{e:#}", mmlatent_train::parallel::rank_prefix());
            ExitCode::FAILURE
        }
    }
}
