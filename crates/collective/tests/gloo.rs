//! Two ranks in one process (one thread each) on loopback: the collectives compute what they
//! should, and a job that cannot form fails within its timeout instead of hanging.
//!
//! Two ranks in one process means two process groups in one process, which a real job never has,
//! and libtorch's flight recorder (a ring of recent collectives kept for debugging hangs, on by
//! default) is not safe with that: it adds a group to a `std::map` before taking its lock
//! (`FlightRecorder::recordWithResetEnabled`, FlightRecorderDetail.hpp), so the two ranks' first
//! collectives at once corrupted the map and crashed the test binary (SIGSEGV in
//! `_Rb_tree_insert_and_rebalance`, found in a core dump; about one run in fifteen). Every test
//! turns it off first ([`setup`]). The tests that form jobs also run one at a time
//! ([`setup`]'s guard), so that no two rendezvous share the loopback at once.
use mmlatent_collective::{Backend, ProcessGroup};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};
use tch::Tensor;

/// Turns libtorch's flight recorder off before libtorch reads its setting (every test calls it
/// before touching libtorch), and returns a guard held by the tests that form jobs (or fail to),
/// so that no two overlap.
fn setup() -> MutexGuard<'static, ()> {
    static FLIGHT_RECORDER_OFF: Once = Once::new();
    FLIGHT_RECORDER_OFF.call_once(|| std::env::set_var("TORCH_FR_BUFFER_SIZE", "0"));
    static JOBS: Mutex<()> = Mutex::new(());
    JOBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `body` run as ranks 0 and 1 of a Gloo job on loopback, a thread each; their results by rank.
fn on_two_ranks<T: Send + 'static>(body: fn(usize, ProcessGroup) -> T) -> Vec<T> {
    let port = free_port();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let group =
                    ProcessGroup::join("127.0.0.1", port, rank, 2, Duration::from_secs(30), Backend::Gloo).unwrap();
                body(rank, group)
            })
        })
        .collect();
    ranks.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn two_ranks_sum_broadcast_and_meet() {
    let _one = setup();
    let ranks = on_two_ranks(|rank, group| {
        let r = rank as f32;
        let a = Tensor::from_slice(&[1.0f32 + r, 2.0 + r]);
        let b = Tensor::from_slice(&[10.0f32 * (r + 1.0)]);
        group.all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()]).unwrap();
        let c = Tensor::from_slice(&[r, r, r]);
        group.broadcast(&[c.shallow_clone()], 1).unwrap();
        group.barrier().unwrap();
        (Vec::<f32>::try_from(&a).unwrap(), Vec::<f32>::try_from(&b).unwrap(), Vec::<f32>::try_from(&c).unwrap())
    });
    for (a, b, c) in ranks {
        assert_eq!(a, vec![3.0, 5.0]);
        assert_eq!(b, vec![30.0]);
        assert_eq!(c, vec![1.0, 1.0, 1.0]);
    }
}

#[test]
fn an_unreachable_rendezvous_fails_within_the_timeout() {
    let _one = setup();
    let port = free_port();
    let start = Instant::now();
    let err = ProcessGroup::join("127.0.0.1", port, 1, 2, Duration::from_secs(3), Backend::Gloo)
        .err()
        .expect("nobody serves the port");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let message = format!("{err:#}");
    assert!(message.contains(&format!("127.0.0.1:{port}")) && message.contains("rank 1 of 2"), "{message}");
}

#[test]
fn a_job_missing_a_rank_fails_within_the_timeout() {
    let _one = setup();
    let port = free_port();
    let start = Instant::now();
    let err = ProcessGroup::join("127.0.0.1", port, 0, 2, Duration::from_secs(3), Backend::Gloo)
        .err()
        .expect("rank 1 never comes");
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    assert!(format!("{err:#}").contains("rank 0 of 2"), "{err:#}");
}

