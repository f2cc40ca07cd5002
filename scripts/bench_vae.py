#!/usr/bin/env python3
"""The PyTorch side of `mmlatent bench vae`: MoPoE and MMVAE+ trained with MultiVae
(`pip install multivae`) on the very batches mmlatent used (the training tuples the Rust side
wrote to target/bench_data/), with the same architecture (mmlatent's conv encoder/decoder for
3x28x28, scripts/bench_common.py), the same settings and batch, and the same step order; then
whole shuffled epochs through a DataLoader.

Prints one JSON line: per model, the timings `<model> step` and `<model> epoch` and the value
`<model> loss@<steps>` (mean loss of the last 5 steps), with the keys of mmlatent's side.

    .venv/bin/python scripts/bench_vae.py --threads 2 --batch 256 --iters 30 --epochs 3
"""

import argparse
import os
import time

import torch
from multivae.data.datasets.base import MultimodalBaseDataset
from multivae.models import MMVAEPlus, MMVAEPlusConfig, MoPoE, MoPoEConfig
from multivae.models.nn.base_architectures import BaseMultilatentEncoder
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder

from bench_common import (DECODER_LAYERS, ENCODER_LAYERS, add_arguments, autocast, conv_decoder, conv_encoder,
                          copy_conv_weights, emit, load_split, pool, pool_batch, read_safetensors, set_precision,
                          summary, time_epochs)

# The workloads of crates/bench/src/vae.rs.
MOPOE = dict(latent=512, beta=2.5, width=32, lr=5e-4)
MMVAEPLUS = dict(latent=32, specific=32, beta=1.0, width=32, k=4, lr=1e-3)
LAPLACE_SCALE = 0.75


class Encoder(BaseEncoder):
    """Gaussian (or Laplace) posterior: first half location, second half log-variance/raw scale."""

    def __init__(self, channels, latent, w):
        super().__init__()
        self.latent = latent
        self.net = conv_encoder(channels, 2 * latent, w)

    def forward(self, x):
        out = self.net(x)
        return ModelOutput(embedding=out[:, : self.latent], log_covariance=out[:, self.latent :])


class SplitEncoder(BaseMultilatentEncoder):
    """Shared + private latents, laid out as mmlatent's frame does: [loc_u, loc_w, raw_u, raw_w]."""

    def __init__(self, channels, shared, specific, w):
        super().__init__()
        self.shared, self.total = shared, shared + specific
        self.latent_dim, self.style_dim = shared, specific
        self.net = conv_encoder(channels, 2 * self.total, w)

    def forward(self, x):
        out = self.net(x)
        s, t = self.shared, self.total
        return ModelOutput(
            embedding=out[:, :s],
            style_embedding=out[:, s:t],
            log_covariance=out[:, t : t + s],
            style_log_covariance=out[:, t + s :],
        )


class Decoder(BaseDecoder):
    """Decoder whose output (after a sigmoid, as mmlatent's image likelihoods) is the Laplace mean."""

    def __init__(self, in_dim, channels, w):
        super().__init__()
        self.net = conv_decoder(in_dim, channels, w)

    def forward(self, z):
        lead = z.shape[:-1]
        out = torch.sigmoid(self.net(z.reshape(-1, z.shape[-1])))
        return ModelOutput(reconstruction=out.reshape(*lead, *out.shape[1:]))


def load_mmlatent_weights(model, name, n_mod, path):
    """Copies mmlatent's initial weights (crates/vae frame layout) into the MultiVae model."""
    w = read_safetensors(path)
    for m in range(n_mod):
        copy_conv_weights(model.encoders[f"m{m}"].net, w, f"frame.enc{m}", ENCODER_LAYERS)
        copy_conv_weights(model.decoders[f"m{m}"].net, w, f"frame.dec{m}", DECODER_LAYERS)
        if name == "mmvaeplus":
            with torch.no_grad():
                model.logvars_priors[f"m{m}"].copy_(w[f"aux.r{m}"])


def build(name, n_mod, channels):
    mods = [f"m{m}" for m in range(n_mod)]
    dims = {m: (channels, 28, 28) for m in mods}
    dist = {m: "laplace" for m in mods}
    params = {m: {"scale": LAPLACE_SCALE} for m in mods}
    if name == "mopoe":
        s = MOPOE
        cfg = MoPoEConfig(n_modalities=n_mod, latent_dim=s["latent"], input_dims=dims, decoders_dist=dist,
                          decoder_dist_params=params, beta=s["beta"])
        enc = {m: Encoder(channels, s["latent"], s["width"]) for m in mods}
        dec = {m: Decoder(s["latent"], channels, s["width"]) for m in mods}
        return MoPoE(cfg, encoders=enc, decoders=dec), s["lr"], 1.0
    s = MMVAEPLUS
    cfg = MMVAEPlusConfig(n_modalities=n_mod, latent_dim=s["latent"], modalities_specific_dim=s["specific"],
                          input_dims=dims, decoders_dist=dist, decoder_dist_params=params, beta=s["beta"], K=s["k"],
                          prior_and_posterior_dist="laplace_with_softmax", learn_modality_prior=True,
                          loss="iwae_looser")
    enc = {m: SplitEncoder(channels, s["latent"], s["specific"], s["width"]) for m in mods}
    dec = {m: Decoder(s["latent"] + s["specific"], channels, s["width"]) for m in mods}
    # MultiVae's MMVAE+ returns the loss summed over the batch; mmlatent reports the batch mean.
    return MMVAEPlus(cfg, encoders=enc, decoders=dec), s["lr"], None


def train_step(model, opt, name, xs):
    """One MultiVae training step; the loss per tuple."""
    size = xs[0].shape[0]
    inputs = MultimodalBaseDataset(data={f"m{m}": x for m, x in enumerate(xs)},
                                   labels=torch.zeros(size, dtype=torch.long))
    with autocast():
        out = model(inputs)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    loss = out.loss.item()
    return loss / size if name == "mmvaeplus" else loss


def run(name, items, args):
    torch.manual_seed(0)
    pooled = pool(items, args.batch)
    n_mod, channels = len(pooled), pooled[0].shape[1]
    model, lr, _ = build(name, n_mod, channels)
    load_mmlatent_weights(model, name, n_mod, os.path.join(args.data, f"{name}_init.safetensors"))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times, losses = [], []
    for step in range(args.warmup + args.iters):
        xs = pool_batch(pooled, step, args.batch)
        t0 = time.perf_counter()
        losses.append(train_step(model, opt, name, xs))
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    tail = losses[-5:]
    timings = {f"{name} step": summary(times)}
    if args.epochs > 0:
        timings[f"{name} epoch"] = time_epochs(items, args.batch, args.epochs,
                                               lambda xs: train_step(model, opt, name, xs))
    return timings, {f"{name} loss@{len(losses)}": sum(tail) / len(tail)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    set_precision(args)
    torch.set_num_threads(args.threads)
    items = load_split(args.data)
    timings, values = {}, {}
    for name in ["mopoe", "mmvaeplus"]:
        t, v = run(name, items, args)
        timings.update(t)
        values.update(v)
    emit(timings, values)


if __name__ == "__main__":
    main()
