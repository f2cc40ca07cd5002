//! Data-parallel training through the built `mmlatent` binary, on loopback with two processes
//! (`--nproc 2`, and two workers started by hand with the launcher variables, as torchrun or a
//! Slurm script would): two ranks with half the batch each follow one process with the whole
//! batch; rank 0 alone writes the run; a rank killed mid-run stops the job with an error and
//! `--resume` continues it; Ctrl-C, or the launcher's death, stops every rank after the same
//! step with a checkpoint; a job that cannot form fails within its timeout.

use mmlatent_train::checkpoint::load_tensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

/// The toy MLD experiment with a longer deterministic first stage (autoencoders, 24 steps each,
/// checkpointed every 4) before a score stage that draws noise; given to every command.
const SETS: [&str; 10] = [
    "--set",
    "model.autoencoder.steps=24",
    "--set",
    "train.checkpoint_every=4",
    "--set",
    "train.steps=6",
    "--set",
    "train.sample_every=100",
    "--set",
    "data.max_train=128",
];

fn mmlatent(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmlatent"));
    cmd.current_dir(dir);
    for var in
        ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "MMLATENT_FAULT", "MMLATENT_BUCKET_MIB"]
    {
        cmd.env_remove(var);
    }
    cmd.env("MMLATENT_DIST_TIMEOUT", "20");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn train(dir: &Path, run: &str, extra: &[&str]) -> Output {
    mmlatent(dir).args(["train", "exp.toml", "--run", run]).args(SETS).args(extra).output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Rank `rank` of a `world`-process job on 127.0.0.1:`port`, started as another launcher would.
fn worker(dir: &Path, rank: usize, world: usize, port: u16, args: &[&str]) -> Command {
    let mut cmd = mmlatent(dir);
    cmd.args(args)
        .args(SETS)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("GLOO_SOCKET_IFNAME", "lo")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The newest set of `stage` in `run`.
fn final_set(run: &Path, stage: &str) -> PathBuf {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints").join(stage))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("step-"))
        .collect();
    sets.sort();
    sets.pop().unwrap_or_else(|| panic!("no set of {stage} in {}", run.display()))
}

/// The largest absolute difference between the autoencoder weights of two runs' final sets.
fn autoencoder_gap(a: &Path, b: &Path) -> f64 {
    let mut gap: f64 = 0.0;
    for stage in ["ae_m0", "ae_m1"] {
        let file = "autoencoder.safetensors";
        let load = |run: &Path| {
            let mut named = load_tensors(&final_set(run, stage).join(file)).unwrap();
            named.sort_by(|p, q| p.0.cmp(&q.0));
            named
        };
        let (x, y) = (load(a), load(b));
        assert_eq!(x.len(), y.len());
        for ((nx, tx), (ny, ty)) in x.iter().zip(&y) {
            assert_eq!(nx, ny);
            gap = gap.max((tx - ty).abs().max().double_value(&[]));
        }
    }
    gap
}

/// (stage, step) of every training record of the run's metrics.jsonl (not the held-out losses).
fn logged_steps(run: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r.get("val_loss").is_none())
        .map(|r| (r["stage"].as_str().unwrap().to_string(), r["step"].as_u64().unwrap()))
        .collect()
}

#[test]
fn two_ranks_with_half_the_batch_follow_one_process_with_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), common::TOY_MLD).unwrap();
    let one = train(dir.path(), "one", &[]);
    assert!(one.status.success(), "{}", stderr(&one));
    let two = train(dir.path(), "two", &["--nproc", "2"]);
    assert!(two.status.success(), "{}", stderr(&two));
    let log = stderr(&two);
    assert!(log.contains("data-parallel training: 2 processes"), "{log}");
    // Rank 0 reports for the job: one progress display, one line per stage's start.
    assert_eq!(log.matches("training mld on").count(), 1, "{log}");
    let (a, b) = (dir.path().join("one"), dir.path().join("two"));
    // 24 Adam steps of the deterministic stage: the same weights up to float rounding (the
    // gradient of the batch mean is the mean of the two halves' gradients).
    let gap = autoencoder_gap(&a, &b);
    assert!(gap < 1e-4, "the 2-process autoencoders are {gap} from the 1-process ones");
    // The same with the overlap off (one flat all-reduce after each backward pass).
    let flat = mmlatent(dir.path())
        .args(["train", "exp.toml", "--run", "flat", "--nproc", "2"])
        .args(SETS)
        .env("MMLATENT_BUCKET_MIB", "0")
        .output()
        .unwrap();
    assert!(flat.status.success(), "{}", stderr(&flat));
    let gap = autoencoder_gap(&a, &dir.path().join("flat"));
    assert!(gap < 1e-4, "with one all-reduce after the pass, the autoencoders are {gap} from the 1-process ones");
    // Rank 0 alone wrote the log: each step once, as in the 1-process run.
    assert_eq!(logged_steps(&a), logged_steps(&b));
    // The logged autoencoder losses are the means over the ranks: the whole batch's.
    let nll = |run: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["nll"].as_f64()).collect()
    };
    let (na, nb) = (nll(&a), nll(&b));
    assert!(na.len() >= 12 && na.len() == nb.len(), "{na:?} {nb:?}");
    for (x, y) in na.iter().zip(&nb) {
        assert!((x - y).abs() <= 1e-4 * x.abs(), "logged nll {y} against {x} in one process");
    }
    assert!(b.join("samples/joint.png").exists());
    // The score stage draws noise per rank: it trains, but not to the same weights.
    let score = |run: &Path| {
        let mut named = load_tensors(&final_set(run, "score").join("score.safetensors")).unwrap();
        named.sort_by(|p, q| p.0.cmp(&q.0));
        named
    };
    let (sa, sb) = (score(&a), score(&b));
    let differs = sa.iter().zip(&sb).any(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]) > 1e-4);
    assert!(differs, "the ranks drew the same noise as one process");
    // A job of one (as `torchrun --nproc-per-node 1` starts it) runs every collective, on one
    // rank, and trains bit for bit what a plain process trains.
    let solo = worker(dir.path(), 0, 1, free_port(), &["train", "exp.toml", "--run", "solo"]).output().unwrap();
    assert!(solo.status.success(), "{}", stderr(&solo));
    assert!(stderr(&solo).contains("data-parallel training: 1 process (c10d, Gloo)"), "{}", stderr(&solo));
    let solo = dir.path().join("solo");
    for stage in ["ae_m0", "ae_m1", "score"] {
        let (x, y) = (final_set(&a, stage), final_set(&solo, stage));
        for entry in std::fs::read_dir(&x).unwrap().flatten() {
            let name = entry.file_name();
            assert!(
                std::fs::read(entry.path()).unwrap() == std::fs::read(y.join(&name)).unwrap(),
                "{name:?} of {stage}"
            );
        }
    }
    assert_eq!(std::fs::read(a.join("metrics.jsonl")).unwrap(), std::fs::read(solo.join("metrics.jsonl")).unwrap());
    // A batch that does not split evenly is refused before anything is written.
    let odd = train(dir.path(), "odd", &["--nproc", "3"]);
    assert!(!odd.status.success());
    assert!(stderr(&odd).contains("cannot be split evenly over 3 processes"), "{}", stderr(&odd));
    assert!(!dir.path().join("odd/checkpoints").exists());
}

