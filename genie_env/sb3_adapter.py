"""SB3VecEnv: a Gymnasium VectorEnv (GenieWorldVectorEnv) seen as a stable-baselines3 VecEnv.

    venv = gym.make_vec("genie_env/GenieWorld-v7", num_envs=8, judge="default")
    model = PPO("CnnPolicy", VecMonitor(SB3VecEnv(venv)), n_steps=128).learn(100_000)

(``VecMonitor`` from ``stable_baselines3.common.vec_env`` adds the episode returns and lengths SB3 logs.)

SB3 and Gymnasium disagree on three things, which this adapter translates: SB3 steps with ``step_async`` /
``step_wait`` and returns one ``done`` per env and a *list* of info dicts (Gymnasium: terminated and truncated
arrays and a dict of arrays with ``_key`` masks); SB3 expects finished envs to be reset inside the step with the
last observation in ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` set (Gymnasium's
``SAME_STEP`` autoreset mode, which is therefore required); SB3 seeds and passes options per env before reset.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv


def _unbatch_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's dict of arrays + ``_key`` masks -> n plain dicts (nested dicts included)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get(f"_{key}", np.ones(n, dtype=bool))
        if isinstance(value, dict):
            nested = _unbatch_infos(value, n)
            for i in np.flatnonzero(mask):
                out[i][key] = nested[i]
            continue
        for i in np.flatnonzero(mask):
            v = value[i]
            out[i][key] = v.item() if isinstance(v, np.generic) else v
    return out


class SB3VecEnv(VecEnv):
    """Wraps a Gymnasium ``VectorEnv`` whose ``metadata["autoreset_mode"]`` is ``SAME_STEP`` for SB3.

    ``get_attr`` / ``set_attr`` / ``env_method`` act on the one vector env and report the result for every
    index (its N worlds share one object).
    """

    def __init__(self, vector_env: gym.vector.VectorEnv):
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3VecEnv needs a vector env with metadata['autoreset_mode'] == AutoresetMode.SAME_STEP "
                             f"(SB3 resets finished envs inside step), got {mode!r}; for other envs use "
                             "gym.make_vec(..., vector_kwargs={'autoreset_mode': 'SameStep'}) or SB3's own "
                             "make_vec_env")
        self.venv = vector_env
        self._actions: np.ndarray | None = None
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)

    def reset(self):
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, infos = self.venv.reset(seed=seeds, options=self._merged_options())
        self.reset_infos = _unbatch_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        final_obs = infos.get("final_obs")
        list_infos = _unbatch_infos({k: v for k, v in infos.items() if k not in ("final_obs", "_final_obs")},
                                    self.num_envs)
        for i in np.flatnonzero(dones):
            final_info = list_infos[i].pop("final_info", {})
            list_infos[i].update(final_info)  # the info of the last step of the finished episode, as SB3 expects
            list_infos[i]["terminal_observation"] = final_obs[i]
            list_infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, dtype=np.float32), dones, list_infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        if len(self._indices(indices)) != self.num_envs:
            raise ValueError("the worlds of one vector env share their attributes; set_attr needs indices=None")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    # ------------------------------------------------------------------------------------------ internals

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return [int(i) for i in indices]

    def _merged_options(self) -> dict[str, Any] | None:
        """SB3's per-env options -> one dict whose values are per-world lists where the envs differ."""
        if all(not o for o in self._options):
            return None
        keys = sorted({k for o in self._options for k in o})
        merged = {}
        for k in keys:
            values = [o.get(k) for o in self._options]
            same = all(v is values[0] for v in values) or all(isinstance(v, (str, int)) and v == values[0]
                                                             for v in values)
            merged[k] = values[0] if same else values
        return merged
