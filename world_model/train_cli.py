"""`genie-train`: train the autoencoder, then the dynamics model, then export the inference checkpoint.

    genie-train autoencoder --data data/babyai3d --preset default --out runs/ae --steps 6000
    genie-train dynamics --data data/babyai3d --autoencoder runs/ae --preset default --out runs/dyn --steps 20000
    genie-train export --dynamics runs/dyn --out world_model/checkpoints/default

Re-running a training command with the same --out resumes it. Multi-process / multi-GPU:

    torchrun --nproc_per_node 2 -m world_model.train_cli dynamics --data ... --out runs/dyn ...
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import autoencoder as ae_mod
from . import dynamics as dyn_mod
from .diffusion import OBJECTIVES
from .trainer import TrainArgs


def _add_train_args(p: argparse.ArgumentParser, kind: str) -> None:
    """Expose every TrainArgs field as a flag, with the field's docstring-derived help."""
    helps = _field_docs()
    for f in dataclasses.fields(TrainArgs):
        if f.name == "kind" or (kind == "autoencoder" and f.name in ("window", "autoencoder")):
            continue
        flag = "--" + f.name.replace("_", "-")
        help_ = helps.get(f.name, "")
        if f.name == "data":
            p.add_argument(flag, nargs="+", required=True, help=help_)
        elif f.name == "out":
            p.add_argument(flag, required=True, help=help_)
        elif f.name in ("views", "eval_data"):
            p.add_argument(flag, nargs="+", default=None, help=help_)
        elif f.name == "bf16":
            p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help=help_)
        elif f.name == "preset":
            choices = sorted((ae_mod if kind == "autoencoder" else dyn_mod).PRESETS)
            p.add_argument(flag, choices=choices, default="default", help=help_)
        elif kind == "autoencoder" and f.name in ("objective", "ema_decay", "context_sigma", "context_sigma_min",
                                                  "change_weight", "init_from"):
            continue
        elif f.name == "objective":
            p.add_argument(flag, choices=OBJECTIVES, default="forcing", help=help_)
        elif f.name == "split":
            p.add_argument(flag, default="train", help=help_ + ' Use "all" for every split.')
        else:
            typ = {"int | None": int, "float | None": float, "str | None": str}.get(str(f.type), None)
            typ = typ or {"int": int, "float": float, "str": str}.get(str(f.type), str)
            default = f.default if f.default is not dataclasses.MISSING else None
            p.add_argument(flag, type=typ, default=default, required=(f.name == "autoencoder" and kind == "dynamics"),
                           help=f"{help_} (default: {default})")


def _field_docs() -> dict[str, str]:
    """Field docstrings of TrainArgs (the string literal after each field), cleanrl style."""
    import ast
    import inspect

    from . import trainer

    tree = ast.parse(inspect.getsource(trainer.TrainArgs))
    body = tree.body[0].body
    docs = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = str(b.value.value)
    return docs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genie-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("autoencoder", help="train the frame autoencoder"), "autoencoder")
    _add_train_args(sub.add_parser("dynamics", help="train the dynamics model (needs a trained autoencoder)"),
                    "dynamics")
    sub.add_parser("judge", help="train the mission-conditioned success judge (see `genie-train judge --help`)",
                   add_help=False)
    ex = sub.add_parser("export", help="write a compact (fp16) inference checkpoint from a dynamics run")
    ex.add_argument("--dynamics", required=True, help="dynamics run directory or checkpoint folder")
    ex.add_argument("--autoencoder", default=None,
                    help="optional: take the autoencoder weights from this run/checkpoint instead")
    ex.add_argument("--out", required=True, help="output checkpoint folder (replaced atomically)")
    ex.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16",
                    help="storage dtype of the weights (default: float16)")
    ex.add_argument("--average-last", type=int, default=1,
                    help="average the dynamics weights of the run's last K checkpoints (default: 1, the latest)")
    ex.add_argument("--num-steps", type=int, default=None, help="sampler default: denoising steps per frame")
    ex.add_argument("--guidance", type=float, default=None, help="sampler default: classifier-free guidance weight")
    ex.add_argument("--sampler", choices=("euler", "heun"), default=None, help="sampler default: solver")
    ex.add_argument("--sigma-min", type=float, default=None,
                    help="sampler default: the schedule's smallest noise level, in (0, sigma_max)")
    ex.add_argument("--context-sigma", type=float, default=None,
                    help="sampler default: noise level of past frames in the cache (training used 0.1; the "
                         "trained value is kept in the metadata as trained_context_sigma)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["judge"]:  # the success judge has its own argument set (genie_env/judge.py)
        from genie_env.judge import main as judge_main

        return judge_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "export":
        import torch

        from .trainer import export

        sampler = {k: v for k, v in (("num_steps", args.num_steps), ("guidance", args.guidance),
                                     ("solver", args.sampler), ("sigma_min", args.sigma_min),
                                     ("context_sigma", args.context_sigma))
                   if v is not None}
        try:
            path = export(args.dynamics, args.out, args.autoencoder, dtype=getattr(torch, args.dtype),
                          sampler=sampler, average_last=args.average_last)
        except ValueError as e:  # a bad sampler default
            print(f"genie-train export: error: {e}", file=sys.stderr)
            return 2
        print(f"[genie-train] wrote {path}")
        return 0
    kw = {k: v for k, v in vars(args).items() if k != "command"}
    kw["data"] = tuple(kw["data"])
    kw["views"] = tuple(kw["views"]) if kw.get("views") else None
    if kw.get("eval_data"):
        kw["eval_data"] = tuple(kw["eval_data"])
    if kw.get("split") == "all":
        kw["split"] = None
    from .trainer import train

    try:
        targs = TrainArgs(kind=args.command, **kw)
    except ValueError as e:
        print(f"genie-train: error: {e}", file=sys.stderr)
        return 2
    run_dir = train(targs)
    print(f"[genie-train] done: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
