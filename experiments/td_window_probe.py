"""How far the top-down counterfactual figure can go through the autoencoder, per level, whole grid vs a window.

    python -m experiments.td_window_probe [--model runs/candidates/v6] [--worlds 8] [--cells 11] [--out FILE]

The consistency suite's top-down counterfactual scenario (benchmarks/consistency.py: a random warm-up, four left
turns, then one step under every action) on `worlds` unseen worlds per level, scored three ways against the true
next frames: the true frames after the model's autoencoder (encode, decode): the ceiling of a dynamics model that
predicts every latent exactly; copying the last context frame (the do-nothing baseline); and, with --dynamics, the
model itself. Once on the whole grid and once on a window of --cells cells around the agent.
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np

from benchmarks.consistency import FORWARD, LEFT, RIGHT, branch, counterfactual_scores, pad_context
from benchmarks.ground_truth import EVAL_LEVELS, draw_worlds
from genie_env.babyai3d import BabyAI3DEnv
from world_model.inference import WorldModel


def truth_forks(level, seed, cells, warmup, rng, A):
    env = BabyAI3DEnv(level=level, size=(64, 64), view="top_down", worlds="test", top_down_cells=cells)
    frame, _ = env.reset(options={"level_seed": int(seed)})
    prefix = [int(a) for a in rng.choice([FORWARD, LEFT, RIGHT], p=[0.5, 0.25, 0.25], size=warmup)] + [LEFT] * 4
    frames = [frame]
    for a in prefix:
        frames.append(env.step(a)[0])
    nxt = []
    for a in range(A):
        e = copy.deepcopy(env)
        nxt.append(e.step(a)[0])
    return frames, prefix, np.stack(nxt)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="runs/candidates/v6")
    p.add_argument("--worlds", type=int, default=8)
    p.add_argument("--cells", type=int, default=11)
    p.add_argument("--dynamics", action="store_true")
    p.add_argument("--out", default="experiments/results/td_window/ceiling.json")
    args = p.parse_args(argv)
    wm = WorldModel.load(args.model)
    A, warmup = 7, 4
    out = {"model": args.model, "worlds_per_level": args.worlds, "cells": args.cells, "levels": {}}
    for i, level in enumerate(EVAL_LEVELS):
        worlds = draw_worlds(args.worlds, seed=i, levels=(level,))
        row = {}
        for name, cells in (("whole", None), (f"window{args.cells}", args.cells)):
            rng = np.random.default_rng(20)
            ctxs, ctx_as, gts = [], [], []
            for lvl, s in worlds:
                frames, prefix, nxt = truth_forks(lvl, s, cells, warmup, rng, A)
                f, a = pad_context(frames, prefix, 9)
                ctxs.append(f)
                ctx_as.append(a)
                gts.append(nxt)
            ctx, ctx_a, gt = np.stack(ctxs), np.stack(ctx_as), np.stack(gts)
            rt = wm.decode(wm.encode(gt.reshape(-1, 64, 64, 3))).reshape(gt.shape)
            r = {"ae_ceiling": float(counterfactual_scores(rt, gt)["accuracy"].mean()),
                 "copy_last": float(counterfactual_scores(np.repeat(ctx[:, -1:], A, 1), gt)["accuracy"].mean())}
            if args.dynamics and cells is None:
                model = branch(wm, ctx, ctx_a, A, 21, 16, "top_down")
                r["model"] = float(counterfactual_scores(model, gt)["accuracy"].mean())
            row[name] = r
        out["levels"][level] = row
        print(level, json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
