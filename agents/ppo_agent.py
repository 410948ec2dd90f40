"""PPO (stable-baselines3) trained inside the world model ("ppo-genie") or in the ground truth ("ppo-gt").

Both see the same thing: first-person frames (``policy="cnn"``: SB3's CnnPolicy, NatureCNN) or frames and the
encoded mission (``policy="mission"``: MultiInputPolicy), act with the shared 7 actions, and are trained on the
*training* worlds of one level (BabyAI3D's train seeds), so that genie-bench can evaluate them on unseen ones.

- ``ppo-genie``: N GenieWorlds in one batch (``GenieWorldVectorEnv`` through ``SB3VecEnv``). Each episode starts from
  the first frame of a newly drawn training world of the level (``level_seed`` prompts; GenieWorld's own default
  prompts are the *test* worlds, which training must not see). The reward is the success judge's verdict (1 and the
  end of the episode when it passes the threshold) or a user ``reward_fn``.
- ``ppo-gt``: N 3D BabyAI worlds (``DummyVecEnv``), BabyAI's own reward.

Checkpoint: a folder with the policy network's weights in ``policy.safetensors`` and ``agent.json`` ({"format":
"genie-ppo-agent", "format_version": 2, "name", "world", "policy", "level", "image_size", "observation_space",
"num_actions", "training"}). SB3's own ``model.zip`` is not used: loading it unpickles parts of the file, and an
agent folder is something users hand around. Loading rebuilds SB3's policy class from the JSON (observation space,
action count, default architecture) and loads the weights strictly. Acting samples from the policy's action
distribution with the agent's own seeded generator (``greedy=True``: its mode).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper, VecMonitor
from tqdm import tqdm

from agents.agent import Agent, image_of
from genie_env.babyai3d import TRAIN_SEEDS, BabyAI3DEnv, SeedRange
from genie_env.mission import MissionObservation, encode_mission
from genie_env.tasks import get_task
from world_model.checkpoint import CheckpointError, read_config, read_section, write_folder_atomic, write_json

FORMAT_PPO = "genie-ppo-agent"
PPO_FORMAT_VERSION = 2
AGENT_FILE = "agent.json"
MODEL_FILE = "policy.safetensors"
WORLDS = {"genie": "ppo-genie", "ground_truth": "ppo-gt"}
POLICIES = {"cnn": "CnnPolicy", "mission": "MultiInputPolicy"}


class PPOAgent(Agent):
    """Acts with a PPO policy saved by :func:`train_ppo`."""

    def __init__(self, policy: ActorCriticPolicy, meta: dict, greedy: bool = False, path: str | None = None):
        super().__init__()
        self.network, self.meta, self.greedy, self.path = policy.eval(), meta, bool(greedy), path
        self.name = str(meta.get("name", "ppo"))
        self.policy = str(meta.get("policy", "cnn"))
        space = policy.observation_space  # SB3 trained it on channel-first images (VecTransposeImage)
        self._image_shape = tuple((space["image"] if isinstance(space, gym.spaces.Dict) else space).shape)  # (3, H, W)

    @classmethod
    def load(cls, path: str | os.PathLike, greedy: bool = False) -> "PPOAgent":
        folder = Path(path)
        meta = read_config(folder, FORMAT_PPO, PPO_FORMAT_VERSION, filename=AGENT_FILE,
                           written_by="`genie-agent train ppo-genie|ppo-gt --out FOLDER`")
        policy = read_section(meta, None, _policy_from_meta, "PPO policy", folder / AGENT_FILE)
        if not (folder / MODEL_FILE).is_file():
            raise CheckpointError(f"{folder / MODEL_FILE} is missing; retrain the agent")
        try:
            load_model(policy, str(folder / MODEL_FILE), strict=True, device="cpu")
        except RuntimeError as e:  # missing / unexpected / mis-shaped tensors
            raise CheckpointError(f"{folder / MODEL_FILE} does not fit the policy {AGENT_FILE} describes ({e}); "
                                  "retrain the agent") from e
        except (SafetensorError, OSError, ValueError) as e:  # truncated or not safetensors at all
            raise CheckpointError(f"{folder / MODEL_FILE} is unreadable ({type(e).__name__}: {e}); retrain the "
                                  "agent") from e
        return cls(policy, meta, greedy=greedy, path=str(folder))

    @torch.no_grad()
    def act(self, obs: Any, info: dict) -> int:
        frame = self._fit(image_of(obs))
        if self.policy == "mission":
            mission = obs["mission"] if isinstance(obs, dict) else encode_mission(info.get("mission", ""))
            observation = {"image": frame, "mission": np.asarray(mission)}
        else:
            observation = frame
        policy = self.network
        obs_tensor, _ = policy.obs_to_tensor(observation)
        probs = policy.get_distribution(obs_tensor).distribution.probs[0].float().cpu().numpy().astype(np.float64)
        if self.greedy:
            return int(probs.argmax())
        return int(self.rng.choice(len(probs), p=probs / probs.sum()))

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> the policy's channel-first input (3, h, w), resized (bilinear) if the sizes differ."""
        chw = np.ascontiguousarray(frame.transpose(2, 0, 1))
        if chw.shape == self._image_shape:
            return chw
        x = F.interpolate(torch.as_tensor(chw)[None].float(), size=self._image_shape[1:], mode="bilinear",
                          align_corners=False)
        return x[0].round().clamp(0, 255).to(torch.uint8).numpy()

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "greedy": self.greedy, "world": self.meta.get("world"),
                "policy": self.policy, "level": self.meta.get("level"), "task": self.meta.get("task"),
                "timesteps": self.meta.get("training", {}).get("timesteps"),
                "training_seconds": self.meta.get("training", {}).get("seconds")}


