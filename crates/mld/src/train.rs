//! Stage 2 of MLD: the score network on standardised concatenated latents, trained with masked
//! multi-time denoising score matching, with an EMA of its weights for sampling.
//!
//! Per batch: t ~ U[t_ε, 1] per item, z ~ N(0, I), R_t = α(t) R_0 + σ(t) z (closed-form VP
//! marginal). With probability d a random non-empty proper subset A₂ of the modalities is
//! conditioned on — drawn per batch as in the reference, or per item (`condition_per`):
//! its latents stay clean, its entries of τ are 0 and its dimensions leave the loss, which is the
//! mean of (ε̂ − z)² over the diffused entries of the batch only (rescaled so that its magnitude
//! does not depend on how many modalities are diffused).
//!
//! With probability `absent_p` per item, a random non-empty proper subset of the modalities is
//! also *absent*: its entries of τ are 1 and its latents are fully noised, so it carries no
//! information, and its dimensions leave the loss. The network then also learns the scores of
//! the marginals of the other modalities (UniDiffuser's independent times, Bao et al. 2023,
//! §3.2, restricted to τ ∈ {0, t, 1}), which the mutual guidance of `sampler::Mutual` needs.

use crate::config::ConditionPer;
use crate::sampler::{Conditioning, Denoiser, Layout};
use crate::sde::VpSde;
use tch::{Kind, Tensor};

/// The masked multi-time loss for clean latents `x0` `[B, D]`, times `t` `[B]`, noise `z`
/// `[B, D]`, the conditioned modalities `given` (boolean flags `[1, M]` shared by the batch or
/// `[B, M]` per item; all false: joint training) and the absent ones `absent` (flags of the same
/// forms, or `None`; a modality both given and absent is given).
pub fn masked_loss(
    den: &dyn Denoiser,
    sde: &VpSde,
    layout: &Layout,
    x0: &Tensor,
    (t, z): (&Tensor, &Tensor),
    given: &Tensor,
    absent: Option<&Tensor>,
) -> Tensor {
    let (alpha, sigma) = sde.marginal(t);
    let noisy = &alpha * x0 + &sigma * z;
    let cond = Conditioning::from_flags(layout, given, x0.shallow_clone());
    let mut tau = t.unsqueeze(-1) * &cond.time_mask;
    let mut left_out = cond.mask.shallow_clone();
    let input = match absent {
        None => cond.clamp(&noisy),
        Some(absent) => {
            let absent = absent.logical_and(&given.logical_not());
            let dims = layout.flagged_dims(&absent);
            let gone = x0 * sde.alpha(1.0) + z * sde.sigma(1.0);
            tau = tau.where_self(&absent.logical_not(), &Tensor::ones_like(&tau));
            left_out = left_out.logical_or(&dims);
            cond.clamp(&gone.where_self(&dims, &noisy))
        }
    };
    let eps = den.eps(&input, &tau);
    denoising_error(&eps, z, &left_out)
}

/// Mean of (ε̂ − z)² over the entries not left out (`left_out` `[1, D]` or `[B, D]` boolean:
/// given or absent); 0 when everything is left out (possible for tiny batches with absent
/// modalities), so that such a step changes nothing instead of failing on 0/0.
pub fn denoising_error(eps: &Tensor, z: &Tensor, left_out: &Tensor) -> Tensor {
    let keep = left_out.logical_not().to_kind(eps.kind()).expand_as(eps);
    ((eps - z).square() * &keep).sum(Kind::Float) / keep.sum(Kind::Float).clamp_min(1.0)
}

/// The masked loss of `den` on held-out latents `x0` `[N, D]` at fixed times `t` (`[N]`) and
/// fixed noise, for the given subset: no gradients, batches of `batch`. Deterministic for a
/// set of draws (see [`fixed_draws`]).
pub fn evaluation_loss(
    den: &dyn Denoiser,
    sde: &VpSde,
    layout: &Layout,
    x0: &Tensor,
    (t, z): (&Tensor, &Tensor),
    given: &[bool],
    batch: i64,
) -> f64 {
    let _guard = tch::no_grad_guard();
    let given = Tensor::from_slice(given).view([1, -1]).to_device(x0.device());
    let n = x0.size()[0];
    let mut total = 0.0;
    for start in (0..n).step_by(batch.max(1) as usize) {
        let len = batch.min(n - start);
        let part = |x: &Tensor| x.narrow(0, start, len);
        let loss = masked_loss(den, sde, layout, &part(x0), (&part(t), &part(z)), &given, None);
        total += loss.double_value(&[]) * len as f64;
    }
    total / n as f64
}

