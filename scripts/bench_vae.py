#!/usr/bin/env python3
"""The PyTorch side of `mmlatent bench vae`: MoPoE and MMVAE+ trained with MultiVae
(`pip install multivae`) on the very batches mmlatent used (written by the Rust side to
target/bench_vae/), with the same architecture (mmlatent's conv encoder/decoder for 3x28x28,
rebuilt below), the same settings and batch, and the same step order.

Prints one JSON line: median milliseconds per training step and the mean loss of the last
5 steps for each model, with the keys of mmlatent's side.

    .venv/bin/python scripts/bench_vae.py --threads 2 --batch 256 --iters 30
"""

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn

from multivae.data.datasets.base import MultimodalBaseDataset
from multivae.models import MMVAEPlus, MMVAEPlusConfig, MoPoE, MoPoEConfig
from multivae.models.nn.base_architectures import BaseMultilatentEncoder
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# The workloads of crates/vae/src/bench.rs.
MOPOE = dict(latent=512, beta=2.5, width=32, lr=5e-4)
MMVAEPLUS = dict(latent=32, specific=32, beta=1.0, width=32, k=4, lr=1e-3)
LAPLACE_SCALE = 0.75


def conv_encoder(channels, out_dim, w):
    """mmlatent_core::nets::image::conv_encoder for 28x28 images."""
    return nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1), nn.SiLU(),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),
        nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.SiLU(),
        nn.Flatten(1),
        nn.Linear(4 * w * 16, out_dim),
    )


def conv_decoder(in_dim, channels, w):
    """mmlatent_core::nets::image::conv_decoder for 28x28 images."""
    return nn.Sequential(
        nn.Linear(in_dim, 4 * w * 16), nn.SiLU(),
        nn.Unflatten(1, (4 * w, 4, 4)),
        nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1), nn.SiLU(),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.SiLU(),
        nn.ConvTranspose2d(w, channels, 4, 2, 1),
    )


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


def load_pool(data_dir):
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    items = []
    for m, shape in enumerate(meta["shapes"]):
        with open(os.path.join(data_dir, f"m{m}.f32"), "rb") as f:
            raw = bytearray(f.read())
        items.append(torch.frombuffer(raw, dtype=torch.float32).reshape(shape))
    return items


def read_safetensors(path):
    """A safetensors file of f32 tensors (the format is a u64 header length, a JSON header, data)."""
    with open(path, "rb") as f:
        blob = f.read()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        start, end = info["data_offsets"]
        data = bytearray(blob[8 + size + start : 8 + size + end])
        tensors[name] = torch.frombuffer(data, dtype=torch.float32).reshape(info["shape"])
    return tensors


def load_mmlatent_weights(model, name, n_mod, path):
    """Copies mmlatent's initial weights (crates/vae frame layout) into the MultiVae model."""
    w = read_safetensors(path)
    enc_layers = {"c0": 0, "c1": 2, "c2": 4, "out": 7}
    dec_layers = {"in": 0, "d0": 3, "d1": 5, "d2": 7}
    with torch.no_grad():
        for m in range(n_mod):
            for layer, i in enc_layers.items():
                for p in ["weight", "bias"]:
                    getattr(model.encoders[f"m{m}"].net[i], p).copy_(w[f"frame.enc{m}.{layer}.{p}"])
            for layer, i in dec_layers.items():
                for p in ["weight", "bias"]:
                    getattr(model.decoders[f"m{m}"].net[i], p).copy_(w[f"frame.dec{m}.{layer}.{p}"])
            if name == "mmvaeplus":
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


def run(name, pool, batch, warmup, iters, data_dir):
    torch.manual_seed(0)
    n_mod, channels = len(pool), pool[0].shape[1]
    model, lr, _ = build(name, n_mod, channels)
    load_mmlatent_weights(model, name, n_mod, os.path.join(data_dir, f"{name}_init.safetensors"))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = pool[0].shape[0]
    times, losses = [], []
    for step in range(warmup + iters):
        start = (step * batch) % n
        size = min(batch, n - start)
        data = {f"m{m}": x[start : start + size] for m, x in enumerate(pool)}
        t0 = time.perf_counter()
        inputs = MultimodalBaseDataset(data=data, labels=torch.zeros(size, dtype=torch.long))
        out = model(inputs)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        ms = (time.perf_counter() - t0) * 1e3
        if step >= warmup:
            times.append(ms)
        loss = out.loss.item()
        losses.append(loss / size if name == "mmvaeplus" else loss)
    tail = losses[-5:]
    return {f"{name} ms/step": statistics.median(times), f"{name} loss@{len(losses)}": sum(tail) / len(tail)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench_vae"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pool = load_pool(args.data)
    result = {}
    for name in ["mopoe", "mmvaeplus"]:
        result.update(run(name, pool, args.batch, args.warmup, args.iters, args.data))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
