//! Independent stages trained side by side. MLD's per-modality autoencoders share nothing but
//! the run folder, and a small convolutional network cannot keep several cores busy on its own
//! (two threads run one autoencoder step far less than twice as fast as one thread). So on
//! the CPU such stages all run at once, each on its own thread with its share of libtorch's
//! intra-op threads, instead of one after another with all of them.
//!
//! - **All at once**, not a few at a time: with fewer cores than stages (five autoencoders on
//!   two cores) the operating system shares the cores among them and they finish together,
//!   where a queue would leave the last stage running alone on one thread while the other
//!   cores idle. A stage gets `threads / jobs` intra-op threads, the first `threads % jobs`
//!   stages one more, and at least one.
//! - **Same numerics on resume.** A stage's thread count depends only on the process's thread
//!   count, the number of stages in the group (finished ones included) and its place among
//!   them, never on how many are left, so a resumed run trains its remaining stages exactly as
//!   an uninterrupted run.
//! - **Stopping.** The stages form an [`interrupt::Group`]: a Ctrl-C stops every running stage
//!   after its current step, each writing its checkpoint set; a failed stage stops the others
//!   the same way. The first failure (in job order) is returned; when all stopped on request,
//!   the first one's [`interrupt::Interrupted`].
//! - **One at a time** when there is nothing to gain or something to lose: a single thread or
//!   job, a non-CPU device (kernels queue on one device anyway), a data-parallel job (every rank
//!   must issue its collectives in the same order, which concurrent stages would not), or
//!   `MMLATENT_SIDE_BY_SIDE=0` in the environment (each stage then gets every thread).
//! - **Jobs must not draw from libtorch's global generator**: there is one per process and the
//!   training loop reseeds it at every step, so side-by-side stages that draw would take each
//!   other's numbers. MLD's autoencoders draw nothing (their data order comes from the loader's
//!   own generator).
//!
//! Relies on libtorch's OpenMP backend (the PyPI wheels' on Linux), whose thread count is a
//! per-thread setting: `tch::set_num_threads` on a job's thread changes that thread's parallel
//! regions only. The shared parts of a run (its metrics files, the progress display) are safe to
//! use from several threads.

use crate::interrupt;
use anyhow::Result;
use std::sync::Mutex;
use tch::Device;

/// One stage's training, ready to move to its own thread.
pub type Job<'a> = Box<dyn FnOnce() -> Result<()> + Send + 'a>;

/// The libtorch intra-op thread count of each of `jobs` independent jobs in a process of
/// `threads` threads on `device` (see the module doc); `None`: one job after another, each with
/// every thread.
pub fn plan(jobs: usize, threads: i32, device: Device) -> Option<Vec<i32>> {
    let threads = threads.max(1);
    let switched_off = std::env::var("MMLATENT_SIDE_BY_SIDE").is_ok_and(|v| v.trim() == "0");
    if jobs < 2 || threads < 2 || device != Device::Cpu || crate::parallel::world() > 1 || switched_off {
        return None;
    }
    let (share, extra) = (threads as usize / jobs, threads as usize % jobs);
    Some((0..jobs).map(|i| (share + usize::from(i < extra)).max(1) as i32).collect())
}

/// Runs `jobs` (stages that share no variables) according to [`plan`] on `device`, returning
/// once every job has ended; see the module doc for stopping and errors.
pub fn run(jobs: Vec<Job<'_>>, device: Device) -> Result<()> {
    let threads = tch::get_num_threads();
    let Some(shares) = plan(jobs.len(), threads, device) else {
        return jobs.into_iter().try_for_each(|job| job());
    };
    let (fewest, most) = (shares.iter().min().copied().unwrap_or(1), shares.iter().max().copied().unwrap_or(1));
    let each = if fewest == most { format!("{most}") } else { format!("{fewest}–{most}") };
    let plural = if most == 1 { "" } else { "s" };
    eprintln!("{} independent stages side by side on {threads} threads: {each} thread{plural} each", jobs.len());
    let group = interrupt::Group::default();
    let failures: Mutex<Vec<(usize, anyhow::Error)>> = Mutex::default();
    std::thread::scope(|scope| {
        for ((index, job), share) in jobs.into_iter().enumerate().zip(shares) {
            let (group, failures) = (&group, &failures);
            scope.spawn(move || {
                tch::set_num_threads(share);
                let _member = group.join();
                if let Err(error) = job() {
                    group.stop();
                    failures.lock().unwrap_or_else(|p| p.into_inner()).push((index, error));
                }
            });
        }
    });
    // A job's set_num_threads also set the count new threads start with: put it back.
    tch::set_num_threads(threads);
    let mut failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort_by_key(|(index, _)| *index);
    let first_real = failures.iter().position(|(_, e)| !interrupt::is_interrupted(e));
    match first_real.or((!failures.is_empty()).then_some(0)) {
        None => Ok(()),
        Some(i) => {
            let (_, error) = failures.remove(i);
            // The stages stopped beside it (each wrote a set), so that the user knows where all are.
            for (_, other) in &failures {
                if let Some(stop) = other.chain().find_map(|e| e.downcast_ref::<interrupt::Interrupted>()) {
                    let (stage, step, total, set) = (&stop.stage, stop.step, stop.total, stop.set.display());
                    eprintln!("stage {stage} also stopped, after step {step} of {total}, saved in {set}");
                }
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_share_the_threads_and_fall_back_to_one_at_a_time() {
        let cpu = Device::Cpu;
        assert_eq!(plan(5, 2, cpu), Some(vec![1; 5]));
        assert_eq!(plan(3, 2, cpu), Some(vec![1; 3]));
        assert_eq!(plan(5, 16, cpu), Some(vec![4, 3, 3, 3, 3]));
        assert_eq!(plan(2, 5, cpu), Some(vec![3, 2]));
        assert_eq!(plan(5, 1, cpu), None);
        assert_eq!(plan(1, 8, cpu), None);
        assert_eq!(plan(5, 8, Device::Cuda(0)), None);
    }

    /// Every job runs once, all at once (each waits for the others before it ends), each on its
    /// own thread with its own intra-op thread count; the caller's count is restored; the first
    /// failure in job order is returned.
    #[test]
    fn jobs_run_at_once_with_their_share_of_threads() {
        let before = tch::get_num_threads();
        tch::set_num_threads(2);
        let seen: Mutex<Vec<(usize, i32, std::thread::ThreadId)>> = Mutex::default();
        let all_running = std::sync::Barrier::new(4);
        let jobs: Vec<Job> = (0..4)
            .map(|i| {
                let (seen, all_running) = (&seen, &all_running);
                Box::new(move || {
                    all_running.wait();
                    seen.lock().unwrap().push((i, tch::get_num_threads(), std::thread::current().id()));
                    anyhow::ensure!(i != 1 && i != 3, "job {i} failed");
                    Ok(())
                }) as Job
            })
            .collect();
        let error = run(jobs, Device::Cpu).unwrap_err();
        assert_eq!(error.to_string(), "job 1 failed");
        let seen = seen.into_inner().unwrap();
        let mut done: Vec<usize> = seen.iter().map(|s| s.0).collect();
        done.sort();
        assert_eq!(done, [0, 1, 2, 3]);
        assert!(seen.iter().all(|s| s.1 == 1), "{seen:?}");
        assert!(seen.iter().all(|s| s.2 != std::thread::current().id()));
        assert_eq!(tch::get_num_threads(), 2);
        tch::set_num_threads(before);
    }
}
