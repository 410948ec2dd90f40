"""Training and single-world inference speed of the dynamics transformer per attention layout and patch size.

    python -m benchmarks.train_speed [--rounds 5] [--steps 2] [--out benchmarks/results/train_speed.json]

Layouts: frame_causal or factorised attention (world_model/dynamics.py) x 2x2 or 4x4 latent patches (64 or 16
tokens per 16x16 latent frame), at the default preset's width and depth, randomly initialised (speed does not
depend on the weights).

- training: one optimizer step of the EDM denoiser's loss (forward + backward under bf16 autocast where the CPU runs
  it natively, gradient clipping, AdamW) on random latent windows of --batch x --window frames, as genie-train
  dynamics runs it.
  Reported as tokens/s and as window frames/s (a 4x4-patch frame is 16 tokens, a 2x2 one 64, so tokens/s
  compares compute per token and frames/s compares data seen per second).
- inference: frames/s of one world stepped with the shipped checkpoint's sampler (its steps, solver and guidance),
  bf16 runtime where native (fp32 elsewhere), KV cache full (context_frames cached), decoding included, as
  GenieWorld steps it.

Every layout is timed once per round, in turn (interleaved), so a load change on a shared machine hits all of them
alike; a figure is the median over rounds and each is also given as a ratio to frame_causal with 2x2 patches. The
load average at the start and the end is recorded beside the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn

from benchmarks.machine import describe_machine, in_words
from benchmarks.result_file import command_line, publish
from world_model.checkpoint import read_config
from world_model.diffusion import Denoiser, DiffusionConfig
from world_model.dynamics import PRESETS, Dynamics
from world_model.hardware import bf16_native
from world_model.inference import DEFAULT_CHECKPOINT, WorldModel, WorldModelConfig

LAYOUTS = (("frame_causal", 2), ("factorised", 2), ("frame_causal", 4), ("factorised", 4))


def name_of(attention: str, patch_size: int) -> str:
    return f"{attention}/p{patch_size}"


class TrainStep:
    """One training step of a default-size denoiser of one layout on fixed random windows."""

    def __init__(self, attention: str, patch_size: int, batch: int, window: int, seed: int = 0):
        torch.manual_seed(seed)
        self.cfg = replace(PRESETS["default"], attention=attention, patch_size=patch_size)
        self.dynamics = Dynamics(self.cfg)
        self.denoiser = Denoiser(DiffusionConfig(), self.dynamics)
        self.optimizer = torch.optim.AdamW(self.dynamics.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(seed)
        c, s = self.cfg.latent_channels, self.cfg.latent_size
        self.y = torch.randn(batch, window, c, s, s, generator=g)
        self.actions = torch.randint(0, self.cfg.num_actions, (batch, window), generator=g)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.tokens = batch * window * self.cfg.tokens_per_frame
        self.frames = batch * window

    def __call__(self) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_native("cpu")):
            loss = self.denoiser.loss(self.y, self.actions, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.dynamics.parameters(), 1.0)
        self.optimizer.step()


class WorldStep:
    """One world of a random default-size world model of one layout, stepped with the shipped sampler."""

    def __init__(self, attention: str, patch_size: int, seed: int = 0):
        shipped = WorldModelConfig.from_dict(read_config(DEFAULT_CHECKPOINT))
        cfg = replace(shipped, dynamics=replace(shipped.dynamics, attention=attention, patch_size=patch_size))
        torch.manual_seed(seed)
        self.wm = WorldModel.from_config(cfg)
        size = cfg.autoencoder.image_size
        prompt = np.random.default_rng(seed).integers(0, 256, (1, 1, size, size, 3), dtype=np.uint8)
        self.generator = torch.Generator().manual_seed(seed)
        self.state = self.wm.reset(prompt, generator=self.generator)
        self.rng = np.random.default_rng(seed)
        for _ in range(cfg.dynamics.context_frames):  # fill the cache: the steady state of a long rollout
            self()

    def __call__(self) -> None:
        self.wm.step(self.state, self.rng.integers(0, self.wm.num_actions, 1), generator=self.generator)


def timed(fn, repeats: int) -> float:
    """Seconds per call of fn, over `repeats` calls."""
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def interleaved(runners: dict, repeats: int, rounds: int, label: str) -> dict[str, list[float]]:
    """Seconds per call of every runner, `rounds` times, one runner after the other in each round."""
    seconds = {name: [] for name in runners}
    for r in range(rounds):
        for name, fn in runners.items():
            seconds[name].append(timed(fn, repeats))
        print(f"[train_speed] {label} round {r + 1}/{rounds}: "
              + ", ".join(f"{n} {s[-1]:.3f}s" for n, s in seconds.items()), flush=True)
    return seconds


def summary(seconds: list[float], per_call: float) -> dict:
    """Rates (per_call units per second) of a list of seconds per call: median, min, max."""
    rates = [per_call / s for s in seconds]
    return {"median": round(statistics.median(rates), 2), "min": round(min(rates), 2), "max": round(max(rates), 2)}


def table(result: dict) -> list[str]:
    """The layouts as a Markdown table, each figure a median with its ratio to frame_causal/p2."""
    lines = ["| layout | tokens/frame | params | train tokens/s | train frames/s | world frames/s |",
             "|---|---|---|---|---|---|"]
    for name, r in result["layouts"].items():
        t, f, w = r["train_tokens_per_s"], r["train_frames_per_s"], r["world_frames_per_s"]
        lines.append(f"| {name} | {r['tokens_per_frame']} | {r['parameters']:,} | {t['median']:.0f} "
                     f"({t['ratio']:.2f}x) | {f['median']:.1f} ({f['ratio']:.2f}x) | {w['median']:.1f} "
                     f"({w['ratio']:.2f}x) |")
    load = result["machine"].get("load_average_1_5_15_min", {})
    return lines + ["", f"Load average (1, 5, 15 min) at the start {load.get('start')}, at the end {load.get('end')}."]


def section(result: dict) -> list[str]:
    """BENCHMARKS.md's section of one result."""
    return ["## Dynamics layouts: training and inference speed", "",
            "Tokens and frames per second of a training step (forward + backward + AdamW, bf16 autocast where native, "
            "batch "
            f"{result['batch']} windows of {result['window']} frames, the default width and depth, random weights) and "
            "frames per second of one world stepped with the shipped sampler, per attention layout and latent patch "
            "size, timed in interleaved rounds (medians, ratios to frame-causal attention over 2x2 patches).", "",
            f"`{result['command']}`. Machine: {in_words(result['machine'])}.", "", *table(result), ""]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per layout and round")
    parser.add_argument("--world-steps", type=int, default=10, help="world steps per layout and round")
    parser.add_argument("--batch", type=int, default=8, help="training windows per step")
    parser.add_argument("--window", type=int, default=17, help="frames per training window")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    base = name_of("frame_causal", 2)

    train = {name_of(a, p): TrainStep(a, p, args.batch, args.window) for a, p in LAYOUTS}
    for step in train.values():  # warm-up (allocator, autocast caches, optimizer state)
        step()
    train_s = interleaved(train, args.steps, args.rounds, "training")
    world = {name_of(a, p): WorldStep(a, p) for a, p in LAYOUTS}
    world_s = interleaved(world, args.world_steps, args.rounds, "inference")

    layouts = {}
    for name, step in train.items():
        tok, fr = summary(train_s[name], step.tokens), summary(train_s[name], step.frames)
        wfs = summary(world_s[name], 1.0)
        layouts[name] = {
            "attention": step.cfg.attention, "patch_size": step.cfg.patch_size,
            "tokens_per_frame": step.cfg.tokens_per_frame, "parameters": step.dynamics.num_parameters(),
            "train_tokens_per_s": tok, "train_frames_per_s": fr, "world_frames_per_s": wfs,
        }
    for name, row in layouts.items():  # ratios of the medians to frame_causal/p2
        for key in ("train_tokens_per_s", "train_frames_per_s", "world_frames_per_s"):
            row[key]["ratio"] = round(row[key]["median"] / layouts[base][key]["median"], 2)
    machine = describe_machine()
    machine["load_average_1_5_15_min"] = {"start": [round(x, 2) for x in load_start],
                                          "end": [round(x, 2) for x in os.getloadavg()]}
    result = {
        "benchmark": "train_speed", "command": command_line("benchmarks.train_speed", argv), "machine": machine,
        "torch_threads": torch.get_num_threads(), "preset": "default", "batch": args.batch, "window": args.window,
        "bf16_autocast": bf16_native("cpu"), "rounds": args.rounds, "train_steps_per_round": args.steps,
        "world_steps_per_round": args.world_steps, "sampler": WorldModelConfig.from_dict(
            read_config(DEFAULT_CHECKPOINT)).sampler.to_dict(),
        "ratios_to": base, "layouts": layouts,
    }
    return publish(result, args.out, table(result))


if __name__ == "__main__":
    main()
