//! The sampler curve of a trained MLD run: coherence against score evaluations per sample, for
//! Euler–Maruyama and for Heun on the probability-flow ODE (and RePaint when asked).
//!
//! `cargo run --release -p mmlatent-mld --example sampler_curve -- RUN [N_ITEMS] [--classifiers DIR] [--quick] [--repaint] [--recon-only] [--joint-only] [--joint-guidance W,W,…]`
//!
//! `--joint-only` skips the conditional subsets (joint coherence and the joint latents' spread
//! only; with `--repaint`, ancestral 50 steps beside the reference's protocol, RePaint joint
//! sampling over 250 steps; with `--joint-guidance 0,1,2`, the run's sampler at each joint
//! guidance weight).
//!
//! Uses the dataset's evaluation classifiers (`DIR`, default `runs/classifiers/<dataset>`,
//! trained there on first use). Prints one line per
//! sampler setting: NFE, mean conditional coherence (over all given-subsets), joint coherence,
//! and seconds per 1,000 conditional samples.

use anyhow::{Context, Result};
use mmlatent_core::model::LatentView;
use mmlatent_eval::classifier::{default_dir, ClassifierOptions, Classifiers};
use mmlatent_eval::coherence::{conditional_coherence, joint_coherence};
use mmlatent_mld::config::{MldConfig, SamplerMethod};
use mmlatent_mld::guidance::{JointGuidance, OldKeys};
use mmlatent_mld::model::MldModel;
use mmlatent_train::run::RunDir;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run_path = args.first().context("usage: sampler_curve RUN [N_ITEMS] [--repaint]")?;
    let items: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let with_repaint = args.iter().any(|a| a == "--repaint");
    let classifier_dir =
        args.iter().position(|a| a == "--classifiers").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let run = RunDir::open(std::path::Path::new(run_path))?;
    let experiment = run.experiment()?;
    mmlatent_core::device::set_threads(experiment.train.threads);
    tch::manual_seed(0);
    let dataset = mmlatent_data::open(&experiment.data)?;
    let cfg: MldConfig = experiment.model_config()?;
    let mut model = MldModel::load(&run, &dataset.modalities, &cfg, Device::Cpu)?;
    let (classifiers, trained) = Classifiers::load_or_train(
        &classifier_dir.unwrap_or_else(|| default_dir(&dataset.name, &experiment.data)),
        &dataset,
        &ClassifierOptions::default(),
    )?;
    eprintln!(
        "classifiers ({}): test accuracy {:?}",
        if trained { "trained" } else { "loaded" },
        classifiers.test_accuracy()
    );
    let _guard = tch::no_grad_guard();
    // The ceiling set by stage 1: the classifiers' accuracy on autoencoder reconstructions.
    let real = dataset.test.head(&dataset.modalities, items, Device::Cpu);
    for (m, ae) in model.autoencoders.iter().enumerate() {
        let rec = ae.decode(&ae.encode(&real.items[m]));
        eprintln!(
            "{}: classifier accuracy on reconstructions {:.3}",
            ae.spec.name,
            classifiers.accuracy(m, &rec, &real.labels)?
        );
    }
    if args.iter().any(|a| a == "--recon-only") {
        return Ok(());
    }
    // `--quick`: a shorter curve (fewer points per sampler).
    let quick = args.iter().any(|a| a == "--quick");
    let (euler, heun, ancestral): (&[usize], &[usize], &[usize]) = if quick {
        (&[10, 50, 250], &[5, 13], &[10, 25, 50])
    } else {
        (&[10, 25, 50, 100, 250], &[3, 5, 8, 13, 18, 25], &[5, 10, 25, 50, 100])
    };
    let joint_weights: Vec<f64> = match args.iter().position(|a| a == "--joint-guidance") {
        Some(i) => args
            .get(i + 1)
            .context("--joint-guidance needs weights, e.g. 0,1,2")?
            .split(',')
            .map(|w| w.trim().parse().with_context(|| format!("--joint-guidance: `{w}` is not a number")))
            .collect::<Result<_>>()?,
        None => vec![match model.sampler.joint_guidance {
            JointGuidance::Mutual(w) => w.weight,
            JointGuidance::None => 0.0,
        }],
    };
    let mut settings = vec![];
    for (method, list) in
        [(SamplerMethod::Euler, euler), (SamplerMethod::Heun, heun), (SamplerMethod::Ancestral, ancestral)]
    {
        settings.extend(list.iter().map(|&steps| (method, steps, false)));
    }
    let joint_only = args.iter().any(|a| a == "--joint-only");
    if joint_only && args.iter().any(|a| a == "--joint-guidance") {
        settings = vec![(model.sampler.method, model.sampler.steps, model.sampler.repaint)];
    } else if joint_only && with_repaint {
        // The default sampler beside the reference's protocol.
        settings = vec![(SamplerMethod::Ancestral, 50, false), (SamplerMethod::Euler, 250, true)];
    } else if with_repaint {
        settings.push((SamplerMethod::Euler, 100, true));
    }
    println!(
        "{:<8} {:>6} {:>8} {:>6} {:>6} {:>10} {:>10} {:>12}",
        "sampler", "steps", "repaint", "jointw", "NFE", "cond coh", "joint coh", "s/1000 cond"
    );
    let settings: Vec<_> = settings.into_iter().flat_map(|s| joint_weights.iter().map(move |&w| (s, w))).collect();
    for ((method, steps, repaint), mutual_guidance) in settings {
        // Mutual guidance of this weight (joint and, unless other guidance is set, conditional).
        let with_weight = OldKeys { mutual_guidance: Some(mutual_guidance), ..OldKeys::default() };
        (model.sampler.joint_guidance, model.sampler.conditional_guidance) = with_weight
            .apply(model.sampler.joint_guidance, model.sampler.conditional_guidance)
            .map_err(anyhow::Error::msg)?;
        model.sampler.method = method;
        model.sampler.steps = steps;
        model.sampler.repaint = repaint;
        let start = Instant::now();
        let (mean, per_1000) = if joint_only {
            (f64::NAN, f64::NAN)
        } else {
            let scores = conditional_coherence(&model, &classifiers, &dataset.test, items, 512)?;
            let seconds = start.elapsed().as_secs_f64();
            let n_subsets = (1usize << dataset.num_modalities()) - 2;
            let mean = scores.entries.iter().map(|e| e.value).sum::<f64>() / scores.entries.len() as f64;
            (mean, seconds / (items * n_subsets) as f64 * 1000.0)
        };
        let joint = joint_coherence(&model, &classifiers, items as i64, 512)?;
        let latents = model.sample_joint_latents(items as i64)?;
        eprintln!(
            "{method:?} {steps} repaint {repaint} joint guidance {mutual_guidance}: joint latent std per modality {:?}",
            (0..dataset.num_modalities())
                .map(|m| {
                    let (offset, size) = model.layout.span(m);
                    (latents.narrow(1, offset, size).std(true).double_value(&[]) * 100.0).round() / 100.0
                })
                .collect::<Vec<_>>()
        );
        println!(
            "{:<8} {steps:>6} {repaint:>8} {mutual_guidance:>6} {:>6} {mean:>10.3} {joint:>10.3} {per_1000:>12.2}",
            format!("{method:?}"),
            model.score_evaluations()
        );
    }
    Ok(())
}
