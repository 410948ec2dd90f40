"""Writes docs/babyai3d_samples.png: bot play in every 3D BabyAI level, one row per level, plus top-down views.

    python -m benchmarks.sample_frames [--out docs/babyai3d_samples.png] [--seed 0]
"""

from __future__ import annotations

import argparse
import os

import gymnasium as gym
import numpy as np
from PIL import Image

import genie_env


def level_strip(env_id: str, seed: int, columns: int) -> np.ndarray:
    env = gym.make(env_id)
    frames = [env.reset(seed=seed)[0]]
    bot, action = env.unwrapped.make_bot(), None
    for _ in range(300):
        action = bot.act(action)
        frame, _, terminated, truncated, _ = env.step(action)
        frames.append(frame)
        if terminated or truncated:
            break
    picks = np.linspace(0, len(frames) - 1, columns - 1).round().astype(int)
    top = gym.make(env_id, view="top_down")
    top_frame = top.reset(seed=seed)[0]
    return np.concatenate([frames[i] for i in picks] + [top_frame], axis=1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/babyai3d_samples.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=8, help="frames per level (the last one is top-down)")
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args(argv)
    grid = np.concatenate([level_strip(i, args.seed, args.columns) for i in genie_env.BABYAI3D_IDS], axis=0)
    image = Image.fromarray(grid).resize((grid.shape[1] * args.scale, grid.shape[0] * args.scale), Image.NEAREST)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out}: {len(genie_env.BABYAI3D_IDS)} levels x {args.columns} frames")


if __name__ == "__main__":
    main()
