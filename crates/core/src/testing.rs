//! Fixtures for tests of the training loop, shared by the unit tests and the integration tests
//! that need a process of their own (not part of the API).

use crate::config::Experiment;
use crate::run::RunDir;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tch::nn::{self, VarStore};
use tch::Device;

/// libtorch's random generator is one per process, and the tests of one file run on threads of
/// one process: a test that seeds it and compares draws (the same seed, the same result) holds
/// this lock meanwhile, so that another test's draws cannot come in between.
pub fn global_generator() -> MutexGuard<'static, ()> {
    static GENERATOR: Mutex<()> = Mutex::new(());
    GENERATOR.lock().unwrap_or_else(|e| e.into_inner())
}

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
