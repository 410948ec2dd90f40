"""First-person still scenes under sampler settings: PSNR after 1 / 8 / 20 noops against the prompt, per model and
setting, on the consistency suite's first 32 unseen worlds (seed 0), one torch thread (experiments/LOG.md entry 22).

    python -m experiments.sampler_still --model runs/candidates/v6 --settings default rho=3,guidance_min_sigma=2 \
        --out experiments/results/sampler_rho/still_32.jsonl

Settings are `--sampler` specs (world_model.sampler.parse_settings: SamplerConfig fields and context_sigma);
"default" is the checkpoint's own. Appends one JSON line per (model, setting): the sampler as run, the number of
network rows per frame (a guided step runs two), still@k means and the wall seconds.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from world_model import WorldModel
from world_model.sampler import karras_sigmas, parse_settings


def rows_per_frame(wm) -> int:
    """Network rows one frame costs under the model's sampler: one per denoising step, two where it guides."""
    sc = wm.config.sampler
    sigmas = karras_sigmas(sc.num_steps, sc.sigma_min, sc.sigma_max, sc.rho)[:-1]
    return sum(2 if sc.guides(s) else 1 for s in sigmas)


def setting_fields(model: str, spec: str, wm) -> dict:
    """The JSON line's head for one (model, setting): the sampler as run and the network rows each frame costs."""
    return {"model": model, "setting": spec, "sampler": wm.config.sampler.to_dict(),
            "context_sigma": wm.config.diffusion.context_sigma, "rows_per_frame": rows_per_frame(wm)}


def append_line(path: str | Path, line: dict) -> None:
    """Print one result line and append it to the JSON lines file `path`."""
    print(json.dumps(line), flush=True)
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="'default' or checkpoint folders")
    parser.add_argument("--settings", nargs="+", default=["default"], help="sampler specs, e.g. rho=3,num_steps=4")
    parser.add_argument("--worlds", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="JSON lines file to append to")
    a = parser.parse_args(argv)
    specs = [(s, parse_settings(s)) for s in a.settings]  # a bad spec fails before any model runs
    torch.set_num_threads(a.threads)
    cfg = replace(C.PRESETS["default"], worlds=a.worlds, views=("first_person",), still_steps=(1, 8, 20))
    truth = GroundTruth(64)
    worlds = draw_worlds(cfg.worlds, cfg.seed, cfg.levels)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        for model in a.model:
            for spec, settings in specs:
                t = time.perf_counter()
                wm = WorldModel.load(model)
                wm = wm.with_sampler(**settings) if settings else wm
                r, _ = C.still(wm, truth, "first_person", cfg, worlds)
                append_line(a.out, {**setting_fields(model, spec, wm), "worlds": a.worlds,
                                     "still": {k: round(v["model"]["mean"], 2) for k, v in r["steps"].items()},
                                     "wall_s": round(time.perf_counter() - t, 1)})
    finally:
        truth.close()


if __name__ == "__main__":
    main()
