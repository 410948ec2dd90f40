"""Steps per second of the 3D BabyAI ground-truth world, rendering included.

    python -m benchmarks.world_speed [--levels GoToLocal KeyCorridorS3R1] [--steps 3000] [--repeats 5]

Random actions, auto-reset on episode end (resets are counted in the time), pinned to one CPU core by default.
Prints one JSON object: the machine, and per level the median and spread of steps/s over the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import gymnasium as gym
import numpy as np

import genie_env
from benchmarks.machine import describe_machine
from benchmarks.result_file import publish


def steps_per_second(env_id: str, steps: int, seed: int = 0, **env_kwargs) -> float:
    env = gym.make(env_id, **env_kwargs)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, size=steps)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", nargs="+", default=list(genie_env.LEVELS), help="BabyAI levels to time")
    parser.add_argument("--steps", type=int, default=3000, help="steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per level; the median is reported")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"), help="frame size")
    parser.add_argument("--view", default="first_person", choices=["first_person", "top_down"])
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    machine = describe_machine()
    pinned = not args.all_cores and hasattr(os, "sched_setaffinity")
    if pinned:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    result = {"benchmark": "world_speed", "machine": machine, "pinned_to_one_core": pinned, "size": list(args.size),
              "view": args.view, "steps_per_repeat": args.steps, "levels": {}}
    for level in args.levels:
        env_id = f"genie_env/BabyAI3D-{level}-v0"
        runs = [steps_per_second(env_id, args.steps, seed=r, size=tuple(args.size), view=args.view)
                for r in range(args.repeats)]
        result["levels"][level] = {"median_steps_per_s": round(statistics.median(runs), 1),
                                   "min": round(min(runs), 1), "max": round(max(runs), 1)}
        print(f"{level:>16}: {statistics.median(runs):8.0f} steps/s (median of {args.repeats})", flush=True)
    medians = [v["median_steps_per_s"] for v in result["levels"].values()]
    result["median_over_levels"] = round(statistics.median(medians), 1)
    return publish(result, args.out)


if __name__ == "__main__":
    main()
