"""An instruction-following behaviour-cloning agent (SIMA-like, tiny): pixels + mission text in, action out.

Trained on the recorder's bot episodes (``genie-data record --policy bot`` or ``mix``: only the bot's episodes are
used), it imitates the expert from what the expert's camera saw, so it can act in any world that shows frames, the
generated one included.

Architecture (about 1.2 M parameters at the default size; B frames of S x S pixels):

    last k frames (B, k, S, S, 3) uint8 -> stacked on channels (B, 3k, S, S) in [-1, 1]
      -> len(channels) x [conv 4x4 stride 2, SiLU]                         (B, C, S / 2^L, S / 2^L)
      -> FiLM by the mission: h * (1 + gamma(m)) + beta(m)
      -> flatten, linear                                                   (B, hidden)   (where things are matters)
    mission -> genie_env.mission.encode_mission ids (B, 24) -> embedding -> GRU, last real word's state   m: (B, D)
    previous action (7 = none yet) -> embedding                            (B, 32)
    [h, m, a] -> SiLU -> linear -> action logits                           (B, 7)

Training: cross-entropy on the recorded action of every frame of the bot episodes (the recorder's epsilon-random
actions included: they are rare and the bot recovers from them, which the clone should learn too), AdamW. A share of
the episodes is held out to report accuracy. Acting: the action is sampled from the softmax with the agent's seeded
generator (``greedy=True``: argmax), so a memoryless policy does not get stuck turning in place.

Checkpoint: a folder with ``config.json`` ({"format": "genie-bc-agent", "format_version": 1, "config": ...,
"training": ...}) and ``model.safetensors``; nothing is unpickled.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from agents.agent import NUM_ACTIONS, Agent, image_of, mission_of
from genie_env.babyai3d import ACTION_MEANINGS
from genie_env.mission import MAX_MISSION_WORDS, VOCABULARY, encode_mission
from world_model.checkpoint import (CONFIG_FILE, CheckpointError, load_into, read_config, read_section, read_tensors,
                                    save_model)
from world_model.dataset import DatasetError, EpisodeDataset

logger = logging.getLogger(__name__)

FORMAT_BC = "genie-bc-agent"
BC_FORMAT_VERSION = 1


@dataclass(frozen=True)
class BCConfig:
    image_size: int = 64
    """Frame height and width the network sees (other sizes are resized to it)."""
    frames: int = 2
    """k: the current frame and k - 1 previous ones, stacked on channels."""
    channels: tuple[int, ...] = (32, 64, 64)
    """Conv channels per stride-2 level."""
    mission_dim: int = 64
    """Size of the word embeddings and of the mission GRU's state."""
    action_dim: int = 32
    """Size of the previous-action embedding."""
    hidden: int = 256
    """Width of the layer after the flattened conv features."""
    vocabulary: tuple[str, ...] = VOCABULARY
    """The mission words, in genie_env.mission's order (index 0 pads, 1 is any other word)."""
    max_words: int = MAX_MISSION_WORDS
    """Missions are cut to this many words."""
    num_actions: int = NUM_ACTIONS
    """Size of the action vocabulary (the previous-action embedding has one more entry: none yet)."""

    def __post_init__(self):
        if self.frames < 1 or not self.channels or self.image_size < 2 ** len(self.channels):
            raise ValueError(f"need frames >= 1, at least one conv level and image_size >= 2^levels; got {self}")

    @property
    def feature_size(self) -> int:
        """Side of the last conv feature map."""
        return self.image_size // 2 ** len(self.channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"], d["vocabulary"] = list(self.channels), list(self.vocabulary)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BCConfig":
        d = dict(d)
        d["channels"], d["vocabulary"] = tuple(d["channels"]), tuple(d["vocabulary"])
        return cls(**d)


PRESETS = {
    "tiny": BCConfig(channels=(8, 16), mission_dim=16, action_dim=8, hidden=32),
    "default": BCConfig(),
}


class BCNet(nn.Module):
    """Frames + mission + previous action -> action logits (see the module docstring)."""

    def __init__(self, config: BCConfig):
        super().__init__()
        self.config = config
        c_in, layers = 3 * config.frames, []
        for c in config.channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.SiLU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        D = config.mission_dim
        self.word = nn.Embedding(len(config.vocabulary), D, padding_idx=0)
        self.gru = nn.GRU(D, D, batch_first=True)
        self.film = nn.Linear(D, 2 * c_in)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.action = nn.Embedding(config.num_actions + 1, config.action_dim)
        self.visual = nn.Linear(c_in * config.feature_size ** 2, config.hidden)
        self.head = nn.Linear(config.hidden + D + config.action_dim, config.num_actions)

    def forward(self, pixels: torch.Tensor, words: torch.Tensor, prev_action: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3k, S, S) in [-1, 1], words (B, max_words) long, prev_action (B,) long -> logits (B, A)."""
        lengths = (words != 0).sum(1).clamp_min(1)  # (B,)
        states, _ = self.gru(self.word(words))  # (B, Lw, D)
        m = states[torch.arange(words.shape[0], device=words.device), lengths - 1]  # (B, D) after the last word
        h = self.conv(pixels)  # (B, C, s, s)
        gamma, beta = self.film(m).chunk(2, dim=-1)  # (B, C) each
        h = h * (1 + gamma[..., None, None]) + beta[..., None, None]
        h = self.visual(h.flatten(1))  # (B, hidden)
        return self.head(F.silu(torch.cat([h, m, self.action(prev_action)], dim=-1)))

    def pixels(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (B, k, H, W, 3) -> float (B, 3k, S, S) in [-1, 1], resized to the configured size."""
        x = torch.as_tensor(np.ascontiguousarray(frames))
        B, k, H, W, _ = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(B, 3 * k, H, W).float() / 127.5 - 1.0
        size = self.config.image_size
        if (H, W) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------------------------- checkpoints


