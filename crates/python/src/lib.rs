//! Python bindings of mmlatent: the package `mmlatent` (built by maturin from this crate and
//! `python/mmlatent/`), through which Python code opens trained runs and samples them, trains
//! experiments and scores tensors, with torch tensors in and out (shared with the caller's
//! PyTorch, no copies).
//!
//! Not `pyo3-tch`: its 0.24.0 (which matches tch 0.24 and PyO3 0.24) turns on tch's
//! `python-extension` feature, and Cargo unifies features across the workspace, so every crate
//! would be built a second time over a torch-sys linked against libtorch_python (a full rebuild
//! of libtorch's C++ bindings, minutes on two cores, in the set-up and in CI). DLPack needs
//! nothing of the kind: the extension shares every artifact with `cargo test`.
//!
//! - [`dlpack`]: torch tensors in and out without copies (DLPack, the ABI `torch.utils.dlpack`
//!   speaks);
//! - [`convert`]: configs and `--set` values given as Python data, turned into the TOML the
//!   rest of the tool reads; panic payloads turned into messages;
//! - [`evaluation`]: coherence, classifier Fréchet distances and FID of tensors the caller
//!   passes, with the evaluation crate's classifiers and Inception;
//! - `bindings` (feature `extension`, on when maturin builds the package): the PyO3 module
//!   `mmlatent._native` over [`mmlatent_runner`], [`convert`] and [`evaluation`].
//!
//! The first three are plain Rust, tested by `cargo test`; the bindings are tested from Python
//! (`tests/python.rs` runs `tests/py/test_*.py` with the project's `.venv/bin/python`).

pub mod convert;
pub mod dlpack;
pub mod evaluation;

#[cfg(feature = "extension")]
mod bindings;
