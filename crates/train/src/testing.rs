//! Fixtures for tests of the training loop, shared by the unit tests and the integration tests
//! that need a process of their own (not part of the API). The lock on libtorch's global
//! generator is core's (`mmlatent_core::testing::global_generator`).

use crate::config::Experiment;
use crate::run::RunDir;
use std::path::Path;
use tch::nn::{self, VarStore};
use tch::Device;

/// A new run folder in `dir` of a toy experiment.
pub fn toy_run(dir: &Path) -> RunDir {
    let e = Experiment::parse("[data]\npath = \"x\"\n[model]\nkind = \"toy\"\n", &[]).expect("toy config");
    RunDir::create(dir, &e, false).expect("toy run folder")
}

/// A store holding one variable `w` of 4 values, all 0.5.
pub fn toy_store() -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    let _ = vs.root().var("w", &[4], nn::Init::Const(0.5));
    vs
}
