//! Agreement with MultiVae, the field's PyTorch library: MoPoE and MMVAE+ trained for a few
//! steps by mmlatent and by MultiVae (`scripts/bench_vae.py`, the PyTorch side of `mmlatent
//! bench vae`) on the same batches, from the same initial weights, reach the same loss.
//!
//! Needs `multivae` in the project's virtualenv (`scripts/setup.sh` installs a pinned release
//! without moving torch); without it this test fails, saying so, rather than skipping.

use mmlatent_bench::measure::{run_reference, write_split, BenchOptions, Repeats};
use mmlatent_bench::vae::run;
use mmlatent_train::config::DataConfig;
use std::path::Path;
use std::process::Command;

#[test]
fn mopoe_and_mmvaeplus_losses_agree_with_multivae() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let probe = Command::new(&python).args(["-c", "import multivae"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "multivae is not importable by {} — run scripts/setup.sh (it installs multivae==1.0.3 with torch pinned)",
        python.display()
    );
    let dataset = mmlatent_data::open(&DataConfig::bundled()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (batch, warmup, iters) = (64, 2, 8);
    tch::set_num_threads(1);
    write_split(dir.path(), &dataset.train).unwrap();
    let repeats = Repeats { warmup, iters };
    let opts =
        BenchOptions { batch, repeats, epochs: 0, data_dir: dir.path().to_path_buf(), precision: Default::default() };
    let ours = run(&opts, &dataset).unwrap();
    let theirs = run_reference(&python, &root.join("scripts/bench_vae.py"), &opts, 1).unwrap();
    let losses: Vec<&(String, f64)> = ours.values.iter().filter(|(k, _)| k.contains("loss@")).collect();
    assert_eq!(losses.len(), 2, "{ours:?}");
    for (key, value) in losses {
        let reference = theirs["values"][key].as_f64().unwrap_or_else(|| panic!("MultiVae printed no {key}: {theirs}"));
        let gap = (value - reference).abs() / reference.abs();
        eprintln!("{key}: mmlatent {value:.3}, MultiVae {reference:.3} (relative gap {gap:.1e})");
        assert!(gap < 2e-3, "{key}: mmlatent {value} against MultiVae {reference}");
    }
}
