#!/usr/bin/env python3
"""Converts a torch.save state dict (e.g. pytorch-fid's pt_inception-2015-12-05-6726825d.pth,
saved in torch's legacy format that libtorch cannot read) into a safetensors file that
`mmlatent fid --weights` and `mmlatent eval --fid-weights` read.

Usage: .venv/bin/python scripts/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception.safetensors
"""
import json
import struct
import sys

DTYPES = {"torch.float32": "F32", "torch.float64": "F64", "torch.int64": "I64", "torch.float16": "F16"}


def write_safetensors(tensors, path):
    """Writes {name: tensor} in the safetensors layout (8-byte header length, JSON header, data)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        dtype = DTYPES.get(str(t.dtype))
        if dtype is None:
            raise SystemExit(f"{name}: unsupported dtype {t.dtype}")
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    import torch

    state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise SystemExit(f"{sys.argv[1]} holds a {type(state).__name__}, not a state dict")
    write_safetensors(state, sys.argv[2])
    print(f"wrote {len(state)} tensors to {sys.argv[2]}")


if __name__ == "__main__":
    main()
