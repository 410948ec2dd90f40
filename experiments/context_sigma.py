"""Context-noise sweep: how the noise level that past frames are cached at changes a model's fidelity.

The sampler stores every past frame in the KV cache at a small noise level, `context_sigma` (the model was trained
to read context at that level: one level, or a range with `genie-train dynamics --context-sigma-min`). A lower
level keeps more detail to copy from; a higher one makes the model more forgiving of its own errors. This sweep
measures one model at several levels on held-out (test-seed) worlds, per perspective, with the model's default
sampler otherwise:

- teacher-forced one-step PSNR (overall and by kind of action, as `benchmarks.fidelity`);
- autoregressive PSNR at horizons 1, 4 and 16 under the true actions, and ΔPSNR_16 (true minus random actions)
  with a 95% bootstrap interval over worlds (ΔPSNR over 16 worlds moves by a dB or more between world sets).

    python -m experiments.context_sigma --model runs/train/dyn_v4 --sigmas 0.01 0.02 0.05 0.1 \\
        --out experiments/results/candidates/context_sigma_v4.json

JSON: ``benchmark`` = "genie-bench-context-sigma", ``levels``: {sigma: {view: {one_step_psnr, one_step_by_action,
autoregressive_psnr: {h: dB}, delta_psnr_16, delta_psnr_16_ci95}, settings, nfe}}, plus the model, its trained
context noise, machine and command.
`genie-train export --context-sigma S` then writes a checkpoint that samples at the chosen level.
"""

from __future__ import annotations

import argparse


def evaluate(wm, sigmas, episodes: int, views, seed: int = 0, progress: bool = True) -> dict:
    """{str(sigma): {view: figures}} for one model sampled with past frames cached at each level (a sampler sweep
    over context_sigma, `experiments.sampler_sweep`)."""
    from experiments.sampler_sweep import evaluate as sweep

    return sweep(wm, {str(s): {"context_sigma": s} for s in sigmas}, episodes, views, seed, progress, speed=False)


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown section (experiments.report)."""
    from benchmarks.machine import in_words
    from experiments.sampler_sweep import table

    trained = r.get("trained_context_sigma")
    return [f"## Context-noise sweep: `{r['model']}`, {r['episodes']} worlds per view (seed {r.get('seed', 0)})", "",
            f"`{r['command']}`: past frames cached at each noise level (trained at {trained}); "
            f"{r['episodes']} held-out worlds per view, guidance {r['sampler'].get('guidance')}, "
            f"{r['sampler'].get('num_steps')} {r['sampler'].get('solver')} steps. "
            f"Machine: {in_words(r['machine'])}.", "",
            *table(r["levels"], "context sigma"), ""]


def main(argv=None) -> dict:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import command_line, publish
    from experiments.sampler_sweep import add_common_arguments
    from world_model import WorldModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.02, 0.05, 0.1],
                        help="context noise levels to compare (each > 0)")
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
              "command": command_line("experiments.context_sigma", argv)}
    report["levels"] = evaluate(wm, args.sigmas, args.episodes, args.views, args.seed)
    return publish(report, args.out, section(report))


if __name__ == "__main__":
    main()
