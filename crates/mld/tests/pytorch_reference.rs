//! MLD's stage 2 against a PyTorch implementation that follows the reference
//! (`scripts/mld_reference.py`, after MustaphaBounoua/MLD's `mm_sde.py`): on the same score-network
//! weights, batch, times, noise and masks, the masked multi-time loss (with a conditioned
//! modality and absent ones) and one Euler–Maruyama step of the reverse SDE agree to float
//! tolerance; without absent modalities, the loss is the reference's own reduction (the rescaled
//! sum) divided by B·D. Fails, never skips, without the project's Python environment.

use mmlatent_mld::config::ScoreConfig;
use mmlatent_mld::sampler::{euler_maruyama_step, Conditioning, Layout};
use mmlatent_mld::score_net::ScoreNet;
use mmlatent_mld::sde::VpSde;
use mmlatent_mld::train::masked_loss;
use mmlatent_train::checkpoint::{save_tensors, save_varstore};
use std::path::Path;
use std::process::Command;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn masked_loss_and_euler_step_agree_with_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh (this test needs PyTorch)", python.display());
    tch::set_num_threads(1);
    let _generator = mmlatent_core::testing::global_generator();
    tch::manual_seed(21);
    // Three modalities of 6, 4 and 5 latent dimensions; a two-level network with a wider level.
    let sizes = vec![6i64, 4, 5];
    let layout = Layout::new(sizes.clone());
    let cfg = ScoreConfig { width: Some(32), time_dim: 16, mults: vec![1, 2], groups: 4, ..ScoreConfig::default() };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ScoreNet::new(&(vs.root() / "score"), &layout, &cfg);
    // The output layer starts at zero; give it weights so that the whole network is exercised.
    tch::no_grad(|| {
        for (name, mut w) in vs.variables() {
            if name.starts_with("score.out.") {
                w.copy_(&(w.randn_like() * 0.1));
            }
        }
    });
    let sde = VpSde::new(cfg.beta_min, cfg.beta_max);
    let (b, d) = (16i64, layout.total());
    let opts = (Kind::Float, Device::Cpu);
    let x0 = Tensor::randn([b, d], opts);
    let t = Tensor::rand([b], opts) * 0.98 + 0.01;
    let z = Tensor::randn([b, d], opts);
    let given = Tensor::from_slice(&[false, true, false]).view([1, 3]);
    let absent = Tensor::rand([b, 3], opts).lt(0.3);
    let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
    let _guard = tch::no_grad_guard();
    let loss = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &given, Some(&absent)).double_value(&[]);
    let loss_without = masked_loss(&den, &sde, &layout, &x0, (&t, &z), &given, None).double_value(&[]);
    // One sampler step at t = 0.6, with m1 given.
    let (step_t, dt) = (0.6, 0.02);
    let x = Tensor::randn([b, d], opts);
    let cond = Conditioning::new(&layout, &[false, true, false], x0.shallow_clone());
    tch::manual_seed(5);
    let stepped = euler_maruyama_step(&den, &sde, &cond, &x, step_t, dt, true);
    tch::manual_seed(5);
    let noise = x.randn_like(); // the same draw as the step's
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("score.safetensors");
    save_varstore(&vs, &weights).unwrap();
    let inputs = dir.path().join("inputs.safetensors");
    let flags = |f: &Tensor| f.to_kind(Kind::Float);
    let sizes_t = Tensor::from_slice(&sizes).to_kind(Kind::Float);
    save_tensors(
        &[
            ("x0", &x0),
            ("t", &t),
            ("z", &z),
            ("given", &flags(&given)),
            ("absent", &flags(&absent)),
            ("x", &x),
            ("noise", &noise),
            ("sizes", &sizes_t),
        ],
        &inputs,
    )
    .unwrap();
    let out = Command::new(&python)
        .arg(root.join("scripts/mld_reference.py"))
        .args(["--weights", weights.to_str().unwrap(), "--inputs", inputs.to_str().unwrap()])
        .args(["--width", "32", "--time-dim", "16", "--mults", "1", "2", "--groups", "4"])
        .args(["--t", &step_t.to_string(), "--dt", &dt.to_string()])
        .current_dir(root.join("scripts"))
        .output()
        .unwrap();
    assert!(out.status.success(), "mld_reference.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |ours: f64, theirs: f64, what: &str| {
        assert!((ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0), "{what}: mmlatent {ours}, reference {theirs}");
    };
    close(loss, reference["loss"].as_f64().unwrap(), "masked loss with absent modalities");
    close(loss_without, reference["loss_without_absent"].as_f64().unwrap(), "masked loss");
    let reduction =
        reference["reference_loss_without_absent"].as_f64().unwrap() / reference["batch_times_dim"].as_f64().unwrap();
    close(loss_without, reduction, "masked loss against the reference's rescaled sum / (B·D)");
    let theirs: Vec<f64> = reference["stepped"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let ours = mmlatent_core::host::to_vec::<f64>(&stepped).unwrap();
    assert_eq!(ours.len(), theirs.len());
    let gap = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(gap < 1e-5, "Euler–Maruyama step: largest difference {gap}");
    // The given modality is held at its clean latents.
    let (offset, size) = layout.span(1);
    assert!(stepped.narrow(1, offset, size).equal(&x0.narrow(1, offset, size)));
    // Absent modalities change the loss (the check above would not see a mask that ignores them).
    assert!((loss - loss_without).abs() > 1e-4, "{loss} vs {loss_without}");
}
