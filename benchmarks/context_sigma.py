"""Context-noise sweep: how the noise level that past frames are cached at changes a model's fidelity.

The sampler stores every past frame in the KV cache at a small noise level, `context_sigma` (the model was trained
to read context at that level: one level, or a range with `genie-train dynamics --context-sigma-min`). A lower
level keeps more detail to copy from; a higher one makes the model more forgiving of its own errors. This sweep
measures one model at several levels on held-out (test-seed) worlds, per perspective, with the model's default
sampler otherwise:

- teacher-forced one-step PSNR (overall and by kind of action, as `benchmarks.fidelity`);
- autoregressive PSNR at horizons 1, 4 and 16 under the true actions, and ΔPSNR_16 (true minus random actions)
  with a 95% bootstrap interval over worlds (ΔPSNR over 16 worlds moves by a dB or more between world sets).

    python -m benchmarks.context_sigma --model runs/train/dyn_v4 --sigmas 0.01 0.02 0.05 0.1 \\
        --out benchmarks/results/candidates/context_sigma_v4.json

JSON: ``benchmark`` = "genie-bench-context-sigma", ``levels``: {sigma: {view: {one_step_psnr, one_step_by_action,
autoregressive_psnr: {h: dB}, delta_psnr_16}}}, plus the model, its trained context noise, machine and command.
`genie-train export --context-sigma S` then writes a checkpoint that samples at the chosen level.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from tqdm import tqdm

HORIZONS = (1, 4, 16)


def evaluate(wm, sigmas, episodes: int, views, seed: int = 0, progress: bool = True) -> dict:
    """{str(sigma): {view: figures}} for one model sampled with past frames cached at each level."""
    from benchmarks.fidelity import ground_truth, one_step_detail, random_actions, rollout
    from benchmarks.metrics import psnr
    from benchmarks.stats import bootstrap_ci

    size = wm.config.autoencoder.image_size
    horizon = max(HORIZONS)
    truth = {view: ground_truth(episodes, 32, view, size, seed) for view in views}  # one-step starts go to 31
    rng = np.random.default_rng(seed + 1)
    fake = np.stack([random_actions(rng, horizon) for _ in range(episodes)])
    out = {}
    bar = tqdm(total=len(sigmas) * len(views), desc="context sigma", disable=not progress)
    for s in sigmas:
        model = wm.with_sampler(context_sigma=s)
        out[str(s)] = {}
        for view in views:
            frames, actions = truth[view]
            d = one_step_detail(model, frames, actions, seed=seed)
            true_roll = rollout(model, frames[:, 0], actions[:, :horizon], seed, model.config.sampler.guidance)
            rand_roll = rollout(model, frames[:, 0], fake, seed, model.config.sampler.guidance)
            e_true = psnr(true_roll, frames[:, 1:horizon + 1])  # (episodes, horizon)
            e_rand = psnr(rand_roll, frames[:, 1:horizon + 1])
            p_true, p_rand = e_true.mean(axis=0), e_rand.mean(axis=0)  # (horizon,)
            delta = e_true[:, horizon - 1] - e_rand[:, horizon - 1]  # (episodes,)
            out[str(s)][view] = {
                "one_step_psnr": d["psnr"], "one_step_ssim": d["ssim"], "one_step_by_action": d["by_action"],
                "autoregressive_psnr": {str(h): float(p_true[h - 1]) for h in HORIZONS},
                "delta_psnr_16": float(p_true[horizon - 1] - p_rand[horizon - 1]),
                "delta_psnr_16_ci95": [float(c) for c in bootstrap_ci(delta, seed=seed)],
            }
            bar.update()
    bar.close()
    return out


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """BENCHMARKS.md section (benchmarks.report)."""
    trained = r.get("trained_context_sigma")
    lines = [f"## Context-noise sweep: `{r['model']}`, {r['episodes']} worlds per view (seed {r.get('seed', 0)})", "",
             f"`{r['command']}`: past frames cached at each noise level (trained at {trained}); "
             f"{r['episodes']} held-out worlds per view, guidance {r['sampler'].get('guidance')}, "
             f"{r['sampler'].get('num_steps')} {r['sampler'].get('solver')} steps. Machine: {r['machine']}.", "",
             "| context sigma | view | one-step PSNR | turns | forward | other | AR @1 | AR @4 | AR @16 | ΔPSNR_16 [95% CI] |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, per_view in r["levels"].items():
        for view, v in per_view.items():
            ba = v["one_step_by_action"]
            kind = lambda k: f"{ba[k]['psnr']:.2f}" if k in ba else "n/a"  # noqa: E731
            ar = v["autoregressive_psnr"]
            ci = v.get("delta_psnr_16_ci95")
            ci = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
            lines.append(f"| {s} | {view} | {v['one_step_psnr']:.2f} | {kind('turn')} | {kind('forward')} | "
                         f"{kind('other')} | {ar['1']:.2f} | {ar['4']:.2f} | {ar['16']:.2f} | "
                         f"{v['delta_psnr_16']:.2f}{ci} |")
    return lines + [""]


def main(argv=None) -> dict:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import write_json
    from world_model import WorldModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default', a checkpoint folder or a dynamics run dir")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.02, 0.05, 0.1],
                        help="context noise levels to compare (each > 0)")
    parser.add_argument("--episodes", type=int, default=16, help="held-out worlds per perspective")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    bad = [s for s in args.sigmas if not s > 0]
    if bad:
        parser.error(f"--sigmas must all be > 0, got {bad}")
    wm = WorldModel.load(args.model)
    trained = getattr(wm, "training_metadata", {}).get("trained_context_sigma",
                                                        wm.config.diffusion.trained_context_sigma)
    report = {"benchmark": "genie-bench-context-sigma", "model": args.model, "machine": describe_machine(),
              "sampler": wm.config.sampler.to_dict(), "trained_context_sigma": trained, "episodes": args.episodes,
              "seed": args.seed,
              "command": "python -m benchmarks.context_sigma " + " ".join(argv if argv is not None else sys.argv[1:])}
    report["levels"] = evaluate(wm, args.sigmas, args.episodes, args.views, args.seed)
    for line in section(report):
        print(line)
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
