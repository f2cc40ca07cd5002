#!/usr/bin/env python3
"""The PyTorch side of `mmlatent bench ebm`: the EBM-prior multimodal model of crates/ebm
(base version, configs/default-ebm.toml) written in PyTorch as a researcher would write it —
conv Gaussian experts and decoders (scripts/bench_common.py), the energy MLP f, short-run
Langevin on exp(-f(z)) N(z; 0, I), the mixture-of-experts objective — started from the initial
weights mmlatent wrote, on the same batches.

Workloads: `ebm step` (generator / inference update, Langevin draw of M*B chains, EBM update),
`ebm epoch` (whole shuffled epochs through a DataLoader), `ebm joint1000` (1,000 joint samples);
value `ebm loss@<steps>`. Prints one JSON line.
"""

import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_common import (DECODER_LAYERS, ENCODER_LAYERS, add_arguments, autocast, conv_decoder, conv_encoder,
                          copy_conv_weights, emit, few, laplace_log_prob, load_split, pool, pool_batch,
                          read_safetensors, set_precision, summary, time_epochs, time_runs)

# configs/default-ebm.toml (crates/bench/src/ebm.rs MODEL).
LATENT, WIDTH, HIDDEN, LAYERS = 16, 32, 200, 2
LANGEVIN_STEPS, LANGEVIN_SIZE = 60, 0.4
GENERATOR_LR, EBM_LR, EBM_BETA1, PRIOR_WEIGHT = 1e-3, 1e-4, 0.5, 1.0


def std_normal_log_density(z):
    return -0.5 * z.square().sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def gaussian_log_prob(z, mu, sigma):
    return (-(z - mu).square() / (2 * sigma.square()) - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


class EbmModel(nn.Module):
    def __init__(self, n_mod, channels):
        super().__init__()
        self.encoders = nn.ModuleList(conv_encoder(channels, 2 * LATENT, WIDTH) for _ in range(n_mod))
        self.decoders = nn.ModuleList(conv_decoder(LATENT, channels, WIDTH) for _ in range(n_mod))
        dims = [LATENT] + [HIDDEN] * LAYERS + [1]
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i + 2 < len(dims):
                layers.append(nn.SiLU())
        self.energy_net = nn.Sequential(*layers)

    def load_mmlatent(self, path):
        w = read_safetensors(path)
        for m, (enc, dec) in enumerate(zip(self.encoders, self.decoders)):
            copy_conv_weights(enc, w, f"generator.enc{m}", ENCODER_LAYERS)
            copy_conv_weights(dec, w, f"generator.dec{m}", DECODER_LAYERS)
        linears = [l for l in self.energy_net if isinstance(l, nn.Linear)]
        with torch.no_grad():
            for i, l in enumerate(linears):
                l.weight.copy_(w[f"prior.energy.l{i}.weight"])
                l.bias.copy_(w[f"prior.energy.l{i}.bias"])

    def energy(self, z):
        return self.energy_net(z).float().squeeze(-1)

    def langevin(self, n):
        """z <- z - (s^2/2)(grad f(z) + z) + s eps, from N(0, I)."""
        z = torch.randn(n, LATENT)
        for _ in range(LANGEVIN_STEPS):
            z = z.detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.energy(z).sum(), z)
            z = z.detach() - 0.5 * LANGEVIN_SIZE ** 2 * (grad + z.detach()) + LANGEVIN_SIZE * torch.randn_like(z)
        return z.detach()

    def objective(self, xs):
        m_count, b = len(xs), xs[0].shape[0]
        experts = []
        for enc, x in zip(self.encoders, xs):
            raw = enc(x).float()
            experts.append((raw[:, :LATENT], F.softplus(raw[:, LATENT:]) + 1e-4))
        z = torch.stack([mu + sigma * torch.randn_like(mu) for mu, sigma in experts])  # [M, B, D]
        log_q = torch.stack([gaussian_log_prob(z, mu, sigma) for mu, sigma in experts]).logsumexp(0) - math.log(m_count)
        z_flat = z.reshape(m_count * b, LATENT)
        log_p = (-self.energy(z_flat) + std_normal_log_density(z_flat)).view(m_count, b)
        reg = log_p - log_q
        log_px = torch.stack([
            laplace_log_prob(dec(z_flat).float(), x.repeat(m_count, 1, 1, 1)).view(m_count, b)
            for dec, x in zip(self.decoders, xs)
        ])  # [N, M, B]
        recon = log_px.diagonal(0, 0, 1).transpose(0, 1)
        cross = log_px.sum(0) - recon
        return -(recon + cross + PRIOR_WEIGHT * reg).mean(), z_flat.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    set_precision(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    items = load_split(args.data)
    pooled = pool(items, args.batch)
    model = EbmModel(len(pooled), pooled[0].shape[1])
    model.load_mmlatent(os.path.join(args.data, "ebm_init.safetensors"))
    generator = [p for n, p in model.named_parameters() if not n.startswith("energy_net")]
    opt_gen = torch.optim.Adam(generator, lr=GENERATOR_LR)
    opt_ebm = torch.optim.Adam(model.energy_net.parameters(), lr=EBM_LR, betas=(EBM_BETA1, 0.999))

    def train_step(xs):
        with autocast():
            loss, posterior = model.objective(xs)
        opt_gen.zero_grad()
        loss.backward()
        opt_gen.step()
        with autocast():
            prior = model.langevin(posterior.shape[0])
            ebm_loss = model.energy(posterior).mean() - model.energy(prior).mean()
        opt_ebm.zero_grad()
        ebm_loss.backward()
        opt_ebm.step()
        return loss.item()

    times, losses = [], []
    for step in range(args.warmup + args.iters):
        xs = pool_batch(pooled, step, args.batch)
        t0 = time.perf_counter()
        losses.append(train_step(xs))
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    timings = {"ebm step": summary(times)}
    if args.epochs > 0:
        timings["ebm epoch"] = time_epochs(items, args.batch, args.epochs, train_step)

    def joint1000():
        with autocast():
            z = model.langevin(1000)
        with torch.no_grad(), autocast():
            return [torch.sigmoid(dec(z)) for dec in model.decoders]

    timings["ebm joint1000"] = time_runs(joint1000, 1, few(args.iters))
    tail = losses[-5:]
    emit(timings, {f"ebm loss@{len(losses)}": sum(tail) / len(tail)})


if __name__ == "__main__":
    main()
