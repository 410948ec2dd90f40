"""Diffusion Forcing vs noise augmentation: the training-objective ablation behind world_model/diffusion.py.

Trains the same dynamics model twice on the same data, the same steps and the same seed, changing only the
objective (`genie-train dynamics --objective forcing|augment`):

* ``forcing``: Diffusion Forcing (Chen et al. 2024) with clean-context mixing: every frame of a window gets its own
  noise level and, unless it was drawn as clean context, a loss (about half of the 17 frames are targets);
* ``augment``: GameNGen-style noise augmentation (Valevski et al. 2024): the last frame of each window is the only
  target; the earlier frames are context corrupted with a random, embedded noise level.

Both cost the same per step (one forward over the whole window), so equal steps are equal compute. Each model is
then rolled out autoregressively from the first frame of unseen worlds (test seeds) under the recorded actions and
scored against the ground truth (PSNR by horizon, teacher-forced one-step PSNR), per perspective, with the default
sampler. A ``small`` preset keeps the ablation affordable on a CPU; the shipped model is the ``default`` preset.

    python -m experiments.objective --data runs/data/train/* --eval-data runs/data/test/* \\
        --autoencoder runs/train/ae --steps 600 --reuse-latents runs/train/dyn/latents.safetensors \\
        --out experiments/results/objective/objective.json

Training runs go to ``--runs`` (default runs/objective/<objective>-s<seed>) and resume if re-run after a kill.
JSON: ``benchmark`` = "genie-bench-objective", ``runs``: {objective: {seeds, train_seconds, views: {view:
{one_step_psnr, autoregressive_psnr: {h: dB}, psnr_curve}}}}, plus the settings, machine and command.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

OBJECTIVE_LABELS = {"forcing": "Diffusion Forcing", "augment": "noise augmentation"}


def _link_latents(src: Path, run_dir: Path) -> None:
    """Share an existing latent cache (same data and autoencoder: the trainer checks its key and re-encodes on a
    mismatch) so each run skips the encoder pass."""
    dst = run_dir / "latents.safetensors"
    if dst.exists() or not src.is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem: copy
        import shutil

        shutil.copyfile(src, dst)


def train_run(objective: str, seed: int, args) -> tuple[Path, float]:
    from benchmarks.model_card import wall_seconds
    from world_model.train_dynamics import DynamicsArgs
    from world_model.training import train

    run_dir = Path(args.runs) / f"{objective}-s{seed}"
    if args.reuse_latents:
        _link_latents(Path(args.reuse_latents), run_dir)
    targs = DynamicsArgs(data=tuple(args.data), eval_data=tuple(args.eval_data) if args.eval_data else None,
                      out=str(run_dir), autoencoder=args.autoencoder, preset=args.preset, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, objective=objective, seed=seed,
                      checkpoint_every=max(1, args.steps // 2), log_every=20, ema_decay=args.ema_decay,
                      threads=args.threads)
    start = time.time()
    train(targs)
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if x.strip()]
    seconds = wall_seconds(log)  # the whole run's, also across resumes
    return run_dir, float(seconds if seconds is not None else time.time() - start)


def evaluate(run_dir: Path, episodes: int, horizon: int, views, seed: int) -> dict:
    import torch

    from benchmarks.fidelity import ground_truth, one_step, rollout
    from world_model.metrics import psnr
    from world_model import WorldModel

    wm = WorldModel.load(run_dir)
    size = wm.config.autoencoder.image_size
    out = {}
    for view in views:
        frames, actions = ground_truth(episodes, horizon, view, size, seed)
        with torch.no_grad():
            roll = rollout(wm, frames[:, 0], actions, seed, wm.config.sampler.guidance)
        curve = psnr(roll, frames[:, 1:]).mean(axis=0)  # (horizon,)
        one, _ = one_step(wm, frames, actions, starts=tuple(t for t in (0, 3, 7, 15) if t < horizon), seed=seed)
        out[view] = {"one_step_psnr": one,
                     "autoregressive_psnr": {str(h): float(curve[h - 1]) for h in (1, 4, 16, 64) if h <= horizon},
                     "psnr_curve": [round(float(p), 3) for p in curve]}
    return out


def summarize(per_seed: list[dict]) -> dict:
    """Mean over seeds of every figure (one seed: the figures themselves)."""
    views = per_seed[0].keys()
    out = {}
    for v in views:
        rs = [s[v] for s in per_seed]
        out[v] = {"one_step_psnr": float(np.mean([r["one_step_psnr"] for r in rs])),
                  "autoregressive_psnr": {h: float(np.mean([r["autoregressive_psnr"][h] for r in rs]))
                                          for h in rs[0]["autoregressive_psnr"]},
                  "psnr_curve": [round(float(x), 3) for x in np.mean([r["psnr_curve"] for r in rs], axis=0)]}
    return out


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    from benchmarks.machine import in_words

    s = r["settings"]
    lines = [
        "## Training objective: Diffusion Forcing vs noise augmentation",
        "",
        f"`{r.get('command', 'python -m experiments.objective')}`. The `{s['preset']}` dynamics preset trained twice "
        f"on the same data for {s['steps']:,} steps (batch {s['batch_size']} windows, seed(s) {s['seeds']}), only the "
        f"objective differs; then rolled out from the first frame of {s['episodes']} unseen worlds per perspective "
        f"under the recorded random-play actions (default sampler). PSNR (dB) vs the ground truth; higher is better. "
        f"Machine: {in_words(r.get('machine', {}))}.",
        "",
        "| objective | perspective | one-step | autoregressive @1 | @4 | @16 | training wall time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for obj, run in r["runs"].items():
        for view, v in run["views"].items():
            ar = v["autoregressive_psnr"]
            lines.append(f"| {OBJECTIVE_LABELS.get(obj, obj)} | {view.replace('_', ' ')} | {v['one_step_psnr']:.2f} | "
                         + " | ".join(f"{ar[h]:.2f}" if h in ar else "" for h in ("1", "4", "16"))
                         + f" | {run['train_seconds'] / 60:.1f} min |")
    lines.append("")
    if r.get("verdict"):
        lines += [r["verdict"], ""]
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines


def verdict(runs: dict) -> str:
    """One sentence: which objective rolls out better, by the mean autoregressive PSNR over horizons and views."""
    if not {"forcing", "augment"} <= set(runs):
        return ""
    means = {o: float(np.mean([np.mean(v["psnr_curve"]) for v in runs[o]["views"].values()])) for o in runs}
    best = max(means, key=means.get)
    other = "augment" if best == "forcing" else "forcing"
    return (f"Mean autoregressive PSNR over all horizons and perspectives: {OBJECTIVE_LABELS['forcing']} "
            f"{means['forcing']:.2f} dB, {OBJECTIVE_LABELS['augment']} {means['augment']:.2f} dB: "
            f"{OBJECTIVE_LABELS[best]} is ahead by {means[best] - means[other]:.2f} dB at equal compute.")


def plot(r: dict, path) -> str:
    """PSNR by horizon, one panel per perspective, one line per objective."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = list(next(iter(r["runs"].values()))["views"])
    fig, axes = plt.subplots(1, len(views), figsize=(4.2 * len(views), 3.2), squeeze=False)
    for ax, view in zip(axes[0], views):
        for obj, run in r["runs"].items():
            curve = run["views"][view]["psnr_curve"]
            ax.plot(np.arange(1, len(curve) + 1), curve, marker=".", label=OBJECTIVE_LABELS.get(obj, obj))
        ax.set(xlabel="horizon (steps)", ylabel="PSNR (dB)", title=view.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def main(argv=None) -> dict:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import command_line
    from world_model.checkpoint import write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="training recordings (genie-data record --out ...)")
    p.add_argument("--eval-data", nargs="+", default=None, help="held-out recordings for the trainer's checkpoints")
    p.add_argument("--autoencoder", required=True, help="autoencoder run directory or checkpoint (frozen)")
    p.add_argument("--objectives", nargs="+", choices=("forcing", "augment"), default=["forcing", "augment"])
    p.add_argument("--preset", choices=("tiny", "small", "default"), default="small")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--ema-decay", type=float, default=0.99)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per objective")
    p.add_argument("--episodes", type=int, default=16, help="unseen worlds per perspective")
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--reuse-latents", default=None,
                   help="an existing latents.safetensors of the same data and autoencoder (skips re-encoding)")
    p.add_argument("--runs", default="runs/objective", help="where the training runs go")
    p.add_argument("--out", default="experiments/results/objective/objective.json")
    args = p.parse_args(argv)
    if args.steps < 1 or args.episodes < 1 or args.horizon < 1:
        p.error("--steps, --episodes and --horizon must be >= 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = {}
    for obj in args.objectives:
        per_seed, seconds = [], []
        for seed in args.seeds:
            run_dir, secs = train_run(obj, seed, args)
            seconds.append(secs)
            per_seed.append(evaluate(run_dir, args.episodes, args.horizon, args.views, seed=1000))
        runs[obj] = {"seeds": args.seeds, "train_seconds": float(np.mean(seconds)), "views": summarize(per_seed),
                     "per_seed": per_seed}
    result = {"benchmark": "genie-bench-objective", "runs": runs, "verdict": verdict(runs),
              "settings": {k: getattr(args, k) for k in ("preset", "steps", "batch_size", "lr", "warmup", "ema_decay",
                                                          "seeds", "episodes", "horizon", "views")},
              "machine": describe_machine(),
              "command": command_line("experiments.objective", argv)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(result, out.parent / "objective.png")
    result["figures"] = {"PSNR by horizon": "objective.png"}
    write_json(out, result)
    print("\n".join(section(result)))
    return result


if __name__ == "__main__":
    main()
