//! The variance-preserving SDE of MLD (Song et al. 2021), with a linear noise schedule:
//!
//! dR_t = −½β(t) R_t dt + √β(t) dW_t,  β(t) = β_min + t(β_max − β_min),  t ∈ [0, T = 1].
//!
//! Its marginal given R_0 = x is Gaussian with mean α(t)x and standard deviation σ(t), where
//! log α(t) = −¼t²(β_max − β_min) − ½tβ_min and σ(t)² = 1 − α(t)².

use tch::Tensor;

/// A VP-SDE with a linear β schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VpSde {
    pub beta_min: f64,
    pub beta_max: f64,
}

impl Default for VpSde {
    fn default() -> Self {
        Self { beta_min: 0.1, beta_max: 20.0 }
    }
}

impl VpSde {
    pub fn new(beta_min: f64, beta_max: f64) -> Self {
        Self { beta_min, beta_max }
    }

    /// β(t).
    pub fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// log α(t) = −∫₀ᵗ ½β(s) ds.
    pub fn log_alpha(&self, t: f64) -> f64 {
        -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
    }

    /// Mean coefficient α(t) of the marginal.
    pub fn alpha(&self, t: f64) -> f64 {
        self.log_alpha(t).exp()
    }

    /// Standard deviation σ(t) = √(1 − α(t)²) of the marginal.
    pub fn sigma(&self, t: f64) -> f64 {
        (-(2.0 * self.log_alpha(t)).exp_m1()).sqrt()
    }

    /// Drift coefficient f(t) (the drift is f(t)·x) and diffusion g(t) = √β(t).
    pub fn drift_diffusion(&self, t: f64) -> (f64, f64) {
        (-0.5 * self.beta(t), self.beta(t).sqrt())
    }

    /// α(t) and σ(t) for a batch of times `t` (`[B]`), as `[B, 1]` columns.
    pub fn marginal(&self, t: &Tensor) -> (Tensor, Tensor) {
        let log_alpha = self.log_alpha_of(t);
        let alpha = log_alpha.exp().unsqueeze(-1);
        let sigma = (-(log_alpha * 2.0).expm1()).sqrt().unsqueeze(-1);
        (alpha, sigma)
    }

    /// σ(t) elementwise, for a tensor of times of any shape.
    pub fn sigma_of(&self, t: &Tensor) -> Tensor {
        (-(self.log_alpha_of(t) * 2.0).expm1()).sqrt()
    }

    /// log α(t) elementwise.
    fn log_alpha_of(&self, t: &Tensor) -> Tensor {
        t.square() * (-0.25 * (self.beta_max - self.beta_min)) - t * (0.5 * self.beta_min)
    }

    /// The noise-to-signal ratio σ̃(t) = σ(t)/α(t), the time variable of the probability-flow
    /// ODE written for x/α: d(x/α)/dσ̃ = ε(x, t).
    pub fn sigma_tilde(&self, t: f64) -> f64 {
        (-2.0 * self.log_alpha(t)).exp_m1().sqrt()
    }

    /// Inverse of [`VpSde::sigma_tilde`]: solves ¼Δβ t² + ½β_min t = ½ log(1 + σ̃²) for t ≥ 0.
    pub fn t_of_sigma_tilde(&self, s: f64) -> f64 {
        let a = 0.25 * (self.beta_max - self.beta_min);
        let b = 0.5 * self.beta_min;
        let c = 0.5 * s.mul_add(s, 1.0).ln();
        (-b + (b * b + 4.0 * a * c).sqrt()) / (2.0 * a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn sigma_tilde_inverts() {
        let sde = VpSde::default();
        for t in [1e-3, 0.1, 0.5, 0.9, 1.0] {
            let back = sde.t_of_sigma_tilde(sde.sigma_tilde(t));
            assert!((back - t).abs() < 1e-9, "{t} → {back}");
            assert!((sde.alpha(t).powi(2) + sde.sigma(t).powi(2) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn batch_marginal_matches_scalars() {
        let sde = VpSde::default();
        let t = Tensor::from_slice(&[0.0f64, 0.3, 1.0]).to_kind(Kind::Double).to_device(Device::Cpu);
        let (a, s) = sde.marginal(&t);
        for (i, &tt) in [0.0, 0.3, 1.0].iter().enumerate() {
            assert!((a.double_value(&[i as i64, 0]) - sde.alpha(tt)).abs() < 1e-12);
            assert!((s.double_value(&[i as i64, 0]) - sde.sigma(tt)).abs() < 1e-12);
        }
    }
}
