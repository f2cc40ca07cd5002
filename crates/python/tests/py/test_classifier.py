"""Samples of a tiny MLD run fed to PyTorch: a small classifier defined here learns to tell the
modalities' samples apart, with gradients flowing into the samples (ordinary tensors of this
process's torch); then the tool's own evaluation scores them (coherence, accuracy against
labels, classifier FD)."""


import torch
from torch import nn

import mmlatent
from tiny import CONFIG


def main():
    model = mmlatent.open_run(mmlatent.train(CONFIG, run="runs/tiny"))
    samples = model.generate(n=64, seed=0)
    x = samples["m0"]
    assert x.device.type == "cpu" and not x.requires_grad

    # A small PyTorch classifier learns which modality's decoder drew each sample.
    torch.manual_seed(0)
    classifier = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 2),
    )
    images = torch.cat([samples["m0"], samples["m1"]])
    which = torch.cat([torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)])
    optimiser = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = nn.functional.cross_entropy(classifier(images), which)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    accuracy = (classifier(images).argmax(1) == which).float().mean().item()
    assert accuracy > 0.9, accuracy
    # Gradients reach the generated images themselves, like any tensor's.
    leaf = samples["m1"].clone().requires_grad_()
    classifier(leaf).logsumexp(1).sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0

    # The tool's own scores of the same tensors.
    accuracies = mmlatent.train_classifiers("classifiers", data="synthetic", steps=30, batch_size=32,
                                            width=4, max_train=96, max_test=32)
    assert sorted(accuracies) == ["m0", "m1"] and all(0.0 <= a <= 1.0 for a in accuracies.values())
    real = model.reconstruct(samples)
    labels = torch.arange(64) % 10
    scores = mmlatent.evaluate(samples, "classifiers", reference=real, labels=labels)
    assert 0.0 <= scores["coherence"] <= 1.0, scores
    assert sorted(scores["accuracy"]) == ["m0", "m1"] and sorted(scores["fd"]) == ["m0", "m1"], scores
    assert all(v >= 0.0 for v in scores["fd"].values()), scores
    same = mmlatent.evaluate({"m0": x}, "classifiers", reference={"m0": x})
    inverted = mmlatent.evaluate({"m0": x}, "classifiers", reference={"m0": 1.0 - x})
    assert same["coherence"] is None and same["accuracy"] == {}, same
    assert abs(same["fd"]["m0"]) < 1e-2 * inverted["fd"]["m0"], (same, inverted)
    try:
        mmlatent.evaluate({"m7": x}, "classifiers")
    except mmlatent.MmlatentError as e:
        assert "no modality `m7`: the classifiers know m0, m1" in str(e), str(e)
    else:
        raise AssertionError("an unknown modality was scored")
    print("ok: classifier")


if __name__ == "__main__":
    main()
