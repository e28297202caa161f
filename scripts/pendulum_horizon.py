#!/usr/bin/env python3
"""How far ahead K noisy frames determine a pendulum, even for a model that knows the physics.

Usage: python3 scripts/pendulum_horizon.py [DIR] [--sequences N] [--frames K [K ...]]

For each test sequence of an hgn pendulum dataset (default data/pendulum), fits the state at frame
K - 1 to the noisy angles of frames 0..K-1 (`observed_states.npy`, what the images show) by
Gauss-Newton least squares through the exact equations of motion (RK4, 10 sub-steps a frame),
then integrates the fit forward and compares the angle with the clean one (`states.npy`). This
is the maximum-likelihood estimate under the dataset's Gaussian noise, with the true physics
known: a learned model that sees the same K frames cannot expect to place the bob much better. The disc's radius is about 0.4
rad of swing, so errors beyond it mean the bob is drawn where it is not.
Prints, per K, the median angle error and the share of sequences off by more than 0.4 rad.
"""
import argparse
import json
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default="data/pendulum")
    ap.add_argument("--sequences", type=int, default=300)
    ap.add_argument("--frames", type=int, nargs="+", default=[5, 10])
    args = ap.parse_args()
    try:
        meta = json.load(open(os.path.join(args.dir, "meta.json")))
        states = np.load(os.path.join(args.dir, "test", "states.npy"))
        observed = np.load(os.path.join(args.dir, "test", "observed_states.npy"))
        params = np.load(os.path.join(args.dir, "test", "params.npy"))
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    if "param_names" not in meta or "dt" not in meta:
        sys.exit(f"error: {args.dir}/meta.json is not an hgn dataset description")
    if meta.get("system") != "pendulum":
        sys.exit(f"error: {args.dir} holds {meta.get('system')!r}, not the pendulum")
    dt = meta["dt"]
    n = min(args.sequences, states.shape[0])
    names = meta["param_names"]
    m, g, l = (params[:n, names.index(k)] for k in ("m", "g", "l"))

    def f(y):
        q, p = y[..., 0], y[..., 1]
        return np.stack([p / (m * l * l), -m * g * l * np.sin(q)], -1)

    def step(y, h, sub=10):
        h = h / sub
        for _ in range(sub):
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y

    def angles(y0, frames, h):
        out = [y0]
        for _ in range(frames - 1):
            out.append(step(out[-1], h))
        return np.stack(out, -2)[..., 0]

    horizon = 30
    print(f"{args.dir}: {n} test sequences, noise sd {meta.get('noise_std')}, dt {dt}")
    print("K   median |angle error| (rad) at steps 0 / 5 / 10 / 20 / 30   share > 0.4 rad at 10 / 20 / 30")
    for k in args.frames:
        if k < 2 or k - 1 + horizon >= states.shape[1]:
            sys.exit(f"error: K = {k} needs 2 <= K and K + {horizon} frames per test sequence")
        obs = observed[:n, :k, 0][:, ::-1]  # frames K-1 down to 0, integrated backward
        y = observed[:n, k - 1, :].copy()
        y[:, 1] = m * l * l * (observed[:n, k - 1, 0] - observed[:n, k - 2, 0]) / dt
        for _ in range(30):
            base = angles(y, k, -dt)
            jac = []
            for j in range(2):
                e = np.zeros(2)
                e[j] = 1e-6
                jac.append((angles(y + e, k, -dt) - base) / 1e-6)
            jac = np.stack(jac, -1)
            jtj = np.einsum("nki,nkj->nij", jac, jac) + 1e-9 * np.eye(2)
            jtr = np.einsum("nki,nk->ni", jac, base - obs)
            y = y - np.linalg.solve(jtj, jtr[..., None])[..., 0]
        pred = angles(y, horizon + 1, dt)
        true = states[:n, k - 1 : k + horizon, 0]
        err = np.abs(np.angle(np.exp(1j * (pred - true))))
        med = " / ".join(f"{np.median(err[:, t]):.3f}" for t in (0, 5, 10, 20, 30))
        far = " / ".join(f"{(err[:, t] > 0.4).mean():.2f}" for t in (10, 20, 30))
        print(f"{k:<3} {med:<58} {far}")


if __name__ == "__main__":
    main()
