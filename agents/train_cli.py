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
from dataclasses import dataclass
from typing import Sequence

from agents.cli_arguments import add_arguments, from_namespace
from world_model.checkpoint import CheckpointError

PROG = "genie-agent"


@dataclass(frozen=True)
class BCArgs:
    data: tuple[str, ...]
    """recording folders written by `genie-data record` (their first-person bot episodes are used)"""
    out: str
    """checkpoint folder to write"""
    steps: int = 3000
    """optimizer steps"""
    batch_size: int = 64
    """frames per step"""
    lr: float = 1e-3
    """AdamW learning rate (cosine decay after 100 warm-up steps)"""
    preset: str = "default"
    """network size: tiny or default"""
    frames: int | None = None
    """frames the agent sees, current one included (default: the preset's, 2)"""
    policies: tuple[str, ...] = ("bot",)
    """recorded policies to imitate"""
    split: str = "train"
    """episodes of this split only ("all" for every split)"""
    holdout_share: float = 0.05
    """share of episodes held out to report action accuracy"""
    seed: int = 0
    """seed of sampling and initialisation"""
    bf16: bool = False
    """train under bf16 autocast"""
    quiet: bool = False
    """no progress bar"""


@dataclass(frozen=True)
class PPOArgs:
    out: str
    """checkpoint folder to write"""
    task: str = "open-red-door"
    """the genie-bench task to train on (`genie-bench list`); its level's training worlds are used"""
    timesteps: int = 100_000
    """environment steps to train for"""
    max_steps: int | None = None
    """episode step limit (default: the task's)"""
    policy: str = "cnn"
    """cnn (frames: CnnPolicy) or mission (frames + encoded mission: MultiInputPolicy)"""
    model: str = "default"
    """ppo-genie: world-model checkpoint (default or a folder)"""
    judge: str = "default"
    """ppo-genie: success judge giving the reward (default, a folder, or none with --reward-fn)"""
    reward_fn: str | None = None
    """ppo-genie: reward function module:function (overrides the judge)"""
    num_envs: int = 8
    """worlds stepped together"""
    n_steps: int = 128
    """PPO rollout length per world"""
    batch_size: int = 256
    """PPO minibatch size (must divide n_steps x num_envs)"""
    n_epochs: int = 4
    """PPO epochs per rollout"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    ent_coef: float = 0.01
    """entropy bonus"""
    gamma: float = 0.99
    """discount"""
    size: int = 64
    """ppo-gt: frame size (ppo-genie uses the world model's)"""
    seed: int = 0
    """seed of PPO and of the training worlds drawn"""
    quiet: bool = False
    """no progress bar"""


def cmd_list() -> str:
    from agents.registry import AGENTS

    return "\n".join(f"{s.name:<10} {s.description}" + (f"\n{'':<10} train: {s.train_command}" if s.train_command
                                                         else "") for s in AGENTS.values())


def train_bc_command(args: BCArgs) -> dict:
    from agents.bc_agent import train_bc

    agent = train_bc(list(args.data), args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     preset=args.preset, frames=args.frames, policies=args.policies,
                     split=None if args.split == "all" else args.split, holdout_share=args.holdout_share,
                     seed=args.seed, bf16=args.bf16, progress=not args.quiet)
    return {"out": args.out, "agent": "bc", "training": agent.training}


def train_ppo_command(kind: str, args: PPOArgs) -> dict:
    from agents.ppo_agent import train_ppo
    from agents.reward_fn import load_reward_fn
    from genie_env.tasks import get_task

    task = get_task(args.task)
    judge = None if args.judge.strip().lower() == "none" else args.judge
    agent = train_ppo("genie" if kind == "ppo-genie" else "ground_truth", task.level, args.out,
                      timesteps=args.timesteps, max_steps=args.max_steps or task.max_steps, policy=args.policy,
                      task=task.name, model=args.model, judge=judge, reward_fn=load_reward_fn(args.reward_fn),
                      num_envs=args.num_envs, n_steps=args.n_steps, batch_size=args.batch_size,
                      n_epochs=args.n_epochs, lr=args.lr, ent_coef=args.ent_coef, gamma=args.gamma, size=args.size,
                      seed=args.seed, progress=not args.quiet)
    return {"out": args.out, "agent": kind, "task": task.name, "training": agent.meta["training"]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the agents and how to train them")
    train = sub.add_parser("train", help="train an agent and save its checkpoint folder")
    kinds = train.add_subparsers(dest="kind", required=True)
    add_arguments(kinds.add_parser("bc", help="behaviour cloning on recorded bot episodes"), BCArgs)
    add_arguments(kinds.add_parser("ppo-genie", help="PPO inside GenieWorld (reward: the success judge)"), PPOArgs)
    add_arguments(kinds.add_parser("ppo-gt", help="PPO in the 3D BabyAI ground truth"), PPOArgs)
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
            report = train_ppo_command(ns.kind, from_namespace(PPOArgs, ns))
    except (ValueError, CheckpointError, DatasetError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
