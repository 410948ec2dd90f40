"""The expert: MiniGrid's BabyAI bot planning on the ground-truth grid. An upper bound, ground-truth world only."""

from __future__ import annotations

from typing import Any

from agents.agent import Agent
from genie_env.babyai3d import BabyAI3DEnv


class GroundTruthOnlyError(ValueError):
    """An agent that reads the true world state was asked to act where there is none (GenieWorld)."""


class BotAgent(Agent):
    """Plans with the BabyAI bot on the 3D BabyAI world it is reset with; replans from the action really taken."""

    name = "bot"
    needs_ground_truth = True

    def __init__(self) -> None:
        super().__init__()
        self._bot = None
        self._last: int | None = None

    def reset(self, env: Any = None, seed: int | None = None) -> None:
        super().reset(env, seed)
        inner = getattr(env, "unwrapped", None)
        if not isinstance(inner, BabyAI3DEnv):
            raise GroundTruthOnlyError(
                f"the bot plans on the ground-truth grid, so it only acts in the 3D BabyAI world "
                f"(genie_env/BabyAI3D-<Level>-v0), not in {type(inner or env).__name__}: a generated world has no "
                "grid to read. Evaluate it with the ground truth only, or pick another agent for GenieWorld")
        self._bot = inner.make_bot()
        self._last = None

    def act(self, obs: Any, info: dict) -> int:
        if self._bot is None:
            raise RuntimeError("call reset(env) with the reset 3D BabyAI env before act()")
        self._last = int(self._bot.act(self._last))
        return self._last
