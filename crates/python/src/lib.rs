//! Python bindings of mmlatent: the package `mmlatent` (this crate's extension module and
//! `python/mmlatent/`), through which Python code opens trained runs and samples them, trains
//! experiments and scores tensors, with torch tensors in and out (shared with the caller's
//! PyTorch, no copies). `cargo build` builds the extension (`libmmlatent_native.so`, which
//! `scripts/setup.sh` installs into `.venv` in place, as `maturin develop` would);
//! `maturin build` packages it as a wheel (`pyproject.toml`).
//!
//! Not `pyo3-tch`: its 0.24.0 (which matches tch 0.24 and PyO3 0.24) turns on tch's
//! `python-extension` feature, which Cargo unifies across the workspace: torch-sys would compile
//! libtorch's Python glue and every test binary would link libtorch_python (and, through it,
//! libpython). DLPack needs nothing of the kind.
//!
//! - [`dlpack`]: torch tensors in and out without copies (DLPack, the ABI `torch.utils.dlpack`
//!   speaks);
//! - [`convert`]: configs and `--set` values given as Python data, turned into the TOML the
//!   rest of the tool reads; panic payloads turned into messages;
//! - [`evaluation`]: coherence, classifier Fréchet distances and FID of tensors the caller
//!   passes, with the evaluation crate's classifiers and Inception;
//! - `bindings`: the PyO3 module `mmlatent._native` over [`mmlatent_runner`], [`convert`] and
//!   [`evaluation`] (left out of the unit tests' binary, which links no Python); it installs
//!   the runner's presentation at import, and routes progress (training's included) to the
//!   Python callback through `mmlatent_present::progress`'s observer.
//!
//! The first three are plain Rust, tested by `cargo test`; the bindings are tested from Python
//! (`tests/python.rs` runs `tests/py/test_*.py` with the project's `.venv/bin/python`).

pub mod convert;
pub mod dlpack;
pub mod evaluation;

#[cfg(not(test))]
mod bindings;
