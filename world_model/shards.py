"""Episode shards: the on-disk format of recorded play.

A shard is one compressed ``.npz`` file (what ``np.savez_compressed`` writes, with a fixed zip
timestamp so that equal shards are equal bytes) holding K whole episodes. It is plain numpy: no
pickle is written or read, and this module knows nothing of Gymnasium.

Arrays in a shard (F = total frames of all K episodes; an episode of L steps has L+1 frames,
the reset frame and then one frame per step):

=================  ==============  ===========================================================
key                shape, dtype    meaning
=================  ==============  ===========================================================
frames             (F,H,W,3) u8    all frames of all episodes, concatenated
actions            (F,) int16      actions[j] is the action taken after frame j (j -> j+1);
                                   -1 on the last frame of each episode
rewards            (F,) float32    reward received on arriving at frame j (0 for reset frames)
success            (F,) bool       verifier success on arriving at frame j (False for resets)
episode_offsets    (K+1,) int64    episode k is frames[offsets[k]:offsets[k+1]]
level_seeds        (K,) int64      level seed of each episode (-1 when unknown)
missions           (K,) unicode    mission text ("" when the env has none)
policies           (K,) unicode    who played: "bot", "random", "lookaround", ...
views              (K,) unicode    "first_person", "top_down" or "rgb"
splits             (K,) unicode    "train", "test" or "unknown"
terminated         (K,) bool       episode ended by the env (goal reached / failed)
truncated          (K,) bool       episode ended by a time limit
meta               () unicode      JSON: format, format_version, env_id, frame_shape,
                                   action_meanings, num_actions
branch_frames      (G,H,W,3) u8    counterfactual next frames (see ``Branches``), all episodes
branch_actions     (G,) int16      the action that leads to each branch frame, in [0, A)
branch_sources     (G,) int64      index, within its episode, of the frame whose state was branched
branch_offsets     (K+1,) int64    episode k's branches are rows branch_offsets[k]:branch_offsets[k+1]
=================  ==============  ===========================================================

The four ``branch_*`` arrays are optional: a shard without them has no branches. Version-2
shards (what ``write_shard`` writes) always hold them, empty (G = 0) when no episode has
branches; version-1 shards never do, and are read as they are.

``write_shard`` writes atomically (temp file in the same folder, fsync, ``os.replace``), so a
shard on disk is always complete. ``read_shard`` validates everything and raises ``ShardError``
naming the file, what is wrong and what to do. ``read_shard_index`` reads all but the pixels,
which is cheap, for summaries and for resuming a recording.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

FORMAT_NAME = "genie-env-shard"
FORMAT_VERSION = 2  # what write_shard writes
READABLE_VERSIONS = (1, 2)  # what read_shard accepts; 2 added the optional branch_* arrays
SHARD_GLOB = "shard_*.npz"

# key -> dtype of the per-frame and per-episode arrays (np.str_ means any unicode width)
_FRAME_KEYS = {"actions": np.int16, "rewards": np.float32, "success": np.bool_}
_EPISODE_KEYS = {
    "level_seeds": np.int64,
    "missions": np.str_,
    "policies": np.str_,
    "views": np.str_,
    "splits": np.str_,
    "terminated": np.bool_,
    "truncated": np.bool_,
}
_ALL_KEYS = ("frames", "episode_offsets", "meta", *_FRAME_KEYS, *_EPISODE_KEYS)
_BRANCH_INDEX_KEYS = {"branch_actions": np.int16, "branch_sources": np.int64, "branch_offsets": np.int64}
_BRANCH_KEYS = ("branch_frames", *_BRANCH_INDEX_KEYS)
_WHAT_TO_DO = "re-record it or delete it"


class ShardError(ValueError):
    """A shard file is missing, corrupt, truncated, foreign or from an unsupported version."""


def shard_name(index: int) -> str:
    """File name of shard number `index` inside a recording folder: shard_000042.npz."""
    return f"shard_{index:06d}.npz"


@dataclass(frozen=True)
class ShardMeta:
    """What every shard of one recording shares: the env, the frame shape, the action names."""

    env_id: str
    frame_shape: tuple[int, int, int]  # (H, W, 3)
    action_meanings: tuple[str, ...]  # index -> name, e.g. ("noop", "left", "right")

    def __post_init__(self):
        shape = tuple(int(s) for s in self.frame_shape)
        if len(shape) != 3 or shape[2] != 3 or min(shape) <= 0:
            raise ValueError(f"frame_shape must be (H, W, 3) with H, W > 0, got {self.frame_shape}")
        object.__setattr__(self, "frame_shape", shape)
        object.__setattr__(self, "action_meanings", tuple(str(m) for m in self.action_meanings))
        if not self.action_meanings:
            raise ValueError("action_meanings must name at least one action")

    @property
    def num_actions(self) -> int:
        return len(self.action_meanings)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "env_id": self.env_id,
            "frame_shape": list(self.frame_shape),
            "action_meanings": list(self.action_meanings),
            "num_actions": self.num_actions,
        })

    @classmethod
    def from_json(cls, text: str, source: str = "<meta>") -> "ShardMeta":
        """Parse and check the JSON stored in a shard; `source` names the file in errors."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ShardError(f"{source}: 'meta' is not valid JSON ({e}); {_WHAT_TO_DO}") from e
        found = d.get("format") if isinstance(d, dict) else None
        if found != FORMAT_NAME:
            raise ShardError(f"{source}: not a genie-env shard (meta format {found!r}, expected "
                             f"{FORMAT_NAME!r}); point the tool at a folder recorded by `genie-data record`")
        version = d.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ShardError(f"{source}: shard format_version {version!r} is not supported (this "
                             f"genie-env reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                             f"upgrade genie-env or re-record it")
        try:
            meta = cls(env_id=str(d["env_id"]), frame_shape=tuple(d["frame_shape"]),
                       action_meanings=tuple(d["action_meanings"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ShardError(f"{source}: malformed meta ({e!r}); {_WHAT_TO_DO}") from e
        if d.get("num_actions") != meta.num_actions:
            raise ShardError(f"{source}: meta num_actions={d.get('num_actions')!r} disagrees with "
                             f"{meta.num_actions} action_meanings; {_WHAT_TO_DO}")
        return meta


@dataclass(frozen=True, eq=False)
class Branches:
    """Counterfactual next frames: from the state at frame ``sources[g]`` of an episode, action
    ``actions[g]`` leads to frame ``frames[g]``. A branched state has one branch per action of the
    action set (the action really taken included), so a model can be taught the same context under
    every action. Rows are grouped by source, in increasing source order, actions ascending."""

    sources: np.ndarray  # (G,) int64, 0 <= j < episode.num_frames: frame (within its episode) whose state was branched
    actions: np.ndarray  # (G,) int16, in [0, num_actions)
    frames: np.ndarray  # (G, H, W, 3) uint8, same H, W as the episode's frames

    def __post_init__(self):
        g = len(self.sources)
        if len(self.actions) != g or len(self.frames) != g or np.ndim(self.frames) != 4:
            raise ValueError(f"Branches needs sources (G,), actions (G,) and frames (G, H, W, 3) of one G, got "
                             f"{np.shape(self.sources)}, {np.shape(self.actions)}, {np.shape(self.frames)}")

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def source_frames(self) -> np.ndarray:
        """(S,) int64: the distinct branched frame indices, ascending."""
        return np.unique(np.asarray(self.sources))


@dataclass(frozen=True, eq=False)
class Episode:
    """One recorded episode of L steps (L+1 frames), the in-memory unit of recording."""

    frames: np.ndarray  # (L+1, H, W, 3) uint8
    actions: np.ndarray  # (L+1,) int16; actions[j] leads frame j -> j+1; actions[L] == -1
    rewards: np.ndarray  # (L+1,) float32; rewards[0] == 0
    success: np.ndarray  # (L+1,) bool; success[0] is False
    mission: str = ""
    level_seed: int = -1
    policy: str = "unknown"
    view: str = "rgb"
    split: str = "unknown"
    terminated: bool = False
    truncated: bool = False
    branches: Branches | None = None  # None: the episode has no counterfactual branches

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def num_steps(self) -> int:
        return len(self.frames) - 1


def episode_of(frames: np.ndarray, table, e: int, branch_frames: np.ndarray | None = None) -> Episode:
    """Episode e of episodes stored back to back: frames (N, H, W, 3) and a table (ShardIndex, EpisodeDataset) with
    per-frame actions / rewards / success, per-episode missions ... truncated, and episode_offsets (E + 1,).
    With `branch_frames` (G, H, W, 3) and the table's branch_offsets (E + 1,) / branch_sources / branch_actions,
    the episode gets its Branches (None when it has none). The arrays of the Episode are views."""
    a, b = int(table.episode_offsets[e]), int(table.episode_offsets[e + 1])
    branches = None
    if branch_frames is not None and getattr(table, "branch_offsets", None) is not None:
        c, d = int(table.branch_offsets[e]), int(table.branch_offsets[e + 1])
        if d > c:
            branches = Branches(sources=table.branch_sources[c:d], actions=table.branch_actions[c:d],
                                frames=branch_frames[c:d])
    return Episode(frames=frames[a:b], actions=table.actions[a:b], rewards=table.rewards[a:b],
                   success=table.success[a:b], mission=str(table.missions[e]),
                   level_seed=int(table.level_seeds[e]), policy=str(table.policies[e]),
                   view=str(table.views[e]), split=str(table.splits[e]),
                   terminated=bool(table.terminated[e]), truncated=bool(table.truncated[e]),
                   branches=branches)


@dataclass(frozen=True, eq=False)
class ShardIndex:
    """Everything in a shard except the pixels (cheap to read)."""

    path: Path
    meta: ShardMeta
    actions: np.ndarray  # (F,) int16
    rewards: np.ndarray  # (F,) float32
    success: np.ndarray  # (F,) bool
    episode_offsets: np.ndarray  # (K+1,) int64
    level_seeds: np.ndarray  # (K,) int64
    missions: np.ndarray  # (K,) unicode
    policies: np.ndarray  # (K,) unicode
    views: np.ndarray  # (K,) unicode
    splits: np.ndarray  # (K,) unicode
    terminated: np.ndarray  # (K,) bool
    truncated: np.ndarray  # (K,) bool
    format_version: int = FORMAT_VERSION
    branch_actions: np.ndarray | None = None  # (G,) int16; None: the shard has no branch arrays (version 1)
    branch_sources: np.ndarray | None = None  # (G,) int64, index within the episode
    branch_offsets: np.ndarray | None = None  # (K+1,) int64

    @property
    def num_frames(self) -> int:
        return int(self.episode_offsets[-1])

    @property
    def num_branches(self) -> int:
        """G: counterfactual branch frames in the shard (0 without branches)."""
        return 0 if self.branch_offsets is None else int(self.branch_offsets[-1])

    @property
    def num_episodes(self) -> int:
        return len(self.episode_offsets) - 1

    @property
    def episode_lengths(self) -> np.ndarray:
        """(K,) frames per episode (steps + 1)."""
        return np.diff(self.episode_offsets)


@dataclass(frozen=True, eq=False)
class Shard:
    """A whole shard in memory: the index plus the (F, H, W, 3) uint8 frames."""

    index: ShardIndex
    frames: np.ndarray  # (F, H, W, 3) uint8
    branch_frames: np.ndarray | None = None  # (G, H, W, 3) uint8; None when the shard has no branch arrays

    @property
    def meta(self) -> ShardMeta:
        return self.index.meta

    @property
    def num_episodes(self) -> int:
        return self.index.num_episodes

    def episode(self, k: int) -> Episode:
        """Episode k of this shard (arrays are views into the shard's arrays)."""
        ix = self.index
        if not -ix.num_episodes <= k < ix.num_episodes:
            raise IndexError(f"{ix.path} has {ix.num_episodes} episodes; episode {k} does not exist")
        k %= ix.num_episodes
        return episode_of(self.frames, ix, k, self.branch_frames)

    def episodes(self) -> list[Episode]:
        return [self.episode(k) for k in range(self.num_episodes)]


# ----------------------------------------------------------------------------------------------
# writing


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write a file so that `path` is either its old content or the complete new content.

    `write(f)` fills a temp file ``<name>.<random>.tmp`` in the same folder; it is flushed,
    fsynced and renamed over `path` with ``os.replace``. If `write` raises, the temp file is
    removed and `path` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename itself already happened
    finally:
        os.close(fd)


def _episodes_to_arrays(episodes: Iterable[Episode], meta: ShardMeta) -> dict[str, np.ndarray]:
    episodes = list(episodes)
    if not episodes:
        raise ValueError("a shard needs at least one episode")
    for i, ep in enumerate(episodes):
        n = len(ep.frames)
        if n < 1:
            raise ValueError(f"episode {i} has no frames")
        for name in ("actions", "rewards", "success"):
            if len(getattr(ep, name)) != n:
                raise ValueError(f"episode {i}: {len(getattr(ep, name))} {name} for {n} frames; "
                                 f"an episode of L steps has L+1 frames and L+1 {name}")
    lengths = np.array([len(ep.frames) for ep in episodes], dtype=np.int64)
    branched = [ep.branches for ep in episodes if ep.branches is not None and len(ep.branches)]
    frame_shape = (0, *meta.frame_shape)
    return {
        "frames": np.concatenate([np.asarray(ep.frames, dtype=np.uint8) for ep in episodes]),
        "actions": np.concatenate([np.asarray(ep.actions, dtype=np.int16) for ep in episodes]),
        "rewards": np.concatenate([np.asarray(ep.rewards, dtype=np.float32) for ep in episodes]),
        "success": np.concatenate([np.asarray(ep.success, dtype=np.bool_) for ep in episodes]),
        "episode_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "level_seeds": np.array([ep.level_seed for ep in episodes], dtype=np.int64),
        "missions": np.array([str(ep.mission) for ep in episodes], dtype=np.str_),
        "policies": np.array([str(ep.policy) for ep in episodes], dtype=np.str_),
        "views": np.array([str(ep.view) for ep in episodes], dtype=np.str_),
        "splits": np.array([str(ep.split) for ep in episodes], dtype=np.str_),
        "terminated": np.array([bool(ep.terminated) for ep in episodes], dtype=np.bool_),
        "truncated": np.array([bool(ep.truncated) for ep in episodes], dtype=np.bool_),
        "meta": np.array(meta.to_json(), dtype=np.str_),
        "branch_frames": (np.concatenate([np.asarray(b.frames, dtype=np.uint8) for b in branched]) if branched
                          else np.zeros(frame_shape, np.uint8)),
        "branch_actions": np.concatenate([np.zeros(0, np.int16)]
                                         + [np.asarray(b.actions, dtype=np.int16) for b in branched]),
        "branch_sources": np.concatenate([np.zeros(0, np.int64)]
                                         + [np.asarray(b.sources, dtype=np.int64) for b in branched]),
        "branch_offsets": np.concatenate([[0], np.cumsum([0 if ep.branches is None else len(ep.branches)
                                                          for ep in episodes])]).astype(np.int64),
    }


def write_shard(path: str | os.PathLike, episodes: Iterable[Episode], meta: ShardMeta) -> Path:
    """Write `episodes` as one shard at `path` (atomically; validated before anything is written)."""
    path = Path(path)
    arrays = _episodes_to_arrays(episodes, meta)
    try:
        _validate(arrays, meta, str(path), frames_shape=arrays["frames"].shape,
                  frames_dtype=arrays["frames"].dtype, advice="fix the episodes or the meta",
                  branch_frames_shape=arrays["branch_frames"].shape,
                  branch_frames_dtype=arrays["branch_frames"].dtype)
    except ShardError as e:  # the caller handed us bad episodes: a ValueError, not a corrupt file
        raise ValueError(f"refusing to write an invalid shard: {e}") from None
    atomic_write(path, lambda f: _write_npz(f, arrays))
    return path


def _write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez_compressed`` does, with a fixed timestamp so equal shards are equal bytes."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


# ----------------------------------------------------------------------------------------------
# reading

# what numpy/zipfile raise on damaged or foreign files
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


def _open(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise ShardError(f"{path}: no such shard file; check the path (shards are named shard_NNNNNN.npz)")
    if path.is_dir():
        raise ShardError(f"{path}: is a folder, not a shard file; pass the file or use the folder as --data")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ShardError(f"{path}: not a readable .npz archive ({e}); the file is corrupt or truncated "
                         f"(a killed writer?): {_WHAT_TO_DO}") from e
    names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
    missing = [k for k in _ALL_KEYS if k not in names]
    if missing:
        zf.close()
        raise ShardError(f"{path}: not a genie-env shard, missing arrays {missing}; "
                         f"point the tool at a folder recorded by `genie-data record`")
    return zf


def _load_array(zf: zipfile.ZipFile, key: str, path: Path) -> np.ndarray:
    try:
        with zf.open(key + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except _READ_ERRORS as e:
        raise ShardError(f"{path}: array {key!r} is unreadable ({type(e).__name__}: {e}); "
                         f"the file is corrupt or truncated: {_WHAT_TO_DO}") from e


def _frames_header(zf: zipfile.ZipFile, path: Path, key: str = "frames") -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a frames array, read from the .npy header without decompressing it all."""
    try:
        with zf.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except _READ_ERRORS as e:
        raise ShardError(f"{path}: array {key!r} has an unreadable header ({e}); {_WHAT_TO_DO}") from e
    return shape, dtype


def _validate(arrays: dict[str, np.ndarray], meta: ShardMeta, source: str,
              frames_shape: tuple[int, ...], frames_dtype: np.dtype, advice: str = _WHAT_TO_DO,
              branch_frames_shape: tuple[int, ...] | None = None, branch_frames_dtype: np.dtype | None = None) -> None:
    """Check dtypes, shapes and offsets of a shard's arrays; raise ShardError on the first problem.
    The branch_* arrays are checked when `branch_frames_shape` is given (then all four must be in `arrays`)."""

    def fail(what: str):
        raise ShardError(f"{source}: {what}; {advice}")

    if frames_dtype != np.uint8:
        fail(f"frames have dtype {frames_dtype}, expected uint8")
    if len(frames_shape) != 4 or tuple(frames_shape[1:]) != meta.frame_shape:
        fail(f"frames have shape {tuple(frames_shape)}, expected (F, {', '.join(map(str, meta.frame_shape))})")
    num_frames = frames_shape[0]

    offsets = arrays["episode_offsets"]
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 2:
        fail(f"episode_offsets must be a 1-d int64 array of K+1 >= 2 entries, got "
             f"{offsets.dtype} {offsets.shape}")
    if offsets[0] != 0 or offsets[-1] != num_frames or np.any(np.diff(offsets) < 1):
        fail(f"episode_offsets {offsets[:4].tolist()}...{offsets[-1]} are inconsistent with {num_frames} "
             f"frames (must start at 0, end at F and increase)")
    num_episodes = len(offsets) - 1

    for key, dtype in _FRAME_KEYS.items():
        a = arrays[key]
        if a.dtype != dtype or a.shape != (num_frames,):
            fail(f"{key!r} is {a.dtype} {a.shape}, expected {np.dtype(dtype)} ({num_frames},)")
    for key, dtype in _EPISODE_KEYS.items():
        a = arrays[key]
        ok_dtype = a.dtype.kind == "U" if dtype is np.str_ else a.dtype == dtype
        if not ok_dtype or a.shape != (num_episodes,):
            want = "unicode" if dtype is np.str_ else np.dtype(dtype)
            fail(f"{key!r} is {a.dtype} {a.shape}, expected {want} ({num_episodes},)")

    actions = arrays["actions"]
    last = offsets[1:] - 1
    if np.any(actions[last] != -1):
        fail("the last frame of every episode must have action -1")
    inner = np.ones(num_frames, dtype=bool)
    inner[last] = False
    if np.any((actions[inner] < 0) | (actions[inner] >= meta.num_actions)):
        fail(f"actions outside [0, {meta.num_actions}) inside an episode")
    if branch_frames_shape is None:
        return

    if branch_frames_dtype != np.uint8:
        fail(f"branch_frames have dtype {branch_frames_dtype}, expected uint8")
    if len(branch_frames_shape) != 4 or tuple(branch_frames_shape[1:]) != meta.frame_shape:
        fail(f"branch_frames have shape {tuple(branch_frames_shape)}, expected "
             f"(G, {', '.join(map(str, meta.frame_shape))})")
    num_branches = branch_frames_shape[0]
    boffsets = arrays["branch_offsets"]
    if boffsets.dtype != np.int64 or boffsets.shape != (num_episodes + 1,):
        fail(f"'branch_offsets' is {boffsets.dtype} {boffsets.shape}, expected int64 ({num_episodes + 1},)")
    if boffsets[0] != 0 or boffsets[-1] != num_branches or np.any(np.diff(boffsets) < 0):
        fail(f"branch_offsets {boffsets[:4].tolist()}...{boffsets[-1]} are inconsistent with {num_branches} "
             f"branch frames (must start at 0, end at G and never decrease)")
    for key, dtype in _BRANCH_INDEX_KEYS.items():
        if key == "branch_offsets":
            continue
        a = arrays[key]
        if a.dtype != dtype or a.shape != (num_branches,):
            fail(f"{key!r} is {a.dtype} {a.shape}, expected {np.dtype(dtype)} ({num_branches},)")
    b_actions = arrays["branch_actions"]
    if np.any((b_actions < 0) | (b_actions >= meta.num_actions)):
        fail(f"branch_actions outside [0, {meta.num_actions})")
    lengths = np.repeat(np.diff(offsets), np.diff(boffsets))  # (G,) length of each branch's episode
    sources = arrays["branch_sources"]
    if np.any((sources < 0) | (sources >= lengths)):
        fail("branch_sources outside their episode (0 <= source < episode frames)")


def _read(path: str | os.PathLike, with_frames: bool) -> tuple[ShardIndex, np.ndarray | None, np.ndarray | None]:
    path = Path(path)
    with _open(path) as zf:
        meta_arr = _load_array(zf, "meta", path)
        if meta_arr.dtype.kind != "U" or meta_arr.shape != ():
            raise ShardError(f"{path}: 'meta' must be a 0-d unicode array, got {meta_arr.dtype} "
                             f"{meta_arr.shape}; not a genie-env shard")
        meta = ShardMeta.from_json(str(meta_arr[()]), source=str(path))
        arrays = {k: _load_array(zf, k, path) for k in ("episode_offsets", *_FRAME_KEYS, *_EPISODE_KEYS)}
        if with_frames:
            frames = _load_array(zf, "frames", path)
            shape, dtype = frames.shape, frames.dtype
        else:
            frames = None
            shape, dtype = _frames_header(zf, path)
        names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        present = [k for k in _BRANCH_KEYS if k in names]
        branch_frames = b_shape = b_dtype = None
        if present and len(present) != len(_BRANCH_KEYS):
            raise ShardError(f"{path}: has {present} but not all of {list(_BRANCH_KEYS)}; the branch arrays "
                             f"come together: {_WHAT_TO_DO}")
        if present:
            arrays.update({k: _load_array(zf, k, path) for k in _BRANCH_INDEX_KEYS})
            if with_frames:
                branch_frames = _load_array(zf, "branch_frames", path)
                b_shape, b_dtype = branch_frames.shape, branch_frames.dtype
            else:
                b_shape, b_dtype = _frames_header(zf, path, "branch_frames")
    _validate(arrays, meta, str(path), frames_shape=shape, frames_dtype=dtype,
              branch_frames_shape=b_shape, branch_frames_dtype=b_dtype)
    version = json.loads(str(meta_arr[()]))["format_version"]
    index = ShardIndex(path=path, meta=meta, format_version=int(version), **arrays)
    return index, frames, branch_frames


def read_shard_index(path: str | os.PathLike) -> ShardIndex:
    """Read and validate everything in a shard except the pixels (fast)."""
    return _read(path, with_frames=False)[0]


def read_shard(path: str | os.PathLike) -> Shard:
    """Read and validate a whole shard; raises ShardError naming the file and what to do."""
    index, frames, branch_frames = _read(path, with_frames=True)
    return Shard(index=index, frames=frames, branch_frames=branch_frames)


def list_shards(folder: str | os.PathLike) -> list[Path]:
    """Complete shard files of a recording folder, in order (leftover *.tmp files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(f"{folder}: not a folder; pass the folder that `genie-data record --out` wrote")
    return sorted(folder.glob(SHARD_GLOB))
