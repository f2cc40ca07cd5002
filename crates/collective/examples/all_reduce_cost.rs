//! Times one all-reduce of a flat f32 buffer between two ranks (two threads of this process) on
//! loopback: `cargo run --release -p mmlatent-collective --example all_reduce_cost [MiB…]`.
use mmlatent_collective::{Backend, ProcessGroup};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let sizes: Vec<f64> = std::env::args().skip(1).map(|a| a.parse().expect("sizes in MiB")).collect();
    let sizes = if sizes.is_empty() { vec![0.001, 1.0, 4.0, 16.0] } else { sizes };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let sizes = sizes.clone();
            std::thread::spawn(move || -> anyhow::Result<Vec<(f64, f64)>> {
                let group = ProcessGroup::join("127.0.0.1", port, rank, 2, Duration::from_secs(30), Backend::Gloo)?;
                let mut out = vec![];
                for mib in sizes {
                    let n = ((mib * 1024.0 * 1024.0 / 4.0) as i64).max(1);
                    let t = Tensor::ones([n], (Kind::Float, tch::Device::Cpu));
                    group.all_reduce_sum(std::slice::from_ref(&t))?;
                    let reps = 20;
                    let start = Instant::now();
                    for _ in 0..reps {
                        group.all_reduce_sum(std::slice::from_ref(&t))?;
                    }
                    out.push((mib, start.elapsed().as_secs_f64() * 1e3 / reps as f64));
                }
                Ok(out)
            })
        })
        .collect();
    let results: Vec<_> = ranks.into_iter().map(|h| h.join().expect("rank thread")).collect::<Result<_, _>>()?;
    for (mib, ms) in &results[0] {
        println!("{mib:>8.3} MiB: {ms:.2} ms per all-reduce");
    }
    Ok(())
}
