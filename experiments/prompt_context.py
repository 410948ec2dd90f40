"""Random-play rollouts from the prompt alone against rollouts from a look-around prompt (experiments/LOG.md entry 26).

    python -m experiments.prompt_context --model default --worlds 32 \
        --out experiments/results/one_step/prompt_context_v8.json

The consistency suite's rollout scenario (benchmarks.consistency.rollout: the suite's worlds, seed 0, random play of
the evaluation policy) from two prompts of the same state: the first frame alone, as GenieWorld prompts today, and
the first frame followed by the truth's 4 frames of four left turns in place, observed as GenieWorld's look_around
does (`WorldModel.observe`; a full turn ends where it started, so the true rollout that follows is the same), which
shows the model every direction before play. Per prompt and step: PSNR against the truth
and sharpness (Laplacian variance over the truth's), beside holding the first frame.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds, random_actions
from benchmarks.machine import describe_machine
from genie_env.genie_world import LOOK_AROUND
from world_model import WorldModel
from world_model.checkpoint import write_json
from world_model.metrics import psnr


def rollout(wm, first: np.ndarray, seen: np.ndarray | None, actions: np.ndarray, seed: int, batch: int,
            view: str) -> np.ndarray:
    """Model frames uint8 (N, T, S, S, 3) under actions (N, T) from first frames (N, S, S, 3), after the frames
    `seen` (N, len(LOOK_AROUND), S, S, 3) under LOOK_AROUND are observed (WorldModel.observe, as GenieWorld's
    look_around does), or none; `batch` worlds at a time, each chunk with its own seeded generator."""
    out = []
    for lo in range(0, len(first), batch):
        sl = slice(lo, lo + batch)
        g = torch.Generator().manual_seed(seed * 100_003 + lo)
        state = wm.reset(first[sl], generator=g, view=view)
        if seen is not None:
            n = len(first[sl])
            wm.observe(state, seen[sl], np.tile(np.array(LOOK_AROUND), (n, 1)), generator=g)
        out.append(np.stack([wm.step(state, actions[sl, t], generator=g)[0] for t in range(actions.shape[1])], 1))
    return np.concatenate(out)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    parser.add_argument("--views", nargs="+", default=["first_person"], choices=["first_person", "top_down"])
    parser.add_argument("--worlds", type=int, default=32)
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 4, 16, 64], help="steps reported (last: horizon)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="JSON file to write")
    a = parser.parse_args(argv)
    if a.worlds < 1 or not a.steps or min(a.steps) < 1 or a.steps != sorted(set(a.steps)):
        parser.error("--worlds must be >= 1 and --steps increasing counts >= 1")
    torch.set_num_threads(a.threads)
    wm = WorldModel.load(a.model)
    truth = GroundTruth(64)
    H = a.steps[-1]
    report = {"study": "prompt_context", "model": a.model, "worlds": a.worlds, "look_around": list(LOOK_AROUND),
              "machine": describe_machine(), "views": {}}
    try:
        worlds = draw_worlds(a.worlds, 0)
        for view in a.views:
            rng = np.random.default_rng(50)  # the suite's rollout actions (ConsistencyConfig.seed + 50)
            actions = np.stack([random_actions(rng, H) for _ in worlds])
            gt = np.stack([truth.play(lvl, s, view, actions[i]) for i, (lvl, s) in enumerate(worlds)])
            around = np.stack([truth.play(lvl, s, view, LOOK_AROUND) for lvl, s in worlds])  # (N, 5, S, S, 3)
            report["views"][view] = {}
            for name, seen in (("prompt", None), ("look_around", around[:, 1:])):
                model = rollout(wm, gt[:, 0], seen, actions, 51, a.batch, view)  # (N, H, S, S, 3)
                rows = {}
                for t in a.steps:
                    m, g = model[:, t - 1], gt[:, t]
                    lv = np.maximum(C.laplacian_variance(g), 1e-6)
                    rows[str(t)] = {"psnr": round(float(psnr(m, g).mean()), 2),
                                    "hold": round(float(psnr(gt[:, 0], g).mean()), 2),
                                    "sharpness": round(float(np.median(C.laplacian_variance(m) / lv)), 3)}
                report["views"][view][name] = rows
                print(view, name, json.dumps(rows), flush=True)
    finally:
        truth.close()
    if a.out:
        write_json(a.out, report)
    return report


if __name__ == "__main__":
    main()