/// The NCCL path cannot run without a GPU, but its entry points into libtorch_cuda.so (looked up
/// by mangled name) must resolve once that library is loaded, and must not before.
#[test]
fn the_nccl_entry_points_resolve_once_libtorch_cuda_is_loaded() {
    drop(setup());
    let before = mmlatent_collective::nccl_available();
    let name = std::ffi::CString::new("libtorch_cuda.so").unwrap();
    // SAFETY: dlopen with a valid C string; the handle stays open.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        eprintln!("skipped: this libtorch has no libtorch_cuda.so (a CPU-only build)");
        return;
    }
    let err = before.expect_err("found before libtorch_cuda.so was loaded");
    assert!(format!("{err:#}").contains("libtorch_cuda.so is not loaded"), "{err:#}");
    mmlatent_collective::nccl_available().unwrap();
}

/// The order read off a graph is the order backward makes the gradients ready: the last layer
/// first, a parameter the loss does not reach last.
#[test]
fn the_backward_order_is_read_off_the_graph() {
    drop(setup());
    let x = Tensor::from_slice(&[1.0f32, -2.0, 0.5]).view([1, 3]);
    let w1 = Tensor::from_slice(&[0.3f32; 6]).view([3, 2]).set_requires_grad(true);
    let unused = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
    let w2 = Tensor::from_slice(&[0.7f32, -0.1]).view([2, 1]).set_requires_grad(true);
    let b2 = Tensor::from_slice(&[0.2f32]).set_requires_grad(true);
    let loss = (x.matmul(&w1).tanh().matmul(&w2) + &b2).square().sum(tch::Kind::Float);
    let params = [w1, unused, w2, b2].map(|t| t.shallow_clone());
    let order = mmlatent_collective::backward_ready_order(&loss, &params).unwrap();
    assert_eq!(order, vec![3, 2, 0, 1]);
}

/// Two ranks back-propagate different losses through the DDP reducer, over several steps, with
/// a bucket per parameter: each gradient comes back as the mean of the two ranks' own (zeros on a
/// rank whose graph skips the parameter), and a parameter no rank reaches keeps no gradient.
#[test]
fn the_reducer_averages_gradients_during_backward() {
    let _one = setup();
    let results = on_two_ranks(|rank, group| {
        let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
        let only_rank1 = Tensor::from_slice(&[1.0f32, -1.0]).set_requires_grad(true);
        let never = Tensor::from_slice(&[7.0f32]).set_requires_grad(true);
        let params = [&w, &b, &only_rank1, &never].map(|t| t.shallow_clone());
        let mut reducer = group.gradient_reducer(&params, &[3, 2, 1, 0], 8, 4).unwrap();
        let r = rank as f32;
        let mut steps = vec![];
        for step in 0..3 {
            let s = step as f32;
            let x = Tensor::from_slice(&[r + 1.0, 2.0 - s, 3.0 * r]);
            let loss = || {
                let mut l = ((&w * &x).sum(tch::Kind::Float) + &b * f64::from(r + s + 1.0)).square();
                if rank == 1 {
                    l += only_rank1.square().sum(tch::Kind::Float) * f64::from(s + 1.0);
                }
                l.sum(tch::Kind::Float)
            };
            let local = Tensor::run_backward(&[loss()], &params[..3], false, false);
            reducer.backward(&loss()).unwrap();
            let reduced: Vec<Option<Vec<f32>>> = params
                .iter()
                .map(|p| p.grad())
                .map(|g| g.defined().then(|| Vec::<f32>::try_from(&g).unwrap()))
                .collect();
            let local: Vec<Vec<f32>> = local
                .iter()
                .zip(&params)
                .map(|(g, p)| if g.defined() { Vec::try_from(g).unwrap() } else { vec![0.0; p.numel()] })
                .collect();
            steps.push((local, reduced));
        }
        steps
    });
    for (step, ((local0, reduced0), (local1, reduced1))) in results[0].iter().zip(&results[1]).enumerate() {
        assert_eq!(reduced0, reduced1, "step {step}: the ranks hold different gradients");
        for i in 0..3 {
            let mean: Vec<f32> = local0[i].iter().zip(&local1[i]).map(|(a, b)| (a + b) / 2.0).collect();
            let got = reduced0[i].as_ref().expect("a reached parameter has a gradient");
            for (g, m) in got.iter().zip(&mean) {
                assert!((g - m).abs() <= 1e-5 * m.abs().max(1.0), "step {step}, parameter {i}: {got:?} vs {mean:?}");
            }
        }
        assert!(reduced0[3].is_none(), "step {step}: a parameter no rank reaches got a gradient");
    }
}