/// The held-out score loss of the training objective: held-out latents `x0`, times uniform on
/// [t_ε, 1], joint (nothing given) and every single-modality-given subset averaged — the same
/// draws every call (a private generator seeded by `seed`), so values along training compare.
pub fn held_out_loss(den: &dyn Denoiser, sde: &VpSde, layout: &Layout, x0: &Tensor, t_eps: f64, seed: u64) -> f64 {
    let n = x0.size()[0];
    let (t, z) = fixed_draws(n, x0.size()[1], t_eps, seed, x0.device());
    let m = layout.num_modalities();
    let mut subsets = vec![vec![false; m]];
    if m > 1 {
        subsets.extend((0..m).map(|k| (0..m).map(|i| i == k).collect()));
    }
    let joint = evaluation_loss(den, sde, layout, x0, (&t, &z), &subsets[0], 512);
    if m == 1 {
        return joint;
    }
    let given_one: f64 =
        subsets[1..].iter().map(|g| evaluation_loss(den, sde, layout, x0, (&t, &z), g, 512)).sum::<f64>() / m as f64;
    0.5 * (joint + given_one)
}

/// Times uniform on [t_ε, 1] and standard normal noise for `n` items of `d` dimensions, drawn
/// from a throw-away generator seeded by `seed` (libtorch's global generator is left as it was).
pub fn fixed_draws(n: i64, d: i64, t_eps: f64, seed: u64, device: tch::Device) -> (Tensor, Tensor) {
    let mut rng = mmlatent_core::rng::SplitMix64::new(seed);
    let t: Vec<f32> = (0..n).map(|_| (t_eps + (1.0 - t_eps) * rng.uniform()) as f32).collect();
    let z: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    (Tensor::from_slice(&t).to_device(device), Tensor::from_slice(&z).view([n, d]).to_device(device))
}

/// Draws which modalities `rows` training items condition on, as boolean flags `[rows, M]`:
/// each row with probability `d` a uniformly random non-empty proper subset, otherwise none.
/// One row serves a whole batch (`condition_per = "batch"`). Uses libtorch's seeded generator
/// (on the CPU, so that runs repeat on any device).
pub fn draw_conditions(rows: i64, n_modalities: usize, d: f64) -> Tensor {
    let cpu = (Kind::Int64, tch::Device::Cpu);
    let m = n_modalities as i64;
    if m < 2 {
        return Tensor::zeros([rows, m], (Kind::Bool, tch::Device::Cpu));
    }
    let conditioned = Tensor::rand([rows, 1], (Kind::Double, tch::Device::Cpu)).lt(d);
    // Subsets coded as bit sets 1 ..= 2^M − 2 (non-empty, proper), one bit per modality.
    let code = Tensor::randint((1i64 << m) - 2, [rows, 1], cpu) + 1;
    let bits = code.bitwise_right_shift(&Tensor::arange(m, cpu).view([1, m])).bitwise_and(1).eq(1);
    bits.logical_and(&conditioned)
}

/// Exponential moving average of a set of variables into a shadow copy.
pub struct Ema {
    pairs: Vec<(Tensor, Tensor)>,
    decay: f64,
}

impl Ema {
    /// Pairs the variables of `shadow` with those of `live` by name.
    pub fn new(live: &tch::nn::VarStore, shadow: &tch::nn::VarStore, decay: f64) -> anyhow::Result<Self> {
        let live_vars = live.variables();
        let mut pairs = vec![];
        for (name, s) in shadow.variables() {
            let l = live_vars.get(&name).ok_or_else(|| anyhow::anyhow!("EMA: no live variable {name}"))?;
            pairs.push((s, l.shallow_clone()));
        }
        Ok(Self { pairs, decay })
    }

    /// shadow ← decay·shadow + (1 − decay)·live.
    pub fn update(&mut self) {
        let _guard = tch::no_grad_guard();
        for (s, l) in &mut self.pairs {
            let _ = s.lerp_(l, 1.0 - self.decay);
        }
    }

    /// shadow ← live (at the start of training).
    pub fn copy_live(&mut self) {
        let _guard = tch::no_grad_guard();
        for (s, l) in &mut self.pairs {
            s.copy_(l);
        }
    }
}

/// The names of the score stage's weights in its checkpoint sets (training weights and EMA).
pub const WEIGHTS: [&str; 2] = [crate::model::SCORE, crate::model::SCORE_EMA];

