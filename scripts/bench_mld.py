#!/usr/bin/env python3
"""PyTorch reference timings for `mmlatent bench mld`.

Builds the same networks as crates/mld (the conv autoencoder of mmlatent-core's nets, the MLP
U-Net score network) and times the same workloads with the same batch and thread count:
ae_step, score_step (PolyMNIST size), score_step_small (default size) and sample_em100.
Prints one JSON object of median milliseconds on stdout.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_encoder(c, side, out_dim, w):
    last = 3 if side == 28 else 4
    return nn.Sequential(
        nn.Conv2d(c, w, 4, 2, 1), nn.SiLU(),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),
        nn.Conv2d(2 * w, 4 * w, last, 2, 1), nn.SiLU(),
        nn.Flatten(), nn.Linear(4 * w * 16, out_dim))


class Unflatten(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return F.silu(x).view(-1, 4 * self.w, 4, 4)


def conv_decoder(in_dim, c, side, w):
    first = 3 if side == 28 else 4
    return nn.Sequential(
        nn.Linear(in_dim, 4 * w * 16), Unflatten(w),
        nn.ConvTranspose2d(4 * w, 2 * w, first, 2, 1), nn.SiLU(),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.SiLU(),
        nn.ConvTranspose2d(w, c, 4, 2, 1))


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
    def __init__(self, dim, n_mod, width, time_dim, mults, groups):
        super().__init__()
        dims = [width] + [m * width for m in mults]
        levels = list(zip(dims[:-1], dims[1:]))
        self.input = nn.Linear(dim, width)
        self.time0, self.time1 = nn.Linear(n_mod, time_dim), nn.Linear(time_dim, time_dim)
        self.downs = nn.ModuleList(
            nn.ModuleList([ResBlock(a, a, time_dim, groups), nn.Linear(a, b)]) for a, b in levels)
        self.mid0 = ResBlock(dims[-1], dims[-1], time_dim, groups)
        self.mid1 = ResBlock(dims[-1], dims[-1], time_dim, groups)
        self.ups = nn.ModuleList(
            nn.ModuleList([ResBlock(b + a, b, time_dim, groups), nn.Linear(b, a)]) for a, b in reversed(levels))
        self.last = ResBlock(2 * width, width, time_dim, groups)
        self.out_norm, self.out = nn.GroupNorm(groups, width), nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, tau):
        temb = F.silu(self.time1(F.gelu(self.time0(tau))))
        r = self.input(x)
        h, skips = r, []
        for block, down in self.downs:
            h = block(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid1(self.mid0(h, temb), temb)
        for block, up in self.ups:
            h = up(block(torch.cat([h, skips.pop()], 1), temb))
        h = self.last(torch.cat([h, r], 1), temb)
        return self.out(F.silu(self.out_norm(h)))


BETA_MIN, BETA_MAX, T_EPS = 0.1, 20.0, 1e-3


def marginal(t):
    log_alpha = -0.25 * t ** 2 * (BETA_MAX - BETA_MIN) - 0.5 * t * BETA_MIN
    return log_alpha.exp().unsqueeze(-1), (-torch.expm1(2 * log_alpha)).sqrt().unsqueeze(-1)


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(iters, 1)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[len(times) // 2]


def score_sizes(big):
    return (5, 160, 1536, 512, 32) if big else (3, 32, 256, 128, 8)


def time_score_step(batch, warmup, iters, big):
    m, per, width, time_dim, groups = score_sizes(big)
    dim = m * per
    net = ScoreNet(dim, m, width, time_dim, [1, 1], groups)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x0 = torch.randn(batch, dim)
    given = torch.zeros(1, dim, dtype=torch.bool)
    time_mask = torch.ones(1, m)

    def step():
        t = torch.rand(batch) * 0.999 + 1e-3
        z = torch.randn_like(x0)
        alpha, sigma = marginal(t)
        noisy = torch.where(given, x0, alpha * x0 + sigma * z)
        eps = net(noisy, t.unsqueeze(-1) * time_mask)
        keep = (~given).float()
        loss = ((eps - z).square() * keep).sum() / (keep.sum() * batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return median_ms(step, warmup, iters)


def sample_em(net, m, dim, batch, steps):
    given = torch.zeros(1, dim, dtype=torch.bool)
    time_mask = torch.ones(1, m)
    x0 = torch.zeros(batch, dim)
    sigma1 = math.sqrt(-math.expm1(2 * (-0.25 * (BETA_MAX - BETA_MIN) - 0.5 * BETA_MIN)))
    x = torch.where(given, x0, torch.randn_like(x0) * sigma1)
    dt = (1 - T_EPS) / steps
    for i in range(steps, 0, -1):
        t = T_EPS + i * dt
        x = torch.where(given, x0, x)
        eps = net(x, (time_mask * t).expand(batch, -1))
        beta = BETA_MIN + t * (BETA_MAX - BETA_MIN)
        f, g = -0.5 * beta, math.sqrt(beta)
        log_alpha = -0.25 * t * t * (BETA_MAX - BETA_MIN) - 0.5 * t * BETA_MIN
        score = eps * (-1.0 / math.sqrt(-math.expm1(2 * log_alpha)))
        nxt = x - (x * f - score * (g * g)) * dt
        if i > 1:
            nxt = nxt + torch.randn_like(x) * (g * math.sqrt(dt))
        x = torch.where(given, x0, nxt)
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    enc, dec = conv_encoder(3, 28, 32, 32), conv_decoder(32, 3, 28, 32)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    x = torch.rand(a.batch, 3, 28, 28)

    def ae_step():
        mu = torch.sigmoid(dec(enc(x)))
        scale = 0.75
        logp = (-(x - mu).abs() / scale - math.log(2 * scale)).reshape(a.batch, -1).sum(-1)
        loss = -logp.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    out = {"ae_step": median_ms(ae_step, a.warmup, a.iters)}
    few = max(3, -(-a.iters // 4))
    out["score_step"] = time_score_step(a.batch, 1, few, True)
    out["score_step_small"] = time_score_step(a.batch, a.warmup, a.iters, False)
    m, per, width, time_dim, groups = score_sizes(False)
    net = ScoreNet(m * per, m, width, time_dim, [1, 1], groups)
    with torch.no_grad():
        out["sample_em100"] = median_ms(lambda: sample_em(net, m, m * per, a.batch, 100), 1, few)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
