//! The maths of the frame against closed forms: KL divergences, products of experts, the
//! subsets MoPoE mixes, and the estimators (IWAE with K = 1 is the ELBO).

use mmlatent_core::modality::subsets;
use mmlatent_core::testing::global_generator;
use mmlatent_core::ModalitySpec;
use mmlatent_vae::config::{VaeConfig, VaeKind};
use mmlatent_vae::dist::{mixture_log_prob, product_of_experts, Dist, DistKind};
use mmlatent_vae::estimator::{bound, Estimator};
use mmlatent_vae::VaeModel;
use std::f64::consts::PI;
use tch::{Device, Kind, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(v).to_kind(Kind::Float).view([1, -1])
}

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{a} vs {b}");
}

fn scalar(x: &Tensor) -> f64 {
    x.double_value(&[0])
}

#[test]
fn gaussian_kl_matches_the_closed_form_and_monte_carlo() {
    let _rng = global_generator();
    let (m1, s1, m2, s2) = ([0.3, -1.0], [0.5, 2.0], [1.0, 0.2], [1.5, 0.7]);
    let q = Dist { kind: DistKind::Gaussian, loc: t(&m1), scale: t(&s1) };
    let p = Dist { kind: DistKind::Gaussian, loc: t(&m2), scale: t(&s2) };
    let expect: f64 = (0..2)
        .map(|i| (s2[i] / s1[i]).ln() + (s1[i] * s1[i] + (m1[i] - m2[i]).powi(2)) / (2.0 * s2[i] * s2[i]) - 0.5)
        .sum();
    close(scalar(&q.kl(&p).unwrap()), expect, 1e-5);
    // Monte Carlo: E_q[log q − log p] over many samples agrees (checks sampling and densities).
    tch::manual_seed(0);
    let z = q.rsample_k(200_000);
    let mc = (q.log_prob(&z) - p.log_prob(&z)).mean(Kind::Float).double_value(&[]);
    close(mc, expect, 0.02);
    // Against the standard normal, and the log density at a point.
    let std_kl: f64 = (0..2).map(|i| 0.5 * (s1[i] * s1[i] + m1[i] * m1[i] - 1.0) - s1[i].ln()).sum();
    close(scalar(&q.kl_standard()), std_kl, 1e-5);
    let lp: f64 = (0..2).map(|i| -0.5 * ((0.0 - m1[i]) / s1[i]).powi(2) - s1[i].ln() - 0.5 * (2.0 * PI).ln()).sum();
    close(scalar(&q.log_prob(&t(&[0.0, 0.0]))), lp, 1e-5);
}

#[test]
fn laplace_kl_matches_the_closed_form_and_monte_carlo() {
    let _rng = global_generator();
    let (m1, b1, m2, b2) = ([0.3, -1.0], [0.5, 2.0], [1.0, 0.2], [1.5, 0.7]);
    let q = Dist { kind: DistKind::Laplace, loc: t(&m1), scale: t(&b1) };
    let p = Dist { kind: DistKind::Laplace, loc: t(&m2), scale: t(&b2) };
    let expect: f64 = (0..2)
        .map(|i| {
            let gap = (m1[i] - m2[i]).abs();
            (b2[i] / b1[i]).ln() + gap / b2[i] + b1[i] / b2[i] * (-gap / b1[i]).exp() - 1.0
        })
        .sum();
    close(scalar(&q.kl(&p).unwrap()), expect, 1e-5);
    tch::manual_seed(1);
    let z = q.rsample_k(200_000);
    let mc = (q.log_prob(&z) - p.log_prob(&z)).mean(Kind::Float).double_value(&[]);
    close(mc, expect, 0.02);
    // The sample scale matches: E|z − μ| = b.
    let spread = (z.select(-1, 1) + 1.0).abs().mean(Kind::Float).double_value(&[]);
    close(spread, 2.0, 0.02);
    // Mixed kinds have no closed form.
    let g = Dist::standard(DistKind::Gaussian, &t(&[0.0, 0.0]));
    assert!(q.kl(&g).is_err());
}

#[test]
fn laplace_encoder_scale_is_softmax_times_dimension() {
    let d = Dist::from_raw(DistKind::Laplace, t(&[0.0; 4]), &t(&[0.0, 0.0, 0.0, 2f64.ln()]));
    // softmax([0,0,0,ln 2]) = [1,1,1,2]/5, times D = 4.
    let got: Vec<f64> = Vec::try_from(d.scale.view([-1]).to_kind(Kind::Double)).unwrap();
    for (g, e) in got.iter().zip([0.8, 0.8, 0.8, 1.6]) {
        close(*g, e, 1e-5);
    }
}

