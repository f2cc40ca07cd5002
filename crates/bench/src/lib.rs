//! The benchmarks behind `mmlatent bench`: each family's workloads timed in Rust, beside the
//! same architectures written in PyTorch (`scripts/bench_*.py`), on the same training tuples.
//! - [`measure`]: timings (median and quartiles), whole epochs through the training loader,
//!   the machine's load, the split written for the PyTorch side and how that side is run;
//! - [`mld`], [`ebm`], [`vae`]: each family's workloads (`mmlatent bench mld|ebm|vae`).
//!
//! The agreement tests of the EBM and of the VAE baselines with their PyTorch references
//! (`tests/ebm_reference.rs`, `tests/multivae.rs`) run these workloads.
//!
//! It sits beside the model crates and uses them; nothing depends on it but the CLI. It must not
//! change how a model trains: a workload calls the family's own step, loss and sampler.

pub mod ebm;
pub mod measure;
pub mod mld;
pub mod vae;