#[test]
fn a_rank_killed_mid_run_stops_the_job_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), common::TOY_MLD).unwrap();
    let port = free_port();
    let args = ["train", "exp.toml", "--run", "job"];
    let start = Instant::now();
    let rank0 = worker(dir.path(), 0, 2, port, &args).spawn().unwrap();
    // Rank 1 dies (abort) after step 10 of the second autoencoder; the last set is step 8.
    let rank1 =
        worker(dir.path(), 1, 2, port, &args).env("MMLATENT_FAULT", "abort_after_step:ae_m1:10").spawn().unwrap();
    let (out0, out1) = (rank0.wait_with_output().unwrap(), rank1.wait_with_output().unwrap());
    assert!(!out1.status.success() && stderr(&out1).contains("MMLATENT_FAULT: aborting"), "{}", stderr(&out1));
    assert_eq!(out0.status.code(), Some(1), "{}", stderr(&out0));
    let message = stderr(&out0);
    assert!(message.contains("error: rank 0: ") && message.contains("stage ae_m1"), "{message}");
    assert!(start.elapsed() < Duration::from_secs(60), "the surviving rank took {:?} to stop", start.elapsed());
    let job = dir.path().join("job");
    assert!(final_set(&job, "ae_m1").ends_with("step-00000008"));
    // The same job resumed with the local launcher finishes, from step 8, where a straight run
    // ends.
    let resumed = train(dir.path(), "job", &["--nproc", "2", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("ae_m1: resuming at step 8/24"), "{}", stderr(&resumed));
    let straight = train(dir.path(), "straight", &["--nproc", "2"]);
    assert!(straight.status.success(), "{}", stderr(&straight));
    assert!(autoencoder_gap(&job, &dir.path().join("straight")) < 1e-6);
}

