"""`genie-train`: train the autoencoder, then the dynamics model, then export the inference checkpoint.

    genie-train autoencoder --data data/recordings --preset default --out runs/ae --steps 6000
    genie-train dynamics --data data/recordings --autoencoder runs/ae --preset default --out runs/dyn --steps 20000
    genie-train export --dynamics runs/dyn --out world_model/checkpoints/default

A wider latent from a trained model (world_model/widen.py): the autoencoder widened and trained with its old
channels kept, then the model's dynamics widened to match, then trained further on the new latents:

    genie-train autoencoder --data ... --init-from default --latent-channels 8 --keep-old-channels --out runs/ae8 ...
    genie-train widen --model default --autoencoder runs/ae8 --out runs/wide
    genie-train dynamics --data ... --autoencoder runs/wide --init-from runs/wide --out runs/dyn_wide ...

A trained model moved onto another autoencoder's latent of as many tokens a frame (world_model/transplant.py):

    genie-train transplant --model default --autoencoder runs/ae_fine --data data/recordings --out runs/tp
    genie-train dynamics --data ... --autoencoder runs/tp --init-from runs/tp --patch-size 4 --out runs/dyn_tp ...

Re-running a training command with the same --out resumes it. Multi-process / multi-GPU:

    torchrun --nproc_per_node 2 -m world_model.train_cli dynamics --data ... --out runs/dyn ...
"""

from __future__ import annotations

import argparse
import sys

from .cli_arguments import add_arguments, from_namespace
from .training import TrainArgs


