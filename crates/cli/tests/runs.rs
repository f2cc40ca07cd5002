//! Run folders a researcher can trust, through the built `mmlatent` binary: runs killed at
//! several points (mid-step, right after a checkpoint, and in the middle of writing one, by the
//! `MMLATENT_FAULT` switch) and resumed end bit-identical to an uninterrupted run, for MLD (both
//! stages) and the EBM; a new run stores its resolved config (every default written out); bad
//! inputs are clear errors (exit status 1, never a panic) that leave no run folder behind.

mod common;

use mmlatent_train::config::Experiment;
use mmlatent_train::family::ModelFamily;
use mmlatent_vae::config::VaeConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{TOY_EBM as EBM, TOY_MLD as MLD};

fn mmlatent(dir: &Path, args: &[&str], fault: Option<&str>) -> Output {
    common::mmlatent_with(dir, &dir.join("cache"), args, fault)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file of the run's checkpoints and its metrics log, by path relative to the run.
fn run_files(run: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(run, &run.join("checkpoints"), &mut files);
    files.insert("metrics.jsonl".into(), std::fs::read(run.join("metrics.jsonl")).unwrap());
    files
}

/// Trains `config` (a file in `dir`) into run `run`, killed at each of `faults` in turn, each
/// invocation after the first with `--resume`, and finally resumed to the end.
fn train_through_faults(dir: &Path, config: &str, run: &str, faults: &[&str]) {
    let mut resume = false;
    for fault in faults.iter().map(Some).chain([None]) {
        let mut args = vec!["train", config, "--run", run];
        if resume {
            args.push("--resume");
        }
        let out = mmlatent(dir, &args, fault.copied());
        match fault {
            Some(f) => {
                assert!(!out.status.success(), "{f}: the fault did not fire\n{}", stderr(&out));
                assert!(stderr(&out).contains("MMLATENT_FAULT: aborting"), "{f}: {}", stderr(&out));
            }
            None => assert!(out.status.success(), "{}", stderr(&out)),
        }
        resume = true;
    }
}

/// Trains `config` once straight through and once killed at each of `faults` in turn (each
/// invocation after the first with `--resume`, with the same unresolved config file), then
/// checks that both runs hold the same bytes. `default` is a `[model]` setting of `family` that
/// `config` leaves out, as `--set` writes it, e.g. `model.score.t_eps=0.001`.
fn killed_runs_resume_bit_identically(config: &str, family: &'static dyn ModelFamily, default: &str, faults: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), config).unwrap();
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "straight"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let straight = dir.path().join("straight");
    // The run's config.toml holds the resolved [model] table: the default is written out, and
    // the table parses back to itself.
    let stored = std::fs::read_to_string(straight.join("config.toml")).unwrap();
    let (key, value) = default.rsplit_once('=').unwrap();
    let key = key.rsplit('.').next().unwrap();
    assert!(!config.contains(key) && stored.contains(&format!("{key} = {value}\n")), "{default}: {stored}");
    let (asked, stored) = (Experiment::parse(config, &[]).unwrap(), Experiment::parse(&stored, &[]).unwrap());
    assert_eq!(stored.model, family.resolved_model(&asked, None).unwrap());
    assert_eq!(family.resolved_model(&stored, None).unwrap(), stored.model);
    assert!(straight.join("samples/joint.png").exists(), "no grids at the end of training");
    if config.contains("sample_every = 3") {
        // Grids of the model so far from the last stage's checkpoints at steps 3 and 6 (not 8,
        // the end); drawing them must not disturb the bit-identical resume checked below.
        for step in [3, 6] {
            assert!(straight.join(format!("samples/step-{step}/joint.png")).exists(), "no grids at step {step}");
        }
        assert!(!straight.join("samples/step-8").exists());
    }
    train_through_faults(dir.path(), "exp.toml", "killed", faults);
    let (a, b) = (run_files(&dir.path().join("straight")), run_files(&dir.path().join("killed")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between the straight and the killed run");
    }
    // A finished run extended with more steps continues from its final checkpoint, also from a
    // run folder of before resolved configs (its config.toml as the user wrote it), where
    // setting a default to its value is no change; the folder keeps its stored config.
    let killed = dir.path().join("killed");
    std::fs::write(killed.join("config.toml"), config).unwrap();
    let args = ["train", "exp.toml", "--run", "killed", "--resume", "--set", "train.steps=10", "--set", default];
    let args = [&args[..], &["--set", "train.sample_every=9"]].concat();
    let out = mmlatent(dir.path(), &args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming at step 8/10"), "{}", stderr(&out));
    let kept = std::fs::read_to_string(killed.join("config.toml")).unwrap();
    assert!(kept.contains("steps = 10") && !kept.contains(key), "{kept}");
    // train.sample_every may change on resume: the checkpoint at step 9 now draws grids.
    assert!(killed.join("samples/step-9/joint.png").exists(), "{}", stderr(&out));
    // Other changes to a resumed run's experiment are refused.
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "killed", "--resume", "--set", "seed=1"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot change the experiment"), "{}", stderr(&out));
}

#[test]
fn a_killed_mld_run_resumes_bit_identically() {
    killed_runs_resume_bit_identically(
        MLD,
        &mmlatent_mld::FAMILY,
        "model.score.t_eps=0.001",
        &[
            "abort_mid_checkpoint:ae_m0:3",
            "abort_after_step:ae_m1:4",
            "abort_after_checkpoint:score:3",
            "abort_mid_checkpoint:score:6",
            "abort_after_step:score:7",
        ],
    );
}

/// In bf16 mixed precision (`train.precision = "bf16"`) a killed MLD run resumes bit-identically
/// too, its weights are not the fp32 run's (autocast is on), and a run may switch precision on
/// `--resume`. On a CPU without bf16 instructions the setting is refused before anything is
/// written.
#[test]
fn a_killed_bf16_mld_run_resumes_bit_identically_and_may_switch_precision() {
    let bf16 = MLD.replace("threads = 1\n", "threads = 1\nprecision = \"bf16\"\n");
    assert_ne!(bf16, MLD);
    if !mmlatent_core::precision::cpu_has_bf16() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("exp.toml"), &bf16).unwrap();
        refused(dir.path(), &["train", "exp.toml", "--run", "r"], &["train.precision", "bf16 instructions"]);
        assert!(!dir.path().join("r").exists());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bf16.toml"), &bf16).unwrap();
    std::fs::write(dir.path().join("fp32.toml"), MLD).unwrap();
    for (config, run) in [("bf16.toml", "straight"), ("fp32.toml", "fp32")] {
        let out = mmlatent(dir.path(), &["train", config, "--run", run], None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(stderr(&mmlatent(dir.path(), &["train", "bf16.toml", "--run", "straight", "--resume"], None))
        .contains("in bf16 mixed precision"));
    train_through_faults(
        dir.path(),
        "bf16.toml",
        "killed",
        &["abort_after_step:ae_m0:4", "abort_mid_checkpoint:score:6"],
    );
    let [straight, killed, fp32] = ["straight", "killed", "fp32"].map(|r| run_files(&dir.path().join(r)));
    for (name, bytes) in &straight {
        assert!(bytes == &killed[name], "{name} differs between the straight and the killed bf16 run");
    }
    let last = "checkpoints/score/step-00000008/score.safetensors";
    assert!(straight.contains_key(last) && straight[last] != fp32[last], "bf16 trained the same weights as fp32");
    // Precision may change on resume (the weights are fp32 either way).
    let args = ["train", "bf16.toml", "--run", "killed", "--resume", "--set", "train.steps=10"];
    let out = mmlatent(dir.path(), &[&args[..], &["--set", "train.precision=fp32"]].concat(), None);
    assert!(out.status.success() && stderr(&out).contains("resuming at step 8/10"), "{}", stderr(&out));
}

/// A new MLD run that leaves the score width to the rule stores the width it derived (256 for
/// two latents of 4), and an older run folder that stored none (its config.toml as before) still
/// samples and resumes, taking the width from its checkpoints.
#[test]
fn an_mld_run_announces_its_stages_stores_its_derived_score_width_and_older_runs_still_load() {
    let config = MLD.replace("[model.score]\nwidth = 16\n", "[model.score]\n");
    assert_ne!(config, MLD);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), &config).unwrap();
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "r"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    // Which key sets which stage's steps is said before training starts.
    let announced = "5 steps each (model.autoencoder.steps), then score 8 steps (train.steps)";
    assert!(stderr(&out).contains("stages: ae_") && stderr(&out).contains(announced), "{}", stderr(&out));
    let stored_path = dir.path().join("r/config.toml");
    let stored = std::fs::read_to_string(&stored_path).unwrap();
    let stored_model = Experiment::parse(&stored, &[]).unwrap().model;
    assert_eq!(stored_model["score"]["width"].as_integer(), Some(256), "{stored}");
    // The folder as a run of before: no width in its config.toml.
    let mut old = Experiment::parse(&stored, &[]).unwrap();
    old.model["score"].as_table_mut().unwrap().remove("width");
    std::fs::write(&stored_path, old.to_toml().unwrap()).unwrap();
    let out = mmlatent(dir.path(), &["sample", "r", "--joint", "4", "--out", "joint.png"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "r", "--resume", "--set", "train.steps=10"], None);
    assert!(out.status.success() && stderr(&out).contains("score network: width 256"), "{}", stderr(&out));
}

/// With two threads MLD trains its two autoencoders side by side, one thread each: the same
/// weights as one at a time on one thread, bit for bit, and a run killed in the middle of stage 1
/// resumes to the same files (the log's lines of the two stages interleave, so they are compared
/// as a set).
#[test]
fn mld_autoencoders_train_side_by_side_and_resume_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let config = MLD.replace("threads = 1", "threads = 2").replace("steps = 5", "steps = 30");
    std::fs::write(dir.path().join("two.toml"), &config).unwrap();
    std::fs::write(dir.path().join("one.toml"), config.replace("threads = 2", "threads = 1")).unwrap();
    let out = mmlatent(dir.path(), &["train", "two.toml", "--run", "two"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 independent stages side by side on 2 threads: 1 thread each"), "{}", stderr(&out));
    let out = mmlatent(dir.path(), &["train", "one.toml", "--run", "one"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("side by side"), "{}", stderr(&out));
    let (two, one) = (run_files(&dir.path().join("two")), run_files(&dir.path().join("one")));
    let autoencoder_files: Vec<&String> =
        two.keys().filter(|k| k.contains("/ae_") && k.ends_with(".safetensors")).collect();
    assert!(autoencoder_files.len() >= 4, "{autoencoder_files:?}"); // 2 modalities × weights and moments
    for name in autoencoder_files {
        assert!(two[name] == one[name], "{name}: side by side differs from one at a time");
    }

    train_through_faults(
        dir.path(),
        "two.toml",
        "killed",
        &["abort_after_step:ae_m1:4", "abort_mid_checkpoint:ae_m0:27"],
    );
    let killed = run_files(&dir.path().join("killed"));
    assert_eq!(two.keys().collect::<Vec<_>>(), killed.keys().collect::<Vec<_>>());
    for (name, bytes) in &two {
        let same = if name == "metrics.jsonl" {
            let lines = |b: &[u8]| {
                let mut l: Vec<String> = String::from_utf8_lossy(b).lines().map(String::from).collect();
                l.sort();
                l
            };
            lines(bytes) == lines(&killed[name])
        } else {
            bytes == &killed[name]
        };
        assert!(same, "{name} differs between the straight and the killed run");
    }
}

#[test]
fn a_killed_ebm_run_resumes_bit_identically() {
    killed_runs_resume_bit_identically(
        EBM,
        &mmlatent_ebm::FAMILY,
        "model.ebm_beta1=0.5",
        &["abort_mid_checkpoint:ebm:6", "abort_after_step:ebm:5"],
    );
}

/// A new VAE run's config.toml holds its kind's defaults (MMVAE: `k`, `estimator`, the Laplace
/// posterior) and parses to the same config as the file the user wrote.
#[test]
fn a_vae_run_stores_its_kind_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = "seed = 2\n[data]\npath = \"synthetic\"\nmax_train = 32\nmax_test = 16\n[train]\nbatch_size = 16\n\
                  steps = 2\nthreads = 1\n[model]\nkind = \"mmvae\"\nlatent_dim = 4\nwidth = 4\n";
    std::fs::write(dir.path().join("exp.toml"), config).unwrap();
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "vae"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = std::fs::read_to_string(dir.path().join("vae/config.toml")).unwrap();
    for line in ["k = 10\n", "estimator = \"dreg\"\n", "posterior = \"laplace\"\n", "warmup = 0\n"] {
        assert!(stored.contains(line), "no `{}` in {stored}", line.trim());
    }
    let (asked, stored) = (Experiment::parse(config, &[]).unwrap(), Experiment::parse(&stored, &[]).unwrap());
    assert_eq!(VaeConfig::from_experiment(&stored).unwrap(), VaeConfig::from_experiment(&asked).unwrap());
}

/// A PolyMNIST-format folder of two modalities, 16 train and 2 test tuples of `size`² images.
fn write_polymnist(dir: &Path, size: usize) {
    for (split, n) in [("train", 16), ("test", 2)] {
        for m in 0..2 {
            let folder = dir.join(split).join(format!("m{m}"));
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                let pixels: Vec<u8> = (0..3 * size * size).map(|p| ((p * 7 + i * 13 + m) % 251) as u8).collect();
                let path = folder.join(format!("{i}.{}.png", i % 2));
                mmlatent_data::image_file::write_png(&path, &pixels, 3, size, size).unwrap();
            }
        }
    }
}

/// Asserts that `args` fails with exit status 1 (an error, not a panic) and a message holding
/// every one of `needles`, and that no run folder `r` was left behind.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = mmlatent(dir, args, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(!dir.join("r").exists(), "{args:?} left a run folder behind");
}

#[test]
fn bad_inputs_are_clear_errors_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("exp.toml"), EBM).unwrap();
    let train = |set: &str| {
        vec!["train", "exp.toml", "--run", "r", "--set", set].into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (train("train.steps=0"), vec!["train.steps must be at least 1", "--set"]),
        (train("train.checkpoint_every=0"), vec!["train.checkpoint_every"]),
        (train("train.threads=0"), vec!["train.threads"]),
        (train("data.max_train=0"), vec!["data.max_train"]),
        (train("train.batch_size=500"), vec!["larger than the 96 training tuples"]),
        (train("model.widht=3"), vec!["widht"]),
        (train("data.path=\"nowhere\""), vec!["nowhere"]),
        (train("train.steps=\"many\""), vec!["--set", "steps"]),
        (train("model.likelihoods={photo={type=\"bernoulli\"}}"), vec!["`photo` is not a modality of the dataset"]),
        (train("model.likelihoods={type=\"categorical\"}"), vec!["categorical: the dataset has no text modality"]),
    ];
    for (args, needles) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(d, &args, needles);
    }
    refused(d, &["train", "exp.toml", "--run", "r", "--device", "cuda:7"], &["cuda:7"]);
    refused(d, &["train", "exp.toml", "--run", "r", "--resume"], &["--resume", "not a run folder"]);

    // An IDX folder with no training items.
    let idx = d.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for (prefix, n) in [("train", 0usize), ("t10k", 4)] {
        let images = mmlatent_data::idx::IdxArray {
            dtype: mmlatent_data::idx::IdxType::U8,
            dims: vec![n, 28, 28],
            data: vec![0; n * 28 * 28],
        };
        let labels =
            mmlatent_data::idx::IdxArray { dtype: mmlatent_data::idx::IdxType::U8, dims: vec![n], data: vec![1; n] };
        mmlatent_data::idx::write(&idx.join(format!("{prefix}-images-idx3-ubyte")), &images).unwrap();
        mmlatent_data::idx::write(&idx.join(format!("{prefix}-labels-idx1-ubyte")), &labels).unwrap();
    }
    refused(d, &["train", "exp.toml", "--run", "r", "--set", &format!("data.path=\"{}\"", idx.display())], &["idx"]);

    // A PolyMNIST folder of 20×20 images: no network for that size, found before any folder.
    let poly = d.join("poly20");
    write_polymnist(&poly, 20);
    let set = format!("data.path=\"{}\"", poly.display());
    refused(d, &["train", "exp.toml", "--run", "r", "--set", &set], &["20×20", "m0"]);
    // An odd first image is the one blamed, not every good image after it.
    write_polymnist(&d.join("poly28"), 28);
    let odd = d.join("poly28/train/m0/0.0.png");
    mmlatent_data::image_file::write_png(&odd, &[0u8; 3 * 20 * 20], 3, 20, 20).unwrap();
    let set = format!("data.path=\"{}\"", d.join("poly28").display());
    refused(d, &["train", "exp.toml", "--run", "r", "--set", &set], &["0.0.png: image is 20×20, expected 28×28"]);

    // A warm-up longer than the run is a warning, not an error; `sample` checks its arguments
    // before loading anything.
    let out = mmlatent(d, &["train", "exp.toml", "--run", "ok", "--set", "train.warmup_steps=20"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: train.warmup_steps"), "{}", stderr(&out));
    // While another process holds the run (here: this test), training into it is refused.
    let held = mmlatent_train::run::RunDir::open(&d.join("ok")).unwrap().lock().unwrap();
    let out = mmlatent(d, &["train", "exp.toml", "--run", "ok", "--resume"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("in use by another mmlatent process"), "{}", stderr(&out));
    drop(held);
    let png = d.join("m0.png");
    mmlatent_data::image_file::write_png(&png, &[0u8; 28 * 28], 1, 28, 28).unwrap();
    let given = format!("m0={}", png.display());
    for (args, needle) in [
        (vec!["sample", "ok", "--given", given.as_str(), "--per-input=-3", "--out", "s.png"], "--per-input -3"),
        (vec!["sample", "ok", "--joint", "100000000", "--out", "s.png"], "--joint 100000000"),
        (vec!["sample", "ok", "--joint", "4", "--out", "."], "already holds files"),
    ] {
        refused(d, &args, &[needle]);
    }
    let out = mmlatent(d, &["sample", "ok", "--joint", "4", "--out", "s.png"], None);
    assert!(out.status.success() && d.join("s.png").exists(), "{}", stderr(&out));
    // An unfinished run samples from its newest checkpoint, with a warning that says so.
    let out = mmlatent(d, &["train", "exp.toml", "--run", "half"], Some("abort_after_checkpoint:ebm:3"));
    assert!(!out.status.success());
    let out = mmlatent(d, &["sample", "half", "--joint", "2", "--out", "h.png"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not finished (step 3 of 8)"), "{}", stderr(&out));
    // A colour PNG for a greyscale modality is refused, naming the file.
    let rgb = d.join("rgb.png");
    mmlatent_data::image_file::write_png(&rgb, &[0u8; 3 * 28 * 28], 3, 28, 28).unwrap();
    let given = format!("m0={}", rgb.display());
    refused(d, &["sample", "ok", "--given", given.as_str(), "--out", "s2.png"], &["rgb.png", "colour"]);
}

/// Ctrl-C (SIGINT) during training: the step in progress finishes, a checkpoint set is written
/// at it, the process says where and exits with status 130; `--resume` continues from that
/// step.
#[test]
fn an_interrupted_run_checkpoints_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        EBM.replace("steps = 8", "steps = 1000000").replace("checkpoint_every = 3", "checkpoint_every = 100000");
    std::fs::write(dir.path().join("exp.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mmlatent"))
        .args(["train", "exp.toml", "--run", "r"])
        .current_dir(dir.path())
        .env_remove("MMLATENT_FAULT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.path().join("r/metrics.jsonl");
    let logged = || std::fs::read_to_string(&metrics).map(|s| s.lines().count()).unwrap_or(0);
    let start = std::time::Instant::now();
    while logged() < 3 {
        assert!(start.elapsed().as_secs() < 120, "no training steps logged in 120 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let last = std::fs::read_to_string(&metrics).unwrap().lines().last().unwrap().to_string();
    let step: usize = serde_json::from_str::<serde_json::Value>(&last).unwrap()["step"].as_u64().unwrap() as usize;
    let set = format!("step-{step:08}");
    assert!(err.contains(&format!("stage ebm stopped after step {step} of 1000000")) && err.contains(&set), "{err}");
    assert!(dir.path().join("r/checkpoints/ebm").join(&set).join("manifest.json").exists(), "{err}");
    let fault = format!("abort_after_step:ebm:{}", step + 2);
    let out = mmlatent(dir.path(), &["train", "exp.toml", "--run", "r", "--resume"], Some(&fault));
    assert!(stderr(&out).contains(&format!("resuming at step {step}/1000000")), "{}", stderr(&out));
}

/// `--autoencoders-from`: a second MLD run takes over the first's finished autoencoders (copied
/// bit for bit, with their log records) and trains only its own score network. A run whose
/// stage-1 settings differ (each difference named), unfinished autoencoders, another kind of run
/// or no run at all are refused, leaving no run folder.
#[test]
fn an_mld_run_takes_over_the_autoencoders_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("mld.toml"), MLD).unwrap();
    std::fs::write(d.join("ebm.toml"), EBM).unwrap();
    let first = mmlatent(d, &["train", "mld.toml", "--run", "first"], None);
    assert!(first.status.success(), "{}", stderr(&first));
    let args =
        ["train", "mld.toml", "--run", "second", "--autoencoders-from", "first", "--set", "model.score.given_p=0.5"];
    let second = mmlatent(d, &args, None);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stderr(&second).contains("took over ae_m0, ae_m1 (finished) from first"), "{}", stderr(&second));
    let (a, b) = (run_files(&d.join("first")), run_files(&d.join("second")));
    let autoencoder_files: Vec<&String> = a.keys().filter(|p| p.starts_with("checkpoints/ae_")).collect();
    assert!(autoencoder_files.len() >= 4, "{autoencoder_files:?}");
    for path in autoencoder_files {
        assert_eq!(b.get(path), a.get(path), "{path} differs from the first run's");
    }
    // The score network is the second run's own, trained with its own setting.
    let stored = std::fs::read_to_string(d.join("second/config.toml")).unwrap();
    assert!(stored.contains("given_p = 0.5"), "{stored}");
    let score = |files: &BTreeMap<String, Vec<u8>>| -> Vec<Vec<u8>> {
        files.iter().filter(|(p, _)| p.contains("score.safetensors")).map(|(_, v)| v.clone()).collect()
    };
    assert!(!score(&b).is_empty() && score(&a) != score(&b));
    // The autoencoders' log records came along: the same records for their stages.
    let records = |run: &str, stage: &str| -> Vec<String> {
        let text = std::fs::read_to_string(d.join(run).join("metrics.jsonl")).unwrap();
        text.lines().filter(|l| l.contains(&format!("\"stage\":\"{stage}\""))).map(String::from).collect()
    };
    assert!(!records("first", "ae_m1").is_empty());
    assert_eq!(records("first", "ae_m1"), records("second", "ae_m1"));

    let take_over = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["train", "mld.toml", "--run", "r", "--autoencoders-from", "first"];
        args.extend(extra);
        args.into_iter().map(String::from).collect()
    };
    let other = take_over(&["--set", "model.autoencoder.latent_dim=6", "--set", "seed=7"]);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    refused(d, &other, &["model.autoencoder.latent_dim: 4 there, 6 here", "seed: 5 there, 7 here"]);
    refused(d, &["train", "ebm.toml", "--run", "r", "--autoencoders-from", "first"], &["that run trained `mld`"]);
    refused(d, &["train", "mld.toml", "--run", "r", "--autoencoders-from", "nowhere"], &["not a run folder"]);
    let killed = mmlatent(d, &["train", "mld.toml", "--run", "killed"], Some("abort_after_checkpoint:ae_m0:3"));
    assert!(!killed.status.success());
    refused(
        d,
        &["train", "mld.toml", "--run", "r", "--autoencoders-from", "killed"],
        &["stage ae_m0 of killed is not finished (step 3 of 5)"],
    );
}

/// A resume whose every kept checkpoint set of a stage is damaged exits with status 1, names
/// each damaged file, suggests what to do and changes no file of the run; the same run with one
/// good older set falls back to it, saying so.
#[test]
fn a_resume_over_damaged_checkpoints_fails_and_leaves_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("exp.toml"), EBM.replace("steps = 8", "steps = 20")).unwrap();
    let out = mmlatent(d, &["train", "exp.toml", "--run", "r"], Some("abort_after_step:ebm:8"));
    assert!(!out.status.success());
    let stage = d.join("r/checkpoints/ebm");
    let kept: Vec<String> =
        std::fs::read_dir(&stage).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    // Step 6: its weights truncated; step 3: its Adam state missing.
    let weights = stage.join("step-00000006/generator.safetensors");
    let bytes = std::fs::read(&weights).unwrap_or_else(|_| panic!("{kept:?}"));
    std::fs::write(&weights, &bytes[..100]).unwrap();
    let adam: Vec<_> = std::fs::read_dir(stage.join("step-00000003"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".adam.safetensors"))
        .collect();
    std::fs::remove_file(&adam[0]).unwrap();
    let before = run_files(&d.join("r"));
    let out = mmlatent(d, &["train", "exp.toml", "--run", "r", "--resume"], None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "cannot resume stage ebm",
        "step-00000006: ",
        "generator.safetensors: 100 bytes",
        "step-00000003: ",
        "missing",
        "nothing was removed",
        "Restore the damaged files",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!err.contains("falling back") && !err.contains("panicked"), "{err}");
    assert_eq!(run_files(&d.join("r")), before, "the failed resume changed the run's files");
}
