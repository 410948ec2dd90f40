"""GenieWorldVectorEnv: N generated worlds stepped together, one batched world-model forward pass per step."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from genie_env.genie_world import RESET_OPTIONS, GenieWorldConfig, WorldParts
from genie_env.mission import encode_mission
from genie_env.prompts import load_prompt_image


class GenieWorldVectorEnv(VectorEnv):
    """N GenieWorlds in one batch: each step is one guided diffusion sample for all N worlds at once.

    ## Description
    The natively batched form of :class:`genie_env.genie_world.GenieWorldEnv` (as ``CartPoleVectorEnv`` is of
    CartPole): the world model steps a batch of B = N worlds per forward pass, which is several times faster than
    N separate envs. ``gym.make_vec("genie_env/GenieWorld-v7", num_envs=N, ...)`` returns it.

    ## Action Space
    ``MultiDiscrete([7] * N)``; ``single_action_space`` is ``Discrete(7)``.

    ## Observation Space
    ``Box(0, 255, (N, S, S, 3), uint8)`` (or a Dict of batched image and mission with
    ``mission_observation=True``); ``single_observation_space`` is GenieWorldEnv's.

    ## Rewards
    As GenieWorldEnv's, per world: ``reward_fn``, else the judge, else 0.

    ## Starting State
    ``reset(seed=s)`` seeds the vector env's one generator, from which every world's prompt and the sampling noise
    are drawn (``seed`` may also be a list of ints, one per world, as SB3 passes them). The options are
    GenieWorldEnv's; each may be one value for every world or a list of N values (a 4-D array of N images for
    ``prompt_image``). ``options["reset_mask"]`` (bool (N,)) restarts only the masked worlds.

    ## Episode End
    Per world: terminated by ``reward_fn`` / the judge, truncated after ``max_episode_steps`` steps (None: never).
    Autoreset mode is ``SAME_STEP``: a finished world restarts inside the same ``step``; the returned observation
    is its new first frame and ``infos["final_obs"][i]`` / ``infos["final_info"]`` (masked by ``infos["_final_obs"]``)
    hold its last observation and info. A restarted world reuses the prompt options of its last explicit reset
    (the same image, text or level seed); without them it starts from a newly drawn unseen 3D BabyAI world.

    ## Arguments
    ``num_envs`` (N), ``max_episode_steps`` (default 200), ``render_mode`` ("rgb_array": ``render()`` returns a
    tuple of N frames), and GenieWorldEnv's: a :class:`genie_env.genie_world.GenieWorldConfig` as ``config`` or its
    fields as keyword arguments (``model``, ``num_steps``, ``guidance``, ``sampler``, ``level``, ``reward_fn``,
    ``judge``, ``judge_threshold``, ``mission_observation``, ``look_around``, ``view``, ``num_threads``).

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, config: GenieWorldConfig | None = None, *,
                 max_episode_steps: int | None = 200, render_mode: str | None = None, **kwargs):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.config = GenieWorldConfig.from_arguments(config, **kwargs)
        parts = WorldParts.build(self.config, int(num_envs))
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.wm, self.judge, self._worlds, self._prompts = parts.wm, parts.judge, parts.worlds, parts.prompts
        self.level = self.config.level
        self.mission_observation = self.config.mission_observation
        self.single_observation_space, self.single_action_space = parts.observation_space, parts.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._world_options: list[dict] = [{} for _ in range(self.num_envs)]
        self._started = False

    # ------------------------------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            indices = list(range(self.num_envs))
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with at "
                                 f"least one True, got {mask.dtype} {mask.shape}")
            if not self._started:
                raise RuntimeError("the first reset() must reset every world; drop options['reset_mask']")
            indices = [int(i) for i in np.flatnonzero(mask)]
        per_world = self._split_options(options)
        checked = {i: self._prompts.check(per_world[i]) for i in indices}  # raises before anything changes
        self._seed(seed)
        for i in indices:
            self._world_options[i] = checked[i]
        prompts = [self._prompts.from_options(self._world_options[i], self.np_random) for i in indices]
        if mask is None:
            self._worlds.seed(int(self.np_random.integers(2**63 - 1)))
        self._worlds.start(indices, prompts)
        self._started = True
        infos: dict[str, Any] = {}
        for i in indices:
            infos = self._add_info(infos, self._info(i), i)
        return self._observations(), infos

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        _, rewards, terminated = self._worlds.step(actions)
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, bool)
        else:
            truncated = self._worlds.steps >= self.max_episode_steps
        done = np.flatnonzero(terminated | truncated)
        infos: dict[str, Any] = {}
        if len(done):
            final = self._observations()
            for i in done:
                obs_i = {k: v[i].copy() for k, v in final.items()} if isinstance(final, dict) else final[i].copy()
                infos = self._add_info(infos, {"final_obs": obs_i, "final_info": self._info(i)}, int(i))
            prompts = [self._prompts.from_options(self._world_options[i], self.np_random) for i in done]
            self._worlds.start(done, prompts)
        for i in range(self.num_envs):
            infos = self._add_info(infos, self._info(i), i)
        return (self._observations(), rewards.astype(np.float64), terminated.astype(bool), truncated.astype(bool),
                infos)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if not self._started:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return tuple(frame.copy() for frame in self._worlds.frames)
        return None

    def close_extras(self, **kwargs: Any) -> None:
        self._prompts.close()

    # ------------------------------------------------------------------------------------------ extras

    @property
    def missions(self) -> list[str]:
        return self._worlds.missions

    def state_bytes(self) -> int:
        """Memory held by the N worlds' rollout state and frame history; it does not grow with the episodes."""
        return self._worlds.state_bytes()

    def get_action_meanings(self) -> list[str]:
        return list(self.wm.action_meanings)

    # ------------------------------------------------------------------------------------------ internals

    def _check_actions(self, actions) -> np.ndarray:
        """actions as int64 (N,), or a ValueError that names the bad values and their indices."""
        n = self.single_action_space.n

        def fail(what: str):  # the message is built only for bad input: this runs on every step
            names = ", ".join(f"{i}={m}" for i, m in enumerate(self.wm.action_meanings))
            raise ValueError(f"actions must be {self.num_envs} ints in [0, {n}) ({names}), one per world; {what}")

        array = np.asarray(actions)
        if array.shape != (self.num_envs,):
            fail(f"got shape {array.shape}: {actions!r}")
        if not np.issubdtype(array.dtype, np.integer):
            if array.dtype == np.bool_:
                fail(f"got bools {array.tolist()} (a bool is not an action)")
            fail(f"got dtype {array.dtype}: {array.tolist()}")
        bad = np.flatnonzero((array < 0) | (array >= n))
        if len(bad):
            fail("out of range: " + ", ".join(f"actions[{i}] = {array[i]}" for i in bad[:8])
                 + (f" and {len(bad) - 8} more" if len(bad) > 8 else ""))
        return array.astype(np.int64, copy=False)

    def _seed(self, seed) -> None:
        if seed is None:
            return
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
            return
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int, None or a list of {self.num_envs} seeds, got {len(seeds)}")
        if all(s is None for s in seeds):
            return
        if any(s is None for s in seeds):
            raise ValueError("a seed list must hold an int for every world, or only None")
        self.np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(s) for s in seeds])))

    def _split_options(self, options: dict) -> list[dict]:
        """One options dict per world from values given once for all or as N-long lists."""
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; GenieWorld understands {', '.join(RESET_OPTIONS)} "
                             "and reset_mask")
        per_world = [{} for _ in range(self.num_envs)]
        size = (self._prompts.size, self._prompts.size)
        for key, value in options.items():
            if key == "prompt_image":
                batched = (isinstance(value, (list, tuple))
                           or (isinstance(value, np.ndarray) and value.ndim == 4))
            else:
                batched = isinstance(value, (list, tuple, np.ndarray))
            if batched and len(value) != self.num_envs:
                raise ValueError(f"options[{key!r}] holds {len(value)} values for {self.num_envs} worlds; pass one "
                                 "value for all worlds or one per world")
            values = list(value) if batched else [value] * self.num_envs
            if key == "prompt_image":  # read and resize once; autoresets reuse the array
                cache: dict[int, np.ndarray] = {}
                values = [None if v is None else cache.setdefault(id(v), load_prompt_image(v, size)) for v in values]
            for i, v in enumerate(values):
                per_world[i][key] = v
        return per_world

    def _observations(self):
        frames = self._worlds.frames.copy()
        if self.mission_observation:
            return {"image": frames, "mission": np.stack([encode_mission(m) for m in self._worlds.missions])}
        return frames

    def _info(self, i: int) -> dict[str, Any]:
        return self._worlds.info(i)
