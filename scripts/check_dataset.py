#!/usr/bin/env python3
"""Reads an hgn dataset with plain numpy, as a user would, and checks it against meta.json.

Usage: python3 scripts/check_dataset.py DIR [DIR ...]

Checks, per split: every array loads with numpy.load; dtype and shape match meta.json; the
SHA-256 of each file matches; states and params are finite; the observed states differ from the
clean ones by the recorded noise level; and the frames change over time (the system moves).
Exits non-zero with a one-line message on the first failure.
"""
import hashlib
import json
import os
import sys

import numpy as np


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def check(root):
    with open(os.path.join(root, "meta.json")) as f:
        meta = json.load(f)
    for split, info in meta["splits"].items():
        n, t, s = info["num_sequences"], info["seq_len"], meta["image_size"]
        arrays = {}
        for name, rec in info["files"].items():
            path = os.path.join(root, split, name + ".npy")
            arr = np.load(path)
            if str(arr.dtype) != rec["dtype"] or list(arr.shape) != rec["shape"]:
                fail(f"{path}: {arr.dtype} {arr.shape} vs meta {rec['dtype']} {rec['shape']}")
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != rec["sha256"]:
                    fail(f"{path}: SHA-256 mismatch")
            arrays[name] = arr
        frames = arrays["frames"]
        if frames.shape != (n, t, s, s, 3):
            fail(f"{root}/{split}/frames.npy has shape {frames.shape}")
        for name in ("states", "observed_states", "params"):
            if not np.all(np.isfinite(arrays[name])):
                fail(f"{root}/{split}/{name}.npy holds non-finite values")
        noise = np.std(arrays["observed_states"] - arrays["states"])
        if abs(noise - meta["noise_std"]) > 0.1 * meta["noise_std"] + 1e-12:
            fail(f"{root}/{split}: observed noise std {noise:.4f} vs recorded {meta['noise_std']}")
        moving = np.mean(np.any(frames[:, 0] != frames[:, -1], axis=(1, 2, 3)))
        if moving < 0.9:
            fail(f"{root}/{split}: only {moving:.0%} of sequences change between first and last frame")
        print(f"{root}/{split}: {n} × {t} frames of {meta['system']}, numpy OK, "
              f"noise std {noise:.4f}, {moving:.0%} moving, mean pixel {frames.mean():.1f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        fail("usage: check_dataset.py DIR [DIR ...]")
    for d in sys.argv[1:]:
        check(d)
