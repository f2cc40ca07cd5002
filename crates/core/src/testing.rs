//! A fixture for tests that draw from libtorch's global generator, shared by the unit tests and
//! the integration tests of every crate (not part of the API). The training loop's fixtures (a
//! toy run folder) are `mmlatent_train::testing`'s.

use std::sync::{Mutex, MutexGuard};

/// libtorch's random generator is one per process, and the tests of one file run on threads of
/// one process: a test that seeds it and compares draws (the same seed, the same result) holds
/// this lock meanwhile, so that another test's draws cannot come in between.
pub fn global_generator() -> MutexGuard<'static, ()> {
    static GENERATOR: Mutex<()> = Mutex::new(());
    GENERATOR.lock().unwrap_or_else(|e| e.into_inner())
}
