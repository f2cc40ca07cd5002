//! Two ranks in one process (one thread each) on loopback: the collectives compute what they
//! should, and a job that cannot form fails within its timeout instead of hanging.
use mmlatent_collective::{Backend, ProcessGroup};
use std::time::{Duration, Instant};
use tch::Tensor;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn two_ranks_sum_broadcast_and_meet() {
    let port = free_port();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let group =
                    ProcessGroup::join("127.0.0.1", port, rank, 2, Duration::from_secs(30), Backend::Gloo).unwrap();
                let r = rank as f32;
                let a = Tensor::from_slice(&[1.0f32 + r, 2.0 + r]);
                let b = Tensor::from_slice(&[10.0f32 * (r + 1.0)]);
                group.all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()]).unwrap();
                let c = Tensor::from_slice(&[r, r, r]);
                group.broadcast(&[c.shallow_clone()], 1).unwrap();
                group.barrier().unwrap();
                (
                    Vec::<f32>::try_from(&a).unwrap(),
                    Vec::<f32>::try_from(&b).unwrap(),
                    Vec::<f32>::try_from(&c).unwrap(),
                )
            })
        })
        .collect();
    for handle in ranks {
        let (a, b, c) = handle.join().unwrap();
        assert_eq!(a, vec![3.0, 5.0]);
        assert_eq!(b, vec![30.0]);
        assert_eq!(c, vec![1.0, 1.0, 1.0]);
    }
}

#[test]
fn an_unreachable_rendezvous_fails_within_the_timeout() {
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
