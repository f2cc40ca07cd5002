#!/usr/bin/env python3
"""PyTorch reference timings for `mmlatent bench mld`.

Builds the same networks as crates/mld (the conv autoencoder of mmlatent-core's nets, the MLP
U-Net score network) and times the same workloads with the same batch and thread count:
ae_step, ae_epoch, stage1_epoch (an epoch of every modality's autoencoder, one after another),
score_step (PolyMNIST size), score_step_small and score_epoch (default
size; every batch encoded by frozen autoencoders, as the reference MLD trains) and sample_em100.
Prints one JSON line (scripts/bench_common.py).
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_common import (add_arguments, autocast, conv_decoder, conv_encoder, emit, few, laplace_log_prob,
                          load_split, set_precision, summary, time_epochs, time_runs)


class ResBlock(nn.Module):
    def __init__(self, i, o, time_dim, groups):
        super().__init__()
        self.n0, self.l0 = nn.GroupNorm(groups, i), nn.Linear(i, o)
        self.time = nn.Linear(time_dim, o)
        self.n1, self.l1 = nn.GroupNorm(groups, o), nn.Linear(o, o)
        self.skip = nn.Linear(i, o) if i != o else None

    def forward(self, x, temb):
        h = self.l0(F.silu(self.n0(x))) + self.time(temb)
        h = self.l1(F.silu(self.n1(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class ScoreNet(nn.Module):
    """crates/mld's score network (score_net.rs), its parameters named as mmlatent names them
    (`down0.n0.weight`, `downl0.weight`, …) so that its checkpoints load here. `sizes` (the latent
    size of each modality) turns on the residual output ε̂ = σ(τ)·x + F(x, τ); without it the
    output is F, the reference's."""

    def __init__(self, dim, n_mod, width, time_dim, mults, groups, sizes=None):
        super().__init__()
        dims = [width] + [m * width for m in mults]
        self.levels = list(zip(dims[:-1], dims[1:]))
        self.input = nn.Linear(dim, width)
        self.time0, self.time1 = nn.Linear(n_mod, time_dim), nn.Linear(time_dim, time_dim)
        for i, (a, b) in enumerate(self.levels):
            setattr(self, f"down{i}", ResBlock(a, a, time_dim, groups))
            setattr(self, f"downl{i}", nn.Linear(a, b))
        self.mid0 = ResBlock(dims[-1], dims[-1], time_dim, groups)
        self.mid1 = ResBlock(dims[-1], dims[-1], time_dim, groups)
        for i, (a, b) in enumerate(reversed(self.levels)):
            setattr(self, f"up{i}", ResBlock(b + a, b, time_dim, groups))
            setattr(self, f"upl{i}", nn.Linear(b, a))
        self.last = ResBlock(2 * width, width, time_dim, groups)
        self.out_norm, self.out = nn.GroupNorm(groups, width), nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.spread = None
        if sizes is not None:
            # [M, D]: 1 where dimension d belongs to modality m.
            self.spread = torch.block_diag(*[torch.ones(1, s) for s in sizes])

    def forward(self, x, tau):
        temb = F.silu(self.time1(F.gelu(self.time0(tau))))
        r = self.input(x)
        h, skips = r, []
        for i in range(len(self.levels)):
            h = getattr(self, f"down{i}")(h, temb)
            skips.append(h)
            h = getattr(self, f"downl{i}")(h)
        h = self.mid1(self.mid0(h, temb), temb)
        for i in range(len(self.levels)):
            h = getattr(self, f"upl{i}")(getattr(self, f"up{i}")(torch.cat([h, skips.pop()], 1), temb))
        h = self.last(torch.cat([h, r], 1), temb)
        f = self.out(F.silu(self.out_norm(h)))
        if self.spread is None:
            return f
        return f + marginal_std(tau) @ self.spread * x


BETA_MIN, BETA_MAX, T_EPS = 0.1, 20.0, 1e-3


def log_alpha(t):
    """log α(t) of the VP-SDE with a linear β schedule."""
    return -0.25 * t ** 2 * (BETA_MAX - BETA_MIN) - 0.5 * t * BETA_MIN


def marginal_std(t):
    """σ(t) = √(1 − α(t)²), elementwise."""
    return (-torch.expm1(2 * log_alpha(t))).sqrt()


def marginal(t):
    """α(t) and σ(t) of times `t` [B] as [B, 1] columns."""
    return log_alpha(t).exp().unsqueeze(-1), marginal_std(t).unsqueeze(-1)


def score_sizes(big):
    return (5, 160, 1536, 512, 32) if big else (3, 32, 256, 128, 8)


