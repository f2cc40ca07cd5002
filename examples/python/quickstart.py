"""mmlatent from Python, on the bundled default dataset (Fashion-MNIST in three textured
modalities of 3×28×28): train a short MLD run, sample it jointly and conditionally, look at its
latent space, and hand the samples to PyTorch. Runs as is from the repository root after
`bash scripts/setup.sh`:

    .venv/bin/python examples/python/quickstart.py

A deliberately short run (150 autoencoder and 300 score-network steps: its samples are blurry);
drop the `overrides` for the real configuration. An argument sets both step counts, e.g. `20` for
a smoke test. Run again, it continues the run folder it made rather than failing.
"""

import logging
import os
import sys

import torch

import mmlatent

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

# 1. Train: the same experiment files and `--set` overrides as `mmlatent train`.
steps = int(sys.argv[1]) if len(sys.argv) > 1 else None
folder = "runs/python-quickstart"
run = mmlatent.train(
    "configs/default-mld.toml",
    run=folder,
    overrides={
        "model.autoencoder.steps": steps or 150,
        "train.steps": steps or 300,
        "train.checkpoint_every": min(steps or 100, 100),
    },
    resume=os.path.exists(os.path.join(folder, "config.toml")),
)

# 2. Open the run: the model, its modalities and its resolved config.
model = mmlatent.open_run(run)
print(model, "on", model.dataset)
for m in model.modalities:
    print(f"  {m['name']}: {m['kind']} {tuple(m['shape'])}")
print("score-network steps:", model.config["train"]["steps"])

# 3. Joint samples: a dict of tensors by modality, images f32 in [0, 1]; the same seed gives the
#    same samples.
joint = model.generate(n=8, seed=0)
print({name: tuple(x.shape) for name, x in joint.items()})
assert torch.equal(joint["m1"], model.generate(n=8, seed=0)["m1"])

# 4. Conditional samples: the other modalities given m0, one per given item.
cond = model.generate({"m0": joint["m0"]}, seed=1)
print("given m0, generated", [name for name in cond if name != "m0"])

# 5. MLD's latent space: standardised latents of complete tuples, and reconstructions.
z = model.encode(joint)
print("latents", tuple(z.shape), "mean %.2f std %.2f" % (z.mean().item(), z.std().item()))
recon = model.reconstruct(joint)

# 6. The samples are ordinary torch tensors: save them, or feed them to your own networks.
torch.save({"joint": joint, "conditional": cond}, "runs/python-quickstart/samples.pt")
print("wrote runs/python-quickstart/samples.pt")
