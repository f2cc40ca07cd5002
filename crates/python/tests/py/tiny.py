"""A tiny MLD experiment on the synthetic "squares" set (2 modalities of 1×28×28), shared by the
Python tests: it trains in a few seconds on one thread."""

CONFIG = {
    "name": "py-tiny",
    "seed": 5,
    "data": {"path": "synthetic", "max_train": 96, "max_test": 32},
    "train": {"batch_size": 16, "steps": 6, "lr": 1e-3, "checkpoint_every": 3, "log_every": 2, "threads": 1},
    "model": {
        "kind": "mld",
        "autoencoder": {"latent_dim": 4, "width": 4, "steps": 4, "lr": 1e-3, "batch_size": 16},
        "score": {"width": 16, "time_dim": 8, "mults": [1], "groups": 4},
        "sampler": {"method": "euler", "steps": 3},
    },
}
