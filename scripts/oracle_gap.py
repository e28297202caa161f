#!/usr/bin/env python3
"""Where a model's Table 1 error exceeds the physics oracle's, sequence by sequence.

Reads RUN/eval.json written by `hgn eval --run RUN --per-sequence` and the dataset the run was
evaluated on, and prints the model's, the oracle's and the mean-frame baseline's mean Table 1
error (×1e4) over groups of test sequences, with the model / oracle ratio of each group. For the
pendulum the groups are the swings and the rotations (energy above m·g·l·2, the bob goes over the
top); for every system also the quartiles of the oracle's own error (how predictable the
sequence is from the frames seen).

    python3 scripts/oracle_gap.py runs/pendulum-vector
"""
import json
import sys
from pathlib import Path

import numpy as np


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    report = json.loads((run / "eval.json").read_text())
    data = Path(report["data"])
    meta = json.loads((data / "meta.json").read_text())
    split = next(s for s in report["splits"] if s["split"] == "test")
    per = split.get("per_sequence")
    if not per or not per["oracle_expected"]:
        sys.exit(f"{run}/eval.json has no per-sequence oracle figures: run hgn eval --run {run} --per-sequence")
    model = np.array(per["model"])
    # null where the physics gave no answer: those sequences are left out of every group.
    oracle = np.array([np.nan if v is None else v for v in per["oracle_expected"]])
    baseline = np.array(per["baseline"])
    n = len(model)
    answered = ~np.isnan(oracle)
    groups = {"all": answered.copy()}
    if meta["system"] == "pendulum":
        states = np.load(data / "test" / "states.npy")[:n]
        params = np.load(data / "test" / "params.npy")[:n]
        m, g, l = params[:, 0], params[:, 1], params[:, 2]
        q, p = states[:, 0, 0], states[:, 0, 1]
        energy = p ** 2 / (2 * m * l ** 2) + m * g * l * (1 - np.cos(q))
        rotating = energy > 2 * m * g * l
        groups["swings"] = ~rotating & answered
        groups["rotations (over the top)"] = rotating & answered
    quartiles = np.quantile(oracle[answered], [0.25, 0.5, 0.75])
    bins = np.digitize(oracle, quartiles)
    for b, name in enumerate(["oracle quartile 1 (most predictable)", "oracle quartile 2",
                              "oracle quartile 3", "oracle quartile 4 (least predictable)"]):
        groups[name] = (bins == b) & answered
    print(f"{run}: {report['protocol']} protocol, {n} test sequences of {meta['system']} (×1e4)")
    print(f"{'group':<40}{'count':>6}{'model':>9}{'oracle':>9}{'baseline':>10}{'model/oracle':>14}"
          f"{'share of gap':>14}")
    gap = (model - oracle)[answered].sum()
    for name, mask in groups.items():
        k = mask.sum()
        if k == 0:
            continue
        mm, oo, bb = model[mask].mean(), oracle[mask].mean(), baseline[mask].mean()
        share = (model[mask] - oracle[mask]).sum() / gap
        print(f"{name:<40}{k:>6}{mm:>9.2f}{oo:>9.2f}{bb:>10.2f}{mm / oo:>14.3f}{share:>14.1%}")


if __name__ == "__main__":
    main()
