"""The success judge: a mission-conditioned classifier that says whether the last frames show the mission done.

Inside a generated world there is no verifier: nothing tells an agent that "open the red door" happened. The judge
learns the ground truth's verdict instead. It reads the last k frames (the door swinging open, the key landing in
the agent's hands) and the mission text, and predicts the probability that the verifier reported success at the
last of those frames. GenieWorld turns that probability into a reward (1 and the end of the episode when it passes
a threshold), as SIMA's evaluations inside Genie 2 needed.

    judge = SuccessJudge.load("default")                      # or a folder written by train_judge
    p = judge.predict(frames, ["open the red door"] * B)      # frames uint8 (B, k, H, W, 3) -> (B,) in [0, 1]

Architecture (a few hundred thousand parameters; shapes for B windows of k frames of H x W pixels):

    frames (B, k, H, W, 3) uint8 -> stacked on channels (B, 3k, H, W) in [-1, 1]
      -> len(channels) x [conv 4x4 stride 2, SiLU, conv 3x3, SiLU]          (B, C, H / 2^L, W / 2^L)
      -> FiLM by the mission: h * (1 + gamma(m)) + beta(m)                  (which colour / object matters)
      -> global mean and max pooling                                        (B, 2C)
    mission -> words -> ids (B, max_words) -> embedding + position, masked mean, linear, SiLU   m: (B, D)
    [pooled, m] -> MLP -> one logit                                         (B,)

The vocabulary is part of the config (so a checkpoint carries its own); by default train_judge builds it from the
words of the training missions (:func:`genie_env.mission.build_vocabulary`). Unknown words map to ``<unk>``.

Training (``train_judge``): every frame of every recorded episode ends one window of k frames (frames before the
episode start repeat its first frame, as GenieWorld does for its first steps); the label is the verifier's success
flag at that frame. Successes are rare (one frame per solved episode), so each batch draws ``positive_share`` of its
windows from the successes and the rest uniformly from all frames; ``mismatch_share`` of the positives get another
recorded mission instead of their own and the label 0, which forces the judge to read the mission. AdamW, bf16
autocast where native, binary cross-entropy on the logit. Recordings dreamed by a world model (``genie-data
dream``: recorded actions and verdicts, generated frames) train it alike; their successes are drawn so that dreamed
frames are as common among the successes as among all frames (``balance_dreamed``), else the look of generated
frames would itself predict success whenever the dreamed episodes are richer in successes than the recorded ones.

Checkpoint: a folder with ``config.json`` ({"format": "genie-success-judge", "format_version": 1, "config": ...,
"training": ...}) and ``model.safetensors``, written atomically; nothing is ever unpickled.

CLI (``genie-train judge`` calls :func:`main`)::

    genie-train judge --data runs/data/gotolocal --out genie_env/checkpoints/judge --steps 3000
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from genie_env.mission import MAX_MISSION_WORDS, PAD, UNK, VOCABULARY, build_vocabulary, mission_words
from world_model.checkpoint import (CONFIG_FILE, CheckpointError, load_into, read_config, read_section, read_tensors,
                                    save_model, write_json)
from world_model.cli_arguments import add_arguments, from_namespace
from world_model.dataset import DatasetError, EpisodeDataset
from world_model.hardware import resolve_bf16

logger = logging.getLogger(__name__)

FORMAT_JUDGE = "genie-success-judge"
JUDGE_FORMAT_VERSION = 1
DEFAULT_JUDGE_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "judge"
WRITTEN_BY = "`genie-train judge --out FOLDER` (train_judge)"


@dataclass(frozen=True)
class JudgeConfig:
    image_size: int = 64
    """Frame height and width the judge sees (other sizes are resized to it)."""
    frames: int = 4
    """k: how many of the most recent frames one verdict reads."""
    channels: tuple[int, ...] = (32, 64, 128)
    """Conv channels per stride-2 level."""
    mission_dim: int = 64
    """Size of the mission embedding."""
    hidden: int = 128
    """Width of the MLP head."""
    max_words: int = MAX_MISSION_WORDS
    """Missions are cut to this many words."""
    vocabulary: tuple[str, ...] = VOCABULARY
    """Known words; index 0 must be "<pad>" and index 1 "<unk>" (any other word)."""
    threshold: float = 0.5
    """Default decision threshold on the success probability."""

    def __post_init__(self):
        if self.frames < 1 or self.image_size < 2 ** len(self.channels) or not self.channels:
            raise ValueError(f"need frames >= 1, at least one conv level and image_size >= 2^levels; got {self}")
        if tuple(self.vocabulary[:2]) != (PAD, UNK) or len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError(f"vocabulary must start with {PAD!r}, {UNK!r} and hold each word once")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"], d["vocabulary"] = list(self.channels), list(self.vocabulary)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JudgeConfig":
        d = dict(d)
        d["channels"], d["vocabulary"] = tuple(d["channels"]), tuple(d["vocabulary"])
        return cls(**d)


PRESETS = {
    "tiny": JudgeConfig(channels=(8, 16), mission_dim=16, hidden=32),
    "default": JudgeConfig(),
}


class SuccessJudge(nn.Module):
    """Mission-conditioned success classifier over the last k frames (see the module docstring)."""

    def __init__(self, config: JudgeConfig):
        super().__init__()
        self.config = config
        c_in, layers = 3 * config.frames, []
        for c in config.channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.SiLU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        D = config.mission_dim
        self.word = nn.Embedding(len(config.vocabulary), D, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(config.max_words, D))
        self.mission_proj = nn.Linear(D, D)
        self.film = nn.Linear(D, 2 * c_in)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.head = nn.Sequential(nn.Linear(2 * c_in + D, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 1))
        self._index = {w: i for i, w in enumerate(config.vocabulary)}
        self.eval()

    # ------------------------------------------------------------------------------------------ inputs

    def tokenize(self, missions: Sequence[str]) -> torch.Tensor:
        """Missions -> word ids (B, max_words) long, padded with 0, unknown words 1."""
        ids = torch.zeros(len(missions), self.config.max_words, dtype=torch.long)
        for b, text in enumerate(missions):
            words = mission_words(text)[: self.config.max_words]
            ids[b, : len(words)] = torch.tensor([self._index.get(w, 1) for w in words], dtype=torch.long)
        return ids.to(self.device)

    def _pixels(self, frames) -> torch.Tensor:
        """uint8 (B, k, H, W, 3) -> float (B, 3k, S, S) in [-1, 1], resized to the judge's image size."""
        x = torch.as_tensor(np.asarray(frames), device=self.device)
        k, size = self.config.frames, self.config.image_size
        if x.dim() != 5 or x.shape[1] != k or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 (B, {k}, H, W, 3): the last {k} frames of each world; got "
                             f"{x.dtype} {tuple(x.shape)}")
        B, _, H, W, _ = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(B, 3 * k, H, W).float() / 127.5 - 1.0
        if (H, W) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    @property
    def device(self) -> torch.device:
        return self.position.device

    # ------------------------------------------------------------------------------------------ model

    def forward(self, pixels: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3k, S, S) in [-1, 1], words (B, max_words) -> success logits (B,)."""
        mask = (words != 0).unsqueeze(-1).float()  # (B, Lw, 1)
        e = self.word(words) + self.position[: words.shape[1]]  # (B, Lw, D)
        m = (e * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, D)
        m = F.silu(self.mission_proj(m))
        h = self.conv(pixels)  # (B, C, s, s)
        gamma, beta = self.film(m).chunk(2, dim=-1)  # (B, C) each
        h = h * (1 + gamma[..., None, None]) + beta[..., None, None]
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=-1)  # (B, 2C)
        return self.head(torch.cat([pooled, m], dim=-1))[:, 0]

    @torch.no_grad()
    def predict(self, frames, missions: Sequence[str]) -> np.ndarray:
        """Success probabilities float32 (B,) for frames uint8 (B, k, H, W, 3) and B mission strings."""
        missions = [missions] if isinstance(missions, str) else list(missions)
        pixels = self._pixels(frames)
        if len(missions) != pixels.shape[0]:
            raise ValueError(f"got {pixels.shape[0]} windows of frames but {len(missions)} missions; pass one "
                             "mission per window")
        was_training = self.training
        self.eval()
        logits = self(pixels, self.tokenize(missions))
        self.train(was_training)
        return torch.sigmoid(logits.float()).cpu().numpy().astype(np.float32)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------------------------------ checkpoints

    def save(self, folder: str | Path, training: dict | None = None) -> Path:
        """Atomically write config.json + model.safetensors (fp32) into `folder`."""
        config = {"format": FORMAT_JUDGE, "format_version": JUDGE_FORMAT_VERSION, "config": self.config.to_dict(),
                  "training": training or {}}
        return save_model(folder, config, self.state_dict())

    @classmethod
    def load(cls, path: str | Path = "default", device: str | torch.device = "cpu") -> "SuccessJudge":
        """Load a judge checkpoint folder; "default" is the judge shipped in the package."""
        if str(path) == "default":
            path = DEFAULT_JUDGE_CHECKPOINT
            if not (path / CONFIG_FILE).is_file():
                raise CheckpointError(
                    f"the default success judge is not installed ({path} is missing). Train one with "
                    f"`genie-train judge --data RECORDINGS... --out {path}`, or pass the folder of another judge "
                    "checkpoint, or use judge=None / a reward_fn")
        raw = read_config(path, FORMAT_JUDGE, JUDGE_FORMAT_VERSION, written_by=WRITTEN_BY)
        judge = cls(read_section(raw, "config", JudgeConfig.from_dict, "success judge", Path(path) / CONFIG_FILE))
        load_into(judge, read_tensors(path), "judge")
        judge.training_metadata = raw.get("training", {})
        return judge.to(device).eval()


# ---------------------------------------------------------------------------------------------- data


class JudgeWindows:
    """Every frame of every episode as the end of a window of k frames, with its success label.

    frames before an episode's first frame repeat that first frame (GenieWorld's first steps look the same).
    """

    def __init__(self, episodes: EpisodeDataset, frames: int):
        self.episodes, self.k = episodes, frames
        offsets = episodes.episode_offsets
        self.episode_of = np.repeat(np.arange(episodes.num_episodes), episodes.episode_lengths)  # (N,)
        self.first = offsets[self.episode_of]  # (N,) global index of each frame's episode start
        self.labels = episodes.success.astype(bool)  # (N,)
        self.positives = np.flatnonzero(self.labels)
        self.dreamed = np.repeat(episodes.dreamed, episodes.episode_lengths)  # (N,) bool: a world model's frame
        self.missions = episodes.missions  # (E,)

    def __len__(self) -> int:
        return len(self.labels)

    def frames(self, ends: np.ndarray) -> np.ndarray:
        """uint8 (B, k, H, W, 3): the windows ending at global frame indices `ends` (B,)."""
        idx = ends[:, None] - (self.k - 1) + np.arange(self.k)  # (B, k)
        idx = np.maximum(idx, self.first[ends][:, None])
        return self.episodes.frames[idx]

    def missions_of(self, ends: np.ndarray) -> np.ndarray:
        return self.missions[self.episode_of[ends]]


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


@dataclass(frozen=True)
class JudgeArgs:
    """What :func:`train_judge` trains on and how, and what ``genie-train judge`` evaluates (one flag per field)."""

    data: tuple[str, ...]
    """recording folder(s) written by `genie-data record` (their --split episodes are used)"""
    out: str
    """checkpoint folder to write"""
    steps: int = 2000
    """optimizer steps"""
    batch_size: int = 64
    """windows per step"""
    lr: float = 1e-3
    """AdamW learning rate"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    preset: str = "default"
    """model size: tiny or default"""
    frames: int | None = None
    """k, frames per verdict (default: the preset's)"""
    vocabulary: tuple[str, ...] = ()
    """known words, "<pad>" and "<unk>" first (default: the words of the training missions)"""
    positive_share: float = 0.5
    """share of each batch drawn from successes, in [0, 1]"""
    mismatch_share: float = 0.25
    """share of positives given a wrong mission and label 0, in [0, 1]"""
    split: str = "train"
    """episodes of this split are trained on ("all" for every split)"""
    balance_dreamed: bool = True
    """draw successes so that dreamed frames (`genie-data dream`) are as common among them as among all frames: where
    a frame comes from then says nothing about its label (--no-balance-dreamed: draw them uniformly)"""
    seed: int = 0
    """seed of sampling and initialisation"""
    bf16: bool | None = None
    """train under bf16 autocast (--no-bf16: fp32); default: where the device runs bf16 natively
    (world_model.hardware)"""
    device: str = "cpu"
    """torch device to train on"""
    log_every: int = 100
    """steps between loss lines in the log (0: none)"""
    quiet: bool = False
    """no progress bar"""
    eval_data: tuple[str, ...] = ()
    """genie-train judge: recordings to evaluate on (default: --data); their --eval-split episodes are used"""
    eval_split: str = "test"
    """genie-train judge: split of held-out episodes ("none" skips the evaluation)"""
    eval_dreamed: tuple[str, ...] = ()
    """genie-train judge: the held-out recordings re-played inside the world model (`genie-data dream`), to evaluate
    on generated frames too"""
    report: str | None = None
    """genie-train judge: also write the training + held-out evaluation report as JSON here"""


