#!/usr/bin/env python3
"""Reference numbers from pytorch-fid itself, for mmlatent's agreement test.

Builds pytorch-fid's InceptionV3 (FID variant: patched A/C/E blocks, 2048-d pool features)
with RANDOM weights — its weight download is replaced by the state dict of a fresh,
uninitialised network, then batch-norm statistics are calibrated on noise so activations keep
a sane scale — and computes, with pytorch-fid's own functions, the features of two folders of
images and the FID between them.

Usage: fid_reference.py OUT_DIR DIR_A DIR_B [--seed N]
Writes into OUT_DIR: inception.pth (torch.save), inception.safetensors (its conversion), features_a.f32 / features_b.f32 (raw little-endian float32,
row-major [N, 2048]) and reference.json ({"fid", "n_a", "n_b", "dims"}).
Prints "weights written" once the weight files are complete. Exits with status 3 when pytorch-fid is not installed (scripts/setup.sh installs it).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("dir_a")
    parser.add_argument("dir_b")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import torch
        import pytorch_fid.inception as pi
        from pytorch_fid import fid_score
    except ImportError as e:
        print(f"pytorch-fid is not installed in this Python ({e}); run scripts/setup.sh", file=sys.stderr)
        sys.exit(3)
    from convert_inception import write_safetensors

    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # pytorch-fid's fid_inception_v3 loads its state dict from a URL; hand it the state dict of
    # an identically shaped torchvision network instead (same parameter names and shapes).
    template = pi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    pi.load_state_dict_from_url = lambda *a, **k: template.state_dict()
    inception = pi.fid_inception_v3()
    bns = [m for m in inception.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batch
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    pi.fid_inception_v3 = lambda: inception
    model = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 80, 80))
    model.eval()

    os.makedirs(args.out, exist_ok=True)
    state = inception.state_dict()
    torch.save(state, os.path.join(args.out, "inception.pth"))
    write_safetensors(state, os.path.join(args.out, "inception.safetensors"))
    # The caller may start on the weights while the features and the FID are computed.
    print("weights written", flush=True)

    result = {"dims": 2048}
    stats = []
    for key, folder in (("a", args.dir_a), ("b", args.dir_b)):
        files = sorted(
            os.path.join(folder, f) for f in os.listdir(folder) if f.rsplit(".", 1)[-1].lower() in fid_score.IMAGE_EXTENSIONS
        )
        act = fid_score.get_activations(files, model, batch_size=8, dims=2048, device="cpu", num_workers=0)
        act.astype("<f4").tofile(os.path.join(args.out, f"features_{key}.f32"))
        result[f"n_{key}"] = len(files)
        stats.append((act.mean(axis=0), __import__("numpy").cov(act, rowvar=False)))
    result["fid"] = float(fid_score.calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1]))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
