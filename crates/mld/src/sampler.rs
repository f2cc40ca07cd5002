//! Samplers over a denoiser, k-diffusion style: each is a small pure function of a denoiser
//! ε̂(x, τ), the SDE and a [`Conditioning`] saying which modalities are given.
//!
//! Conditional generation of A₁ given A₂ (eq. 2 of the paper): the latents of A₂ are the
//! encoded inputs, held fixed (clamped after every step) with their entries of τ at 0; only A₁
//! is integrated. Joint generation is the case A₂ = ∅, all modalities sharing one time.
//!
//! - [`euler_maruyama`]: the reverse SDE dR = [f(t)R − g(t)²∇log q] dt + g(t) dW̄, with
//!   ∇log q = −ε̂/σ(t), from t = 1 down to t_ε; optional RePaint-style resampling.
//! - [`heun`]: the probability-flow ODE written for x̃ = x/α(t) in σ̃ = σ/α, dx̃/dσ̃ = ε̂ (the
//!   DDIM/EDM form), integrated with Heun's second-order method on Karras' σ̃ grid (ρ = 7), then
//!   one Euler step to σ̃ = 0.
//! - [`ancestral`]: DDIM with η = 1 (ancestral sampling): at each step the clean latent is
//!   predicted, x̂₀ = (x − σ(t)ε̂)/α(t), and x at the next time is drawn from the forward
//!   posterior q(x_s | x_t, x̂₀); exact for the linear part of the SDE, so it tolerates few steps.

use crate::sde::VpSde;
use tch::{Device, Kind, Tensor};

/// Predicts the forward-process noise ε from latents `[B, D]` and multi-time τ `[B, M]`, or
/// `[1, M]` when the whole batch shares one τ (as in sampling: the time embedding is then
/// computed once and broadcast).
pub trait Denoiser {
    fn eps(&self, x: &Tensor, tau: &Tensor) -> Tensor;
}

impl<F: Fn(&Tensor, &Tensor) -> Tensor> Denoiser for F {
    fn eps(&self, x: &Tensor, tau: &Tensor) -> Tensor {
        self(x, tau)
    }
}

/// How the concatenated latent splits into modalities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub sizes: Vec<i64>,
}

impl Layout {
    pub fn new(sizes: Vec<i64>) -> Self {
        Self { sizes }
    }

    pub fn total(&self) -> i64 {
        self.sizes.iter().sum()
    }

    pub fn num_modalities(&self) -> usize {
        self.sizes.len()
    }

    /// `(offset, size)` of modality `m` in the concatenated latent.
    pub fn span(&self, m: usize) -> (i64, i64) {
        (self.sizes[..m].iter().sum(), self.sizes[m])
    }

    /// A boolean `[1, D]` mask, true on the dimensions of the modalities flagged in `which`.
    /// The `[M, D]` 0/1 float matrix whose row `m` is 1 on modality `m`'s dimensions: a
    /// per-modality value `[B, M]` times it spreads over the dimensions `[B, D]`.
    pub fn spread(&self, device: Device) -> Tensor {
        let m = self.num_modalities();
        let rows: Vec<Tensor> =
            (0..m).map(|k| self.dim_mask(&(0..m).map(|i| i == k).collect::<Vec<_>>(), device)).collect();
        Tensor::cat(&rows, 0).to_kind(Kind::Float)
    }

    pub fn dim_mask(&self, which: &[bool], device: Device) -> Tensor {
        let flags: Vec<bool> =
            self.sizes.iter().zip(which).flat_map(|(&s, &w)| std::iter::repeat_n(w, s as usize)).collect();
        Tensor::from_slice(&flags).view([1, -1]).to_device(device)
    }
}

/// Which modalities are given (clamped) and their clean latents.
pub struct Conditioning {
    /// `[1, D]` (or `[B, D]`, one row per item) boolean, true on given dimensions.
    pub mask: Tensor,
    /// `[1, M]` (or `[B, M]`) float, 1 for generated modalities and 0 for given ones
    /// (multiplies τ).
    pub time_mask: Tensor,
    /// `[B, D]` clean latents; only the given dimensions are read.
    pub x0: Tensor,
}

impl Conditioning {
    /// `given[m]` says whether modality `m` is given; `x0` holds its latents (others ignored).
    pub fn new(layout: &Layout, given: &[bool], x0: Tensor) -> Self {
        let flags = Tensor::from_slice(given).view([1, -1]).to_device(x0.device());
        Self::from_flags(layout, &flags, x0)
    }

    /// `given` `[1, M]` (shared by the batch) or `[B, M]` (per item) boolean flags.
    pub fn from_flags(layout: &Layout, given: &Tensor, x0: Tensor) -> Self {
        let flags = given.to_kind(Kind::Float);
        Self {
            mask: flags.matmul(&layout.spread(x0.device())).gt(0.5),
            time_mask: (flags.ones_like() - &flags).to_kind(x0.kind()),
            x0,
        }
    }