class ScoreBench:
    """A score network of the benchmark's size, its optimiser and one step of the joint loss."""

    def __init__(self, big):
        m, per, width, time_dim, groups = score_sizes(big)
        self.m, self.dim = m, m * per
        self.net = ScoreNet(self.dim, m, width, time_dim, [1, 1], groups)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-4)

    def step(self, x0):
        batch = x0.shape[0]
        given = torch.zeros(1, self.dim, dtype=torch.bool)
        t = torch.rand(batch) * 0.999 + 1e-3
        z = torch.randn_like(x0)
        alpha, sigma = marginal(t)
        with autocast():
            noisy = torch.where(given, x0, alpha * x0 + sigma * z)
            eps = self.net(noisy, t.unsqueeze(-1) * torch.ones(1, self.m)).float()
            keep = (~given).float()
            loss = ((eps - z).square() * keep).sum() / (keep.sum() * batch)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


def time_score_step(batch, warmup, iters, big):
    bench = ScoreBench(big)
    x0 = torch.randn(batch, bench.dim)
    return time_runs(lambda: bench.step(x0), warmup, iters)


def autoencoder():
    """The benchmark's autoencoder (latent 32, width 32) and its Adam."""
    enc, dec = conv_encoder(3, 32, 32), conv_decoder(32, 3, 32)
    return enc, dec, torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)


def ae_step(enc, dec, opt, x):
    with autocast():
        loss = -laplace_log_prob(dec(enc(x)).float(), x).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def euler_maruyama_step(net, x, x0, given, time_mask, t, dt, noise):
    """One Euler–Maruyama step of the reverse VP-SDE from t to t − dt (the reference's
    `euler_step_impaiting`): given dimensions (`given` [1, D] bool) are held at `x0` and their
    entries of τ (`time_mask` [1, M], 0 where given) are 0; score = −ε̂/σ(t);
    x ← x − dt·(f x − g² score) + g √dt · noise (`noise`: None on the last step)."""
    x = torch.where(given, x0, x)
    eps = net(x, (time_mask * t).expand(x.shape[0], -1)).float()
    beta = BETA_MIN + t * (BETA_MAX - BETA_MIN)
    f, g = -0.5 * beta, math.sqrt(beta)
    score = eps * (-1.0 / math.sqrt(-math.expm1(2 * log_alpha(t))))
    nxt = x - (x * f - score * (g * g)) * dt
    if noise is not None:
        nxt = nxt + noise * (g * math.sqrt(dt))
    return torch.where(given, x0, nxt)


def sample_em(net, m, dim, batch, steps):
    given = torch.zeros(1, dim, dtype=torch.bool)
    time_mask = torch.ones(1, m)
    x0 = torch.zeros(batch, dim)
    sigma1 = math.sqrt(-math.expm1(2 * log_alpha(1.0)))
    x = torch.where(given, x0, torch.randn_like(x0) * sigma1)
    dt = (1 - T_EPS) / steps
    for i in range(steps, 0, -1):
        t = T_EPS + i * dt
        x = euler_maruyama_step(net, x, x0, given, time_mask, t, dt, torch.randn_like(x) if i > 1 else None)
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__)
    add_arguments(p)
    a = p.parse_args()
    set_precision(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    enc, dec, opt = autoencoder()
    x = torch.rand(a.batch, 3, 28, 28)
    out = {"ae_step": time_runs(lambda: ae_step(enc, dec, opt, x), a.warmup, a.iters)}
    items = load_split(a.data) if a.epochs > 0 else None
    if a.epochs > 0:
        enc, dec, opt = autoencoder()
        out["ae_epoch"] = time_epochs(items[:1], a.batch, a.epochs, lambda xs: ae_step(enc, dec, opt, xs[0]))
        # Stage 1: every modality's autoencoder, one after another (as the reference trains them).
        autoencoders = [autoencoder() for _ in items]
        ms = []
        for _ in range(a.epochs):
            start = time.perf_counter()
            for (enc, dec, opt), stored in zip(autoencoders, items):
                time_epochs([stored], a.batch, 1, lambda xs: ae_step(enc, dec, opt, xs[0]))
            ms.append((time.perf_counter() - start) * 1e3)
        out["stage1_epoch"] = summary(ms)
    out["score_step"] = time_score_step(a.batch, 1, few(a.iters), True)
    out["score_step_small"] = time_score_step(a.batch, a.warmup, a.iters, False)
    if a.epochs > 0:
        bench = ScoreBench(False)
        encoders = [conv_encoder(3, 32, 32) for _ in range(bench.m)]

        def score_epoch_step(xs):
            with torch.no_grad(), autocast():
                x0 = torch.cat([e(x).float() for e, x in zip(encoders, xs)], 1)
            bench.step(x0)

        out["score_epoch"] = time_epochs(items[: bench.m], a.batch, a.epochs, score_epoch_step)
    m, per, width, time_dim, groups = score_sizes(False)
    net = ScoreNet(m * per, m, width, time_dim, [1, 1], groups)
    with torch.no_grad(), autocast():
        out["sample_em100"] = time_runs(lambda: sample_em(net, m, m * per, a.batch, 100), 1, few(a.iters))
    emit(out)


if __name__ == "__main__":
    main()
