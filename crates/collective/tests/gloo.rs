//! Two ranks in one process (one thread each) on loopback: the collectives compute what they
//! should, and a job that cannot form fails within its timeout instead of hanging.
use mmlatent_collective::ProcessGroup;
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
                let group = ProcessGroup::join("127.0.0.1", port, rank, 2, Duration::from_secs(30)).unwrap();
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
    let err =
        ProcessGroup::join("127.0.0.1", port, 1, 2, Duration::from_secs(3)).err().expect("nobody serves the port");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let message = format!("{err:#}");
    assert!(message.contains(&format!("127.0.0.1:{port}")) && message.contains("rank 1 of 2"), "{message}");
}

#[test]
fn a_job_missing_a_rank_fails_within_the_timeout() {
    let port = free_port();
    let start = Instant::now();
    let err = ProcessGroup::join("127.0.0.1", port, 0, 2, Duration::from_secs(3)).err().expect("rank 1 never comes");
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    assert!(format!("{err:#}").contains("rank 0 of 2"), "{err:#}");
}