def _kinds() -> dict[str, type[TrainArgs]]:
    """The arguments dataclass of every model kind; each field is a flag of `genie-train KIND`."""
    from .train_autoencoder import AutoencoderArgs
    from .train_dynamics import DynamicsArgs

    return {"autoencoder": AutoencoderArgs, "dynamics": DynamicsArgs}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genie-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"autoencoder": "train the frame autoencoder",
             "dynamics": "train the dynamics model (needs a trained autoencoder)"}
    for kind, cls in _kinds().items():
        add_arguments(sub.add_parser(kind, help=helps[kind]), cls)
    sub.add_parser("judge", help="train the success judge of genie_env/judge.py (see `genie-train judge --help`)",
                   add_help=False)
    wi = sub.add_parser("widen", help="a world model's dynamics widened to the latent channels of its own autoencoder "
                                      "widened by `genie-train autoencoder --keep-old-channels`")
    wi.add_argument("--model", required=True, help='world-model checkpoint folder, or "default" (the shipped model)')
    wi.add_argument("--autoencoder", required=True,
                    help="autoencoder run directory or checkpoint: --model's own, widened with its channels kept")
    wi.add_argument("--out", required=True, help="world-model checkpoint folder to write (fp32; replaced atomically)")
    tp = sub.add_parser("transplant", help="a world model's dynamics moved onto another autoencoder's latent through "
                                           "least-squares bridges fitted on recorded frames")
    tp.add_argument("--model", required=True, help='world-model checkpoint folder, or "default" (the shipped model)')
    tp.add_argument("--autoencoder", required=True,
                    help="autoencoder run directory or checkpoint whose latent cuts into as many tokens a frame")
    tp.add_argument("--data", required=True, nargs="+", help="recording folders (genie-data record) to fit on")
    tp.add_argument("--frames", type=int, default=4096,
                    help="frames drawn from the recordings' train split to fit the bridges on (default: 4096)")
    tp.add_argument("--seed", type=int, default=0, help="seed of the frames drawn (default: 0)")
    tp.add_argument("--ridge", type=float, default=None,
                    help="ridge of the new -> old bridge (default: noise-matched, the ridge at which it carries unit "
                         "noise to unit noise; world_model/transplant.py)")
    tp.add_argument("--prev-prior", action="store_true",
                    help="start the new model's estimates from the previous frame where the old latent cannot carry "
                         "it (--prior-map; DynamicsConfig.prev_prior; train it on with genie-train dynamics "
                         "--prev-prior)")
    tp.add_argument("--prev-prior-sigma", type=float, nargs="+", default=None,
                    help="with --prev-prior: the spread of the change from the previous frame in the latent, one value "
                         "or one per action id (the actions, START, NULL); default: fitted on --prior-episodes, "
                         "with the gains (world_model/transplant.py, fit_prior)")
    tp.add_argument("--prev-prior-gain", type=float, nargs="+", default=None,
                    help="with --prev-prior: the factor on the previous frame in the prior's mean, one value or one "
                         "per action id; default: fitted with the spreads, or 1 when only those are given")
    tp.add_argument("--prior-episodes", type=int, default=60,
                    help="with --prev-prior and neither --prev-prior-gain nor --prev-prior-sigma: episodes drawn from "
                         "the recordings' train split to fit both on, per action (default: 60)")
    tp.add_argument("--prior-map", choices=("residual", "complement"), default="residual",
                    help="with --prev-prior: where the prior applies: what a token loses on the round trip through "
                         "the old latent (residual, the default) or the directions the old output cannot reach "
                         "(complement); world_model/transplant.py")
    tp.add_argument("--out", required=True, help="world-model checkpoint folder to write (fp32; replaced atomically)")
    wh = sub.add_parser("whiten", help="an autoencoder's latent whitened in p x p patches (fitted on recorded frames)")
    wh.add_argument("--autoencoder", required=True, help="autoencoder run directory or checkpoint")
    wh.add_argument("--data", required=True, nargs="+", help="recording folders (genie-data record) to fit on")
    wh.add_argument("--patch", type=int, default=4, help="patch side: the dynamics' --patch-size (default: 4)")
    wh.add_argument("--floor", type=float, default=1e-3,
                    help="directions with less variance are scaled as if they had this much (default: 1e-3)")
    wh.add_argument("--frames", type=int, default=4096, help="frames drawn from the train split (default: 4096)")
    wh.add_argument("--seed", type=int, default=0, help="seed of the frames drawn (default: 0)")
    wh.add_argument("--out", required=True, help="autoencoder checkpoint folder to write (replaced atomically)")
    ex = sub.add_parser("export", help="write a compact (fp16) inference checkpoint from a dynamics run")
    ex.add_argument("--dynamics", required=True, help="dynamics run directory or checkpoint folder")
    ex.add_argument("--autoencoder", default=None,
                    help="optional: take the autoencoder weights from this run/checkpoint instead")
    ex.add_argument("--out", required=True, help="output checkpoint folder (replaced atomically)")
    ex.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16",
                    help="storage dtype of the weights (default: float16)")
    ex.add_argument("--average-last", type=int, default=1,
                    help="average the dynamics weights of the run's last K checkpoints (default: 1, the latest)")
    ex.add_argument("--blend-with", default=None,
                    help="a checkpoint with the same dynamics and autoencoder (the one --dynamics was fine-tuned "
                         "from): export (1 - W) x these dynamics weights + W x its")
    ex.add_argument("--blend-weight", type=float, default=0.5, help="W of --blend-with, in [0, 1] (default: 0.5)")
    ex.add_argument("--num-steps", type=int, default=None, help="sampler default: denoising steps per frame")
    ex.add_argument("--guidance", type=float, default=None, help="sampler default: classifier-free guidance weight")
    ex.add_argument("--sampler", choices=("euler", "heun"), default=None, help="sampler default: solver")
    ex.add_argument("--sigma-min", type=float, default=None,
                    help="sampler default: the schedule's smallest noise level, in (0, sigma_max)")
    ex.add_argument("--sigma-max", type=float, default=None,
                    help="sampler default: the noise level each new frame starts from (> sigma_min)")
    ex.add_argument("--rho", type=float, default=None,
                    help="sampler default: how the schedule's noise levels are spaced between sigma_max and sigma_min "
                         "(> 0; EDM's rho: the larger, the more steps at low noise)")
    ex.add_argument("--guidance-min-sigma", type=float, default=None,
                    help="sampler default: guidance only at noise levels >= this (0: at every step)")
    ex.add_argument("--cache-refresh", type=int, default=None,
                    help="sampler default: rebuild a full KV cache from its latest K frames (0: slide it frame by "
                         "frame; SamplerConfig.cache_refresh)")
    ex.add_argument("--context-sigma", type=float, default=None,
                    help="sampler default: noise level (> 0) of past frames in the cache (the trained value or range "
                         "is kept in the metadata as trained_context_sigma)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["judge"]:  # the success judge has its own argument set (genie_env/judge.py)
        from genie_env.judge import main as judge_main

        return judge_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "widen":
        import torch

        from .checkpoint import CheckpointError
        from .inference import WorldModel
        from .train_dynamics import load_autoencoder
        from .widen import widen_world_model

        try:
            wm = widen_world_model(WorldModel.load(args.model, autocast=False), load_autoencoder(args.autoencoder))
        except (ValueError, CheckpointError) as e:  # CheckpointError: a folder that is not a checkpoint
            print(f"genie-train widen: error: {e}", file=sys.stderr)
            return 2
        path = wm.save(args.out, dtype=torch.float32, training=wm.training_metadata)
        print(f"[genie-train] wrote {path}: latent channels {wm.config.autoencoder.latent_channels}")
        return 0
    if args.command == "whiten":
        from .checkpoint import CheckpointError
        from .train_autoencoder import whiten_autoencoder

        try:
            path, fit = whiten_autoencoder(args.autoencoder, args.data, args.out, patch=args.patch, floor=args.floor,
                                           frames=args.frames, seed=args.seed)
        except (ValueError, CheckpointError) as e:
            print(f"genie-train whiten: error: {e}", file=sys.stderr)
            return 2
        print(f"[genie-train] wrote {path}: {fit['directions']} directions a patch, {fit['under_5pct_of_mean']} under "
              f"5% of the mean variance, {fit['under_floor']} under the floor {fit['floor']}")
        return 0
    if args.command == "transplant":
        import numpy as np
        import torch

        from .checkpoint import CheckpointError
        from .dataset import DatasetError, EpisodeDataset
        from .inference import WorldModel
        from .train_dynamics import load_autoencoder
        from .transplant import transplant_world_model

        try:
            frames = EpisodeDataset(args.data, split="train").frames
            if args.prior_episodes < 1:
                raise ValueError(f"--prior-episodes must be >= 1, got {args.prior_episodes}")
            if args.frames < 1:
                raise ValueError(f"--frames must be >= 1, got {args.frames}")
            pick = np.sort(np.random.default_rng(args.seed).choice(len(frames), min(args.frames, len(frames)),
                                                                   replace=False))
            episodes = None
            if args.prev_prior and args.prev_prior_sigma is None and args.prev_prior_gain is None:
                ds = EpisodeDataset(args.data, split="train")
                picked = np.random.default_rng(args.seed).choice(ds.num_episodes,
                                                                 min(args.prior_episodes, ds.num_episodes),
                                                                 replace=False)
                episodes = [(ep.frames, ep.actions) for ep in (ds.episode(int(i)) for i in np.sort(picked))]
            wm = transplant_world_model(WorldModel.load(args.model, autocast=False),
                                        load_autoencoder(args.autoencoder), np.asarray(frames[pick]),
                                        ridge=args.ridge, prev_prior=args.prev_prior,
                                        prev_prior_sigma=args.prev_prior_sigma,
                                        prev_prior_gain=args.prev_prior_gain, prior_map=args.prior_map,
                                        episodes=episodes)
        except (ValueError, CheckpointError, DatasetError) as e:
            print(f"genie-train transplant: error: {e}", file=sys.stderr)
            return 2
        path = wm.save(args.out, dtype=torch.float32, training=wm.training_metadata)
        fit = wm.training_metadata["transplanted"]
        dyn = wm.config.dynamics
        print(f"[genie-train] wrote {path}: patch size {fit['patch_size'][1]}; the bridges explain "
              f"{fit['explained_new_to_old']:.1%} (new -> old) and {fit['explained_old_to_new']:.1%} (old -> new) "
              f"of the latents' variance (new -> old: ridge {fit['ridge_new_to_old']:.3g}, noise gain "
              f"{fit['noise_gain_new_to_old']:.3g})"
              + (f"; the prior covers {fit['prior_trace']:g} of {dyn.patch_dim} directions a token "
                 f"({fit['prior_map']}), gains {dyn.prev_prior_gain}, spreads {dyn.prev_prior_sigma}"
                 if "prior_map" in fit else ""))
        return 0
    if args.command == "export":
        import torch

        from .train_dynamics import export

        sampler = {k: v for k, v in (("num_steps", args.num_steps), ("guidance", args.guidance),
                                     ("solver", args.sampler), ("sigma_min", args.sigma_min),
                                     ("sigma_max", args.sigma_max), ("rho", args.rho),
                                     ("guidance_min_sigma", args.guidance_min_sigma),
                                     ("cache_refresh", args.cache_refresh),
                                     ("context_sigma", args.context_sigma))
                   if v is not None}
        try:
            path = export(args.dynamics, args.out, args.autoencoder, dtype=getattr(torch, args.dtype),
                          sampler=sampler, average_last=args.average_last, blend_with=args.blend_with,
                          blend_weight=args.blend_weight)
        except ValueError as e:  # a bad sampler default
            print(f"genie-train export: error: {e}", file=sys.stderr)
            return 2
        print(f"[genie-train] wrote {path}")
        return 0
    from .training import train

    try:
        targs = from_namespace(_kinds()[args.command], args)
    except ValueError as e:
        print(f"genie-train: error: {e}", file=sys.stderr)
        return 2
    run_dir = train(targs)
    print(f"[genie-train] done: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
