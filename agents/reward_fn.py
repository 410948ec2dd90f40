"""A user's GenieWorld reward function named on the command line as ``module:function``.

    genie-agent train ppo-genie --task open-red-door --reward-fn my_rewards:red_door_open
    genie-bench run tasks --agent bc --agent-path runs/agents/bc --reward-fn my_rewards:red_door_open

The function is GenieWorld's ``reward_fn(frames, action, mission) -> (reward, terminated)`` (see
``genie_env.genie_world.RewardFn``); in genie-bench a terminated episode counts as a success.
"""

from __future__ import annotations

import importlib
from typing import Callable


def load_reward_fn(spec: str | None) -> Callable | None:
    """The callable `spec` names ("package.module:function"), or None for None / "" / "none"."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--reward-fn must look like 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for --reward-fn {spec!r} ({e}); is it on PYTHONPATH?") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{module_name!r} has no function {attr!r} (from --reward-fn {spec!r})")
    return fn
