"""Agents by name, for genie-bench and scripts: ``make_agent("bc", path="runs/agents/bc")``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agents.agent import Agent


@dataclass(frozen=True)
class AgentSpec:
    """One registered agent: what it is, whether it needs a checkpoint, and how to get one."""

    name: str
    description: str
    needs_path: bool
    train_command: str | None = None
    ground_truth_only: bool = False


AGENTS = {
    "random": AgentSpec("random", "uniformly random actions (lower bound)", needs_path=False),
    "bot": AgentSpec("bot", "MiniGrid's BabyAI bot planning on the true grid (upper bound)", needs_path=False,
                     ground_truth_only=True),
    "bc": AgentSpec("bc", "behaviour cloning of the bot's recorded episodes: pixels + mission -> action",
                    needs_path=True, train_command="genie-agent train bc --data runs/data/train/* --out DIR"),
    "ppo-genie": AgentSpec("ppo-genie", "PPO (SB3) trained inside GenieWorld, reward from the success judge",
                           needs_path=True,
                           train_command="genie-agent train ppo-genie --task open-red-door --out DIR"),
    "ppo-gt": AgentSpec("ppo-gt", "PPO (SB3) trained in the 3D BabyAI ground truth (reference)", needs_path=True,
                        train_command="genie-agent train ppo-gt --task open-red-door --out DIR"),
}


def make_agent(name: str, path: str | os.PathLike | None = None, greedy: bool = False) -> Agent:
    """The agent called `name` (see :data:`AGENTS`); trained agents load their checkpoint folder `path`.

    greedy: trained agents take their most likely action instead of sampling one.
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose one of {', '.join(AGENTS)}")
    spec = AGENTS[name]
    if spec.needs_path and path is None:
        raise ValueError(f"agent {name!r} loads a trained checkpoint: pass its folder (--agent-path DIR, or "
                         f"--agent {name}=DIR); train one with `{spec.train_command}`")
    if not spec.needs_path and path is not None:
        raise ValueError(f"agent {name!r} has no checkpoint; drop the path {str(path)!r}")
    if name == "random":
        from agents.random_agent import RandomAgent

        return RandomAgent()
    if name == "bot":
        from agents.bot_agent import BotAgent

        return BotAgent()
    if name == "bc":
        from agents.bc_agent import BCAgent

        return BCAgent.load(path, greedy=greedy)
    if name in ("ppo-genie", "ppo-gt"):
        from agents.ppo_agent import PPOAgent

        agent = PPOAgent.load(path, greedy=greedy)
        if agent.name != name:
            raise ValueError(f"{path} holds a {agent.name!r} agent, not {name!r}; use --agent {agent.name}")
        return agent
    raise AssertionError(f"agent {name!r} is registered but not constructed")  # unreachable: AGENTS is checked
