"""The *speed* suite: how fast GenieWorld runs, beside the ground truth and the machine's measured matmul peak.

- ``settings``: env-steps/s of ``GenieWorldVectorEnv`` (free play, random actions, no judge) at batch sizes N (1 is
  one world's frames/s) for each sampler setting (denoising steps per frame x classifier-free guidance weight;
  guidance 1 runs one branch, > 1 batches the action and null branches into one forward);
- ``flops_per_world_step``: the world model's FLOPs for one frame of one world (sampler, decoder and the KV-cache
  commit), counted with ``torch.utils.flop_counter.FlopCounterMode``; ``share_of_peak`` = FLOPs x env-steps/s /
  the measured peak (bf16 when the model runs under bf16, else fp32);
- ``matmul``: the machine's measured peak, the median GFLOP/s of an n x n matmul in bf16 (``torch.autocast`` on
  CPU) and fp32, with the same number of torch threads;
- ``ground_truth_steps_per_s``: the 3D BabyAI world stepped with random actions (rendering and resets included).

Timings are medians over ``repeats`` timed steps after a warm-up; the machine, torch threads and the load average
at the start are stored with them (numbers from a busy machine are not comparable with an idle one).

JSON (``speed.json``): ``benchmark`` = "genie-bench-speed", ``model``, ``autocast``, ``torch_threads``,
``load_average``, ``machine``, ``matmul`` {n, bf16_gflops, fp32_gflops}, ``ground_truth_steps_per_s`` {level: v},
``settings``: [{num_steps, guidance, batch, env_steps_per_s, ms_per_step, flops_per_world_step, share_of_peak}].
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm


def matmul_gflops(n: int = 2048, dtype: str = "bf16", repeats: int = 5) -> float:
    """Median GFLOP/s of an (n x n) @ (n x n) matmul: "bf16" under torch.autocast on CPU, or "fp32"."""
    if dtype not in ("bf16", "fp32"):
        raise ValueError(f"dtype must be 'bf16' or 'fp32', got {dtype!r}")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    times = []
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        for i in range(repeats + 1):
            start = time.perf_counter()
            (a @ b).sum()  # the sum forces the work in any backend
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times) / 1e9


@torch.no_grad()
def flops_per_world_step(wm, num_steps: int, guidance: float) -> int:
    """FLOPs of one generated frame of one world (B = 1), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    size = int(wm.config.autoencoder.image_size)
    state = wm.reset(np.zeros((1, size, size, 3), np.uint8))
    with FlopCounterMode(display=False) as counter:
        wm.step(state, np.array([3]), generator=torch.Generator().manual_seed(0), num_steps=num_steps,
                guidance=guidance)
    return int(counter.get_total_flops())