def save_bc(net: BCNet, folder: str | Path, training: dict | None = None) -> Path:
    """Atomically write config.json + model.safetensors (fp32) into `folder`."""
    config = {"format": FORMAT_BC, "format_version": BC_FORMAT_VERSION, "config": net.config.to_dict(),
              "training": training or {}}
    return save_model(folder, config, net.state_dict())


def load_bc(folder: str | Path) -> tuple[BCNet, dict]:
    """(network in eval mode, training metadata) from a folder written by :func:`save_bc` / :func:`train_bc`."""
    raw = read_config(folder, FORMAT_BC, BC_FORMAT_VERSION, written_by="`genie-agent train bc --out FOLDER`")
    path = Path(folder) / CONFIG_FILE
    config = read_section(raw, "config", BCConfig.from_dict, "BC agent", path)
    if config.vocabulary != VOCABULARY:
        raise CheckpointError(f"{str(path)!r} was trained with another mission vocabulary than genie_env.mission's; "
                              "retrain the agent with this version of genie-env")
    net = BCNet(config)
    load_into(net, read_tensors(folder), "BC agent")
    return net.eval(), raw.get("training", {})


# ---------------------------------------------------------------------------------------------- the agent


class BCAgent(Agent):
    """Acts with a trained :class:`BCNet`; keeps the last k frames and the last action of its episode."""

    name = "bc"

    def __init__(self, net: BCNet, greedy: bool = False, path: str | None = None):
        super().__init__()
        self.net, self.greedy, self.path = net.eval(), bool(greedy), path
        self._frames: deque = deque(maxlen=net.config.frames)
        self._last = net.config.num_actions  # "none yet"
        self._words: torch.Tensor | None = None
        self._mission: str | None = None

    @classmethod
    def load(cls, path: str | Path, greedy: bool = False) -> "BCAgent":
        net, training = load_bc(path)
        agent = cls(net, greedy=greedy, path=str(path))
        agent.training = training
        return agent

    def reset(self, env: Any = None, seed: int | None = None) -> None:
        super().reset(env, seed)
        self._frames = deque(maxlen=self.net.config.frames)
        self._last = self.net.config.num_actions
        self._words, self._mission = None, None

    def spawn(self) -> "BCAgent":
        other = super().spawn()
        other.reset()
        return other

    @torch.no_grad()
    def act(self, obs: Any, info: dict) -> int:
        frame = image_of(obs)
        mission = mission_of(obs, info)
        if mission != self._mission:
            self._words = torch.as_tensor(encode_mission(mission, self.net.config.max_words))[None]
            self._mission = mission
        if not self._frames:
            self._frames.extend([frame] * self.net.config.frames)  # before the first frame: repeat it
        else:
            self._frames.append(frame)
        pixels = self.net.pixels(np.stack(self._frames)[None])  # (1, 3k, S, S)
        logits = self.net(pixels, self._words, torch.tensor([self._last]))[0].float()
        if self.greedy:
            action = int(logits.argmax())
        else:
            probs = torch.softmax(logits, dim=0).numpy().astype(np.float64)
            action = int(self.rng.choice(len(probs), p=probs / probs.sum()))
        self._last = action
        return action

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "greedy": self.greedy,
                "parameters": self.net.num_parameters(), "training": getattr(self, "training", {})}


# ---------------------------------------------------------------------------------------------- training


