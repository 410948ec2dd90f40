"""genie-agent: train the baseline agents that genie-bench evaluates.

    genie-agent train bc --data runs/data/train/* --steps 3000 --out runs/agents/bc
    genie-agent train ppo-genie --task open-red-door --timesteps 100000 --out runs/agents/ppo_genie_red_door
    genie-agent train ppo-gt --task open-red-door --timesteps 100000 --out runs/agents/ppo_gt_red_door
    genie-agent list

Each command shows a progress bar and writes a checkpoint folder that ``genie-bench run ... --agent NAME=FOLDER``
loads. PPO trains on the *training* worlds of the task's level; genie-bench evaluates on the held-out ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from agents.bc_agent import BCArgs, train_bc
from agents.ppo_agent import WORLDS, PPOArgs, train_ppo
from world_model.checkpoint import CheckpointError
from world_model.cli_arguments import add_arguments, from_namespace

PROG = "genie-agent"


def cmd_list() -> str:
    from agents.registry import AGENTS

    return "\n".join(f"{s.name:<10} {s.description}" + (f"\n{'':<10} train: {s.train_command}" if s.train_command
                                                         else "") for s in AGENTS.values())


def train_bc_command(args: BCArgs) -> dict:
    agent = train_bc(args)
    return {"out": args.out, "agent": "bc", "training": agent.training}


def train_ppo_command(args: PPOArgs) -> dict:
    agent = train_ppo(args)
    return {"out": args.out, "agent": WORLDS[args.world], "task": args.task, "training": agent.meta["training"]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the agents and how to train them")
    train = sub.add_parser("train", help="train an agent and save its checkpoint folder")
    kinds = train.add_subparsers(dest="kind", required=True)
    add_arguments(kinds.add_parser("bc", help="behaviour cloning on recorded bot episodes"), BCArgs)
    add_arguments(kinds.add_parser("ppo-genie", help="PPO inside GenieWorld (reward: the success judge)"), PPOArgs,
                  skip=("world",))
    add_arguments(kinds.add_parser("ppo-gt", help="PPO in the 3D BabyAI ground truth"), PPOArgs, skip=("world",))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser().parse_args(argv)
    if ns.command == "list":
        print(cmd_list())
        return 0
    from world_model.dataset import DatasetError

    try:
        if ns.kind == "bc":
            report = train_bc_command(from_namespace(BCArgs, ns))
        else:
            world = next(w for w, name in WORLDS.items() if name == ns.kind)
            report = train_ppo_command(from_namespace(PPOArgs, ns, world=world))
    except (ValueError, CheckpointError, DatasetError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
