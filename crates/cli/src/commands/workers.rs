//! `mmlatent train --nproc N`: starts N worker processes of the same command on this machine
//! as one data-parallel job (`mmlatent_train::parallel`), the way `torchrun --nproc-per-node N`
//! would: each gets `RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR` (loopback) and a free
//! `MASTER_PORT`, and, unless already set, `OMP_NUM_THREADS` (the cores shared out) and
//! `GLOO_SOCKET_IFNAME=lo`.
//!
//! The workers run in their own process group, so a Ctrl-C reaches them once, through this
//! process ([`forward_interrupt`]): the first asks every rank to checkpoint and stop after the
//! same step, a second stops them at once. Should this process die, the workers get SIGTERM
//! (and stop the same way). When a worker fails, the others fail at their next
//! collective (the connection is gone); any still running after a grace period are killed.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The process ids of the running workers (for [`forward_interrupt`]).
static WORKERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How long the other workers may take to stop once one has failed.
const GRACE: Duration = Duration::from_secs(30);

/// The signal a worker gets when its launcher dies. Not SIGTERM: Linux may deliver it more than
/// once (again each time the worker is handed to another thread of the dying launcher), and a
/// second SIGTERM means "stop at once"; every delivery of this one only asks for a stop.
pub const LAUNCHER_GONE: libc::c_int = libc::SIGUSR1;

/// Makes [`LAUNCHER_GONE`] ask the training in progress to checkpoint and stop.
pub fn stop_when_the_launcher_dies() {
    extern "C" fn on_launcher_gone(_: libc::c_int) {
        // Lock-free atomics only: safe in a signal handler.
        mmlatent_train::interrupt::request();
    }
    // SAFETY: installs a handler that touches only atomics.
    unsafe { libc::signal(LAUNCHER_GONE, on_launcher_gone as *const () as libc::sighandler_t) };
}

/// The exit status of a worker stopped on request (see `main`).
const EXIT_INTERRUPTED: i32 = 130;

/// Passes a Ctrl-C / SIGTERM on to the workers; false when none is running (the caller then
/// handles the signal itself).
pub fn forward_interrupt() -> bool {
    let workers = WORKERS.lock().unwrap_or_else(|p| p.into_inner());
    for pid in workers.iter() {
        // SAFETY: kill(2) with a pid this process started and has not yet reaped.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGINT) };
    }
    !workers.is_empty()
}

/// This process's arguments without `--nproc N` / `--nproc=N` (what each worker runs).
fn worker_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = vec![];
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        match arg.to_str() {
            Some("--nproc") => skip_value = true,
            Some(a) if a.starts_with("--nproc=") => {}
            _ => out.push(arg),
        }
    }
    out
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs this command as `nproc` workers and waits for them (see the module doc).
pub fn launch(nproc: usize) -> Result<()> {
    if std::env::var_os("WORLD_SIZE").is_some() {
        bail!(
            "--nproc starts its own job, but WORLD_SIZE is already set (this process is a worker of another launcher)"
        );
    }
    let exe = std::env::current_exe().context("cannot find the mmlatent executable to start the workers")?;
    let args = worker_args(std::env::args_os().skip(1));
    let port = free_port()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!("starting {nproc} workers on 127.0.0.1:{port}");
    let mut children: Vec<(usize, Child)> = vec![];
    for rank in 0..nproc {
        let mut command = Command::new(&exe);
        command
            .args(&args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec. A
        // worker whose launcher dies (even by SIGKILL) gets LAUNCHER_GONE: it checkpoints and
        // stops (see `main`).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, LAUNCHER_GONE);
                Ok(())
            });
        }
        if std::env::var_os("OMP_NUM_THREADS").is_none() {
            command.env("OMP_NUM_THREADS", (cores / nproc).max(1).to_string());
        }
        if std::env::var_os("GLOO_SOCKET_IFNAME").is_none() {
            command.env("GLOO_SOCKET_IFNAME", "lo");
        }
        match command.spawn() {
            Ok(child) => {
                WORKERS.lock().unwrap_or_else(|p| p.into_inner()).push(child.id());
                children.push((rank, child));
            }
            Err(e) => {
                for (_, child) in &mut children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(e).with_context(|| format!("cannot start worker {rank} ({})", exe.display()));
            }
        }
    }
    let outcome = wait_all(&mut children);
    WORKERS.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let exits = outcome?;
    summarise(&exits)
}

/// Waits for every worker; once one has failed, kills those still running after [`GRACE`].
/// Returns (rank, status) in the order they ended.
fn wait_all(children: &mut Vec<(usize, Child)>) -> Result<Vec<(usize, ExitStatus)>> {
    let mut exits = vec![];
    let mut first_failure: Option<Instant> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && first_failure.is_none() {
                        first_failure = Some(Instant::now());
                    }
                    exits.push((rank, status));
                }
                None => i += 1,
            }
        }
        if first_failure.is_some_and(|t| t.elapsed() > GRACE) {
            for (rank, child) in children.iter_mut() {
                eprintln!("worker {rank} did not stop within {} s of another's failure: killing it", GRACE.as_secs());
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(exits)
}

/// Success when every worker succeeded; exit 130 when the job stopped on request; else an
/// error naming the worker that failed first.
fn summarise(exits: &[(usize, ExitStatus)]) -> Result<()> {
    let Some((rank, status)) = exits.iter().find(|(_, s)| !s.success()) else { return Ok(()) };
    if exits.iter().all(|(_, s)| s.success() || s.code() == Some(EXIT_INTERRUPTED)) {
        std::process::exit(EXIT_INTERRUPTED);
    }
    bail!(
        "worker {rank} failed first ({}); the job stopped. Its messages are above; `--resume` continues from the \
         last checkpoint",
        describe(status)
    )
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_run_the_command_without_nproc() {
        let args = ["train", "c.toml", "--nproc", "2", "--set", "train.steps=3", "--nproc=4", "--resume"];
        let kept = worker_args(args.iter().map(OsString::from));
        assert_eq!(kept, ["train", "c.toml", "--set", "train.steps=3", "--resume"].map(OsString::from));
    }
}
