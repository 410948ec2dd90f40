"""What the autoencoder keeps of the top-down view's small things: the agent and its heading, keys, balls, boxes and
doors, per level (each level has its own grid size, so its own pixels per cell), beside erasing them.

    python -m benchmarks.top_down_objects [--model default] [--worlds 8] [--steps 8] [--cells N] [--out FILE]

``--model`` names a world model or an autoencoder alone (a ``genie-train autoencoder`` run or checkpoint).

On unseen (test-seed) worlds of every level, random play (:func:`benchmarks.ground_truth.random_actions`) visits
``steps`` states per world; each top-down frame goes through the model's autoencoder (encode, decode) and is
compared with the truth on the pixels of one grid cell at a time (the cell's box in the frame: a 22x22 grid gives
cells of ~2.9 pixels in a 64-pixel frame, an 8x8 grid 8 pixels):

- ``agent_psnr``: the decoded agent cell against the true one; ``erased_agent_psnr``, the do-nothing reference: the
  frame drawn without the agent against the truth, on the same box (an autoencoder that erases the agent scores
  this);
- ``heading_accuracy``: the share of frames whose decoded agent cell is nearest (squared error) to the truth drawn
  with the agent's own heading among the four headings (chance 0.25); ``heading_margin_db``: how alike the
  headings are in the true frame itself (PSNR of the true agent cell to the nearest other heading's: the higher,
  the harder the heading is to tell at that cell size);
- ``objects``: per kind (key, ball, box, door) ``psnr`` of its decoded cells and ``erased_psnr``, the frame drawn
  with that cell empty (a door: wall) against the truth, over ``cells`` object cells;
- ``frame_psnr``: the whole frame.

Figures are means over frames per level, and over worlds (a 95% bootstrap interval) for all levels together.
JSON: ``{"benchmark": "top_down_objects", "model", "command", "machine", "config", "levels": {level: {"grid",
"cell_px", "frames", "frame_psnr", "agent_psnr", "erased_agent_psnr", "heading_accuracy", "heading_margin_db",
"objects"}}, "overall": {figure: {"mean", "ci95", "n"}}}`` (overall's heading figure is ``heading_correct``); :func:`section` renders it as Markdown.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from minigrid.core.world_object import Wall

from benchmarks.ground_truth import GroundTruth, random_actions
from benchmarks.machine import describe_machine, in_words
from benchmarks.result_file import command_line, publish
from benchmarks.stats import mean_ci
from genie_env.babyai3d import LEVELS, TEST_SEEDS, render_top_down, top_down_window
from world_model.autoencoder import frames_to_pixels, pixels_to_frames
from world_model.metrics import psnr

#: The objects whose cells are measured (MiniGrid object types).
OBJECT_KINDS = ("key", "ball", "box", "door")


@dataclass(frozen=True)
class TopDownConfig:
    worlds: int = 8
    """Unseen worlds per level."""
    steps: int = 8
    """States per world: the first frame and those after steps - 1 random actions."""
    cells: int | None = None
    """The top-down window in cells (BabyAI3DEnv's top_down_cells); None: the whole grid."""
    seed: int = 0

    def __post_init__(self):
        if self.worlds < 1 or self.steps < 1:
            raise ValueError(f"worlds and steps must be >= 1, got {self.worlds} and {self.steps}")
        if self.cells is not None and self.cells < 3:
            raise ValueError(f"cells must be >= 3 (or None: the whole grid), got {self.cells}")


def cell_box(x: int, y: int, grid_size: tuple[int, int], frame_size: int) -> tuple[slice, slice]:
    """(rows, columns) of the frame covering grid cell (x, y), widened to whole pixels (the resize blends edges)."""
    w, h = grid_size
    x0, x1 = int(np.floor(x * frame_size / w)), int(np.ceil((x + 1) * frame_size / w))
    y0, y1 = int(np.floor(y * frame_size / h)), int(np.ceil((y + 1) * frame_size / h))
    return slice(y0, y1), slice(x0, x1)


def _box_psnr(a: np.ndarray, b: np.ndarray, box) -> float:
    return float(psnr(a[box], b[box]))


def state_views(inner, size: int, cells: int | None = None) -> dict:
    """The truth of one state of MiniGrid env `inner` (the top-down view, whole or the window of `cells`) and the
    variants the figures compare with: no agent, every heading, every object cell emptied. Leaves the grid as it
    was."""
    grid, pos = top_down_window(inner, cells)
    heading, shape = int(inner.agent_dir), (size, size)
    views = {"truth": render_top_down(grid, pos, heading, shape), "pos": pos, "heading": heading,
             "grid_size": (grid.width, grid.height),
             "no_agent": render_top_down(grid, (-1, -1), heading, shape),
             "headings": [render_top_down(grid, pos, d, shape) for d in range(4)], "objects": []}
    for x in range(grid.width):
        for y in range(grid.height):
            obj = grid.get(x, y)
            if obj is None or obj.type not in OBJECT_KINDS or (x, y) == pos:
                continue
            grid.set(x, y, Wall() if obj.type == "door" else None)
            try:
                erased = render_top_down(grid, pos, heading, shape)
            finally:
                grid.set(x, y, obj)
            views["objects"].append((obj.type, (x, y), erased))
    return views


@torch.no_grad()
def reconstruct(autoencoder, frames: np.ndarray) -> np.ndarray:
    """uint8 frames (N, H, W, 3) through encode and decode."""
    pixels = frames_to_pixels(torch.from_numpy(frames))
    return pixels_to_frames(autoencoder.decode(autoencoder.encode(pixels))).numpy()


def evaluate(autoencoder, config: TopDownConfig = TopDownConfig(), levels=LEVELS, size: int = 64,
             progress: bool = False) -> dict:
    """The figures of the module docstring for `autoencoder` on `levels`."""
    truth_env = GroundTruth(size)
    rng = np.random.default_rng(config.seed)
    per_level, per_world = {}, []
    iterator = levels
    if progress:
        from tqdm import tqdm

        iterator = tqdm(levels, desc="top-down objects", unit="level")
    for level in iterator:
        rows = []  # one dict per frame
        for w in range(config.worlds):
            level_seed = TEST_SEEDS.start + int(rng.integers(TEST_SEEDS.size))
            actions = random_actions(rng, config.steps - 1)
            env, _ = truth_env.env(level, level_seed, "top_down")
            env = copy.deepcopy(env)
            states = [state_views(env.minigrid, size, config.cells)]
            for a in actions:
                env.step(int(a))
                states.append(state_views(env.minigrid, size, config.cells))
            recon = reconstruct(autoencoder, np.stack([s["truth"] for s in states]))
            for s, r in zip(states, recon):
                grid_size = s["grid_size"]
                box = cell_box(*s["pos"], grid_size, size)
                errors = [float(((r[box].astype(np.float64) - h[box]) ** 2).mean()) for h in s["headings"]]
                others = [_box_psnr(s["truth"], h, box) for d, h in enumerate(s["headings"]) if d != s["heading"]]
                row = {"world": w, "frame_psnr": float(psnr(r, s["truth"])),
                       "agent_psnr": _box_psnr(r, s["truth"], box),
                       "erased_agent_psnr": _box_psnr(s["no_agent"], s["truth"], box),
                       "heading_correct": float(int(np.argmin(errors)) == s["heading"]),
                       "heading_margin_db": min(others)}
                for kind, cell, erased in s["objects"]:
                    obox = cell_box(*cell, grid_size, size)
                    row.setdefault(f"{kind}_psnr", []).append(_box_psnr(r, s["truth"], obox))
                    row.setdefault(f"{kind}_erased_psnr", []).append(_box_psnr(erased, s["truth"], obox))
                rows.append(row)
        per_level[level] = _summarise(rows, states[-1]["grid_size"], size)
        per_world += [_world_means(rows, level, w) for w in range(config.worlds)]
    overall = {k: mean_ci([p[k] for p in per_world], seed=config.seed)
               for k in ("frame_psnr", "agent_psnr", "erased_agent_psnr", "heading_correct", "heading_margin_db")}
    return {"levels": per_level, "overall": overall}


def _mean(rows, key):
    vals = [v for r in rows if key in r for v in (r[key] if isinstance(r[key], list) else [r[key]])]
    return (round(float(np.mean(vals)), 3), len(vals)) if vals else (None, 0)


def _summarise(rows, grid_size, size) -> dict:
    out = {"grid": list(grid_size), "cell_px": round(size / max(grid_size), 2), "frames": len(rows)}
    for key in ("frame_psnr", "agent_psnr", "erased_agent_psnr", "heading_margin_db"):
        out[key] = _mean(rows, key)[0]
    out["heading_accuracy"] = _mean(rows, "heading_correct")[0]
    out["objects"] = {}
    for kind in OBJECT_KINDS:
        value, n = _mean(rows, f"{kind}_psnr")
        if n:
            out["objects"][kind] = {"psnr": value, "erased_psnr": _mean(rows, f"{kind}_erased_psnr")[0], "cells": n}
    return out


def _world_means(rows, level, world) -> dict:
    mine = [r for r in rows if r["world"] == world]
    return {"level": level, **{k: float(np.mean([r[k] for r in mine])) for k in
            ("frame_psnr", "agent_psnr", "erased_agent_psnr", "heading_correct", "heading_margin_db")}}


def section(result: dict) -> list[str]:
    """Markdown: a table per level and the overall line."""
    o = result["overall"]
    fmt = lambda c: f"{c['mean']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]"  # noqa: E731
    cells = result["config"].get("cells")
    view = f"a window of {cells} x {cells} cells around the agent" if cells else "the whole grid"
    lines = [f"## Top-down small objects through the autoencoder ({view})", "",
             f"Autoencoder of `{result['model']}` on the top-down view ({view}), {result['config']['worlds']} unseen "
             f"worlds x {result['config']['steps']} states per level; mean [95% bootstrap CI over worlds]. Command: "
             f"`{result['command']}`. Machine: {in_words(result['machine'])}.", "",
             f"Agent cell PSNR {fmt(o['agent_psnr'])} dB against "
             f"{fmt(o['erased_agent_psnr'])} dB for erasing the agent; heading read right in "
             f"{fmt(o['heading_correct'])} of frames (chance 0.25); whole frame {fmt(o['frame_psnr'])} dB.", "",
             "| level | grid | px per cell | frame PSNR | agent PSNR | erased agent | heading acc. | heading margin (dB) "
             "| key / ball / box / door PSNR (erased) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for level, r in result["levels"].items():
        objects = ", ".join(f"{k} {v['psnr']:.1f} ({v['erased_psnr']:.1f})" for k, v in r["objects"].items()) or "-"
        lines.append(f"| {level} | {r['grid'][0]}x{r['grid'][1]} | {r['cell_px']:.1f} | {r['frame_psnr']:.2f} | "
                     f"{r['agent_psnr']:.2f} | {r['erased_agent_psnr']:.2f} | {r['heading_accuracy']:.2f} | "
                     f"{r['heading_margin_db']:.1f} | {objects} |")
    return lines + [""]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default",
                        help="'default', a world-model checkpoint folder (its autoencoder), or an autoencoder "
                             "checkpoint or run directory")
    parser.add_argument("--worlds", type=int, default=TopDownConfig.worlds, help="unseen worlds per level")
    parser.add_argument("--steps", type=int, default=TopDownConfig.steps, help="states per world")
    parser.add_argument("--cells", type=int, default=None,
                        help="measure the top-down window of this many cells around the agent (BabyAI3DEnv "
                             "top_down_cells; default: the whole grid)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown section instead of the JSON")
    args = parser.parse_args(argv)
    config = TopDownConfig(worlds=args.worlds, steps=args.steps, cells=args.cells, seed=args.seed)
    from world_model.train_dynamics import load_autoencoder

    result = {"benchmark": "top_down_objects", "model": args.model,
              "command": command_line("benchmarks.top_down_objects", argv), "machine": describe_machine(),
              "config": asdict(config),
              **evaluate(load_autoencoder(args.model), config, levels=args.levels, progress=True)}
    return publish(result, args.out, section(result) if args.markdown else None)


if __name__ == "__main__":
    main()