def env_steps_per_second(wm, batch: int, num_steps: int, guidance: float, repeats: int = 10,
                         warmup: int | None = None, seed: int = 0) -> float:
    """Median env-steps/s (batch x steps/s) of a GenieWorldVectorEnv of `batch` worlds under random actions, timed
    after `warmup` steps (default: enough to fill the context window) in blocks of `WorldModel.refresh_period` steps (one step unless the sampler rebuilds a full
    KV cache, whose rebuilds then count), `repeats` steps in all (at least one block)."""
    from genie_env.genie_world_vector import GenieWorldVectorEnv

    venv = GenieWorldVectorEnv(num_envs=batch, model=wm, num_steps=num_steps, guidance=guidance,
                               max_episode_steps=None)
    rng = np.random.default_rng(seed)
    period = wm.refresh_period
    warmup = wm.config.dynamics.context_frames if warmup is None else warmup
    try:
        venv.reset(seed=seed)
        for _ in range(warmup):
            venv.step(rng.integers(venv.single_action_space.n, size=batch))
        times = []
        for _ in range(max(1, repeats // period)):
            start = time.perf_counter()
            for _ in range(period):
                venv.step(rng.integers(venv.single_action_space.n, size=batch))
            times.append((time.perf_counter() - start) / period)
    finally:
        venv.close()
    return batch / statistics.median(times)


def ground_truth_steps_per_second(levels: Sequence[str], steps: int, size: int) -> dict[str, float]:
    from benchmarks.world_speed import steps_per_second

    return {lvl: round(steps_per_second(f"genie_env/BabyAI3D-{lvl}-v0", steps, size=(size, size)), 1)
            for lvl in levels}


def run_speed(wm, batches: Sequence[int] = (1, 16, 64), num_steps: Sequence[int] = (1, 2, 3, 4),
              guidances: Sequence[float] = (1.0, 1.5), repeats: int = 10, matmul_n: int = 2048,
              gt_levels: Sequence[str] = ("GoToLocal", "PutNextLocal"), gt_steps: int = 1000, seed: int = 0,
              progress: bool = True) -> dict:
    """The speed suite's JSON (without run metadata); see the module docstring."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    size = int(wm.config.autoencoder.image_size)
    result: dict = {"autocast": bool(wm.autocast), "torch_threads": torch.get_num_threads(),
                    "load_average": [round(x, 2) for x in load] if load else None}
    result["matmul"] = {"n": matmul_n, "bf16_gflops": round(matmul_gflops(matmul_n, "bf16"), 2),
                        "fp32_gflops": round(matmul_gflops(matmul_n, "fp32"), 2)}
    peak = result["matmul"]["bf16_gflops" if wm.autocast else "fp32_gflops"] * 1e9
    result["ground_truth_steps_per_s"] = ground_truth_steps_per_second(gt_levels, gt_steps, size)
    settings = []
    combos = [(k, w, b) for k in num_steps for w in guidances for b in batches]
    for k, w, b in tqdm(combos, desc="speed", disable=not progress):
        flops = flops_per_world_step(wm, k, w)
        sps = env_steps_per_second(wm, b, k, w, repeats=repeats, seed=seed)
        settings.append({"num_steps": int(k), "guidance": float(w), "batch": int(b), "env_steps_per_s": round(sps, 2),
                         "ms_per_step": round(1000.0 * b / sps, 3), "flops_per_world_step": flops,
                         "share_of_peak": flops * sps / peak})
    result["settings"] = settings
    return result


# ---------------------------------------------------------------------------------------------- report


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    m = r.get("machine", {})
    mm = r["matmul"]
    batches = sorted({s["batch"] for s in r["settings"]})
    lines = [
        "## GenieWorld speed",
        "",
        f"`{r.get('command', 'genie-bench run speed')}` on model `{r.get('model')}` "
        f"({'bf16' if r['autocast'] else 'fp32'} inference, {r['torch_threads']} torch threads, load average "
        f"{r.get('load_average')} at the start). Machine: {m.get('cpu', '?')}, {m.get('cores_usable', '?')} usable "
        f"cores. Measured matmul peak ({mm['n']}x{mm['n']}): {mm['bf16_gflops']:.1f} GFLOP/s bf16, "
        f"{mm['fp32_gflops']:.1f} GFLOP/s fp32. Ground truth: "
        + ", ".join(f"{k} {v:,.0f} steps/s" for k, v in r["ground_truth_steps_per_s"].items()) + ".",
        "",
        "| denoising steps | guidance | MFLOP / frame | " + " | ".join(f"env-steps/s @ N={b}" for b in batches)
        + f" | share of peak @ N={batches[-1]} |",
        "|---:|---:|---:|" + "---:|" * (len(batches) + 1),
    ]
    groups: dict[tuple, dict[int, dict]] = {}
    for s in r["settings"]:
        groups.setdefault((s["num_steps"], s["guidance"]), {})[s["batch"]] = s
    for (k, w), by_batch in groups.items():
        any_s = next(iter(by_batch.values()))
        cells = [f"{by_batch[b]['env_steps_per_s']:,.1f}" if b in by_batch else "" for b in batches]
        last = by_batch.get(batches[-1])
        share = f"{100 * last['share_of_peak']:.2f}%" if last else ""
        lines.append(f"| {k} | {w:g} | {any_s['flops_per_world_step'] / 1e6:,.1f} | " + " | ".join(cells)
                     + f" | {share} |")
    lines.append("")
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines


def plot(r: dict, path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list] = {}
    for s in r["settings"]:
        groups.setdefault((s["num_steps"], s["guidance"]), []).append((s["batch"], s["env_steps_per_s"]))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (k, w), pts in groups.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{k} steps, guidance {w:g}")
    for lvl, v in r["ground_truth_steps_per_s"].items():
        ax.axhline(v, ls="--", lw=0.8, color="grey")
        ax.text(ax.get_xlim()[0], v, f" ground truth {lvl}", fontsize=7, va="bottom", color="grey")
    ax.set(xscale="log", yscale="log", xlabel="worlds per batch (N)", ylabel="env-steps/s",
           title="GenieWorld env-steps/s")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
