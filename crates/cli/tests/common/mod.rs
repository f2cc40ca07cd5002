//! What the binary's test files share: toy experiments on the synthetic set and a way to run the
//! built binary. Each test file uses some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A toy experiment on the synthetic set (two modalities, 96 training and 32 test tuples),
/// 8 steps checkpointed every 3, on one thread, with `$model` as its `[model]` table.
macro_rules! toy_experiment {
    ($model:literal) => {
        concat!(
            r#"
seed = 5
[data]
path = "synthetic"
max_train = 96
max_test = 32
[train]
batch_size = 16
steps = 8
lr = 1e-3
checkpoint_every = 3
log_every = 2
sample_every = 3
threads = 1
"#,
            $model
        )
    };
}

/// MLD: two 5-step autoencoders and an 8-step score network; trains in about a second.
pub const TOY_MLD: &str = toy_experiment!(
    r#"[model]
kind = "mld"
[model.autoencoder]
latent_dim = 4
width = 4
steps = 5
lr = 1e-3
batch_size = 16
[model.score]
width = 16
time_dim = 8
mults = [1]
groups = 4
[model.sampler]
method = "euler"
steps = 3
"#
);

/// The EBM prior: tiny generators and energy, 2 Langevin steps.
pub const TOY_EBM: &str = toy_experiment!(
    r#"[model]
kind = "ebm"
latent_dim = 4
width = 4
energy_hidden = 8
langevin_steps = 2
"#
);

/// Runs the built binary in `dir` with its classifier cache in `cache` (never the user's) and
/// the fault switch `fault` (none unless named).
pub fn mmlatent_with(dir: &Path, cache: &Path, args: &[&str], fault: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmlatent"));
    cmd.args(args).current_dir(dir).env("MMLATENT_CACHE", cache).env_remove("MMLATENT_FAULT");
    if let Some(f) = fault {
        cmd.env("MMLATENT_FAULT", f);
    }
    cmd.output().expect("the mmlatent binary runs")
}
