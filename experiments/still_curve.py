"""The still scene, step by step: PSNR of the model's frame after n noops against the prompt (the ground truth does
not move), for unseen first-person worlds of the consistency suite, with the KV cache sliding frame by frame
(`slide`), rebuilt from its latest K frames when full (`refreshK`, SamplerConfig.cache_refresh = K), or the whole
window recomputed at every denoising step (`recompute`, the reference path). Appends one JSON line per run.

    python -m experiments.still_curve --model default --mode refresh8 --worlds 8 --steps 64 --out curve.jsonl
    python -m experiments.still_curve --plot curve.jsonl          # every run of the file -> curve.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def curve(model: str, mode: str, worlds: int = 8, steps: int = 64, seed: int = 0) -> dict:
    from benchmarks.consistency import NOOP, PRESETS, GroundTruth, draw_worlds
    from world_model import WorldModel
    from world_model.metrics import psnr

    wm = WorldModel.load(model)
    kv = mode != "recompute"
    if mode.startswith("refresh"):
        wm = wm.with_sampler(cache_refresh=int(mode.removeprefix("refresh")))
    elif mode == "slide":
        wm = wm.with_sampler(cache_refresh=0)
    elif mode != "recompute":
        raise ValueError(f"mode must be slide, recompute or refreshK, got {mode!r}")
    truth = GroundTruth(int(wm.config.autoencoder.image_size))
    try:
        drawn = draw_worlds(worlds, seed, PRESETS["default"].levels)
        prompt = np.stack([truth.play(lvl, s, "first_person", [])[0] for lvl, s in drawn])
    finally:
        truth.close()
    g = torch.Generator().manual_seed(seed + 1)
    state = wm.reset(prompt, generator=g, view="first_person")
    start, out = time.perf_counter(), []
    for _ in range(steps):
        f, state = wm.step(state, np.full(worlds, NOOP), generator=g, use_kv_cache=kv)
        out.append(round(float(np.mean(psnr(f, prompt))), 3))
    return {"model": model, "mode": mode, "worlds": worlds, "seed": seed, "psnr_by_step": out,
            "wall_s": round(time.perf_counter() - start, 1)}


def plot(jsonl: str | Path) -> Path:
    """Draw every run of a JSON-lines file of `curve` results (PSNR against noops) into a PNG beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(line) for line in Path(jsonl).read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in runs:
        y = r["psnr_by_step"]
        ax.plot(range(1, len(y) + 1), y, label=f"{Path(r['model']).name}, {r['mode']}",
                linestyle="--" if r["mode"] == "slide" else "-")
    ax.set(xlabel="noops since the prompt", ylabel="PSNR against the prompt (dB)",
           title=f"A still scene, step by step ({runs[0]['worlds']} unseen first-person worlds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(jsonl).with_suffix(".png")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--mode", default="slide", help="slide | recompute | refreshK (K frames kept)")
    p.add_argument("--worlds", type=int, default=8)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="append the result as a JSON line to this file")
    p.add_argument("--plot", metavar="JSONL", help="only draw the runs of this file into a PNG beside it")
    args = p.parse_args(argv)
    if args.plot:
        print(f"wrote {plot(args.plot)}")
        return {}
    r = curve(args.model, args.mode, args.worlds, args.steps, args.seed)
    print(args.model, args.mode, " ".join(f"{n}:{r['psnr_by_step'][n - 1]:.1f}" for n in (1, 8, 16, 20, 32, 64)
                                           if n <= len(r["psnr_by_step"])))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(r) + "\n")
    return r


if __name__ == "__main__":
    main()