# ---------------------------------------------------------------------------------------------- environments


class FreshTrainingWorlds(VecEnvWrapper):
    """GenieWorld worlds that each restart from a newly drawn training world when their episode ends.

    GenieWorld's autoreset restarts a world from the prompt options of its last explicit reset (the same level
    seed); this wrapper resets the finished ones again with new seeds drawn from `seeds`, with the env's
    ``reset_mask`` option. Wraps an :class:`genie_env.sb3_adapter.SB3VecEnv`.
    """

    def __init__(self, venv, seeds: SeedRange, seed: int = 0):
        super().__init__(venv)
        self.seeds = seeds
        self.rng = np.random.default_rng(seed)

    def _draw(self) -> list[int]:
        return [self.seeds.start + int(s) for s in self.rng.integers(self.seeds.size, size=self.num_envs)]

    def reset(self):
        self.venv.set_options([{"level_seed": s} for s in self._draw()])
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        if dones.any():
            obs, _ = self.venv.venv.reset(options={"reset_mask": np.asarray(dones, dtype=bool),
                                                   "level_seed": self._draw()})
        return obs, rewards, dones, infos


def _ground_truth_env(level: str, size: int, max_steps: int, mission: bool) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env: gym.Env = BabyAI3DEnv(level=level, size=(size, size), worlds="train")
        env = gym.wrappers.TimeLimit(env, max_episode_steps=max_steps)
        return MissionObservation(env) if mission else env

    return make


class _ProgressBar(BaseCallback):
    """A tqdm bar over environment steps, showing the mean return and success of the last 100 episodes."""

    def __init__(self, total: int, desc: str, enabled: bool):
        super().__init__()
        self.total, self.desc, self.enabled = total, desc, enabled
        self.bar = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", disable=not self.enabled)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        buffer = self.model.ep_info_buffer
        if buffer and self.n_calls % 20 == 0:
            self.bar.set_postfix(ep_return=f"{np.mean([e['r'] for e in buffer]):.2f}",
                                 ep_len=f"{np.mean([e['l'] for e in buffer]):.0f}")
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class PPOArgs:
    """What :func:`train_ppo` trains and how (``genie-agent train ppo-genie|ppo-gt`` makes one flag per field but
    `world`, which the command names)."""

    out: str
    """checkpoint folder to write"""
    world: str = "ground_truth"
    """where PPO trains: genie (inside the world model) or ground_truth (3D BabyAI)"""
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


