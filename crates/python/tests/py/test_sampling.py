"""Trains a tiny MLD run from Python, opens it, and checks what comes back: shapes, value range,
determinism under a seed, conditional generation, the config and modality specs, progress
reports, and errors carrying the CLI's messages."""

import copy
import os
import re
import signal

import torch

import mmlatent
from tiny import CONFIG


def expect_error(kind, fragment, call):
    try:
        call()
    except kind as e:
        assert fragment in str(e), f"{fragment!r} not in {str(e)!r}"
        return e
    raise AssertionError(f"no {kind.__name__} raised (wanted one saying {fragment!r})")


def main():
    events = []
    folder = mmlatent.train(CONFIG, run="runs/tiny", overrides={"train.steps": 6},
                            progress=lambda stage, step, total, message: events.append((stage, step, total)))
    assert os.path.isfile(os.path.join(folder, "config.toml")), folder
    # Every stage reported each of its steps, ending at its total; stages are labelled as the CLI
    # shows them, with their place ("ae_m0 1/3", ..., "score 3/3").
    stages = {stage for stage, _, _ in events}
    assert stages == {"ae_m0 1/3", "ae_m1 2/3", "score 3/3"}, stages
    for stage in stages:
        steps = [s for st, s, t in events if st == stage]
        total = {t for st, s, t in events if st == stage}
        assert steps == list(range(1, max(steps) + 1)) and total == {max(steps)}, (stage, steps, total)

    model = mmlatent.open_run(folder)
    assert model.kind == "mld" and model.dataset == "squares", (model.kind, model.dataset)
    specs = model.modalities
    assert [m["name"] for m in specs] == ["m0", "m1"], specs
    assert all(m["kind"] == "image" and tuple(m["shape"]) == (1, 28, 28) for m in specs), specs
    config = model.config
    assert config["train"]["steps"] == 6 and config["model"]["kind"] == "mld", config

    joint = model.generate(n=8, seed=3)
    assert sorted(joint) == ["m0", "m1"], joint.keys()
    for name, x in joint.items():
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32, (name, type(x), x.dtype)
        assert tuple(x.shape) == (8, 1, 28, 28), (name, x.shape)
        assert torch.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0, (name, x.min(), x.max())
    again = model.generate(n=8, seed=3)
    other = model.generate(n=8, seed=4)
    assert all(torch.equal(joint[k], again[k]) for k in joint), "same seed, different samples"
    assert not torch.equal(joint["m1"], other["m1"]), "different seeds, same samples"

    # Conditional: m0 given, m1 generated for each given item; the given batch is returned as is.
    given = joint["m0"][:5].clone()
    cond = model.generate({"m0": given}, seed=1)
    assert torch.equal(cond["m0"], given)
    assert tuple(cond["m1"].shape) == (5, 1, 28, 28)
    assert torch.equal(model.generate({"m0": given}, seed=1)["m1"], cond["m1"])

    # MLD's latent space.
    z = model.encode(joint)
    spans = dict(model.latent_spans)
    assert tuple(z.shape) == (8, sum(size for _, size in spans.values())), (z.shape, spans)
    rec = model.reconstruct(joint)
    assert tuple(rec["m1"].shape) == (8, 1, 28, 28)
    assert tuple(model.sample_latents(4, seed=0).shape) == (4, z.shape[1])

    # Resuming with a longer schedule continues the same folder.
    assert mmlatent.train(CONFIG, run="runs/tiny", overrides=["train.steps=7"], resume=True) == folder
    assert mmlatent.open_run(folder).config["train"]["steps"] == 7

    # Errors: the CLI's messages, as MmlatentError; a progress callback's own exception as itself.
    expect_error(mmlatent.MmlatentError, "no modality", lambda: model.generate({"m9": given}))
    expect_error(mmlatent.MmlatentError, "leave at least one out", lambda: model.generate(joint))
    expect_error(mmlatent.MmlatentError, "expects items of shape",
                 lambda: model.generate({"m0": torch.zeros(2, 3, 28, 28)}))
    expect_error(mmlatent.MmlatentError, "in --set train.stepz=3",
                 lambda: mmlatent.train(CONFIG, run="runs/bad", overrides=["train.stepz=3"]))
    assert not os.path.exists("runs/bad"), "a failed start left a run folder"
    expect_error(mmlatent.MmlatentError, "--resume: runs/none is not a run folder",
                 lambda: mmlatent.train(CONFIG, run="runs/none", resume=True))
    expect_error(mmlatent.MmlatentError, "None has no TOML form",
                 lambda: mmlatent.train(CONFIG, run="runs/bad", overrides={"train.steps": None}))
    expect_error(mmlatent.MmlatentError, "nowhere", lambda: mmlatent.open_run("nowhere"))

    class Stop(Exception):
        pass

    def stop_at_third(stage, step, total, message):
        if step == 3:
            raise Stop(stage)

    expect_error(Stop, "", lambda: mmlatent.train(CONFIG, run="runs/stopped", progress=stop_at_third))
    # The stopped run resumes (its lock was released) and completes.
    stopped = mmlatent.train(CONFIG, run="runs/stopped", resume=True)
    assert torch.isfinite(mmlatent.open_run(stopped).generate(n=2, seed=0)["m0"]).all()

    # Ctrl-C during training: the stage checkpoints the step it is on, then KeyboardInterrupt
    # names that set; resuming completes the run. (Python leaves SIGINT ignored when it started
    # ignored, as under a non-interactive shell's `&`: install its usual handler.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    def interrupt_at_third(stage, step, total, message):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    stop = expect_error(KeyboardInterrupt, "--resume",
                        lambda: mmlatent.train(CONFIG, run="runs/interrupted", progress=interrupt_at_third))
    saved = re.search(r"stage (\w+) stopped after step (\d+) of \d+, saved in (\S+);", str(stop))
    assert saved and os.path.isdir(saved.group(3)), str(stop)
    assert saved.group(3).endswith(f"{saved.group(1)}/step-{int(saved.group(2)):08}"), str(stop)
    interrupted = mmlatent.train(CONFIG, run="runs/interrupted", resume=True)
    assert torch.isfinite(mmlatent.open_run(interrupted).generate(n=2, seed=0)["m0"]).all()

    # With two threads the autoencoders train side by side, on threads of their own: the
    # callback hears both, and Ctrl-C raised in it (on such a thread) stops them, saving where they
    # are; the run resumes.
    two = copy.deepcopy(CONFIG)
    two["train"]["threads"] = 2
    two["model"]["autoencoder"]["steps"] = 40
    heard = set()

    def interrupt_autoencoders(stage, step, total, message):
        heard.add(stage)
        if stage.startswith("ae_m1") and step == 20:
            raise KeyboardInterrupt

    expect_error(KeyboardInterrupt, "--resume",
                 lambda: mmlatent.train(two, run="runs/side", progress=interrupt_autoencoders))
    assert heard == {"ae_m0 1/3", "ae_m1 2/3"}, heard
    steps = [int(s[5:]) for s in os.listdir("runs/side/checkpoints/ae_m1") if s.startswith("step-")]
    assert 20 <= max(steps) < 40, steps
    side = mmlatent.train(two, run="runs/side", resume=True)
    assert torch.isfinite(mmlatent.open_run(side).generate(n=2, seed=0)["m1"]).all()

    # A second run on the first's autoencoders trains only its own score network.
    reuse = mmlatent.train(CONFIG, run="runs/reuse", overrides={"train.steps": 6, "model.score.d": 0.5},
                           autoencoders_from=folder)
    for stage in ("ae_m0", "ae_m1"):
        for root, _, files in os.walk(os.path.join(folder, "checkpoints", stage)):
            for name in files:
                ours = os.path.join(reuse, os.path.relpath(os.path.join(root, name), folder))
                with open(os.path.join(root, name), "rb") as a, open(ours, "rb") as b:
                    assert a.read() == b.read(), ours
    expect_error(mmlatent.MmlatentError, "model.autoencoder.steps: 4 there, 9 here",
                 lambda: mmlatent.train(CONFIG, run="runs/bad-reuse", overrides={"model.autoencoder.steps": 9},
                                        autoencoders_from=folder))
    assert not os.path.exists("runs/bad-reuse"), "a refused take-over left a run folder"
    print("ok: sampling")


if __name__ == "__main__":
    main()
