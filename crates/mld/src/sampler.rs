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
//! - [`Noised`], [`Absent`] and [`Mutual`]: classifier-free guidance as denoiser wrappers,
//!   so every sampler has it: of conditional generation against a noised copy of the given
//!   latents or against the given modalities left out, and of joint (and conditional)
//!   generation against each modality's marginal.
//! - [`ancestral`]: DDIM with η = 1 (ancestral sampling): at each step the clean latent is
//!   predicted, x̂₀ = (x − σ(t)ε̂)/α(t), and x at the next time is drawn from the forward
//!   posterior q(x_s | x_t, x̂₀); exact for the linear part of the SDE, so it tolerates few steps.

use crate::guidance::Weighted;
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

    /// Per-modality boolean flags `[1, M]` or `[B, M]` spread over the dimensions: `[·, D]`
    /// boolean, true on the dimensions of the flagged modalities.
    pub fn flagged_dims(&self, flags: &Tensor) -> Tensor {
        flags.to_kind(Kind::Float).matmul(&self.spread(flags.device())).gt(0.5)
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
        Self { mask: layout.flagged_dims(given), time_mask: (flags.ones_like() - &flags).to_kind(x0.kind()), x0 }
    }

    /// Joint generation of `n` latents of `layout` (nothing given).
    pub fn joint(layout: &Layout, n: i64, device: Device) -> Self {
        let x0 = Tensor::zeros([n, layout.total()], (Kind::Float, device));
        Self::new(layout, &vec![false; layout.num_modalities()], x0)
    }

    /// Whether any modality is given (false for joint generation).
    pub fn any_given(&self) -> bool {
        self.mask.any().int64_value(&[]) != 0
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

/// Classifier-free guidance's extrapolation (Ho & Salimans 2022, eq. 6) of the prediction `eps`
/// at times `tau`: (1 + w)·ε̂ − w·ε̂_weaker, with the weaker prediction computed (from `eps` and t)
/// only when guidance acts (w > 0 and t ≥ `min_t`, t the largest entry of τ); otherwise `eps`.
fn extrapolate(
    eps: Tensor,
    tau: &Tensor,
    Weighted { weight, min_t }: Weighted,
    weaker: impl FnOnce(&Tensor, f64) -> Tensor,
) -> Tensor {
    if weight == 0.0 {
        return eps;
    }
    let t = tau.max().double_value(&[]);
    if t < min_t {
        return eps;
    }
    let weaker = weaker(&eps, t);
    &eps + (&eps - weaker) * weight
}

/// Noised-copy guidance of conditional generation (classifier-free guidance, Ho & Salimans 2022, eq. 6, without
/// a separately trained unconditional model): ε̃ = (1 + w)·ε̂(x | x₀ᴳ) − w·ε̂(x | x_tᴳ), where the
/// weaker prediction sees the given modalities only through a forward-noised copy
/// x_tᴳ = α(t)x₀ᴳ + σ(t)z at the same time t as the generated ones (a joint evaluation, which the
/// masked training covers). The difference points towards what the clean given latents add; it
/// fades as t → 0, where the noised copy is nearly clean. Two score evaluations per step.
pub struct Noised<'a> {
    pub den: &'a dyn Denoiser,
    pub sde: &'a VpSde,
    pub cond: &'a Conditioning,
    /// w ≥ 0; 0 is the plain conditional denoiser.
    pub weight: f64,
}

impl Denoiser for Noised<'_> {
    fn eps(&self, x: &Tensor, tau: &Tensor) -> Tensor {
        // Every generated modality shares one t (the largest of τ); the given ones sit at 0.
        extrapolate(self.den.eps(x, tau), tau, Weighted { weight: self.weight, min_t: 0.0 }, |_, t| {
            let x0 = &self.cond.x0;
            let noised = x0 * self.sde.alpha(t) + x0.randn_like() * self.sde.sigma(t);
            self.den.eps(&noised.where_self(&self.cond.mask, x), &(tau.ones_like() * t))
        })
    }
}

