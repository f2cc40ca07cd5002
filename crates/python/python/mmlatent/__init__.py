"""mmlatent from Python: the Rust models (MLD, the EBM prior, the multimodal VAEs) called with
torch tensors.

    import mmlatent
    run = mmlatent.train("configs/default-mld.toml", run="runs/mine", overrides={"train.steps": 2000})
    model = mmlatent.open_run(run)
    samples = model.generate(n=16, seed=0)            # {"m0": Tensor[16, 3, 28, 28], ...}
    given = model.generate({"m0": samples["m0"]}, seed=0)

Tensors cross without copies, through DLPack (the extension runs on the libtorch of this
process's torch, which is imported first). Errors are `MmlatentError` with the messages of the `mmlatent` CLI.
Progress goes to the `progress` callback given to `train`, or to the `mmlatent` logger.

Note: training and opening a run set libtorch's thread count when the experiment sets
`train.threads`, and seed libtorch's generator: both are shared with this process's torch.
"""

import json
import logging
import os

import torch  # noqa: F401  (loads libtorch before the extension that links against it)

try:
    from . import _native
except ImportError as e:
    raise ImportError(
        "mmlatent's extension module is not built: run `cargo build --workspace` in the mmlatent repository "
        f"(`bash scripts/setup.sh` links it into this package) ({e})"
    ) from e
from ._native import MmlatentError, Model  # noqa: E402

__all__ = ["MmlatentError", "Model", "open_run", "train", "train_classifiers", "evaluate"]

logger = logging.getLogger("mmlatent")


def open_run(path, device=None, *, sampler=None, steps=None, sampler_options=None):
    """Opens a trained run folder; returns a `Model`.

    `device`: "cpu", "cuda", "cuda:N" or "auto" (default: the run's own setting).
    `sampler`, `steps`, `sampler_options` (a dict, e.g. {"repaint": True}): the sampler of this
    model object, as `mmlatent sample`'s `--sampler`, `--steps` and `--sampler-option`
    (default: the run's own; the run folder is never changed).

    A `Model` has `generate(given=None, n=16, seed=None)` -> dict of tensors by modality name
    (joint samples, or the missing modalities given a dict of `[n, ...]` input batches; images
    f32 in [0, 1], text i64 token ids), `modalities` (name, kind, shape), `config` (the run's
    resolved experiment as a dict), `kind`, `dataset`, `device`, `path`; for MLD also
    `encode(inputs)` -> standardised latents `[n, D]`, `reconstruct(inputs)`,
    `sample_latents(n, seed=None)` and `latent_spans`; `sampler` describes the sampler in use.
    """
    options = _override_list(sampler_options)
    return _native.open_run(os.fspath(path), device, sampler, steps, options)


def _override_list(overrides):
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [_native.override_text(str(k), json.dumps(v)) for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(o) for o in overrides]


class _Reporter:
    """Progress of the Rust side: step events to `callback(stage, step, total, message)`, or to
    the logger about every 10 % of a stage; lines (warnings, resume notes) to the logger."""

    def __init__(self, callback):
        self.callback = callback
        self.next_log = {}

    def __call__(self, kind, label, done, total, text):
        if kind == "line":
            if text.startswith("warning: "):
                logger.warning("%s", text[len("warning: "):])
            else:
                logger.info("%s", text)
        elif kind == "step":
            if self.callback is not None:
                self.callback(label, done, total, text)
            elif done >= self.next_log.get(label, 0) or done >= total:
                logger.info("%s: %d/%d %s", label, done, total, text)
                self.next_log[label] = done + max(total // 10, 1)
        elif kind == "finish":
            logger.info("%s: done (%d/%d steps) in %s s", label, done, total, text)


def train(config, run=None, overrides=None, *, resume=False, device=None, progress=None, autoencoders_from=None):
    """Trains an experiment into a run folder, as `mmlatent train` does; returns the folder.

    `config`: a TOML file (e.g. "configs/default-mld.toml") or a dict of the same sections.
    `run`: the run folder (default: runs/<experiment name>). `overrides`: `--set` values, as a
    list of "section.key=value" strings or a dict {"train.steps": 500}. `resume`: continue the
    run in the folder (only `train.steps` and the other resumable keys may change).
    `progress`: called as progress(stage, step, total, message) after each step (`stage` as the
    CLI labels it, e.g. "ae_m0 1/3", "score 3/3"; `message`: the last logged losses); without it,
    progress is logged to the "mmlatent" logger. An exception raised by `progress` (or Ctrl-C)
    stops training; the run resumes later from its last checkpoint with `resume=True`.
    `autoencoders_from`: MLD only, a finished run whose autoencoders this run takes over (training
    only its score network), as `--autoencoders-from` does.
    """
    if isinstance(config, dict):
        path, text = None, json.dumps(config)
    else:
        path, text = os.fspath(config), None
    folder = _native.train(
        config_path=path,
        config_json=text,
        run=None if run is None else os.fspath(run),
        overrides=_override_list(overrides),
        resume=resume,
        device=device,
        report=_Reporter(progress),
        autoencoders_from=None if autoencoders_from is None else os.fspath(autoencoders_from),
    )
    return os.fspath(folder)


def train_classifiers(out, data="default", *, format="auto", steps=1500, batch_size=128, width=32,
                      seed=0, max_train=None, max_test=None, device="cpu", progress=None):
    """Trains one classifier per modality of a dataset (a folder, or "default" for the bundled
    one) and saves them in `out`, as `mmlatent classifier train DATA --out OUT` does; returns
    their test accuracies by modality name. `evaluate` and `mmlatent eval --classifiers OUT`
    use them."""
    accuracies = _native.train_classifiers(
        os.fspath(out), os.fspath(data), format, steps, batch_size, width, seed, max_train, max_test,
        device, _Reporter(progress),
    )
    return dict(accuracies)


def evaluate(samples, classifiers, *, reference=None, labels=None, fid_weights=None, device="cpu",
             batch=50):
    """Scores tensors the caller passes with saved classifiers (a folder written by
    `train_classifiers`, `mmlatent classifier train` or `mmlatent eval`).

    `samples`: dict of `[N, ...]` tensors by modality name. Returns a dict:
    - "coherence": fraction of tuples on which every modality's classifier agrees (when
      `samples` holds every modality), else None;
    - "accuracy": per modality, the fraction classified as `labels` (i64 `[N]`): conditional
      coherence when the samples were generated from inputs of those labels;
    - "fd": per modality, the Fréchet distance to `reference` (dict of real tensors) in the
      classifiers' features;
    - "fid": per image modality, FID to `reference` with pytorch-fid's Inception weights
      (`fid_weights`: the safetensors file of scripts/convert_inception.py).
    """
    return _native.evaluate(
        dict(samples),
        os.fspath(classifiers),
        reference=None if reference is None else dict(reference),
        labels=labels,
        fid_weights=None if fid_weights is None else os.fspath(fid_weights),
        device=device,
        batch=batch,
    )
