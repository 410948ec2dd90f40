"""Do two world models draw the same frames? The same prompts (first frames of unseen 3D BabyAI worlds), actions
and noise through both, per view the model is told (experiments/LOG.md entry 32: a top-down adapter must leave
first-person and unknown-view worlds bit for bit as they were).

    python -m experiments.same_frames --model default --other runs/candidates/ad_td \
        --out experiments/results/td_finetune/same_frames_ad_td.json

Per view: "identical" (every uint8 pixel of every step equal) or the largest pixel difference.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.result_file import command_line
from genie_env.babyai3d import BabyAI3DEnv, TEST_SEEDS
from world_model import WorldModel

VIEWS = ("first_person", None, "top_down")


def rollouts(wm: WorldModel, frames: np.ndarray, view, steps: int, seed: int) -> np.ndarray:
    """uint8 (steps, B, S, S, 3): every world stepped through the actions t, t + 1, ... (mod 7) from its prompt."""
    g = torch.Generator().manual_seed(seed)
    state = wm.reset(frames, generator=g, view=view)
    out = []
    for t in range(steps):
        f, state = wm.step(state, [(t + b) % wm.num_actions for b in range(len(frames))], generator=g)
        out.append(f)
    return np.stack(out)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="'default' or a world-model checkpoint folder")
    p.add_argument("--other", required=True, help="the world-model checkpoint folder to compare with --model")
    p.add_argument("--level", default="GoToLocal")
    p.add_argument("--worlds", type=int, default=4)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = [WorldModel.load(a.model), WorldModel.load(a.other)]
    env = BabyAI3DEnv(level=a.level, worlds="test")
    frames = np.stack([env.reset(options={"level_seed": TEST_SEEDS.start + i})[0] for i in range(a.worlds)])
    result = {"command": command_line("experiments.same_frames", argv), "model": a.model, "other": a.other,
              "worlds": a.worlds, "steps": a.steps, "views": {}}
    for view in VIEWS:
        x, y = (rollouts(wm, frames, view, a.steps, a.seed) for wm in models)
        diff = int(np.abs(x.astype(np.int16) - y).max())
        result["views"][view or "unknown"] = "identical" if diff == 0 else {"max_pixel_difference": diff}
    print(json.dumps(result["views"]))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