def train_ppo(args: PPOArgs, model: Any = None, judge: Any = None, reward_fn: Callable | None = None) -> PPOAgent:
    """Train PPO in ``args.world`` on the training worlds of ``args.task``'s level; save it to ``args.out``.

    model / judge / reward_fn: in-memory objects (a WorldModel, a SuccessJudge, GenieWorld's reward callable) used
    instead of ``args.model`` / ``args.judge`` / ``args.reward_fn``; all are ignored in the ground truth. Inside
    GenieWorld the reward comes from the reward_fn if there is one, else from the judge. Returns the trained agent.
    """
    from agents.reward_fn import load_reward_fn

    task = get_task(args.task)
    world, level, policy, size, seed = args.world, task.level, args.policy, args.size, args.seed
    max_steps = task.max_steps if args.max_steps is None else args.max_steps
    num_envs, n_steps, batch_size = args.num_envs, args.n_steps, args.batch_size
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; choose 'genie' (inside the world model) or 'ground_truth'")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose 'cnn' (frames) or 'mission' (frames + mission)")
    if (n_steps * num_envs) % batch_size:
        raise ValueError(f"batch_size ({batch_size}) must divide n_steps * num_envs ({n_steps} * {num_envs})")
    if args.timesteps < 1 or max_steps < 1:
        raise ValueError(f"timesteps ({args.timesteps}) and max_steps ({max_steps}) must be >= 1")
    model = args.model if model is None else model
    if judge is None:
        judge = None if args.judge.strip().lower() == "none" else args.judge
    reward_fn = load_reward_fn(args.reward_fn) if reward_fn is None else reward_fn
    mission = policy == "mission"
    model_desc, judge_desc = _describe(model), _describe(judge)
    if world == "genie":
        from genie_env.genie_world import load_judge, load_world_model
        from genie_env.genie_world_vector import GenieWorldVectorEnv
        from genie_env.sb3_adapter import SB3VecEnv

        judge = load_judge(judge)
        if judge is None and reward_fn is None:
            raise ValueError("PPO inside GenieWorld needs a reward: pass a success judge (--judge default or a judge "
                             "folder) or a reward function (--reward-fn module:function)")
        wm = load_world_model(model)
        size = int(wm.config.autoencoder.image_size)
        gym_venv = GenieWorldVectorEnv(num_envs=num_envs, model=wm, level=level, judge=judge, reward_fn=reward_fn,
                                       mission_observation=mission, max_episode_steps=max_steps)
        venv = VecMonitor(FreshTrainingWorlds(SB3VecEnv(gym_venv), TRAIN_SEEDS, seed=seed))
    else:
        venv = VecMonitor(DummyVecEnv([_ground_truth_env(level, size, max_steps, mission)] * num_envs))
    agent_name = WORLDS[world]
    start = time.time()
    ppo = PPO(POLICIES[policy], venv, n_steps=n_steps, batch_size=batch_size, n_epochs=args.n_epochs,
              learning_rate=args.lr, ent_coef=args.ent_coef, gamma=args.gamma, seed=seed, device="cpu", verbose=0)
    ppo.learn(total_timesteps=args.timesteps,
              callback=_ProgressBar(args.timesteps, f"training {agent_name}", not args.quiet))
    episodes = list(ppo.ep_info_buffer)
    venv.close()
    meta = {
        "format": FORMAT_PPO, "format_version": PPO_FORMAT_VERSION, "name": agent_name, "world": world,
        "policy": policy, "level": level, "task": task.name, "image_size": size,
        "training": {
            "timesteps": int(ppo.num_timesteps), "max_steps": max_steps, "num_envs": num_envs, "n_steps": n_steps,
            "batch_size": batch_size, "n_epochs": args.n_epochs, "lr": args.lr, "ent_coef": args.ent_coef,
            "gamma": args.gamma, "seed": seed, "worlds": "train",
            "model": model_desc if world == "genie" else None,
            "judge": judge_desc if world == "genie" else None,
            "reward_fn": None if reward_fn is None else f"{reward_fn.__module__}:{reward_fn.__qualname__}",
            "last_episodes_mean_return": float(np.mean([e["r"] for e in episodes])) if episodes else None,
            "last_episodes_mean_length": float(np.mean([e["l"] for e in episodes])) if episodes else None,
            "seconds": round(time.time() - start, 1),
        },
        "observation_space": _space_to_json(ppo.policy.observation_space),
        "num_actions": int(ppo.policy.action_space.n),
    }

    def write(tmp: Path) -> None:
        save_model(ppo.policy, str(tmp / MODEL_FILE))  # handles the feature extractor shared by actor and critic
        write_json(tmp / AGENT_FILE, meta)

    write_folder_atomic(args.out, write)
    return PPOAgent(ppo.policy, meta, path=str(args.out))


def _space_to_json(space: gym.Space) -> dict:
    """The observation spaces PPO agents use (uint8 image Box, MultiDiscrete mission, a Dict of them) as JSON."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "dict", "spaces": {k: _space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        if space.dtype != np.uint8:
            raise ValueError(f"PPO agents take uint8 images, not {space.dtype} boxes")
        return {"type": "image", "shape": [int(n) for n in space.shape]}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "multi_discrete", "nvec": [int(n) for n in np.asarray(space.nvec).ravel()]}
    raise ValueError(f"cannot save a PPO agent observing {space}")


def _space_from_json(d: dict) -> gym.Space:
    kind = d["type"]
    if kind == "dict":
        return gym.spaces.Dict({k: _space_from_json(v) for k, v in d["spaces"].items()})
    if kind == "image":
        return gym.spaces.Box(0, 255, tuple(int(n) for n in d["shape"]), np.uint8)
    if kind == "multi_discrete":
        return gym.spaces.MultiDiscrete([int(n) for n in d["nvec"]])
    raise ValueError(f"unknown observation space type {kind!r}")


def _policy_from_meta(meta: dict) -> ActorCriticPolicy:
    """SB3's policy network as PPO builds it by default (same classes and arguments), with untrained weights."""
    space = _space_from_json(meta["observation_space"])
    classes = {"cnn": ActorCriticCnnPolicy, "mission": MultiInputActorCriticPolicy}
    policy = meta.get("policy", "cnn")
    if policy not in classes:
        raise ValueError(f"unknown policy {policy!r}")
    return classes[policy](space, gym.spaces.Discrete(int(meta["num_actions"])), lr_schedule=lambda _: 0.0)


def _describe(thing: Any) -> str | None:
    """A checkpoint argument for agent.json: its name or folder, or the class of an in-memory object."""
    if thing is None or isinstance(thing, (str, os.PathLike)):
        return None if thing is None else str(thing)
    return f"<in-memory {type(thing).__name__}>"
