"""One generated step under every action, from the prompt alone or from k true frames of random play, per view:
where does a single step already lose the world (experiments/LOG.md entry 26)?

    python -m experiments.one_step --model default --views first_person top_down --context 1 2 4 8 \
        --worlds 24 --out experiments/results/one_step/one_step_v8.json --sheet experiments/results/one_step/v8

For each unseen world (benchmarks.ground_truth.draw_worlds, seed 7) the ground truth plays 8 steps of the evaluation
policy (benchmarks.ground_truth.random_actions); the model is prompted with the last k of those 9 frames (and the
actions between them), then forked one step under every action. Per view, k and action: the model's PSNR against
that action's true next frame, the do-nothing baseline's (the last context frame held), and the sharpness ratio
(Laplacian variance of the model's frame over the truth's; the autoencoder alone keeps ~0.6-0.9). With --sheet, a
PNG per view: the truth over the model at the shortest context, and for the top-down view the 3 x 3 cells around
the agent enlarged (is the agent drawn with a heading?).
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds, random_actions
from benchmarks.machine import describe_machine
from genie_env.babyai3d import ACTION_MEANINGS
from world_model import WorldModel
from world_model.checkpoint import write_json
from world_model.metrics import psnr
from world_model.sampler import parse_settings

PLAYED = 8
"""Steps of random play before the branch; the context is the last k of its PLAYED + 1 frames."""


def truth_cases(truth: GroundTruth, worlds, view: str, seed: int, num_actions: int):
    """Per world: the PLAYED + 1 true frames, the PLAYED actions, the true next frame under every action (A, S, S, 3)
    and the agent's cell and the grid's width (for the top-down crop)."""
    rng = np.random.default_rng(seed)
    cases = []
    for lvl, s in worlds:
        acts = random_actions(rng, PLAYED)
        env, frames = truth.env(lvl, s, view, acts)
        nxt = np.stack([copy.deepcopy(env).step(a)[0] for a in range(num_actions)])
        inner = env.minigrid
        cases.append((np.stack(frames), acts, nxt, (int(inner.agent_pos[0]), int(inner.agent_pos[1])),
                      int(inner.grid.width)))
    return cases


def measure(wm, cases, k: int, view: str, seed: int, batch: int) -> tuple[dict, np.ndarray]:
    """Figures for context length k, and the model's frames (N, A, S, S, 3)."""
    ctx = np.stack([c[0][-k:] for c in cases])
    ctx_a = np.stack([c[1][PLAYED - (k - 1):] for c in cases]) if k > 1 else None
    gt = np.stack([c[2] for c in cases])  # (N, A, S, S, 3)
    N, A = gt.shape[:2]
    model = C.branch(wm, ctx, ctx_a, A, seed, batch, view)
    flat = lambda x: x.reshape(N * A, *x.shape[2:])  # noqa: E731
    p = psnr(flat(model), flat(gt)).reshape(N, A)
    hold = psnr(flat(np.repeat(ctx[:, -1:], A, axis=1)), flat(gt)).reshape(N, A)
    sharp = (C.laplacian_variance(flat(model)) / np.maximum(C.laplacian_variance(flat(gt)), 1e-6)).reshape(N, A)
    per_action = {ACTION_MEANINGS[a]: {"psnr": round(float(p[:, a].mean()), 2),
                                       "hold": round(float(hold[:, a].mean()), 2),
                                       "sharpness": round(float(np.median(sharp[:, a])), 3)} for a in range(A)}
    return {"psnr": round(float(p.mean()), 2), "hold": round(float(hold.mean()), 2),
            "sharpness": round(float(np.median(sharp)), 3), "per_action": per_action}, model


