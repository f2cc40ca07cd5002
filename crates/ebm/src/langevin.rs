//! Short-run Langevin dynamics for an exponentially tilted Gaussian prior.
//!
//! The target is p(z) ∝ exp(−f(z)) N(z; 0, I), i.e. the energy E(z) = f(z) + ½‖z‖². One step
//! (Pang et al. 2020, eq. 9; SPEC §2.2) is
//!
//! ```text
//! z ← z − (s²/2) (∇_z f(z) + z) + s·ε,   ε ~ N(0, I)
//! ```
//!
//! started from p₀ = N(0, I) and run for a fixed, small number of steps ("short-run"): the
//! samples are not exact, and the EBM learns to make the short chain's output match the
//! aggregate posterior. For a Gaussian target with precision P the unadjusted chain has a
//! known stationary covariance (see [`stationary_variance`]), which the tests use.

use tch::{Kind, Tensor};

/// Runs `steps` Langevin steps of size `step_size` from `start` (`[N, D]`), for the energy
/// `f` that maps `[N, D]` to one energy per row (`[N]`). Returns detached samples.
///
/// Gradients are taken with autograd on a fresh leaf at every step (grad mode is switched on
/// locally, so this works under `no_grad`); parameters inside `f` receive no gradient.
pub fn langevin(f: impl Fn(&Tensor) -> Tensor, start: &Tensor, steps: usize, step_size: f64) -> Tensor {
    let half_h = 0.5 * step_size * step_size;
    tch::with_grad(|| {
        let mut z = start.detach();
        for _ in 0..steps {
            let leaf = z.detach().set_requires_grad(true);
            let energy = f(&leaf).sum(Kind::Float);
            // ∇_z f; an energy that does not depend on z (e.g. f = 0) has a zero gradient.
            let grad = if energy.requires_grad() {
                Tensor::run_backward(&[&energy], &[&leaf], false, false).remove(0)
            } else {
                leaf.zeros_like()
            };
            let noise = leaf.randn_like() * step_size;
            z = (leaf.detach() - (grad + leaf.detach()) * half_h + noise).detach();
        }
        z
    })
}

/// Stationary variance of the unadjusted chain above along an eigen-direction of a Gaussian
/// target with precision eigenvalue `lambda` (f(z) = ½ zᵀAz gives P = A + I).
///
/// Along that direction the chain is z' = (1 − hλ/2) z + √h ε with h = s², so the fixed point
/// v = (1 − hλ/2)² v + h gives v = 1 / (λ (1 − hλ/4)), which tends to 1/λ as s → 0.
pub fn stationary_variance(lambda: f64, step_size: f64) -> f64 {
    let h = step_size * step_size;
    1.0 / (lambda * (1.0 - h * lambda / 4.0))
}
