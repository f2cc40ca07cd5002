//! Times one training step of each VAE kind on the bundled default dataset:
//! `cargo run --release -p mmlatent-vae --example step_cost -- <threads> <batch> <kind>… [key=value…]`.

use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_train::config::DataConfig;
use mmlatent_vae::config::{VaeConfig, VaeKind};
use mmlatent_vae::VaeModel;
use std::time::Instant;
use tch::Device;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: i32 = args.first().map_or(Ok(2), |s| s.parse())?;
    let batch: usize = args.get(1).map_or(Ok(128), |s| s.parse())?;
    tch::set_num_threads(threads);
    let kinds: Vec<&String> = args.iter().skip(2).filter(|a| !a.contains('=')).collect();
    let table: String = args.iter().skip(2).filter(|a| a.contains('=')).map(|a| format!("{a}\n")).collect();
    let ds = mmlatent_data::open(&DataConfig::bundled())?;
    let b = ds.train.head(&ds.modalities, batch, Device::Cpu);
    for kind in kinds {
        let kind = VaeKind::parse(kind)?;
        let cfg = VaeConfig::parse(kind, toml::from_str(&table)?)?;
        let model = VaeModel::new(cfg, &ds.modalities, Device::Cpu)?;
        let mut opt = Adam::new(&model.vs, AdamConfig::adam(1e-3));
        let mut times = vec![];
        for step in 0..8 {
            let t0 = Instant::now();
            model.train_step(&mut opt, &b.items, step)?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("{:<10} {:>8.1} ms/step (min {:.1})", kind.name(), times[4], times[0]);
    }
    Ok(())
}
