//! The Python package, tested from Python: each `tests/py/test_*.py` runs in the project's
//! `.venv/bin/python` (where `scripts/setup.sh` installs the package in place) in a fresh
//! process and a temporary folder removed afterwards, on the extension module this `cargo test`
//! has just built (the package's `_native.so` links to it). A missing interpreter or package fails the test with what to run;
//! it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = workspace().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash scripts/setup.sh` first", python.display());
    python
}

fn run_script(name: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(name);
    let check = Command::new(python())
        .args(["-c", "import os, mmlatent; print(os.path.realpath(mmlatent._native.__file__))"])
        .output()
        .expect("python runs");
    assert!(
        check.status.success(),
        "the mmlatent package does not import in .venv: run `bash scripts/setup.sh` (it installs it)\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The extension this build made, next to this test binary in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("test binary path");
    let built = exe.with_file_name("libmmlatent_native.so");
    let imported = PathBuf::from(String::from_utf8_lossy(&check.stdout).trim());
    assert_eq!(
        imported.canonicalize().ok(),
        built.canonicalize().ok(),
        "Python imports another mmlatent extension than the one this build made ({}): run `bash scripts/setup.sh`",
        built.display()
    );
    // The script works in its current folder: a temporary one, removed when the test ends.
    let work = tempfile::tempdir().expect("temporary folder");
    let out = Command::new(python())
        .arg(&script)
        .current_dir(work.path())
        .env("MMLATENT_PLAIN_PROGRESS", "1")
        // The CLI this build made, beside the test binary's folder (target/<profile>/mmlatent).
        .env("MMLATENT_BIN", exe.parent().and_then(Path::parent).expect("target/<profile>/deps").join("mmlatent"))
        .env_remove("MMLATENT_FAULT")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok: "), "{} ended without reporting success:\n{stdout}", script.display());
}

#[test]
fn train_sample_and_errors_from_python() {
    run_script("test_sampling.py");
}

#[test]
fn python_and_the_cli_evaluate_a_run_alike() {
    run_script("test_evaluate.py");
}

#[test]
fn samples_feed_a_pytorch_classifier_and_the_evaluation() {
    run_script("test_classifier.py");
}