def positive_weights(windows: JudgeWindows) -> np.ndarray | None:
    """Sampling probabilities (P,) of the success windows that give dreamed and recorded frames the same share among
    the successes drawn as among all frames (None when the windows hold only one kind, or one kind has no success:
    then nothing can be balanced)."""
    dreamed = windows.dreamed[windows.positives]  # (P,)
    if dreamed.all() or not dreamed.any():
        return None
    share = windows.dreamed.mean()  # the dreamed share of all frames
    p = np.where(dreamed, share / dreamed.sum(), (1.0 - share) / (~dreamed).sum())
    return p / p.sum()


def train_judge(args: JudgeArgs) -> SuccessJudge:
    """Train a SuccessJudge on the recordings ``args.data`` (``genie-data record`` folders) and save it to
    ``args.out``; returns the trained judge (in eval mode). Each batch draws ``positive_share`` of its windows from
    success frames; ``mismatch_share`` of those get another mission and the label 0."""
    steps, batch_size, preset, seed = args.steps, args.batch_size, args.preset, args.seed
    split = None if args.split == "all" else args.split
    positive_share, mismatch_share = args.positive_share, args.mismatch_share
    if preset not in PRESETS:
        raise ValueError(f"unknown judge preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if steps < 1 or batch_size < 2:
        raise ValueError(f"need steps >= 1 and batch_size >= 2, got {steps} and {batch_size}")
    if not (0.0 <= positive_share <= 1.0 and 0.0 <= mismatch_share <= 1.0):
        raise ValueError("positive_share and mismatch_share must be in [0, 1]")
    episodes = EpisodeDataset(list(args.data), split=split)
    height, width = episodes.meta.frame_shape[:2]
    if height != width:
        raise DatasetError(f"the judge reads square frames; these recordings have {height}x{width} frames")
    config = PRESETS[preset]
    vocab = tuple(args.vocabulary) or build_vocabulary(episodes.missions.tolist())
    config = replace(config, image_size=int(height), vocabulary=vocab,
                     frames=int(args.frames) if args.frames is not None else config.frames)
    windows = JudgeWindows(episodes, config.frames)
    if len(windows.positives) == 0:
        raise DatasetError(f"no frame of {', '.join(map(str, episodes.folders))} (split={split!r}) has success=True; "
                           "the judge needs solved episodes: record with --policy bot or mix")
    distinct_missions = np.unique(episodes.missions)

    device = torch.device(args.device)
    args = replace(args, bf16=resolve_bf16(args.bf16, device))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    judge = SuccessJudge(config).to(device)
    judge.train()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    n_pos = int(round(batch_size * positive_share))
    positive_p = positive_weights(windows) if args.balance_dreamed else None
    start, history = time.time(), []
    for step in tqdm(range(steps), desc="training judge", disable=args.quiet):
        ends = np.concatenate([rng.choice(windows.positives, size=n_pos, p=positive_p),
                               rng.integers(len(windows), size=batch_size - n_pos)])  # (B,)
        labels = windows.labels[ends].astype(np.float32)
        missions = windows.missions_of(ends).astype(object)
        if len(distinct_missions) > 1 and mismatch_share > 0:
            swap = np.flatnonzero(labels > 0)
            swap = swap[rng.random(len(swap)) < mismatch_share]
            for b in swap:
                others = distinct_missions[distinct_missions != missions[b]]
                missions[b] = others[rng.integers(len(others))]
                labels[b] = 0.0
        pixels = judge._pixels(windows.frames(ends))
        words = judge.tokenize([str(m) for m in missions])
        with _autocast(device, args.bf16):
            logits = judge(pixels, words)
        loss = F.binary_cross_entropy_with_logits(logits.float(), torch.as_tensor(labels, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(judge.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history.append(float(loss.detach()))
        if args.log_every and (step + 1) % args.log_every == 0:
            logger.info("judge step %d/%d loss %.4f", step + 1, steps, float(np.mean(history[-args.log_every:])))

    judge.eval()
    training = {
        "steps": steps, "batch_size": batch_size, "lr": args.lr, "weight_decay": args.weight_decay, "preset": preset,
        "positive_share": positive_share, "mismatch_share": mismatch_share, "split": split, "seed": seed,
        "data": [str(f) for f in episodes.folders], "episodes": episodes.num_episodes,
        "frames": episodes.num_frames, "positives": int(len(windows.positives)),
        "dreamed_frames": int(windows.dreamed.sum()), "dreamed_positives": int(windows.dreamed[windows.positives].sum()),
        "balance_dreamed": bool(args.balance_dreamed),
        "final_loss": float(np.mean(history[-min(len(history), 50):])), "seconds": round(time.time() - start, 1),
    }
    judge.save(args.out, training=training)
    judge.training_metadata = training
    return judge


@torch.no_grad()
def judge_probabilities(judge: SuccessJudge, windows: JudgeWindows, batch_size: int = 256) -> np.ndarray:
    """The judge's success probability float32 (N,) for every window of `windows`."""
    probs = np.zeros(len(windows), dtype=np.float32)
    for s in range(0, len(windows), batch_size):
        ends = np.arange(s, min(s + batch_size, len(windows)))
        probs[ends] = judge.predict(windows.frames(ends), [str(m) for m in windows.missions_of(ends)])
    return probs


def episode_verdicts(windows: JudgeWindows, predicted: np.ndarray) -> dict:
    """Episode-level agreement of a judge's per-frame verdicts `predicted` (N,) bool with the verifier, judged the way
    GenieWorld uses them: an episode ends at the judge's first firing.

    ``solved`` / ``unsolved``: episodes where the verifier reported success somewhere / nowhere;
    ``fires_when_solved``: share of solved episodes where the judge fires at all, ``on_time_when_solved``: share
    where its first firing is at the verifier's first success (neither before nor after), ``early_when_solved``:
    share where it first fires before it; ``fires_when_unsolved``: share of unsolved episodes where it fires (a
    false success); ``accuracy``: share of episodes where "fires somewhere" equals "solved"."""
    offsets = windows.episodes.episode_offsets
    solved = fired = on_time = early = false_fire = n_solved = 0
    agree = 0
    for e in range(len(offsets) - 1):
        a, b = int(offsets[e]), int(offsets[e + 1])
        truth, said = windows.labels[a:b], predicted[a:b]
        t_first = int(np.argmax(truth)) if truth.any() else None
        p_first = int(np.argmax(said)) if said.any() else None
        agree += (t_first is not None) == (p_first is not None)
        if t_first is None:
            false_fire += p_first is not None
            continue
        n_solved += 1
        fired += p_first is not None
        on_time += p_first == t_first
        early += p_first is not None and p_first < t_first
    n = len(offsets) - 1
    n_unsolved = n - n_solved
    share = (lambda k, m: k / m if m else None)
    return {"episodes": n, "solved": n_solved, "unsolved": n_unsolved, "accuracy": share(agree, n),
            "fires_when_solved": share(fired, n_solved), "on_time_when_solved": share(on_time, n_solved),
            "early_when_solved": share(early, n_solved), "fires_when_unsolved": share(false_fire, n_unsolved)}


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of `scores` for boolean `labels` (ties count half); None without both classes."""
    labels = np.asarray(labels, bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]  # first index of each run of equal scores
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)  # average 1-based rank of each run
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def judge_scores(probs: np.ndarray, windows: JudgeWindows, threshold: float) -> dict:
    """Frame-level precision / recall / F1 / ROC AUC and episode-level verdicts (:func:`episode_verdicts`) of success
    probabilities `probs` (N,) on `windows`, firing above `threshold`."""
    predicted, truth = probs > threshold, windows.labels
    tp, fp, fn = int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "auc": roc_auc(probs, truth), "threshold": threshold,
            "positives": int(truth.sum()), "negatives": int((~truth).sum()), "true_positives": tp,
            "false_positives": fp, "episodes": episode_verdicts(windows, predicted)}


def evaluate_judge(judge: SuccessJudge, data_dirs: str | Path | Sequence[str | Path], split: str | None = "test",
                   threshold: float | None = None, batch_size: int = 256) -> dict:
    """Precision / recall / F1 / AUC of `judge` on every frame of the held-out episodes of `split`, and its
    episode-level agreement with the verifier (``episodes``, see :func:`episode_verdicts`).

    A frame is positive when the verifier reported success there; the judge says positive when its probability
    exceeds `threshold` (default: the judge's own). Record held-out worlds with
    ``genie-data record ... --worlds test`` (BabyAI3D's test seeds) to get a "test" split; ``genie-data dream``
    re-plays them inside a world model, to measure the judge on generated frames.
    """
    threshold = judge.config.threshold if threshold is None else float(threshold)
    windows = JudgeWindows(EpisodeDataset(data_dirs, split=split), judge.config.frames)
    return {**judge_scores(judge_probabilities(judge, windows, batch_size), windows, threshold), "split": split}


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``genie-train judge``: train a success judge on recordings, save it, evaluate it on held-out episodes."""
    parser = argparse.ArgumentParser(prog="genie-train judge", description=main.__doc__)
    add_arguments(parser, JudgeArgs)
    args = from_namespace(JudgeArgs, parser.parse_args(argv))
    try:
        judge = train_judge(args)
    except (DatasetError, ValueError, CheckpointError) as e:
        print(f"genie-train judge: error: {e}", file=sys.stderr)
        return 2
    report = {"out": str(args.out), "training": judge.training_metadata}
    if args.eval_split.lower() != "none":
        for key, folders in (("evaluation", args.eval_data or args.data), ("dreamed", args.eval_dreamed)):
            if not folders:
                continue
            try:
                report[key] = evaluate_judge(judge, list(folders), split=args.eval_split)
            except DatasetError as e:
                report[key] = None
                print(f"genie-train judge: no evaluation on {', '.join(folders)} ({e})", file=sys.stderr)
    print(json.dumps(report, indent=2))
    if args.report:
        evaluation = report.get("evaluation") or {}
        saved = {"benchmark": "judge", "command": "genie-train judge " + " ".join(
            sys.argv[2:] if argv is None else argv), **evaluation, **report}
        write_json(args.report, saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