/// Starts a `--nproc 2` job with endless autoencoders in a temporary folder (under `job/`) and
/// returns once rank 0 has logged its first steps.
fn start_endless_job() -> (tempfile::TempDir, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), common::TOY_MLD).unwrap();
    let launcher = mmlatent(dir.path())
        .args(["train", "exp.toml", "--run", "job", "--nproc", "2"])
        .args(SETS)
        .args(["--set", "model.autoencoder.steps=100000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.path().join("job/metrics.jsonl");
    let start = Instant::now();
    while !log.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    (dir, launcher)
}

/// Checks that rank 0 reported one clean stop of `ae_m0` in `message` and that the job's last
/// set is at the step it names; returns that step.
fn stopped_cleanly(job: &Path, message: &str) -> usize {
    assert_eq!(message.matches("interrupted: stage ae_m0 stopped after step").count(), 1, "{message}");
    let step: usize = message.split("stopped after step ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(final_set(job, "ae_m0").ends_with(format!("step-{step:08}")));
    step
}

#[test]
fn ctrl_c_stops_every_rank_after_the_same_step() {
    let (dir, launcher) = start_endless_job();
    // SAFETY: kill(2) on the child started above, not yet reaped.
    unsafe { libc::kill(launcher.id() as libc::pid_t, libc::SIGINT) };
    let out = launcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let job = dir.path().join("job");
    let step = stopped_cleanly(&job, &stderr(&out));
    assert_eq!(logged_steps(&job).last(), Some(&("ae_m0".to_string(), step as u64)));
}

#[test]
fn workers_whose_launcher_dies_checkpoint_and_stop() {
    let (dir, mut launcher) = start_endless_job();
    // SIGKILL: nothing of the launcher runs after it. The workers hold its stderr pipe too: the
    // pipe ends when both have exited.
    launcher.kill().unwrap();
    let mut message = String::new();
    std::io::Read::read_to_string(&mut launcher.stderr.take().unwrap(), &mut message).unwrap();
    launcher.wait().unwrap();
    stopped_cleanly(&dir.path().join("job"), &message);
}

#[test]
fn a_job_that_cannot_form_fails_within_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), common::TOY_MLD).unwrap();
    let args = ["train", "exp.toml", "--run", "alone"];
    // WORLD_SIZE says 2 but only rank 0 comes; then a rank 1 whose rank 0 is nowhere.
    for rank in [0, 1] {
        let start = Instant::now();
        let out = worker(dir.path(), rank, 2, free_port(), &args).env("MMLATENT_DIST_TIMEOUT", "3").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains(&format!("rank {rank}: cannot form the job of 2 processes within 3 s")), "{message}");
        assert!(start.elapsed() < Duration::from_secs(40), "rank {rank} took {:?}", start.elapsed());
        assert!(!dir.path().join("alone").exists(), "a job that never formed left a run folder");
    }
    // Two ranks asked to train different experiments both stop, saying so.
    let port = free_port();
    let ranks: Vec<_> = [["--set", "train.lr=1e-3"], ["--set", "train.lr=2e-3"]]
        .iter()
        .enumerate()
        .map(|(rank, set)| worker(dir.path(), rank, 2, port, &[&args[..], &set[..]].concat()).spawn().unwrap())
        .collect();
    for rank in ranks {
        let out = rank.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("do not all have the same experiment"), "{}", stderr(&out));
    }
    assert!(!dir.path().join("alone/checkpoints").exists());
    // Variables a launcher cannot have meant are refused at once.
    let out = worker(dir.path(), 0, 2, 1, &args).env_remove("MASTER_ADDR").output().unwrap();
    assert!(stderr(&out).contains("MASTER_ADDR is not"), "{}", stderr(&out));
}
