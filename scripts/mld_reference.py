#!/usr/bin/env python3
"""MLD's stage-2 maths in PyTorch, as the reference implementation (MustaphaBounoua/MLD,
src/components/mm_sde.py and src/models/MLD.py) computes it, for crates/mld/tests/pytorch_reference.rs:

- the masked multi-time denoising loss: x_t = α(t) x₀ + σ(t) z; the conditioned modalities keep
  their clean latents and time 0; the network's prediction and the noise are masked on them; the
  reference sums the squared error and rescales it by 1 + d_given / (D − d_given), mmlatent takes
  the mean over the entries left in; with mmlatent's absent modalities (time 1, latents at
  α(1) x₀ + σ(1) z, out of the loss) the mean over the entries left in is the same rule;
- one Euler–Maruyama step of the reverse SDE with the given modalities held (the reference's
  `euler_step_impaiting`).

Reads the score network's weights (an mmlatent safetensors file, `score.` prefix) and the inputs
(`inputs.safetensors`: x0, t, z, given [1, M], absent [B, M], x, noise, sizes), prints one JSON
line with the losses and the stepped latents.
"""
import argparse
import json
import math
import sys

import torch

from bench_common import read_safetensors
from bench_mld import ScoreNet, euler_maruyama_step, log_alpha, marginal


def dims_of(flags, sizes):
    """Per-modality flags [R, M] spread over the latent dimensions, [R, D] bool."""
    return torch.repeat_interleave(flags > 0.5, torch.tensor(sizes), dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--time-dim", type=int, required=True)
    p.add_argument("--mults", type=int, nargs="+", required=True)
    p.add_argument("--groups", type=int, required=True)
    p.add_argument("--t", type=float, required=True, help="time of the sampler step")
    p.add_argument("--dt", type=float, required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    inputs = read_safetensors(a.inputs)
    sizes = [int(s) for s in inputs["sizes"].tolist()]
    x0, t, z = inputs["x0"], inputs["t"], inputs["z"]
    given, absent = inputs["given"], inputs["absent"]
    batch, dim, m = x0.shape[0], x0.shape[1], len(sizes)
    net = ScoreNet(dim, m, a.width, a.time_dim, a.mults, a.groups, sizes=sizes)
    weights = read_safetensors(a.weights)
    state = {name[len("score."):]: w for name, w in weights.items() if name.startswith("score.")}
    net.load_state_dict(state, strict=True)

    with torch.no_grad():
        alpha, sigma = marginal(t)
        given_dims = dims_of(given, sizes)  # [1, D]
        absent = absent * (1.0 - given)  # a modality both given and absent is given
        absent_dims = dims_of(absent, sizes)  # [B, D]
        # The reference's train_step: perturb, keep the conditioned modalities clean, time 0 there.
        perturbed = alpha * x0 + sigma * z
        perturbed = torch.where(given_dims, x0, perturbed)
        tau = t.unsqueeze(-1) * (1.0 - given)
        # mmlatent's absent modalities: fully noised, time 1.
        gone = x0 * math.exp(log_alpha(1.0)) + z * math.sqrt(-math.expm1(2 * log_alpha(1.0)))
        with_absent = torch.where(absent_dims & ~given_dims, gone, perturbed)
        tau_absent = torch.where(absent > 0.5, torch.ones_like(tau), tau)

        def masked(inp, times, left_out):
            eps = net(inp, times)
            keep = (~left_out).float()
            err = (eps - z).square() * keep
            return err.sum(), keep.sum()

        total, kept = masked(with_absent, tau_absent, given_dims | absent_dims)
        loss = total / kept
        # Without absent modalities the reference's own reduction applies: the sum, rescaled.
        total0, kept0 = masked(perturbed, tau, given_dims.expand(batch, -1))
        d_given = float(given_dims.sum())
        reference_sum = total0 * (1 + d_given / (dim - d_given))

        time_mask = 1.0 - given
        stepped = euler_maruyama_step(net, inputs["x"], x0, given_dims, time_mask, a.t, a.dt, inputs["noise"])
    print(json.dumps({
        "loss": float(loss),
        "loss_without_absent": float(total0 / kept0),
        "reference_loss_without_absent": float(reference_sum),
        "batch_times_dim": batch * dim,
        "stepped": stepped.flatten().tolist(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
