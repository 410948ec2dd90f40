"""The random agent: a uniformly random action every step, the lower bound of every task."""

from __future__ import annotations

from typing import Any

from agents.agent import NUM_ACTIONS, Agent


class RandomAgent(Agent):
    """Uniform over the 7 actions, drawn from the generator seeded at :meth:`reset`."""

    name = "random"

    def act(self, obs: Any, info: dict) -> int:
        return int(self.rng.integers(NUM_ACTIONS))
