//! Where the time of one score-network training step goes (forward, backward, Adam), at the
//! benchmark's sizes, one thread.
//! `cargo run --release -p mmlatent-bench --example step_parts [-- small]`
use mmlatent_bench::mld::score_sizes;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_mld::sampler::Layout;
use mmlatent_mld::score_net::ScoreNet;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    tch::set_num_threads(1);
    let big: bool = std::env::args().nth(1).as_deref() != Some("small");
    let (m, per, cfg) = score_sizes(big);
    let m = m as i64;
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ScoreNet::new(&vs.root(), &Layout::new(vec![per; m as usize]), &cfg);
    let mut opt = Adam::new(&vs, AdamConfig::adam(1e-4));
    let x = Tensor::randn([128, m * per], (Kind::Float, Device::Cpu));
    let tau = Tensor::rand([128, m], (Kind::Float, Device::Cpu));
    let vars: Vec<Tensor> = {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|x| x.1).collect()
    };
    let (mut f, mut b, mut a) = (0.0, 0.0, 0.0);
    for i in 0..6 {
        let t0 = Instant::now();
        let loss = (net.forward(&x, &tau) - &x).square().mean(Kind::Float);
        let t1 = Instant::now();
        let grads = Tensor::run_backward(&[&loss], &vars, false, false);
        let t2 = Instant::now();
        drop(grads);
        opt.backward_step(&(net.forward(&x, &tau) - &x).square().mean(Kind::Float))?;
        let t3 = Instant::now();
        if i > 0 {
            f += (t1 - t0).as_secs_f64();
            b += (t2 - t1).as_secs_f64();
            a += (t3 - t2).as_secs_f64();
        }
    }
    println!("forward {:.1} ms, backward {:.1} ms, full step {:.1} ms", f * 200.0, b * 200.0, a * 200.0);
    Ok(())
}