    /// Joint generation of `n` latents of `layout` (nothing given).
    pub fn joint(layout: &Layout, n: i64, device: Device) -> Self {
        let x0 = Tensor::zeros([n, layout.total()], (Kind::Float, device));
        Self::new(layout, &vec![false; layout.num_modalities()], x0)
    }

    /// Puts the given latents back in place; generated dimensions are left untouched.
    pub fn clamp(&self, x: &Tensor) -> Tensor {
        self.x0.where_self(&self.mask, x)
    }

    /// τ for time `t`: `t` on generated modalities, 0 on given ones, one row `[1, M]` shared
    /// by the batch.
    pub fn tau(&self, t: f64) -> Tensor {
        &self.time_mask * t
    }
}

/// One Euler–Maruyama step of the reverse SDE from `t` to `t − dt`; `noise` false on the last
/// step. Given latents are clamped before the evaluation and after the step.
pub fn euler_maruyama_step(
    den: &dyn Denoiser,
    sde: &VpSde,
    cond: &Conditioning,
    x: &Tensor,
    t: f64,
    dt: f64,
    noise: bool,
) -> Tensor {
    let x = cond.clamp(x);
    let eps = den.eps(&x, &cond.tau(t));
    let (f, g) = sde.drift_diffusion(t);
    // score = −ε̂/σ(t); x ← x − dt·(f x − g² score) + g √dt z
    let score = eps * (-1.0 / sde.sigma(t));
    let mut next = &x - (&x * f - score * (g * g)) * dt;
    if noise {
        next += x.randn_like() * (g * dt.sqrt());
    }
    cond.clamp(&next)
}

/// Re-noises the generated dimensions from `t` up to `t_up > t` with the forward transition
/// kernel: x ← (α(t_up)/α(t)) x + √(1 − α(t_up)²/α(t)²) z (the RePaint jump).
pub fn renoise(sde: &VpSde, cond: &Conditioning, x: &Tensor, t: f64, t_up: f64) -> Tensor {
    let ratio = (sde.log_alpha(t_up) - sde.log_alpha(t)).exp();
    let up = x * ratio + x.randn_like() * (1.0 - ratio * ratio).max(0.0).sqrt();
    cond.clamp(&up)
}

/// The RePaint schedule over `n` integer time indices: a sequence of indices starting at `n`
/// and ending at 0. On reaching an index j ∈ {0, L, 2L, …} with j < n − L (L = `jump_length`),
/// the walk jumps back up L steps and walks down again, `jump_n_sample − 1` times per index —
/// the reference's schedule (its `get_schedule_jump`, whose indices are ours plus one), so the
/// last stretch, down to the end, is resampled too and the first one is not.
pub fn repaint_schedule(n: usize, jump_length: usize, jump_n_sample: usize) -> Vec<usize> {
    let length = jump_length.max(1);
    let mut jumps: std::collections::BTreeMap<usize, usize> =
        (0..n.saturating_sub(length)).step_by(length).map(|j| (j, jump_n_sample.saturating_sub(1))).collect();
    let mut walk = vec![n];
    let mut i = n;
    while i > 0 {
        i -= 1;
        walk.push(i);
        if let Some(left) = jumps.get_mut(&i) {
            if *left > 0 {
                *left -= 1;
                for _ in 0..jump_length {
                    i += 1;
                    walk.push(i);
                }
            }
        }
    }
    walk
}

/// Euler–Maruyama sampling with `steps` uniform steps from t = 1 to `t_eps`, optionally with
/// RePaint resampling (`repaint = Some((jump_length, jump_n_sample))`). Returns `[B, D]`.
/// Score evaluations: `steps` without RePaint.
pub fn euler_maruyama(
    den: &dyn Denoiser,
    sde: &VpSde,
    cond: &Conditioning,
    steps: usize,
    t_eps: f64,
    repaint: Option<(usize, usize)>,
) -> Tensor {
    let dt = (1.0 - t_eps) / steps as f64;
    // Index i ∈ 0..=steps stands for t = t_eps + i·dt; the walk starts at i = steps (t = 1).
    let time = |i: usize| t_eps + i as f64 * dt;
    let mut x = cond.clamp(&(cond.x0.randn_like() * sde.sigma(1.0)));
    let walk = match repaint {
        Some((length, n_sample)) => repaint_schedule(steps, length, n_sample),
        None => (0..=steps).rev().collect(),
    };
    for pair in walk.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        x = if to < from {
            euler_maruyama_step(den, sde, cond, &x, time(from), dt, to > 0)
        } else {
            renoise(sde, cond, &x, time(from), time(to))
        };
    }
    x
}