def agent_crop(frame: np.ndarray, pos: tuple[int, int], width: int, out: int = 144) -> np.ndarray:
    """The 3 x 3 cells around the agent of a top-down frame (black beyond the grid), enlarged to out x out pixels
    (nearest neighbour, so grids of any cell size line up in one sheet)."""
    cell = frame.shape[0] // width
    x0, y0 = max(0, (pos[0] - 1) * cell), max(0, (pos[1] - 1) * cell)
    crop = frame[y0:y0 + 3 * cell, x0:x0 + 3 * cell]
    crop = np.pad(crop, ((0, 3 * cell - crop.shape[0]), (0, 3 * cell - crop.shape[1]), (0, 0)))
    idx = np.arange(out) * (3 * cell) // out
    return crop[idx][:, idx]


def write_sheet(path: Path, cases, model: np.ndarray, view: str, rows: int = 6) -> None:
    """Truth over model for `rows` worlds: the last context frame, then every action's next frame."""
    pad = lambda im: np.pad(im, ((2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    if view == "top_down":
        small = [i for i, c in enumerate(cases) if c[0].shape[1] // c[4] >= 6][:rows]  # cells of >= 6 pixels
        show = lambda im, c: agent_crop(im, c[3], c[4])  # noqa: E731
    else:
        small = list(range(min(rows, len(cases))))
        show = lambda im, c: np.kron(im, np.ones((2, 2, 1), np.uint8))  # noqa: E731
    lines = []
    for i in small:
        c = cases[i]
        lines.append(np.concatenate([pad(show(c[0][-1], c))] + [pad(show(f, c)) for f in c[2]], axis=1))
        lines.append(np.concatenate([pad(show(c[0][-1], c))] + [pad(show(f, c)) for f in model[i]], axis=1))
    if lines:
        import imageio.v2 as imageio

        path.parent.mkdir(parents=True, exist_ok=True)
        imageio.imwrite(path, np.concatenate(lines, axis=0))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"],
                        choices=["first_person", "top_down"])
    parser.add_argument("--context", nargs="+", type=int, default=[1, 2, 4, 8],
                        help=f"true context frames before the branch, each in [1, {PLAYED + 1}]")
    parser.add_argument("--worlds", type=int, default=24)
    parser.add_argument("--sampler", default="default", help="sampler settings replacing the checkpoint's")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--sheet", help="folder for the contact sheets (PNG)")
    a = parser.parse_args(argv)
    if a.worlds < 1 or any(not 1 <= k <= PLAYED + 1 for k in a.context):
        parser.error(f"--worlds must be >= 1 and every --context in [1, {PLAYED + 1}]")
    settings = parse_settings(a.sampler)
    torch.set_num_threads(a.threads)
    wm = WorldModel.load(a.model)
    wm = wm.with_sampler(**settings) if settings else wm
    if max(a.context) > wm.config.dynamics.context_frames:
        parser.error(f"--context must be <= the model's context window ({wm.config.dynamics.context_frames} frames)")
    truth = GroundTruth(64)
    start = time.perf_counter()
    report = {"study": "one_step", "model": a.model, "sampler": wm.config.sampler.to_dict(), "worlds": a.worlds,
              "played": PLAYED, "machine": describe_machine(), "views": {}}
    try:
        worlds = draw_worlds(a.worlds, 7)
        for view in a.views:
            cases = truth_cases(truth, worlds, view, 3, wm.num_actions)
            report["views"][view] = {}
            for k in sorted(a.context):
                figures, model = measure(wm, cases, k, view, 11, a.batch)
                report["views"][view][str(k)] = figures
                print(f"{view} k={k}: psnr {figures['psnr']} (hold {figures['hold']}), "
                      f"sharpness {figures['sharpness']}; "
                      + " ".join(f"{m}={v['psnr']}/{v['sharpness']}" for m, v in figures["per_action"].items()),
                      flush=True)
                if a.sheet and k == min(a.context):
                    write_sheet(Path(a.sheet) / f"{view}_k{k}.png", cases, model, view)
    finally:
        truth.close()
    report["wall_s"] = round(time.perf_counter() - start, 1)
    if a.out:
        write_json(a.out, report)
    return report


if __name__ == "__main__":
    main()
