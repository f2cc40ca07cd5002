//! Where a trained MLD score network errs: its masked loss on held-out (test) latents by noise
//! level and by the number of given modalities, with the same noise draws for every row.
//!
//! `cargo run --release -p mmlatent-mld --example score_profile -- RUN [N_ITEMS]`
//!
//! Rows `t ≈ …`: joint (nothing given) at a fixed time. Rows `given k`: t uniform on [t_ε, 1],
//! averaged over every subset of k given modalities (k = 0 is joint training's loss).

use anyhow::{Context, Result};
use mmlatent_core::model::LatentView;
use mmlatent_mld::config::MldConfig;
use mmlatent_mld::model::{covariance, MldModel};
use mmlatent_mld::train::{evaluation_loss, fixed_draws, held_out_loss};
use mmlatent_train::run::RunDir;
use tch::{Device, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run_path = args.first().context("usage: score_profile RUN [N_ITEMS]")?;
    let items: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let run = RunDir::open(std::path::Path::new(run_path))?;
    let experiment = run.experiment()?;
    mmlatent_core::device::set_threads(experiment.train.threads);
    let dataset = mmlatent_data::open(&experiment.data)?;
    let cfg: MldConfig = experiment.model_config()?;
    let model = MldModel::load(&run, &dataset.modalities, &cfg, Device::Cpu)?;
    let real = dataset.test.head(&dataset.modalities, items, Device::Cpu);
    let x0 = model.encode(&real.items)?;
    let (n, d) = (x0.size()[0], x0.size()[1]);
    let den = |x: &Tensor, tau: &Tensor| model.net.forward(x, tau);
    let (t, z) = fixed_draws(n, d, model.t_eps, 7, Device::Cpu);
    let m = model.layout.num_modalities();
    println!(
        "held-out loss (training's validation metric): {:.4}",
        held_out_loss(&den, &model.sde, &model.layout, &x0, model.t_eps, 7)
    );
    // The spectrum of each modality's block in the diffused space: directions much narrower than
    // 1 are where the noise must be removed most precisely at low noise levels.
    println!("{:<6} {:>9} {:>9} {:>9} {:>9}", "block", "λ min", "λ median", "λ max", "λ < 0.1");
    for k in 0..m {
        let (offset, size) = model.layout.span(k);
        let block = x0.narrow(1, offset, size).to_kind(tch::Kind::Double);
        let eig = Vec::<f64>::try_from(covariance(&block).linalg_eigvalsh("L"))?;
        let narrow = eig.iter().filter(|&&l| l < 0.1).count();
        println!("{:<6} {:>9.4} {:>9.4} {:>9.3} {:>9}", k, eig[0], eig[eig.len() / 2], eig[eig.len() - 1], narrow);
    }
    println!("{:<14} {:>10}", "joint at t", "loss");
    for tt in [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0] {
        let fixed = t.full_like(tt);
        let loss = evaluation_loss(&den, &model.sde, &model.layout, &x0, (&fixed, &z), &vec![false; m], 512);
        println!("{:<14} {loss:>10.4}", format!("t = {tt}"));
    }
    println!("{:<14} {:>10}", "given k", "loss");
    for k in 0..m {
        let subsets: Vec<Vec<bool>> = if k == 0 {
            vec![vec![false; m]]
        } else {
            let of_size = mmlatent_core::modality::subsets(m).into_iter().filter(|s| s.len() == k);
            of_size.map(|s| (0..m).map(|i| s.contains(&i)).collect()).collect()
        };
        let mean = subsets
            .iter()
            .map(|g| evaluation_loss(&den, &model.sde, &model.layout, &x0, (&t, &z), g, 512))
            .sum::<f64>()
            / subsets.len() as f64;
        println!("{:<14} {mean:>10.4}", format!("given {k}"));
    }
    Ok(())
}
