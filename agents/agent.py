"""The Agent interface every baseline follows, so genie-bench can run any of them in either world.

    agent = make_agent("bc", path="runs/agents/bc")        # agents.registry
    obs, info = env.reset(options={"level_seed": 1_000_123})
    agent.reset(env, seed=0)                               # once per episode, after env.reset
    while not done:
        action = agent.act(obs, info)                      # int in [0, 7)
        obs, reward, terminated, truncated, info = env.step(action)

Observations are what ``genie_env.MissionObservation`` (ground truth) or ``GenieWorld(mission_observation=True)``
return: ``{"image": uint8 (H, W, 3), "mission": int64 (24,)}``; a bare frame (H, W, 3) is accepted too, and
``info["mission"]`` holds the mission text in both worlds. ``spawn()`` gives a copy that shares the weights and has
its own episode state, for running several episodes side by side (batched GenieWorld evaluation).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from genie_env.babyai3d import ACTION_MEANINGS

NUM_ACTIONS = len(ACTION_MEANINGS)


class Agent:
    """Base class: a policy over the shared 7-action vocabulary (noop, turn_left, turn_right, forward, pickup,
    drop, toggle). Subclasses override :meth:`act` and, if they keep episode state, :meth:`reset`."""

    #: Registry name ("random", "bot", "bc", "ppo-genie", "ppo-gt").
    name: str = "agent"
    #: True for agents that read the ground-truth world's state (the bot): they cannot act inside GenieWorld.
    needs_ground_truth: bool = False

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any = None, seed: int | None = None) -> None:
        """Start an episode. `env` is the environment just reset (only the bot reads it); `seed` seeds the agent's
        own sampling, so an episode is reproducible from (level seed, env seed, agent seed)."""
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, info: dict) -> int:
        raise NotImplementedError

    def spawn(self) -> "Agent":
        """A copy that shares the weights (and anything else read-only) and has its own episode state."""
        return copy.copy(self)

    def describe(self) -> dict:
        """What this agent is, for results files (JSON-serialisable)."""
        return {"name": self.name}


def image_of(obs: Any) -> np.ndarray:
    """The frame uint8 (H, W, 3) of an observation (a Dict observation's "image", or the frame itself)."""
    frame = obs["image"] if isinstance(obs, dict) else obs
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB frame uint8 (H, W, 3) or a dict with one under 'image', got "
                         f"{frame.dtype} {frame.shape}")
    return frame


def mission_of(obs: Any, info: dict) -> str:
    """The mission text: ``info["mission"]`` (both worlds report it)."""
    mission = info.get("mission") if isinstance(info, dict) else None
    if not isinstance(mission, str):
        raise KeyError("this agent reads the mission from info['mission']; the env did not report one")
    return mission