/// Trains (or resumes, or skips when done) the score network on standardised latents `[N, D]`
/// as stage `score` (the run's last) through the training loop, with `ctx`'s snapshots; its checkpoint sets hold the training weights
/// (`score`), the EMA (`score_ema`) and the Adam moments. The learning rate follows `train_cfg`'s
/// schedule.
///
/// A held-out loss plugs in with one call before `.run(...)`:
/// `.validation(|| { let _g = tch::no_grad_guard(); Ok(held_out_score_loss(...)) })` — measured
/// every `train.validate_every` steps (default: at each checkpoint) with a reseeded generator,
/// logged as `val_loss`, its best weights kept as `checkpoints/score/best-<N>/` and loaded with
/// `training::load_weights(run, SCORE, Which::Best, ...)`.
pub fn train_score(
    ctx: &mmlatent_train::family::TrainContext,
    latents: &Tensor,
    held_out: Option<&Tensor>,
    layout: &Layout,
    cfg: &crate::config::MldConfig,
) -> anyhow::Result<()> {
    use crate::model::{build_score_net, SCORE};
    use mmlatent_core::optim::{Adam, AdamConfig};
    use mmlatent_train::training::Stage;
    use tch::nn;

    let (run, train_cfg, seed) = (ctx.run, &ctx.experiment.train, ctx.experiment.seed);
    let device = latents.device();
    // The networks' initial weights come from a generator seeded for this stage, so that they
    // do not depend on what ran before it in this process (a run resumed between the stages).
    mmlatent_train::training::seed_step(seed, SCORE, usize::MAX, 2);
    let vs = nn::VarStore::new(device);
    let net = build_score_net(&vs, layout, cfg);
    let ema_vs = nn::VarStore::new(device);
    let shadow = build_score_net(&ema_vs, layout, cfg);
    let mut ema = Ema::new(&vs, &ema_vs, cfg.score.ema)?;
    ema.copy_live();
    let sde = VpSde::new(cfg.score.beta_min, cfg.score.beta_max);
    let n = latents.size()[0] as usize;
    anyhow::ensure!(n > 0, "no training latents for the score network (an empty training split)");
    let batch = train_cfg.batch_size.min(n).max(1);
    mmlatent_train::parallel::local_batch(batch)?;
    let per_epoch = (n / batch).max(1);
    let den = |x: &Tensor, tau: &Tensor| net.forward(x, tau);
    let t_eps = cfg.score.t_eps;
    // The permutation of the current epoch, by epoch number.
    let mut perm: Option<(usize, Tensor)> = None;
    let stages = cfg.stage_count(layout.num_modalities());
    let mut stage = Stage::new(run, SCORE, train_cfg.steps, train_cfg, seed)
        .position(stages, stages)
        .snapshots(ctx.snapshot)
        .weights(WEIGHTS[0], &vs)
        .weights(WEIGHTS[1], &ema_vs)
        .optimiser("adam", Adam::new(&vs, AdamConfig::adam(train_cfg.lr)));
    if let Some(x0) = held_out {
        // The EMA weights are the ones sampling uses, so they are the ones validated.
        let ema_den = |x: &Tensor, tau: &Tensor| shadow.forward(x, tau);
        stage = stage.validation(move || Ok(held_out_loss(&ema_den, &sde, layout, x0, t_eps, seed ^ 0xE7A1)));
    }
    stage.run(|step, opts| {
        let (epoch, position) = (step / per_epoch, step % per_epoch);
        if perm.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let p = mmlatent_train::loader::epoch_permutation(n, seed ^ 0x5C0E, epoch).to_device(device);
            perm = Some((epoch, p));
        }
        let global = perm.as_ref().expect("set above").1.narrow(0, (position * batch) as i64, batch as i64);
        let idx = mmlatent_train::parallel::local_rows(&global);
        let x0 = latents.index_select(0, &idx);
        let b = idx.size()[0];
        let t = Tensor::rand([b], (Kind::Float, device)) * (1.0 - t_eps) + t_eps;
        let z = x0.randn_like();
        let rows = match cfg.score.condition_per {
            ConditionPer::Item => b,
            ConditionPer::Batch => 1,
        };
        let given = draw_conditions(rows, layout.num_modalities(), cfg.score.given_p).to_device(device);
        // Drawn only when used, so that runs without absent modalities draw what they always did.
        let absent = (cfg.score.absent_p > 0.0)
            .then(|| draw_conditions(b, layout.num_modalities(), cfg.score.absent_p).to_device(device));
        let loss = masked_loss(&den, &sde, layout, &x0, (&t, &z), &given, absent.as_ref());
        opts[0].backward_step(&loss)?;
        ema.update();
        Ok(vec![("loss", loss.double_value(&[]))])
    })?;
    Ok(())
}