/// Mutual guidance (UniDiffuser's classifier-free guidance of joint generation, Bao et al. 2023,
/// §3.3, for M modalities): ε̃ₘ = (1 + w)·ε̂ₘ(x, τ) − w·ε̂ₘ(xₘ alone), where the weaker prediction
/// of modality m sees every other modality absent (τ = 1 there, fresh N(0, I) latents in place),
/// i.e. the score of m's marginal. The difference points towards what the other modalities —
/// generated or given — say about m, so w > 0 pulls them towards agreement, in joint and
/// conditional generation alike (a given modality's entries are clamped by the sampler, so its
/// own guided value is never used). Needs a network trained with absent modalities
/// (`absent_p > 0`); one batched call of (generated modalities) × B rows besides the plain one.
pub struct Mutual<'a> {
    pub den: &'a dyn Denoiser,
    pub layout: &'a Layout,
    /// w ≥ 0 (0: the plain denoiser), acting while t ≥ `min_t` (guidance in a limited
    /// interval, Kynkäänniemi et al. 2024): the modalities agree on what they show at high
    /// noise; guiding the low-noise steps as well adds little agreement and pushes the latents
    /// off the data.
    pub guidance: Weighted,
}

impl Denoiser for Mutual<'_> {
    fn eps(&self, x: &Tensor, tau: &Tensor) -> Tensor {
        extrapolate(self.den.eps(x, tau), tau, self.guidance, |eps, _| self.marginals(x, tau, eps))
    }
}

impl Mutual<'_> {
    /// The weaker prediction: each generated modality's own dimensions from its marginal call,
    /// the rest (given modalities) from `eps`.
    fn marginals(&self, x: &Tensor, tau: &Tensor, eps: &Tensor) -> Tensor {
        let (b, m) = (x.size()[0], self.layout.num_modalities() as i64);
        let device = x.device();
        let tau = tau.expand([b, m], false);
        // Given modalities (τ = 0 on every row) are clamped by the sampler: no marginal for them.
        let generated: Vec<bool> = mmlatent_core::host::to_vec(&tau.amax(0, false).gt(0.0)).unwrap_or_default();
        let (mut inputs, mut times, mut keep) = (vec![], vec![], vec![]);
        for k in (0..m as usize).filter(|&k| generated.get(k).copied().unwrap_or(true)) {
            let alone: Vec<bool> = (0..m as usize).map(|i| i == k).collect();
            let own = self.layout.dim_mask(&alone, device);
            let own_time = Tensor::from_slice(&alone).view([1, m]).to_device(device);
            inputs.push(x.where_self(&own, &x.randn_like()));
            times.push(tau.where_self(&own_time, &Tensor::ones_like(&tau)));
            keep.push(own);
        }
        let marginal = self.den.eps(&Tensor::cat(&inputs, 0), &Tensor::cat(&times, 0));
        // Row block i holds the i-th generated modality's marginal prediction; keep its own
        // dimensions (elsewhere the weaker prediction is ε̂ itself: no guidance).
        let parts: Vec<Tensor> = marginal.chunk(keep.len() as i64, 0);
        parts.iter().zip(&keep).fold(eps.shallow_clone(), |acc, (p, own)| p.where_self(own, &acc))
    }
}

/// Classifier-free guidance of conditional generation against the given modalities left out
/// (Ho & Salimans 2022, eq. 6): ε̃ = (1 + w)·ε̂(x | x₀ᴳ) − w·ε̂(x | G absent), where the weaker
/// prediction sees the given blocks absent (τ = 1 there, fresh N(0, I) latents in place), as
/// masked training with `absent_p > 0` shows them. The difference points towards what the given
/// modalities say about the generated ones. Unlike [`Mutual`] it does not also pull the
/// generated modalities towards one another; unlike [`Noised`] its reference does not fade as
/// t → 0. Acts while t ≥ `min_t`; two score evaluations per guided step.
pub struct Absent<'a> {
    pub den: &'a dyn Denoiser,
    pub cond: &'a Conditioning,
    /// w ≥ 0 (0: the plain conditional denoiser), acting while t ≥ `min_t`.
    pub guidance: Weighted,
}

