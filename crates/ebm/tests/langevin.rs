//! The Langevin sampler against targets with known answers.

use mmlatent_ebm::langevin::{langevin, stationary_variance};
use tch::{Device, Kind, Tensor};

fn covariance(z: &Tensor) -> Tensor {
    let centred = z - z.mean_dim([0i64].as_slice(), true, Kind::Float);
    centred.transpose(0, 1).matmul(&centred) / (z.size()[0] - 1) as f64
}

fn value(t: &Tensor, i: i64, j: i64) -> f64 {
    t.double_value(&[i, j])
}

#[test]
fn zero_energy_samples_the_standard_normal() {
    tch::manual_seed(0);
    let start = Tensor::randn([20000, 4], (Kind::Float, Device::Cpu));
    // f = 0 (written through z so that the graph exists; the sampler also accepts constants).
    let z = langevin(|z| z.sum_dim_intlist(-1, false, Kind::Float) * 0.0, &start, 60, 0.4);
    let mean = z.mean_dim([0i64].as_slice(), false, Kind::Float);
    let max_mean = mean.abs().max().double_value(&[]);
    assert!(max_mean < 0.04, "mean {mean:?}");
    let cov = covariance(&z);
    let expected = stationary_variance(1.0, 0.4); // 1 / (1 − 0.04) ≈ 1.042
    for i in 0..4 {
        let v = value(&cov, i, i);
        assert!((v - expected).abs() < 0.04 * expected, "variance {v}, expected {expected}");
        assert!((v - 1.0).abs() < 0.08, "variance {v} is not N(0, 1)'s");
        for j in 0..i {
            assert!(value(&cov, i, j).abs() < 0.04, "covariance {}", value(&cov, i, j));
        }
    }
    // A constant energy (no graph at all) is the same target.
    let z2 = langevin(|z| Tensor::zeros([z.size()[0]], (Kind::Float, Device::Cpu)), &start, 60, 0.4);
    let v2 = covariance(&z2).double_value(&[0, 0]);
    assert!((v2 - expected).abs() < 0.04 * expected, "{v2}");
}

/// f(z) = ½ zᵀAz tilts N(0, I) into N(0, (A + I)⁻¹); the unadjusted chain's stationary
/// covariance has eigenvalues 1 / (λ(1 − s²λ/4)) on the eigenvectors of P = A + I.
#[test]
fn quadratic_energy_samples_the_known_gaussian() {
    tch::manual_seed(1);
    let (c, s) = (0.6f64.cos(), 0.6f64.sin());
    let rotation = Tensor::from_slice(&[c, -s, s, c]).view([2, 2]).to_kind(Kind::Float);
    let eigen_a = [3.0f64, 0.5];
    let diag = Tensor::from_slice(&eigen_a).to_kind(Kind::Float).diag(0);
    let a = rotation.matmul(&diag).matmul(&rotation.tr());
    let energy = |z: &Tensor| (z.matmul(&a) * z).sum_dim_intlist(-1, false, Kind::Float) * 0.5;
    let start = Tensor::randn([20000, 2], (Kind::Float, Device::Cpu));
    let expected = |step: f64| {
        let v: Vec<f64> = eigen_a.iter().map(|l| stationary_variance(l + 1.0, step)).collect();
        rotation.matmul(&Tensor::from_slice(&v).to_kind(Kind::Float).diag(0)).matmul(&rotation.tr())
    };
    let exact = (a.shallow_clone() + Tensor::eye(2, (Kind::Float, Device::Cpu))).inverse();

    // s = 0.4: the discretised covariance, which differs from the exact one by up to 19 %.
    let z = langevin(energy, &start, 120, 0.4);
    let (cov, want) = (covariance(&z), expected(0.4));
    for (i, j) in [(0, 0), (1, 1), (0, 1)] {
        let (got, w) = (value(&cov, i, j), value(&want, i, j));
        assert!((got - w).abs() < 0.03 * value(&want, 1, 1), "cov[{i},{j}] = {got}, expected {w}");
    }
    let gap = (value(&want, 0, 0) - value(&exact, 0, 0)).abs().max((value(&want, 1, 1) - value(&exact, 1, 1)).abs());
    assert!(gap > 0.05 * value(&exact, 1, 1), "the test must tell the discretised law from the exact one");

    // s = 0.1: close to the exact N(0, (A + I)⁻¹).
    let z = langevin(energy, &start, 800, 0.1);
    let cov = covariance(&z);
    for (i, j) in [(0, 0), (1, 1), (0, 1)] {
        let (got, w) = (value(&cov, i, j), value(&exact, i, j));
        assert!((got - w).abs() < 0.03 * value(&exact, 1, 1), "cov[{i},{j}] = {got}, exact {w}");
    }
    let mean = z.mean_dim([0i64].as_slice(), false, Kind::Float).abs().max().double_value(&[]);
    assert!(mean < 0.02, "{mean}");
}
