//! Time of one Adam update over 72M parameters (the reference-size MLD score network):
//! mmlatent's fused update against libtorch's own (tch) Adam, on the current thread setting.
//! `cargo run --release -p mmlatent-core --example adam_cost -- [threads]`

use mmlatent_core::optim::{Adam, AdamConfig};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind};

fn main() -> anyhow::Result<()> {
    let threads: i32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1);
    tch::set_num_threads(threads);
    let vs = nn::VarStore::new(Device::Cpu);
    for i in 0..30 {
        let _ = vs.root().var(&format!("w{i}"), &[1536, 1536], nn::Init::Randn { mean: 0.0, stdev: 0.02 });
        let _ = vs.root().var(&format!("b{i}"), &[1536], nn::Init::Const(0.0));
    }
    let loss = || vs.trainable_variables().iter().map(|t| (t * 0.5).sum(Kind::Float)).sum::<tch::Tensor>();
    let time = |f: &mut dyn FnMut()| {
        f();
        let start = Instant::now();
        for _ in 0..5 {
            f();
        }
        start.elapsed().as_secs_f64() * 1e3 / 5.0
    };
    loss().backward();
    let mut ours = Adam::new(&vs, AdamConfig::adam(1e-4));
    let fused = time(&mut || ours.step().expect("a CPU update cannot fail"));
    let mut theirs = nn::Adam::default().build(&vs, 1e-4)?;
    let libtorch = time(&mut || theirs.step());
    let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    println!("{n} parameters, {threads} thread(s): fused {fused:.1} ms, libtorch Adam {libtorch:.1} ms");
    Ok(())
}