impl Denoiser for Absent<'_> {
    fn eps(&self, x: &Tensor, tau: &Tensor) -> Tensor {
        extrapolate(self.den.eps(x, tau), tau, self.guidance, |_, _| {
            let absent = x.randn_like().where_self(&self.cond.mask, x);
            let generated = self.cond.time_mask.gt(0.0);
            self.den.eps(&absent, &tau.where_self(&generated, &tau.ones_like()))
        })
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

/// `steps + 1` uniform times from `t_end` (index 0) up to 1 (index `steps`): the grid of
/// Euler–Maruyama (`t_end` = t_ε) and of ancestral sampling (`t_end` = 0), walked downwards.
pub fn uniform_times(steps: usize, t_end: f64) -> Vec<f64> {
    (0..=steps).map(|i| t_end + (1.0 - t_end) * i as f64 / steps as f64).collect()
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
    let times = uniform_times(steps, t_eps);
    let dt = times[1] - times[0];
    // The walk runs over indices of `times`, from `steps` (t = 1) down to 0 (t = t_eps).
    let time = |i: usize| times[i];
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
    let times = uniform_times(steps, 0.0);
    let mut x = cond.clamp(&(cond.x0.randn_like() * sde.sigma(1.0)));
    for i in (1..=steps).rev() {
        let (t, s) = (times[i], times[i - 1]);
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

    /// (1 + w)·ε̂(x | x₀ᴳ) − w·ε̂(x | x_tᴳ), where the weaker call sees the given latents
    /// forward-noised to the generated ones' time (mean α(t)x₀, std σ(t)) and τ = t everywhere.
    #[test]
    fn guidance_extrapolates_from_the_noised_given_prediction() {
        let layout = Layout::new(vec![2, 3]);
        let sde = VpSde::new(0.1, 20.0);
        let n = 20_000;
        let x0 = Tensor::ones([n, 5], (Kind::Float, Device::Cpu)) * 2.0;
        let cond = Conditioning::new(&layout, &[true, false], x0);
        // ε̂(x, τ) = x + Στ: the output shows both what the network saw and its times.
        let den = |x: &Tensor, tau: &Tensor| x + tau.sum_dim_intlist(-1, true, Kind::Float);
        let (t, w) = (0.3, 2.0);
        let x = cond.clamp(&Tensor::zeros([n, 5], (Kind::Float, Device::Cpu)));
        let plain = Noised { den: &den, sde: &sde, cond: &cond, weight: 0.0 }.eps(&x, &cond.tau(t));
        assert!(plain.allclose(&den(&x, &cond.tau(t)), 1e-6, 1e-6, false));
        let guided = Noised { den: &den, sde: &sde, cond: &cond, weight: w }.eps(&x, &cond.tau(t));
        // Generated dimensions: x is 0 in both calls; Στ is t (one generated modality) vs 2t.
        let generated = guided.narrow(1, 2, 3);
        let expected = (1.0 + w) * t - w * 2.0 * t;
        assert!((generated - expected).abs().max().double_value(&[]) < 1e-5);
        // Given dimensions: (1 + w)(2 + t) − w(noised + 2t), noised ~ N(2α(t), σ(t)²).
        let noised = (guided.narrow(1, 0, 2) - (1.0 + w) * (2.0 + t) + w * 2.0 * t) / -w;
        let (mean, std) = (noised.mean(Kind::Double).double_value(&[]), noised.std(true).double_value(&[]));
        assert!((mean - 2.0 * sde.alpha(t)).abs() < 0.01, "mean {mean}");
        assert!((std - sde.sigma(t)).abs() < 0.01, "std {std}");
    }

    /// (1 + w)·ε̂(x, τ) − w·ε̂ₘ(xₘ alone): each modality's weaker prediction sees its own latents
    /// and time, and every other modality at τ = 1 with fresh standard-normal latents.
    #[test]
    fn mutual_guidance_extrapolates_from_each_marginal() {
        let layout = Layout::new(vec![2, 3]);
        let n = 20_000;
        let x = Tensor::ones([n, 5], (Kind::Float, Device::Cpu)) * 3.0;
        // ε̂(x, τ) = mean of x over the row + Στ: shows what a call saw of the others and its times.
        let den =
            |x: &Tensor, tau: &Tensor| x.mean_dim(1, true, Kind::Float) + tau.sum_dim_intlist(-1, true, Kind::Float);
        let (t, w) = (0.4, 1.5);
        let tau = Tensor::from_slice(&[t as f32, t as f32]).view([1, 2]);
        let plain = Mutual { den: &den, layout: &layout, guidance: Weighted { weight: 0.0, min_t: 0.0 } }.eps(&x, &tau);
        assert!(plain.allclose(&den(&x, &tau), 1e-6, 1e-6, false));
        // Below the interval's lower end guidance is off.
        let late =
            Mutual { den: &den, layout: &layout, guidance: Weighted { weight: w, min_t: t + 0.1 } }.eps(&x, &tau);
        assert!(late.allclose(&plain, 1e-6, 1e-6, false));
        let guided = Mutual { den: &den, layout: &layout, guidance: Weighted { weight: w, min_t: 0.0 } }.eps(&x, &tau);
        let full = 3.0 + 2.0 * t;
        // Modality 0 alone: 2 of 5 entries are 3, the other 3 are N(0, 1); τ = (t, 1).
        for (offset, size, own) in [(0, 2, 2.0), (2, 3, 3.0)] {
            let weaker = (guided.narrow(1, offset, size) - (1.0 + w) * full) / -w;
            let mean = weaker.mean(Kind::Double).double_value(&[]);
            let std = weaker.std(true).double_value(&[]);
            let expected_mean = 3.0 * own / 5.0 + t + 1.0;
            let expected_std = (5.0f64 - own).sqrt() / 5.0;
            assert!((mean - expected_mean).abs() < 0.01, "modality at {offset}: mean {mean} vs {expected_mean}");
            assert!((std - expected_std).abs() < 0.01, "modality at {offset}: std {std} vs {expected_std}");
        }
    }

    /// In conditional generation only the generated modalities get a marginal call (given ones
    /// sit at τ = 0 and keep their plain prediction), and a generated one's marginal sees the
    /// given modality absent too.
    #[test]
    fn mutual_guidance_skips_given_modalities() {
        let layout = Layout::new(vec![2, 3]);
        let rows = std::cell::Cell::new(0);
        let den = |x: &Tensor, tau: &Tensor| {
            rows.set(rows.get() + x.size()[0]);
            x.zeros_like() + x.mean_dim(1, true, Kind::Float) + tau.sum_dim_intlist(-1, true, Kind::Float)
        };
        let x = Tensor::ones([4, 5], (Kind::Float, Device::Cpu));
        let tau = Tensor::from_slice(&[0.0f32, 0.7]).view([1, 2]);
        let w = 2.0;
        let guided = Mutual { den: &den, layout: &layout, guidance: Weighted { weight: w, min_t: 0.0 } }.eps(&x, &tau);
        assert_eq!(rows.get(), 4 + 4, "one plain call and one marginal block");
        let plain = den(&x, &tau);
        assert!(guided.narrow(1, 0, 2).allclose(&plain.narrow(1, 0, 2), 1e-6, 1e-6, false));
        // Modality 1 alone: τ = (1, 0.7); its plain prediction saw τ = (0, 0.7).
        assert!(guided.narrow(1, 2, 3).ne_tensor(&plain.narrow(1, 2, 3)).all().int64_value(&[]) != 0);
    }

    /// (1 + w)·ε̂(x, τ) − w·ε̂(x with the given blocks absent): the weaker call sees fresh
    /// standard-normal latents and τ = 1 in the given blocks and the generated ones as they are;
    /// below `min_t` guidance is off.
    #[test]
    fn given_guidance_extrapolates_from_the_given_blocks_absent() {
        let layout = Layout::new(vec![2, 3]);
        let n = 20_000;
        let x0 = Tensor::ones([n, 5], (Kind::Float, Device::Cpu)) * 2.0;
        let cond = Conditioning::new(&layout, &[true, false], x0);
        // ε̂(x, τ) = mean of x over the row + Στ: shows what a call saw of the given block and its times.
        let den =
            |x: &Tensor, tau: &Tensor| x.mean_dim(1, true, Kind::Float) + tau.sum_dim_intlist(-1, true, Kind::Float);
        let (t, w) = (0.3, 2.0);
        let x = cond.clamp(&(Tensor::ones([n, 5], (Kind::Float, Device::Cpu)) * 3.0));
        let plain = den(&x, &cond.tau(t));
        let late =
            Absent { den: &den, cond: &cond, guidance: Weighted { weight: w, min_t: t + 0.1 } }.eps(&x, &cond.tau(t));
        assert!(late.allclose(&plain, 1e-6, 1e-6, false));
        let guided =
            Absent { den: &den, cond: &cond, guidance: Weighted { weight: w, min_t: 0.0 } }.eps(&x, &cond.tau(t));
        // Plain: (2·2 + 3·3) / 5 + t. Weaker: the 2 given entries N(0, 1), the 3 generated ones 3; τ = (1, t).
        let weaker = (guided - (1.0 + w) * (13.0 / 5.0 + t)) / -w;
        let (mean, std) = (weaker.mean(Kind::Double).double_value(&[]), weaker.std(true).double_value(&[]));
        assert!((mean - (9.0 / 5.0 + 1.0 + t)).abs() < 0.01, "mean {mean}");
        assert!((std - 2f64.sqrt() / 5.0).abs() < 0.01, "std {std}");
    }

    /// The evaluation counts the samplers' docs state (and `MldModel::score_evaluations`
    /// counts by running them).
    #[test]
    fn samplers_cost_what_their_docs_say() {
        let layout = Layout::new(vec![2, 2]);
        let sde = VpSde::new(0.1, 20.0);
        let cond = Conditioning::new(&layout, &[true, false], Tensor::zeros([1, 4], (Kind::Float, Device::Cpu)));
        let calls = std::cell::Cell::new(0);
        let counting = |x: &Tensor, _: &Tensor| {
            calls.set(calls.get() + 1);
            x.zeros_like()
        };
        let count = |run: &dyn Fn(&dyn Denoiser)| {
            calls.set(0);
            run(&counting);
            calls.get()
        };
        assert_eq!(count(&|d| drop(euler_maruyama(d, &sde, &cond, 20, 1e-3, None))), 20);
        let repaint = repaint_schedule(20, 5, 3).windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(count(&|d| drop(euler_maruyama(d, &sde, &cond, 20, 1e-3, Some((5, 3))))), repaint);
        assert_eq!(repaint, 20 + 3 * 2 * 5);
        assert_eq!(count(&|d| drop(heun(d, &sde, &cond, 7, 1e-3))), 2 * 7 - 1);
        assert_eq!(count(&|d| drop(ancestral(d, &sde, &cond, 9))), 9);
        let guided =
            |d: &dyn Denoiser| drop(ancestral(&Noised { den: d, sde: &sde, cond: &cond, weight: 1.0 }, &sde, &cond, 9));
        assert_eq!(count(&guided), 18);
        let times = uniform_times(4, 0.2);
        assert!(times.iter().zip([0.2, 0.4, 0.6, 0.8, 1.0]).all(|(t, e)| (t - e).abs() < 1e-12), "{times:?}");
    }

    #[test]
    fn karras_grid_is_decreasing() {
        let s = karras_sigmas(10, 0.01, 100.0);
        assert_eq!(s.len(), 11);
        assert!((s[0] - 100.0).abs() < 1e-9 && (s[9] - 0.01).abs() < 1e-12 && s[10] == 0.0);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
    }
}
