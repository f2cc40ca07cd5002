//! `mmlatent`: multimodal generative modelling from the command line.
//!
//! Each sub-command lives in its own module under `commands/`; model families, training and
//! opening runs are `mmlatent_runner`'s, progress bars, plots and image grids
//! `mmlatent_present`'s.

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    mmlatent_runner::install_presentation();
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