#[test]
fn product_of_gaussian_experts_matches_the_closed_form() {
    let a = Dist::gaussian(t(&[1.0, -2.0]), &t(&[0.0, 2f64.ln()])); // σ² = 1, 2
    let b = Dist::gaussian(t(&[3.0, 0.0]), &t(&[3f64.ln(), 0.0])); // σ² = 3, 1
                                                                   // Without prior expert: Λ = 1/σa² + 1/σb², μ = (μa/σa² + μb/σb²)/Λ.
    let p = product_of_experts(&[&a, &b], None, false).unwrap();
    let var = [1.0 / (1.0 + 1.0 / 3.0), 1.0 / (0.5 + 1.0)];
    let mu = [var[0] * (1.0 + 3.0 / 3.0), var[1] * (-2.0 / 2.0 + 0.0)];
    for i in 0..2 {
        close(p.loc.double_value(&[0, i]), mu[i as usize], 1e-5);
        close(p.scale.double_value(&[0, i]).powi(2), var[i as usize], 1e-5);
    }
    // With the prior expert N(0, 1): one more unit of precision, no mean contribution.
    let p = product_of_experts(&[&a, &b], None, true).unwrap();
    let var0 = 1.0 / (1.0 + 1.0 / 3.0 + 1.0);
    close(p.scale.double_value(&[0, 0]).powi(2), var0, 1e-5);
    close(p.loc.double_value(&[0, 0]), var0 * 2.0, 1e-5);
    // Weighted (mmJSD's dynamic prior): weights 1/3 each over (a, b, prior) → precision / 3.
    let w = [1.0 / 3.0; 3];
    let p = product_of_experts(&[&a, &b], Some(&w), true).unwrap();
    close(p.scale.double_value(&[0, 0]).powi(2), 3.0 * var0, 1e-5);
    close(p.loc.double_value(&[0, 0]), var0 * 2.0, 1e-5);
    // The product's density is proportional to the product of densities (1-D grid check).
    let grid = Tensor::linspace(-6.0, 8.0, 2001, (Kind::Double, Device::Cpu)).view([-1, 1]).to_kind(Kind::Float);
    let pa = Dist::gaussian(t(&[1.0]), &t(&[0.0]));
    let pb = Dist::gaussian(t(&[3.0]), &t(&[3f64.ln()]));
    let prod = product_of_experts(&[&pa, &pb], None, false).unwrap();
    let unnorm = (pa.log_prob(&grid) + pb.log_prob(&grid)).exp();
    let dz = 14.0 / 2000.0;
    let normalised = &unnorm / (unnorm.sum(Kind::Float) * dz);
    let err = (normalised - prod.log_prob(&grid).exp()).abs().max().double_value(&[]);
    assert!(err < 1e-3, "product density differs by {err}");
    assert!(product_of_experts(&[&Dist::standard(DistKind::Laplace, &t(&[0.0]))], None, false).is_err());
}

#[test]
fn mixture_density_is_the_mean_of_the_components() {
    let a = Dist::gaussian(t(&[0.0]), &t(&[0.0]));
    let b = Dist::gaussian(t(&[2.0]), &t(&[0.0]));
    let z = t(&[0.5]);
    let expect = (0.5 * (scalar(&a.log_prob(&z)).exp() + scalar(&b.log_prob(&z)).exp())).ln();
    close(scalar(&mixture_log_prob(&[&a, &b], &z)), expect, 1e-5);
}

#[test]
fn mopoe_enumerates_every_nonempty_subset_once() {
    for m in 1..=5usize {
        let subsets = subsets(m);
        assert_eq!(subsets.len(), (1 << m) - 1);
        let mut masks: Vec<u32> = subsets.iter().map(|s| s.iter().map(|&i| 1u32 << i).sum()).collect();
        masks.sort();
        masks.dedup();
        assert_eq!(masks.len(), (1 << m) - 1, "duplicates for M = {m}");
        assert!(subsets.iter().all(|s| !s.is_empty() && s.windows(2).all(|w| w[0] < w[1])));
    }
    assert_eq!(subsets(3), vec![vec![0], vec![1], vec![2], vec![0, 1], vec![0, 2], vec![1, 2], vec![0, 1, 2]]);
}

