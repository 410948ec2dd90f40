"""Sampler sweep: one model's fidelity and speed under several sampler settings, on held-out worlds.

Each variant changes some of the checkpoint's sampler defaults (`SamplerConfig`: num_steps, sigma_min, sigma_max,
rho, solver, guidance) and/or the noise level past frames are cached at (context_sigma); the rest stays as the
checkpoint has it. Per variant and perspective, on the same held-out (test-seed) worlds and actions:

- teacher-forced one-step PSNR / SSIM, overall and by kind of action (as `benchmarks.fidelity`);
- autoregressive PSNR at horizons 1, 4 and 16 under the true actions, and ΔPSNR_16 (true minus random actions)
  with a 95% bootstrap interval over worlds;
- network evaluations per frame (NFE: Euler N steps = N, Heun N steps = 2N - 1) and the frames/s of one world
  with the KV cache, timed in rounds that take the variants in turn (`--speed-rounds`, median over rounds), so
  that they compare by ratio on a shared machine too; `--speed-only` skips the fidelity part.

    python -m experiments.sampler_sweep --model default --variant default --variant num_steps=2,sigma_min=0.5 \\
        --variant num_steps=3,sigma_min=0.1 --episodes 64 --seed 7 --out experiments/results/sampler_sweep.json

Why sigma_min matters at a fixed step count: the last step of the schedule goes from sigma_min to 0 and returns
D(x; sigma_min). At sigma_min = 0.002 that is nearly the identity (c_skip ~ 1, c_out ~ 0.002), so one of the
three network evaluations of the old default schedule (5 -> 0.28 -> 0.002 -> 0) did almost nothing; a larger
sigma_min spends it where the network still removes noise.

JSON: ``benchmark`` = "genie-bench-sampler-sweep", ``variants``: {label: {"settings": {...}, "nfe": n,
"frames_per_s": f, view: figures}}, plus the model, its sampler defaults, machine and command.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from tqdm import tqdm

HORIZONS = (1, 4, 16)


def parse_variant(spec: str) -> dict:
    """A --variant: see `world_model.sampler.parse_settings`."""
    from world_model.sampler import parse_settings

    return parse_settings(spec)


def nfe(num_steps: int, solver: str) -> int:
    """Network evaluations per frame: Heun skips its correction on the last step (to sigma = 0)."""
    return num_steps if solver == "euler" else 2 * num_steps - 1


def frames_per_s(wm, frame: np.ndarray, repeats: int = 20, batch: int = 1) -> float:
    """Median frames/s (env-steps/s: worlds x steps/s) of `batch` worlds stepped together with the KV cache,
    after the context window is full, timed over whole cache-refresh periods (`WorldModel.refresh_period` steps;
    max(3, repeats / period) of them) so that the rebuilds of a full cache count."""
    state = wm.reset(np.repeat(frame[None], batch, axis=0))
    g = torch.Generator().manual_seed(0)
    forward = np.full(batch, 3)
    for _ in range(wm.config.dynamics.context_frames):
        _, state = wm.step(state, forward, generator=g)
    period = wm.refresh_period
    times = []
    for _ in range(max(3, repeats // period) if period > 1 else repeats):
        start = time.perf_counter()
        for _ in range(period):
            _, state = wm.step(state, forward, generator=g)
        times.append((time.perf_counter() - start) / period)
    return round(batch / statistics.median(times), 2)


def speed_rounds(wm, variants: dict[str, dict], rounds: int, frame: np.ndarray,
                 batch: int = 1) -> dict[str, list[float]]:
    """{label: [frames/s of `batch` worlds, per round]}: the variants are timed in turn, `rounds` times over, so
    that a slow spell of a shared machine hits them all (their ratio is steadier than either figure)."""
    models = {label: wm.with_sampler(**settings) for label, settings in variants.items()}
    out = {label: [] for label in variants}
    for _ in range(rounds):
        for label, model in models.items():
            out[label].append(frames_per_s(model, frame, batch=batch))
    return out


def evaluate(wm, variants: dict[str, dict], episodes: int, views, seed: int = 0, progress: bool = True,
             speed: bool = True, rounds: int = 3, fidelity: bool = True, speed_batch: int = 1) -> dict:
    """{label: {"settings", "nfe", "frames_per_s" (median over `rounds` interleaved rounds, if speed),
    "frames_per_s_rounds", view: figures (if fidelity)}} for one model under each variant ({label: with_sampler
    keyword arguments}); every variant sees the same worlds, actions and noise seed."""
    from benchmarks.fidelity import ground_truth, one_step_detail, rollout
    from benchmarks.ground_truth import random_actions
    from world_model.metrics import psnr
    from benchmarks.stats import bootstrap_ci

    size = wm.config.autoencoder.image_size
    horizon = max(HORIZONS)
    truth = {view: ground_truth(episodes if fidelity else 1, 32, view, size, seed) for view in views}  # starts go to 31
    rng = np.random.default_rng(seed + 1)
    fake = np.stack([random_actions(rng, horizon) for _ in range(episodes)])
    out = {}
    bar = tqdm(total=len(variants) * len(views) * fidelity, desc="sampler sweep", disable=not progress)
    for label, settings in variants.items():
        model = wm.with_sampler(**settings)
        sc = model.config.sampler
        res = {"settings": {**sc.to_dict(), "context_sigma": model.config.diffusion.context_sigma},
               "nfe": nfe(sc.num_steps, sc.solver)}
        for view in views if fidelity else ():
            frames, actions = truth[view]
            d = one_step_detail(model, frames, actions, seed=seed)
            true_roll = rollout(model, frames[:, 0], actions[:, :horizon], seed, sc.guidance)
            rand_roll = rollout(model, frames[:, 0], fake, seed, sc.guidance)
            e_true = psnr(true_roll, frames[:, 1:horizon + 1])  # (episodes, horizon)
            e_rand = psnr(rand_roll, frames[:, 1:horizon + 1])
            p_true, p_rand = e_true.mean(axis=0), e_rand.mean(axis=0)  # (horizon,)
            delta = e_true[:, horizon - 1] - e_rand[:, horizon - 1]  # (episodes,)
            res[view] = {
                "one_step_psnr": d["psnr"], "one_step_ssim": d["ssim"], "one_step_by_action": d["by_action"],
                "autoregressive_psnr": {str(h): float(p_true[h - 1]) for h in HORIZONS},
                "delta_psnr_16": float(p_true[horizon - 1] - p_rand[horizon - 1]),
                "delta_psnr_16_ci95": [float(c) for c in bootstrap_ci(delta, seed=seed)],
            }
            bar.update()
        out[label] = res
    bar.close()
    if speed:
        for label, fps in speed_rounds(wm, variants, rounds, truth[views[0]][0][0, 0], speed_batch).items():
            out[label]["frames_per_s"] = float(np.median(fps))
            out[label]["frames_per_s_rounds"] = fps
    return out


def table(results: dict, first_column: str) -> list[str]:
    """Markdown rows: one per (variant, view), keyed by `first_column`."""
    speed = any("frames_per_s" in v for v in results.values())
    lines = [f"| {first_column} | view | one-step PSNR | turns | forward | other | AR @1 | AR @4 | AR @16 | "
             "ΔPSNR_16 [95% CI] |" + (" NFE | frames/s |" if speed else ""),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if speed else "")]
    for label, per_view in results.items():
        views = [view for view, v in per_view.items() if isinstance(v, dict) and "one_step_psnr" in v]
        if not views and speed:  # a speed-only sweep
            cells = [label, "speed only", *[""] * 8, per_view.get("nfe", "n/a"), per_view.get("frames_per_s", "n/a")]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        for view in views:
            v = per_view[view]
            ba = v["one_step_by_action"]
            kind = lambda k: f"{ba[k]['psnr']:.2f}" if k in ba else "n/a"  # noqa: E731
            ar = v["autoregressive_psnr"]
            ci = v.get("delta_psnr_16_ci95")
            ci = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
            row = (f"| {label} | {view} | {v['one_step_psnr']:.2f} | {kind('turn')} | {kind('forward')} | "
                   f"{kind('other')} | {ar['1']:.2f} | {ar['4']:.2f} | {ar['16']:.2f} | {v['delta_psnr_16']:.2f}{ci} |")
            if speed:
                row += f" {per_view.get('nfe', 'n/a')} | {per_view.get('frames_per_s', 'n/a')} |"
            lines.append(row)
    return lines


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown section (experiments.report)."""
    from benchmarks.machine import in_words

    s = r["sampler"]
    what = f"{r['episodes']} worlds per view (seed {r.get('seed', 0)})" if r["episodes"] else "speed only"
    rounds, batch = r.get("speed_rounds"), r.get("speed_batch", 1)
    worlds = "one world" if batch == 1 else f"{batch} worlds stepped together (env-steps/s)"
    timing = ("frames/s of one world with the KV cache, timed once per variant right after its fidelity runs "
              "(results written before --speed-rounds existed: a slow spell of the machine can hit one row)"
              if rounds is None else "frames/s not measured (--no-speed)" if rounds == 0 else
              f"frames/s of {worlds} with the KV cache: the median over {rounds} round{'s' if rounds != 1 else ''} "
              "that time the variants in turn (compare rows by ratio)")
    return [f"## Sampler sweep: `{r['model']}`, {what}", "",
            f"`{r['command']}`: each row changes the checkpoint's sampler defaults ({s.get('num_steps')} "
            f"{s.get('solver')} steps, sigma {s.get('sigma_max')} -> {s.get('sigma_min')}, guidance "
            f"{s.get('guidance')}) as its label says; {timing}. Machine: {in_words(r['machine'])}.", "",
            *table(r["variants"], "variant"), ""]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --episodes, --views, --seed, --out: shared with `experiments.context_sigma`."""
    parser.add_argument("--model", default="default", help="'default', a checkpoint folder or a dynamics run dir")
    parser.add_argument("--episodes", type=int, default=16, help="held-out worlds per perspective")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the JSON report here")


def main(argv=None) -> dict:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import command_line, publish
    from world_model import WorldModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--variant", action="append", default=None,
                        help="sampler settings to compare, key=value[,key=value...] or 'default'; repeatable")
    parser.add_argument("--no-speed", action="store_true", help="skip the frames/s measurement")
    parser.add_argument("--speed-only", action="store_true", help="only the frames/s measurement")
    parser.add_argument("--speed-rounds", type=int, default=3, help="interleaved timing rounds (default: 3)")
    parser.add_argument("--speed-batch", type=int, default=1,
                        help="worlds stepped together when timing; frames/s is then env-steps/s (default: 1)")
    args = parser.parse_args(argv)
    if args.speed_only and args.no_speed:
        parser.error("--speed-only and --no-speed exclude each other")
    if args.speed_batch < 1:
        parser.error(f"--speed-batch must be >= 1, got {args.speed_batch}")
    if args.speed_rounds < 1:
        parser.error(f"--speed-rounds must be >= 1, got {args.speed_rounds}")
    specs = args.variant or ["default"]
    try:
        variants = {spec: parse_variant(spec) for spec in specs}
        wm = WorldModel.load(args.model)
        for settings in variants.values():
            wm.with_sampler(**settings)  # validate every variant before the long part
    except ValueError as e:
        parser.error(str(e))
    report = {"benchmark": "genie-bench-sampler-sweep", "model": args.model, "machine": describe_machine(),
              "sampler": wm.config.sampler.to_dict(), "context_sigma": wm.config.diffusion.context_sigma,
              "episodes": 0 if args.speed_only else args.episodes, "seed": args.seed,
              "speed_rounds": 0 if args.no_speed else args.speed_rounds, "speed_batch": args.speed_batch,
              "command": command_line("experiments.sampler_sweep", argv)}
    report["variants"] = evaluate(wm, variants, args.episodes, args.views, args.seed, speed=not args.no_speed,
                                  rounds=args.speed_rounds, fidelity=not args.speed_only,
                                  speed_batch=args.speed_batch)
    return publish(report, args.out, section(report))


if __name__ == "__main__":
    main()
