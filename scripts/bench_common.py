"""What the PyTorch sides of `mmlatent bench` share: mmlatent's conv encoder/decoder for 3x28x28
images rebuilt in torch, the training tuples and initial weights the Rust side wrote, and
timings summarised as mmlatent_bench::measure summarises its own (median, quartiles).

Epochs go through torch's DataLoader (shuffled TensorDataset, last incomplete batch dropped,
u8 images converted per batch), the way the reference code of the field loads data in memory.
With --precision bf16 the forward passes and losses run under torch.autocast (see `autocast`).
"""

import json
import os
import statistics
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "target", "bench_data")


def add_arguments(parser):
    """The options every bench script takes from `mmlatent bench`."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")


_BF16 = False


def set_precision(args):
    """Takes --precision for every later `autocast()`."""
    global _BF16
    _BF16 = args.precision == "bf16"


def autocast():
    """The forward passes and losses of a workload in the --precision asked for: bf16 is PyTorch's
    CPU autocast (what Lightning's precision="bf16-mixed" switches on); backward passes and
    optimiser steps stay outside it, as mmlatent runs them."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=_BF16)


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


# Parameter names of mmlatent's conv networks -> index in the nn.Sequential above.
ENCODER_LAYERS = {"c0": 0, "c1": 2, "c2": 4, "out": 7}
DECODER_LAYERS = {"in": 0, "d0": 3, "d1": 5, "d2": 7}


def copy_conv_weights(net, weights, prefix, layers):
    """Copies `prefix.<layer>.{weight,bias}` of an mmlatent safetensors file into `net`."""
    with torch.no_grad():
        for layer, i in layers.items():
            for p in ["weight", "bias"]:
                getattr(net[i], p).copy_(weights[f"{prefix}.{layer}.{p}"])


def laplace_log_prob(out, x, scale=0.75):
    """mmlatent's image Laplace likelihood: the mean is the sigmoid of the decoder output."""
    mu = torch.sigmoid(out)
    return (-(x - mu).abs() / scale - torch.log(torch.tensor(2 * scale))).reshape(x.shape[0], -1).sum(-1)


def load_split(data_dir):
    """The stored training tuples written by mmlatent_bench::measure::write_split (stored types)."""
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    items = []
    for m, (shape, dtype) in enumerate(zip(meta["shapes"], meta["dtypes"])):
        with open(os.path.join(data_dir, f"m{m}.bin"), "rb") as f:
            raw = bytearray(f.read())
        items.append(torch.frombuffer(raw, dtype=getattr(torch, dtype)).reshape(shape))
    return items


def to_data_space(t):
    """u8 images -> f32 in [0, 1] (mmlatent_core::dataset::to_data_space)."""
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def pool(items, batch):
    """The first 4 x batch tuples in data space: the step workloads cycle through them in order."""
    n = min(4 * batch, items[0].shape[0])
    return [to_data_space(t[:n]) for t in items]


def pool_batch(pooled, step, batch):
    n = pooled[0].shape[0]
    start = (step * batch) % n
    return [t[start : start + min(batch, n - start)] for t in pooled]


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


def summary(ms):
    """Median and quartiles (numpy's linear interpolation), as mmlatent_bench::measure::Timing."""
    ms = sorted(ms)
    if len(ms) == 1:
        return {"median": ms[0], "q1": ms[0], "q3": ms[0], "runs": 1}
    q1, med, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    return {"median": med, "q1": q1, "q3": q3, "runs": len(ms)}


def time_runs(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(max(iters, 1)):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    return summary(ms)


def few(iters):
    """Repetitions of the expensive workloads: a quarter (at least 3), after one warm-up."""
    return max(3, -(-iters // 4))


def time_epochs(items, batch, epochs, step):
    """`epochs` whole shuffled passes over the stored tuples through a DataLoader; `step` gets
    the batch of every modality in data space."""
    loader = DataLoader(TensorDataset(*items), batch_size=batch, shuffle=True, drop_last=True)
    ms = []
    for _ in range(epochs):
        start = time.perf_counter()
        for stored in loader:
            step([to_data_space(t) for t in stored])
        ms.append((time.perf_counter() - start) * 1e3)
    return summary(ms)


def emit(timings, values=None):
    """The one JSON line `mmlatent bench` reads."""
    print(json.dumps({"timings": timings, "values": values or {}}))