#[test]
fn iwae_bound_is_the_elbo_for_one_sample_and_tighter_for_more() {
    let _rng = global_generator();
    tch::manual_seed(3);
    let lw = Tensor::randn([1, 8], (Kind::Float, Device::Cpu)) * 3.0;
    let (elbo, _) = bound(Estimator::Elbo, &lw);
    let (iwae, _) = bound(Estimator::Iwae, &lw);
    let (_, dreg_value) = bound(Estimator::Dreg, &lw);
    assert!(elbo.allclose(&iwae, 1e-6, 1e-6, false));
    assert!(elbo.allclose(&dreg_value, 1e-6, 1e-6, false));
    let lw = Tensor::randn([16, 8], (Kind::Float, Device::Cpu)) * 3.0;
    let (elbo, _) = bound(Estimator::Elbo, &lw);
    let (iwae, _) = bound(Estimator::Iwae, &lw);
    assert!(bool::try_from(iwae.ge_tensor(&elbo).all()).unwrap());
}

/// The full MMVAE and MMVAE+ objectives: with K = 1 and the same samples, IWAE = ELBO, and the
/// DReG loss value is the same number too.
#[test]
fn model_objectives_with_one_sample_agree_across_estimators() {
    let _rng = global_generator();
    let specs = vec![ModalitySpec::image("a", 1, 28, 28), ModalitySpec::image("b", 1, 28, 28)];
    tch::manual_seed(5);
    let xs: Vec<Tensor> = (0..2).map(|_| Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu))).collect();
    for kind in [VaeKind::Mmvae, VaeKind::Mmvaeplus] {
        let mut values = vec![];
        for est in ["elbo", "iwae", "dreg"] {
            let mut table: toml::Table =
                toml::from_str(&format!("latent_dim = 4\nwidth = 4\nk = 1\nestimator = \"{est}\"")).unwrap();
            if kind == VaeKind::Mmvaeplus {
                table.insert("specific".into(), toml::Value::Integer(3));
            }
            let cfg = VaeConfig::parse(kind, table).unwrap();
            tch::manual_seed(7);
            let model = VaeModel::new(cfg, &specs, Device::Cpu).unwrap();
            tch::manual_seed(11);
            values.push(model.loss(&xs, 0).unwrap().loss.double_value(&[]));
        }
        close(values[0], values[1], 1e-6);
        close(values[0], values[2], 1e-6);
    }
}

/// DReG changes only the encoder's gradient: the decoders get Σₖ w̃ₖ ∇ log wₖ, exactly the IWAE
/// gradient, while the encoders' gradients differ (the score-function term is gone).
#[test]
fn dreg_keeps_decoder_gradients_of_iwae_and_changes_encoder_ones() {
    let _rng = global_generator();
    let specs = vec![ModalitySpec::image("a", 1, 28, 28), ModalitySpec::image("b", 1, 28, 28)];
    tch::manual_seed(5);
    let xs: Vec<Tensor> = (0..2).map(|_| Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu))).collect();
    let grads = |est: &str| {
        let table = toml::from_str(&format!("latent_dim = 3\nwidth = 4\nk = 3\nestimator = \"{est}\"")).unwrap();
        let cfg = VaeConfig::parse(VaeKind::Mmvae, table).unwrap();
        tch::manual_seed(7);
        let model = VaeModel::new(cfg, &specs, Device::Cpu).unwrap();
        tch::manual_seed(11);
        let loss = model.loss(&xs, 0).unwrap();
        loss.loss.backward();
        mmlatent_vae::estimator::dreg_backward(&loss.dreg).unwrap();
        let mut named: Vec<(String, Tensor)> =
            model.vs.variables().into_iter().map(|(k, v)| (k, v.grad().detach().copy())).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    };
    let (iwae, dreg) = (grads("iwae"), grads("dreg"));
    let mut encoder_differs = false;
    for ((name, a), (_, b)) in iwae.iter().zip(&dreg) {
        if name.contains(".dec") {
            let diff = (a - b).abs().max().double_value(&[]);
            let scale = a.abs().max().double_value(&[]);
            assert!(diff <= 1e-4 * scale + 1e-6, "decoder gradient {name} differs by {diff} (scale {scale})");
        } else if name.contains(".enc") && !a.allclose(b, 1e-4, 1e-5, false) {
            encoder_differs = true;
        }
    }
    assert!(encoder_differs, "DReG left every encoder gradient unchanged");
}