class BCSamples:
    """Every frame of the kept episodes that has a recorded action, with its k-frame window and previous action."""

    def __init__(self, episodes: EpisodeDataset, keep: np.ndarray, frames: int, none_action: int):
        self.episodes, self.k, self.none_action = episodes, frames, none_action
        offsets = episodes.episode_offsets
        episode_of = np.repeat(np.arange(episodes.num_episodes), episodes.episode_lengths)  # (N,)
        usable = keep[episode_of] & (episodes.actions >= 0)  # the last frame of an episode has no action
        self.index = np.flatnonzero(usable)  # (M,) global frame indices
        self.first = offsets[episode_of[self.index]]  # (M,) each sample's episode start
        self.missions = np.stack([encode_mission(str(m)) for m in episodes.missions])[episode_of[self.index]]

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(frames uint8 (B, k, H, W, 3), words (B, L), previous actions (B,), actions (B,)) of samples `picks`."""
        i, first = self.index[picks], self.first[picks]
        window = np.maximum(i[:, None] - (self.k - 1) + np.arange(self.k), first[:, None])  # (B, k)
        prev = np.where(i > first, self.episodes.actions[np.maximum(i - 1, 0)], self.none_action)
        return self.episodes.frames[window], self.missions[picks], prev, self.episodes.actions[i]


@dataclass(frozen=True)
class BCArgs:
    """What :func:`train_bc` trains on and how (``genie-agent train bc`` makes one flag per field)."""

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
    weight_decay: float = 0.01
    """AdamW weight decay"""
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


def train_bc(args: BCArgs) -> BCAgent:
    """Train a behaviour-cloning agent on the recordings ``args.data`` and save it to ``args.out``; returns the agent
    (greedy=False). Only first-person episodes of ``args.policies`` and ``args.split`` are used; ``holdout_share`` of
    them are kept out of training to report action accuracy on."""
    steps, batch_size, preset, frames = args.steps, args.batch_size, args.preset, args.frames
    split = None if args.split == "all" else args.split
    if preset not in PRESETS:
        raise ValueError(f"unknown BC preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if steps < 1 or batch_size < 2:
        raise ValueError(f"need steps >= 1 and batch_size >= 2, got {steps} and {batch_size}")
    if not 0.0 <= args.holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {args.holdout_share}")
    episodes = EpisodeDataset(list(args.data), split=split, views="first_person")
    height, width = episodes.meta.frame_shape[:2]
    if height != width:
        raise DatasetError(f"the BC agent reads square frames; these recordings have {height}x{width} frames")
    if tuple(episodes.meta.action_meanings) != ACTION_MEANINGS:
        raise DatasetError(f"recorded actions {list(episodes.meta.action_meanings)} are not the shared vocabulary "
                           f"{list(ACTION_MEANINGS)}")
    chosen = np.isin(episodes.policies, list(args.policies))
    if not chosen.any():
        found = sorted(set(episodes.policies.tolist()))
        raise DatasetError(f"no first-person {'/'.join(args.policies)} episodes (split={split!r}) in "
                           f"{', '.join(map(str, episodes.folders))} (found policies: {', '.join(found)}); record "
                           "with `genie-data record --policy bot` or `--policy mix`")
    rng = np.random.default_rng(args.seed)
    candidates = np.flatnonzero(chosen)
    n_hold = int(round(args.holdout_share * len(candidates))) if len(candidates) > 1 else 0
    held = rng.permutation(candidates)[:n_hold]
    train_keep, hold_keep = chosen.copy(), np.zeros_like(chosen)
    train_keep[held], hold_keep[held] = False, True
    config = replace(PRESETS[preset], image_size=int(height),
                     frames=int(frames) if frames is not None else PRESETS[preset].frames)
    samples = BCSamples(episodes, train_keep, config.frames, config.num_actions)
    holdout = BCSamples(episodes, hold_keep, config.frames, config.num_actions) if n_hold else None
    if len(samples) == 0:
        raise DatasetError("the chosen episodes have no recorded actions (all of length 1?)")

    torch.manual_seed(args.seed)
    net = BCNet(config)
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    start, losses, correct = time.time(), [], []
    bar = tqdm(range(steps), desc="training bc agent", disable=args.quiet)
    for step in bar:
        picks = rng.integers(len(samples), size=batch_size)
        window, words, prev, actions = samples.batch(picks)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = net(net.pixels(window), torch.as_tensor(words), torch.as_tensor(prev))
        target = torch.as_tensor(actions)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        correct.append(float((logits.argmax(-1) == target).float().mean()))
        if (step + 1) % 50 == 0 or step + 1 == steps:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", acc=f"{np.mean(correct[-50:]):.2f}")
    net.eval()
    training = {
        "steps": steps, "batch_size": batch_size, "lr": args.lr, "weight_decay": args.weight_decay, "preset": preset,
        "policies": list(args.policies), "split": split, "seed": args.seed, "bf16": args.bf16,
        "data": [str(f) for f in episodes.folders], "episodes": int(train_keep.sum()), "samples": len(samples),
        "final_loss": float(np.mean(losses[-min(len(losses), 50):])),
        "final_train_accuracy": float(np.mean(correct[-min(len(correct), 50):])),
        "holdout_episodes": int(n_hold), "holdout_accuracy": _accuracy(net, holdout) if holdout else None,
        "seconds": round(time.time() - start, 1),
    }
    save_bc(net, args.out, training)
    agent = BCAgent(net, path=str(args.out))
    agent.training = training
    return agent


@torch.no_grad()
def _accuracy(net: BCNet, samples: BCSamples, batch_size: int = 256) -> float:
    """Share of held-out frames where the argmax action is the recorded one."""
    hits = 0
    for s in range(0, len(samples), batch_size):
        picks = np.arange(s, min(s + batch_size, len(samples)))
        window, words, prev, actions = samples.batch(picks)
        logits = net(net.pixels(window), torch.as_tensor(words), torch.as_tensor(prev))
        hits += int((logits.argmax(-1).numpy() == actions).sum())
    return hits / max(1, len(samples))