/// Karras et al.'s σ̃ grid: `n` values from `s_max` down to `s_min` (ρ = 7), then 0.
pub fn karras_sigmas(n: usize, s_min: f64, s_max: f64) -> Vec<f64> {
    let rho = 7.0;
    let (a, b) = (s_max.powf(1.0 / rho), s_min.powf(1.0 / rho));
    let mut s: Vec<f64> = (0..n).map(|i| (a + i as f64 / (n - 1).max(1) as f64 * (b - a)).powf(rho)).collect();
    s.push(0.0);
    s
}

/// Probability-flow ODE sampling with Heun's method on `steps` Karras σ̃ levels between
/// σ̃(1) and σ̃(t_eps), then an Euler step to σ̃ = 0. Score evaluations: 2·steps − 1.
pub fn heun(den: &dyn Denoiser, sde: &VpSde, cond: &Conditioning, steps: usize, t_eps: f64) -> Tensor {
    let sigmas = karras_sigmas(steps, sde.sigma_tilde(t_eps), sde.sigma_tilde(1.0));
    // ε̂ at scaled state x̃ and level σ̃: the network sees x = α(t) x̃ = x̃/√(1 + σ̃²).
    let eps_at = |xt: &Tensor, s: f64| {
        let t = sde.t_of_sigma_tilde(s);
        let x = cond.clamp(&(xt / (1.0 + s * s).sqrt()));
        den.eps(&x, &cond.tau(t))
    };
    let mut xt = cond.clamp(&(cond.x0.randn_like() * sigmas[0]));
    for pair in sigmas.windows(2) {
        let (s, s_next) = (pair[0], pair[1]);
        let d = eps_at(&xt, s);
        let euler = &xt + &d * (s_next - s);
        xt = if s_next > 0.0 {
            let d2 = eps_at(&euler, s_next);
            &xt + (d + d2) * (0.5 * (s_next - s))
        } else {
            euler
        };
        xt = cond.clamp(&xt);
    }
    xt
}

/// Ancestral sampling (DDIM, η = 1) on `steps` uniform times from t = 1 down to 0 (the last
/// step returns the prediction x̂₀). Score evaluations: `steps`.
pub fn ancestral(den: &dyn Denoiser, sde: &VpSde, cond: &Conditioning, steps: usize) -> Tensor {
    let mut x = cond.clamp(&(cond.x0.randn_like() * sde.sigma(1.0)));
    for i in (1..=steps).rev() {
        let (t, s) = (i as f64 / steps as f64, (i - 1) as f64 / steps as f64);
        let eps = den.eps(&x, &cond.tau(t));
        let (a_t, sig_t) = (sde.alpha(t), sde.sigma(t));
        let x0_hat = (&x - &eps * sig_t) / a_t;
        x = if i == 1 {
            x0_hat
        } else {
            let (a_s, sig_s) = (sde.alpha(s), sde.sigma(s));
            // σ_η² = (σ_s²/σ_t²)(1 − α_t²/α_s²): the posterior variance of q(x_s | x_t, x₀).
            let var = (sig_s * sig_s / (sig_t * sig_t)) * (1.0 - (a_t * a_t) / (a_s * a_s));
            let dir = (sig_s * sig_s - var).max(0.0).sqrt();
            x0_hat * a_s + eps * dir + x.randn_like() * var.sqrt()
        };
        x = cond.clamp(&x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repaint_schedule_walks_down_with_jumps() {
        let walk = repaint_schedule(20, 5, 2);
        assert_eq!(walk.first(), Some(&20));
        assert_eq!(walk.last(), Some(&0));
        for w in walk.windows(2) {
            assert_eq!((w[0] as i64 - w[1] as i64).abs(), 1);
        }
        let ups = walk.windows(2).filter(|w| w[1] > w[0]).count();
        assert_eq!(ups, 3 * 5, "{walk:?}");
        // The jumps start at 0, 5 and 10 (the reference's schedule), not at 15: the walk ends
        // with a jump from 0 back up to 5 and the final descent.
        let turns: Vec<usize> = walk.windows(3).filter(|w| w[1] < w[0] && w[2] > w[1]).map(|w| w[1]).collect();
        assert_eq!(turns, vec![10, 5, 0], "{walk:?}");
        assert_eq!(&walk[walk.len() - 6..], &[5, 4, 3, 2, 1, 0]);
        assert_eq!(repaint_schedule(20, 5, 1), (0..=20).rev().collect::<Vec<_>>());
    }

    #[test]
    fn karras_grid_is_decreasing() {
        let s = karras_sigmas(10, 0.01, 100.0);
        assert_eq!(s.len(), 11);
        assert!((s[0] - 100.0).abs() < 1e-9 && (s[9] - 0.01).abs() < 1e-12 && s[10] == 0.0);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
    }
}
