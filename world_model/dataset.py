"""Training data: recorded episodes in memory, served as windows of consecutive frames.

``EpisodeDataset`` loads every shard of one or more recording folders (validated by
``read_shard``) into one contiguous frame array, optionally keeping only one split and some
views. ``WindowDataset`` serves windows of T consecutive frames of one episode.

Window convention (T = window length, s = first frame of the window inside its episode):

=========  ===================  ==============================================================
key        shape, dtype         meaning
=========  ===================  ==============================================================
frames     (T, H, W, 3) uint8   frames s .. s+T-1
actions    (T,) int64           actions[t] leads frame t -> t+1 (the recorded action after
                                frame s+t). actions[:T-1] are always real actions (>= 0);
                                actions[T-1] leads out of the window: a real action, or -1
                                when the window ends on the episode's last frame.
rewards    (T,) float32         reward received on arriving at frame t (0 on a reset frame)
success    (T,) bool            verifier success on arriving at frame t
=========  ===================  ==============================================================

So a dynamics model predicts frames[t+1] from frames[:t+1] and actions[:t+1] for t < T-1 and
never needs actions[T-1]. Every start s with s+T <= episode length is a window (episodes of
fewer than T frames give none and are counted in ``summary()``); windows are drawn uniformly,
so long episodes give proportionally more.

Counterfactual branches (``world_model.shards.Branches``) ride along with their episodes:
``EpisodeDataset.episode(e).branches``, or all at once in ``branch_frames`` (G, H, W, 3) uint8,
``branch_actions`` (G,) int64, ``branch_sources`` (G,) int64 (frame index within the episode) and
``branch_offsets`` (E+1,) int64 (episode e's branches are rows branch_offsets[e]:branch_offsets[e+1]).
Windows are always windows of real frames.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from world_model.shards import Episode, ShardMeta, episode_of, list_shards, read_shard


#: The env id of a dreamed recording's shards (``genie_env.dream``) is this prefix + the source's env id.
DREAMED_ENV_PREFIX = "dream:"
PAD_AT = ("front", "end")  # where WindowDataset pads an episode shorter than its window


class DatasetError(ValueError):
    """The recordings cannot be served: none found, nothing left after filtering, or mixed kinds."""


def _as_list(x: str | os.PathLike | Sequence | None) -> list | None:
    if x is None:
        return None
    if isinstance(x, (str, os.PathLike)):
        return [x]
    return list(x)


class EpisodeDataset:
    """All episodes of one or more recording folders, in memory, in folder/shard/episode order.

    Arguments:
        folders: recording folder(s), as written by ``genie-data record --out``.
        split: keep only episodes of this split ("train", "test"); None keeps all.
        views: keep only episodes of these views ("first_person", "top_down", "rgb"); None keeps all.
    """

    def __init__(self, folders: str | os.PathLike | Sequence[str | os.PathLike],
                 split: str | None = None, views: str | Sequence[str] | None = None):
        self.folders = [Path(f) for f in _as_list(folders)]
        self.split_filter = split
        self.view_filter = _as_list(views)
        if not self.folders:
            raise DatasetError("no recording folder given; pass at least one folder of shards")

        self.meta: ShardMeta | None = None
        meta_source = None
        chunks: dict[str, list[np.ndarray]] = {k: [] for k in ("frames", "actions", "rewards", "success",
                                                               "branch_frames", "branch_actions", "branch_sources")}
        per_episode: dict[str, list] = {k: [] for k in ("lengths", "missions", "level_seeds", "policies",
                                                        "views", "splits", "terminated", "truncated",
                                                        "branch_counts", "env_ids")}
        self.env_ids: Counter[str] = Counter()
        self.num_shards = 0
        self._found = Counter()  # (split, view) -> episodes found before filtering
        for folder in self.folders:
            shards = list_shards(folder)
            if not shards:
                raise DatasetError(f"no shard_*.npz files in {folder}; record some with "
                                   f"`genie-data record --out {folder}`")
            for path in shards:
                shard = read_shard(path)
                ix = shard.index
                if self.meta is None:
                    self.meta, meta_source = shard.meta, path
                elif (shard.meta.frame_shape, shard.meta.action_meanings) != (
                        self.meta.frame_shape, self.meta.action_meanings):
                    raise DatasetError(
                        f"{path} (frames {shard.meta.frame_shape}, actions {list(shard.meta.action_meanings)}) "
                        f"does not match {meta_source} (frames {self.meta.frame_shape}, actions "
                        f"{list(self.meta.action_meanings)}); train on recordings of one frame size "
                        f"and one action set")
                self.num_shards += 1
                self._found.update(zip(ix.splits.tolist(), ix.views.tolist()))
                keep = np.ones(ix.num_episodes, dtype=bool)
                if split is not None:
                    keep &= ix.splits == split
                if self.view_filter is not None:
                    keep &= np.isin(ix.views, self.view_filter)
                if not keep.any():
                    continue
                self.env_ids[shard.meta.env_id] += int(keep.sum())
                per_episode["env_ids"].append(np.full(int(keep.sum()), shard.meta.env_id))
                frame_keep = np.repeat(keep, ix.episode_lengths)  # (F,) bool
                if keep.all():
                    chunks["frames"].append(shard.frames)
                else:
                    chunks["frames"].append(shard.frames[frame_keep])
                for key in ("actions", "rewards", "success"):
                    chunks[key].append(getattr(ix, key)[frame_keep])
                per_episode["lengths"].append(ix.episode_lengths[keep])
                if ix.branch_offsets is not None and ix.num_branches:
                    counts = np.diff(ix.branch_offsets)  # (K,) branches per episode
                    branch_keep = np.repeat(keep, counts)  # (G,) bool
                    chunks["branch_frames"].append(shard.branch_frames[branch_keep])
                    chunks["branch_actions"].append(ix.branch_actions[branch_keep])
                    chunks["branch_sources"].append(ix.branch_sources[branch_keep])
                    per_episode["branch_counts"].append(counts[keep])
                else:
                    per_episode["branch_counts"].append(np.zeros(int(keep.sum()), np.int64))
                for key in ("missions", "level_seeds", "policies", "views", "splits", "terminated", "truncated"):
                    per_episode[key].append(getattr(ix, key)[keep])

        if not per_episode["lengths"]:
            found = ", ".join(f"{n} {s}/{v}" for (s, v), n in sorted(self._found.items()))
            raise DatasetError(f"no episodes with split={split!r} views={self.view_filter!r} in "
                               f"{', '.join(map(str, self.folders))} (found split/view: {found}); "
                               f"change the filter or record that split")
        self.frames = np.concatenate(chunks["frames"])  # (N, H, W, 3) uint8
        self.actions = np.concatenate(chunks["actions"]).astype(np.int64)  # (N,)
        self.rewards = np.concatenate(chunks["rewards"])  # (N,) float32
        self.success = np.concatenate(chunks["success"])  # (N,) bool
        lengths = np.concatenate(per_episode["lengths"])
        self.episode_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (E+1,)
        self.missions = np.concatenate(per_episode["missions"])  # (E,) unicode
        self.level_seeds = np.concatenate(per_episode["level_seeds"])  # (E,) int64
        self.policies = np.concatenate(per_episode["policies"])
        self.views = np.concatenate(per_episode["views"])
        self.splits = np.concatenate(per_episode["splits"])
        self.terminated = np.concatenate(per_episode["terminated"])
        self.truncated = np.concatenate(per_episode["truncated"])
        self.episode_env_ids = np.concatenate(per_episode["env_ids"])  # (E,) unicode: the env each episode came from
        # (E,) bool: episodes re-played inside a world model (`genie-data dream`) rather than recorded
        self.dreamed = np.char.startswith(self.episode_env_ids.astype(str), DREAMED_ENV_PREFIX)
        # counterfactual branches of all kept episodes (G may be 0): episode e's rows are
        # branch_offsets[e]:branch_offsets[e+1]; sources index frames within the episode
        h, w, _ = self.meta.frame_shape
        self.branch_frames = (np.concatenate(chunks["branch_frames"]) if chunks["branch_frames"]
                              else np.zeros((0, h, w, 3), np.uint8))  # (G, H, W, 3) uint8
        self.branch_actions = np.concatenate([np.zeros(0, np.int64), *chunks["branch_actions"]]).astype(np.int64)
        self.branch_sources = np.concatenate([np.zeros(0, np.int64), *chunks["branch_sources"]]).astype(np.int64)
        self.branch_offsets = np.concatenate(
            [[0], np.cumsum(np.concatenate(per_episode["branch_counts"]))]).astype(np.int64)  # (E+1,)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_offsets) - 1

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def episode_lengths(self) -> np.ndarray:
        """(E,) frames per episode."""
        return np.diff(self.episode_offsets)

    @property
    def num_branches(self) -> int:
        """G: counterfactual branch frames of all kept episodes."""
        return len(self.branch_frames)

    def episode(self, e: int) -> Episode:
        """Episode e with its branches (arrays are views into the dataset's arrays; actions and
        branch actions are int64 here)."""
        return episode_of(self.frames, self, e, self.branch_frames)

    def summary(self) -> dict:
        """Counts for logs and reports (JSON-serialisable)."""
        successes = np.logical_or.reduceat(self.success, self.episode_offsets[:-1])  # (E,)
        return {
            "folders": [str(f) for f in self.folders],
            "shards": self.num_shards,
            "split_filter": self.split_filter,
            "view_filter": self.view_filter,
            "episodes": self.num_episodes,
            "episodes_filtered_out": sum(self._found.values()) - self.num_episodes,
            "frames": self.num_frames,
            "branch_frames": self.num_branches,
            "branched_states": int(sum(len(np.unique(self.branch_sources[a:b])) for a, b in
                                       zip(self.branch_offsets[:-1], self.branch_offsets[1:]))),
            "frame_shape": list(self.meta.frame_shape),
            "action_meanings": list(self.meta.action_meanings),
            "env_ids": dict(self.env_ids),
            "policies": dict(Counter(self.policies.tolist())),
            "views": dict(Counter(self.views.tolist())),
            "splits": dict(Counter(self.splits.tolist())),
            "success_rate": float(successes.mean()),
        }


@dataclass(frozen=True, eq=False)
class WindowBatch:
    """B windows of T frames (see the module docstring for the alignment)."""

    frames: np.ndarray  # (B, T, H, W, 3) uint8
    actions: np.ndarray  # (B, T) int64
    rewards: np.ndarray  # (B, T) float32
    success: np.ndarray  # (B, T) bool
    episode: np.ndarray  # (B,) int64 episode index in the EpisodeDataset
    start: np.ndarray  # (B,) int64 first frame of the window inside its episode
    missions: np.ndarray  # (B,) unicode
    views: np.ndarray  # (B,) unicode: the view each window's episode is rendered in

    @property
    def window_success(self) -> np.ndarray:
        """(B,) bool: the verifier reported success somewhere in the window."""
        return self.success.any(axis=1)


class WindowDataset(torch.utils.data.Dataset):
    """Windows of `window` consecutive frames of one episode, from an EpisodeDataset.

    An episode shorter than the window has none, unless ``pad_action`` is given (the index of an action under which
    the world does not change, such as BabyAI's noop): then it has one window, padded with copies of one of its frames
    under that action. ``pad_at="front"``: the window ends at the episode's last frame and starts with copies of its
    first, as if the agent had waited before acting; ``pad_at="end"``: the window starts at the episode's first frame,
    as a world model's rollout starts from its prompt, and ends with copies of its last, as if the agent waited after
    it (a causal model's frames never see the copies after them). Short episodes are where a bot's whole solution
    lies (a door opened, an object picked up), so padding keeps those events in training.
    ``draw`` picks a padded window ``pad_weight`` times as often as another (default ``window``: every recorded frame
    about equally likely, since a long episode's frame lies in up to ``window`` windows and a padded one's in one).
    ``pad_views``: pad only the short episodes rendered in these views (the others have no window, as without
    padding); None pads every view's.

    ``len()`` is the number of valid window starts; ``dataset[i]`` is a dict of torch tensors
    (frames, actions, rewards, success) plus episode, start, mission and view; ``sample_batch`` draws
    a whole batch at once in numpy, which is what training loops should use.
    """

    def __init__(self, episodes: EpisodeDataset, window: int, pad_action: int | None = None,
                 pad_weight: float | None = None, pad_at: str = "front",
                 pad_views: str | Sequence[str] | None = None):
        if window < 1:
            raise DatasetError(f"window must be >= 1 frame, got {window}")
        if pad_weight is not None and not (np.isfinite(pad_weight) and pad_weight > 0):
            raise DatasetError(f"pad_weight must be a positive number (how many times as often a padded window is "
                               f"drawn as another), got {pad_weight}")
        if pad_at not in PAD_AT:
            raise DatasetError(f"pad_at must be one of {PAD_AT}, got {pad_at!r}")
        if pad_action is not None and not 0 <= pad_action < episodes.meta.num_actions:
            raise DatasetError(f"pad_action {pad_action} is not an action of these recordings "
                               f"({', '.join(episodes.meta.action_meanings)})")
        self.pad_views = None if pad_views is None else tuple(_as_list(pad_views))
        if self.pad_views is not None and pad_action is None:
            raise DatasetError("pad_views names the views whose short episodes are padded; give pad_action too")
        if self.pad_views is not None and not self.pad_views:
            raise DatasetError("pad_views is empty: name the views whose short episodes are padded, or pass None to "
                               "pad every view's")
        unknown = sorted(set(self.pad_views or ()) - set(episodes.views.tolist()))
        if unknown:
            raise DatasetError(f"pad_views names {', '.join(unknown)}, a view none of these episodes is rendered in "
                               f"(they are: {', '.join(sorted(set(episodes.views.tolist())))})")
        self.episodes, self.window, self.pad_action, self.pad_at = episodes, window, pad_action, pad_at
        lengths = episodes.episode_lengths
        long_enough = lengths >= window
        padded_episode = ~long_enough & (lengths >= 1) & (pad_action is not None)  # (E,) short episodes padded
        if self.pad_views is not None:
            padded_episode &= np.isin(episodes.views, self.pad_views)
        kept = np.flatnonzero(long_enough | padded_episode)  # episode ids with a window
        self.num_short_episodes = int((~long_enough & ~padded_episode).sum())  # short and left out
        self.num_padded_episodes = int(padded_episode.sum())
        if len(kept) == 0:
            raise DatasetError(f"no episode has {window} frames (longest: {int(lengths.max())}); "
                               f"use a shorter window or record longer episodes")
        counts = np.maximum(lengths[kept] - window + 1, 1)  # windows per kept episode (a padded one has one)
        self.window_episode = np.repeat(kept, counts)  # (N,) episode of each window
        first = np.repeat(np.cumsum(counts) - counts, counts)
        self.window_padded = lengths[self.window_episode] < window  # (N,) the one window of a short episode
        # (N,) start inside the episode; front padding: negative for a padded window, which ends at the last frame
        self.window_offset = np.arange(counts.sum()) - first
        if pad_at == "front":
            self.window_offset += np.minimum(lengths[self.window_episode] - window, 0)
        self.window_start = episodes.episode_offsets[self.window_episode] + self.window_offset  # (N,) global
        self._steps = np.arange(window)
        # a frame of a long episode lies in up to `window` windows, a padded episode's frames in one: by default its
        # window is drawn `window` times as often, so that every recorded frame is about equally likely to be in a batch
        padded = self.window_padded
        self.pad_weight = float(window if pad_weight is None else pad_weight)
        self._draw_p = None
        if padded.any():
            weights = np.where(padded, self.pad_weight, 1.0)
            self._draw_p = weights / weights.sum()

    def draw(self, n: int, generator: np.random.Generator) -> np.ndarray:
        """`n` window indices drawn with replacement: uniformly, or, with padded short episodes, each of their windows
        ``pad_weight`` times as often as another."""
        if self._draw_p is None:
            return generator.integers(len(self.window_start), size=n)
        return generator.choice(len(self.window_start), size=n, p=self._draw_p)

    def window_indices(self, pick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global frame indices (B, T) of windows `pick` (B,) and where they are padding (B, T) bool: a short
        episode's window (with ``pad_action``) starts with copies of its first frame or ends with copies of its
        last (``pad_at``)."""
        raw = self.window_start[pick, None] + self._steps
        offsets = self.episodes.episode_offsets
        if self.pad_at == "end":
            last = offsets[self.window_episode[pick] + 1][:, None] - 1
            return np.minimum(raw, last), raw > last
        first = offsets[self.window_episode[pick]][:, None]
        return np.maximum(raw, first), raw < first

    def window_actions(self, idx: np.ndarray, pad: np.ndarray) -> np.ndarray:
        """Actions int64 (B, T) at frame indices `idx`, ``pad_action`` where `pad` holds (the padding copies of the
        first frame lead to one another, then to it, under that action) and, with end padding, also at the last
        recorded frame (which leads to its first copy)."""
        actions = self.episodes.actions[idx]
        if self.pad_at == "end":
            pad = pad.copy()
            pad[..., :-1] |= pad[..., 1:]
        return np.where(pad, self.pad_action if self.pad_action is not None else -1, actions)

    @classmethod
    def from_folders(cls, folders: str | os.PathLike | Sequence[str | os.PathLike], window: int,
                     split: str | None = None, views: str | Sequence[str] | None = None,
                     pad_action: int | None = None, pad_weight: float | None = None,
                     pad_at: str = "front", pad_views: str | Sequence[str] | None = None) -> "WindowDataset":
        return cls(EpisodeDataset(folders, split=split, views=views), window, pad_action=pad_action,
                   pad_weight=pad_weight, pad_at=pad_at, pad_views=pad_views)

    def __len__(self) -> int:
        return len(self.window_start)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        ep = self.episodes
        idx, pad = self.window_indices(np.array([i]))
        idx, pad = idx[0], pad[0]
        e = int(self.window_episode[i])
        return {
            "frames": torch.from_numpy(ep.frames[idx].copy()),  # (T, H, W, 3) uint8
            "actions": torch.from_numpy(self.window_actions(idx, pad).astype(np.int64)),  # (T,) int64
            "rewards": torch.from_numpy(np.where(pad, 0, ep.rewards[idx]).astype(np.float32)),  # (T,) float32
            "success": torch.from_numpy(ep.success[idx] & ~pad),  # (T,) bool
            "episode": e,
            "start": int(self.window_offset[i]),
            "mission": str(ep.missions[e]),
            "view": str(ep.views[e]),
        }

    def sample_batch(self, batch_size: int, generator: np.random.Generator) -> WindowBatch:
        """`batch_size` windows drawn (with replacement, see `draw`) using `generator`."""
        pick = self.draw(batch_size, generator)  # (B,)
        idx, pad = self.window_indices(pick)  # (B, T) global frame indices
        ep = self.episodes
        episode = self.window_episode[pick]
        return WindowBatch(
            frames=ep.frames[idx],  # (B, T, H, W, 3)
            actions=self.window_actions(idx, pad),
            rewards=np.where(pad, 0, ep.rewards[idx]).astype(np.float32),
            success=ep.success[idx] & ~pad,
            episode=episode,
            start=self.window_offset[pick],
            missions=ep.missions[episode],
            views=ep.views[episode],
        )

    def summary(self) -> dict:
        return {**self.episodes.summary(), "window": self.window, "windows": len(self),
                "episodes_too_short": self.num_short_episodes, "episodes_padded": self.num_padded_episodes,
                "padded_draw_share": 0.0 if self._draw_p is None else float(self._draw_p[self.window_padded].sum())}
