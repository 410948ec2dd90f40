"""How to run many GenieWorlds: the native batch against Gymnasium's AsyncVectorEnv, at the same world count.

For each world count W (``--worlds``), env-steps/s (W x vector steps / seconds, random actions, free play) of:

- ``native``: ``gym.make_vec(id, num_envs=W)``, the batched GenieWorldVectorEnv: one process, one forward pass
  for all W worlds, torch's default threads (every core);
- ``async``: ``gym.make_vec(id, num_envs=W, vectorization_mode="async")``: W worker processes (the default start
  method, fork on Linux), each with the env's default ``num_threads`` in a worker, 1;
- ``async_all_threads`` (W = 2 only, ``--all-threads``): spawn workers that each ask for every core
  (``num_threads`` = cores): what oversubscribing the cores costs.

Each configuration is built once and warmed up; then ``--rounds`` rounds step every configuration ``--steps``
times in turn (interleaved, so a change in the machine's load hits all of them alike); the figure is the median
over rounds. The machine, the load average at the start and ``OMP_WAIT_POLICY`` (unset: OpenMP threads spin
while they wait, which makes more threads than cores costly; PASSIVE: they sleep) are stored with the figures. On a
machine that other processes load, configurations with more threads in all get a larger share of it.

    python -m benchmarks.vector_speed --worlds 2 4 --rounds 5 --steps 6 --out benchmarks/results/vector_speed.json

JSON: ``benchmark`` = "genie-vector-speed", ``model``, ``machine``, ``main_torch_threads``, ``load_average``,
``omp_wait_policy``, ``rounds``, ``steps_per_round``, ``results``: [{mode, worlds, env_steps_per_s (median), per_round}].
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Sequence

import gymnasium as gym
import numpy as np

from benchmarks.machine import describe_machine, in_words
from benchmarks.result_file import command_line, publish

BENCHMARK = "genie-vector-speed"


def make(mode: str, worlds: int, model: str, cores: int) -> gym.vector.VectorEnv:
    """The vector env of one configuration (see the module docstring)."""
    from genie_env import GENIE_WORLD_ID

    if mode == "native":
        return gym.make_vec(GENIE_WORLD_ID, num_envs=worlds, model=model)
    if mode == "async":
        return gym.make_vec(GENIE_WORLD_ID, num_envs=worlds, vectorization_mode="async", model=model)
    if mode == "async_all_threads":
        return gym.make_vec(GENIE_WORLD_ID, num_envs=worlds, vectorization_mode="async", model=model,
                            num_threads=cores, vector_kwargs={"context": "spawn"})
    raise ValueError(f"unknown mode {mode!r}; choose native, async or async_all_threads")


def time_steps(env: gym.vector.VectorEnv, steps: int, rng: np.random.Generator) -> float:
    """Env-steps/s of `steps` vector steps with random actions."""
    n = env.num_envs
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(env.single_action_space.n, size=n))
    return n * steps / (time.perf_counter() - start)


def run(worlds: Sequence[int] = (2, 4), rounds: int = 5, steps: int = 6, model: str = "default",
        all_threads: bool = True, seed: int = 0) -> dict:
    """The benchmark's result dict (see the module docstring)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    configs = [(mode, w) for w in worlds for mode in ("native", "async")]
    if all_threads and 2 in worlds:
        configs.append(("async_all_threads", 2))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    rng = np.random.default_rng(seed)
    envs = {}
    try:
        for config in configs:
            env = make(*config, model=model, cores=cores)
            env.reset(seed=seed)
            time_steps(env, 2, rng)  # warm-up
            envs[config] = env
        per_round: dict[tuple, list[float]] = {c: [] for c in configs}
        for _ in range(rounds):
            for config in configs:
                per_round[config].append(time_steps(envs[config], steps, rng))
    finally:
        for env in envs.values():
            env.close()
    return {
        "benchmark": BENCHMARK,
        "model": model,
        "machine": describe_machine(),
        "main_torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": list(load) if load else None,
        "rounds": rounds,
        "steps_per_round": steps,
        "results": [{"mode": mode, "worlds": w, "env_steps_per_s": round(statistics.median(per_round[(mode, w)]), 3),
                     "per_round": [round(v, 3) for v in per_round[(mode, w)]]} for mode, w in configs],
    }


def table(result: dict) -> str:
    """The result as a Markdown table, one row per configuration."""
    native = {r["worlds"]: r["env_steps_per_s"] for r in result["results"] if r["mode"] == "native"}
    load = ", ".join(f"{v:.1f}" for v in result["load_average"] or [])
    lines = [f"Machine: {in_words(result['machine'])}; load average at the start {load or 'unknown'}; "
             f"OMP_WAIT_POLICY {result.get('omp_wait_policy') or 'unset'}.", "",
             "| mode | worlds | env-steps/s | vs native |", "|---|---:|---:|---:|"]
    for r in result["results"]:
        ratio = r["env_steps_per_s"] / native[r["worlds"]] if r["worlds"] in native else float("nan")
        lines.append(f"| {r['mode']} | {r['worlds']} | {r['env_steps_per_s']:.2f} | {ratio:.2f}x |")
    return "\n".join(lines)


def section(result: dict) -> list[str]:
    """BENCHMARKS.md's section of one result."""
    command = result.get("command", "command not recorded")
    if result.get("omp_wait_policy"):
        command = f"OMP_WAIT_POLICY={result['omp_wait_policy']} {command}"
    policy = result.get("omp_wait_policy") or "unset"
    return [f"## Many worlds: one process or worker processes (OMP_WAIT_POLICY {policy})", "",
            "Env-steps per second of N GenieWorld envs stepped by the native batch (`gym.make_vec`, one forward pass "
            "for all worlds) and by async worker processes (one torch thread each), timed in interleaved rounds.", "",
            f"`{command}` on model `{result['model']}`.", "", table(result), ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vector_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[2, 4], help="world counts (default: 2 4)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: 5)")
    parser.add_argument("--steps", type=int, default=6, help="vector steps per configuration and round (default: 6)")
    parser.add_argument("--model", default="default", help="world-model checkpoint folder, or 'default'")
    parser.add_argument("--no-all-threads", dest="all_threads", action="store_false",
                        help="leave out async_all_threads (spawn workers with every core each)")
    parser.add_argument("--out", default=None, help="write the JSON result here")
    args = parser.parse_args(argv)
    if min(args.worlds) < 1 or args.rounds < 1 or args.steps < 1:
        parser.error("--worlds, --rounds and --steps must be >= 1")
    result = run(args.worlds, args.rounds, args.steps, args.model, args.all_threads)
    result["command"] = command_line("benchmarks.vector_speed", argv)
    publish(result, args.out, [table(result)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
