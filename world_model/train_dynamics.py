"""Dynamics training: the EDM denoiser over the dynamics transformer on latent windows of a frozen autoencoder.

    genie-train dynamics --data data/recordings --autoencoder runs/ae --preset default --out runs/dyn --steps 20000
    genie-train export --dynamics runs/dyn --out world_model/checkpoints/default

The loop, run directory and resume are world_model/training.py's; the dynamics add:

    RUN/latents.safetensors  the dataset pre-encoded by the frozen autoencoder (shared by the ranks), its
                             counterfactual branch frames included

A dynamics checkpoint holds the frozen autoencoder too and is a complete world-model checkpoint: WorldModel.load
accepts the run directory (newest checkpoint) or one ckpt folder; `export` writes a compact fp16 copy. Its model is
the EMA of the weights; at every checkpoint it records the autoregressive PSNR of held-out windows by horizon
(`eval_psnr_h{1,4,16}`, mean per-frame PSNR in dB). The action set (number and names) is the recordings'
(ShardMeta.action_meanings).

Training on the model's own frames (see world_model/diffusion.py; all off by default): context levels drawn up to
--context-sigma-max (uniformly with --context-sigma-draw uniform) while the sampler caches at --context-sigma;
--unroll-steps / --unroll-prob windows continued on the model's own predictions; --branch-share of each batch made
of counterfactual branch groups (recordings with branches: the same context under several actions, each with its
own next frame as the target).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from . import dynamics as dyn_mod
from .autoencoder import Autoencoder, AutoencoderConfig, frames_to_pixels
from .checkpoint import (FORMAT_AUTOENCODER, FORMAT_WORLD_MODEL, CheckpointError, latest_checkpoint, load_into,
                         read_config, read_tensors, resolve_checkpoint, run_checkpoints, sub_state)
from .diffusion import Denoiser, DiffusionConfig
from .dynamics import Dynamics, DynamicsConfig
from .inference import DEFAULT_CHECKPOINT, WorldModel, WorldModelConfig
from .metrics import psnr
from .sampler import SamplerConfig
from .training import Runtime, TrainArgs, Trainer, open_windows, transformer_flops

#: What `--train-only` can name: the parts of the dynamics that can be trained alone.
TRAIN_ONLY = ("view-adapters", "patch-io")
#: the parameters each --train-only trains (name contains one of these)
TRAINED_PARTS = {"view-adapters": (".adapters.",), "patch-io": ("patch_in.", "patch_out.")}


@dataclass(frozen=True, kw_only=True)
class DynamicsArgs(TrainArgs):
    """The dynamics' knobs; those named like a DiffusionConfig field set it (`diffusion_config`)."""

    kind: ClassVar[str] = "dynamics"
    presets: ClassVar[dict] = dyn_mod.PRESETS

    autoencoder: str
    """The autoencoder run directory or checkpoint (or a world-model checkpoint)."""
    batch_size: int = 8
    """Windows per rank and step."""
    lr: float = 3e-4
    """Peak learning rate."""
    ema_decay: float = 0.998
    """Decay of the exponential moving average of the weights that checkpoints, evaluation and export use, in
    [0, 1) (0 = off; the raw weights are kept beside it for resuming)."""
    window: int | None = None
    """Frames per training window (default context_frames + 1, what the sampler sees)."""
    attention: str | None = None
    """Attention layout, overriding the preset's: "frame_causal" (every token attends to every token of its own
    and earlier frames) or "factorised" (spatial within a frame, then causal over time per position, as Genie's
    ST-transformer); see DynamicsConfig.attention."""
    context_frames: int | None = None
    """Frames of context the model attends to, overriding the preset's (the default window is this + 1). A model
    of a fully observed view (top-down) needs few; the cost of attention grows with it."""
    patch_size: int | None = None
    """Side of the square latent patch that becomes one token, overriding the preset's (2: 64 tokens per 16x16
    latent frame; 4: 16 tokens)."""
    init_from: str | None = None
    """Start a new run from the dynamics weights of this world-model checkpoint (e.g. world_model/checkpoints/
    default) instead of random ones; it must have the preset's architecture and the --autoencoder's latents.
    Ignored when the run resumes."""
    objective: str = "forcing"
    """"forcing" (Diffusion Forcing, every frame a target) or "augment" (GameNGen noise augmentation, the last frame
    of each window the only target); see world_model/diffusion.py."""
    context_sigma: float = 0.1
    """Noise level (> 0) of past frames, the sampler's default (and at training, unless context_sigma_min or
    context_sigma_max set a range around it)."""
    context_sigma_min: float | None = None
    """Lower end (in (0, context_sigma)) of the training context levels: each context frame's level is drawn from
    [context_sigma_min, context_sigma_max or context_sigma] (see context_sigma_draw), so that sampling can cache
    past frames at any level of that range; None: the range starts at context_sigma."""
    p_mean: float = -0.4
    """Mean of ln(sigma) of the training noise levels (DiffusionConfig.p_mean; DIAMOND's -0.4). Tokens of more latent
    positions keep more signal at a given level, as images of a higher resolution do: for the fine autoencoder's
    32 x 32 latent in 4 x 4 patches a shift of ln 2 (to 0.29), with the sampler's levels doubled at export
    (--sigma-max 10 --sigma-min 0.2), is the resolution shift of Hoogeboom et al. 2023 (simple diffusion)."""
    change_weight: float = 0.0
    """Extra loss weight (>= 0) on latent positions that change from the previous frame (0 = uniform; see
    DiffusionConfig.change_weight)."""
    change_cap: float = 10.0
    """Largest relative change (> 0) that --change-weight counts: a position's weight is at most (1 + change_weight x
    change_cap) / (1 + change_weight), which bounds how far the weight tilts the optimum towards what moves
    (DiffusionConfig.change_cap)."""
    change_scope: str = "frame"
    """Where --change-weight looks for change: "frame" (each frame's own change), "window" (a position's largest
    change anywhere in its window, on every frame of it) or "past" (its largest change before the frame weighed,
    which never tilts the optimum towards change; DiffusionConfig.change_scope)."""
    change_norm: str = "batch"
    """What --change-weight measures a position's change against: "batch" (the batch's mean change) or "window" (its
    own window's, so that windows of a view whose actions change little, top-down, weigh their changes as much;
    DiffusionConfig.change_norm)."""
    context_sigma_max: float | None = None
    """Upper end (> context_sigma) of the training context levels, drawn from [context_sigma_min or context_sigma,
    context_sigma_max], while the sampler keeps caching past frames at context_sigma (context-noise augmentation,
    GameNGen: up to 0.7); None: the range ends at context_sigma."""
    context_sigma_draw: str = "log_uniform"
    """How training context levels are drawn from their range: "log_uniform" or "uniform" (GameNGen's)."""
    unroll_steps: int = 0
    """Frames (>= 0, at most window - 2) of an unrolled window that are the model's own predictions, generated one
    after the other from the true frames before them with the sampler (no gradient), sitting in the context at
    context_sigma; the frame after them is a target. 0 = no unroll."""
    unroll_prob: float = 0.0
    """Probability, in [0, 1], that a window is unrolled (with unroll_steps > 0)."""
    branch_share: float = 0.0
    """Share, in [0, 1], of each batch's windows that are counterfactual branch rows (round(share x batch_size)):
    groups sharing one recorded context, each row with one branch's action and next frame as its only target.
    Needs recordings with branches. 0 = none."""
    branch_weight: float = 1.0
    """Loss weight (> 0) of a branch row's target frame relative to a window's target frame (a window has about
    window x (1 - context_prob) targets, 8.5 at 17 frames, a branch row one)."""
    view_conditioning: bool = False
    """Condition the dynamics on the view each episode is rendered in (DynamicsConfig.views; the recordings must
    all be of views in dynamics.VIEW_IDS). With --init-from a checkpoint without view conditioning, the view
    embedding starts at zero and the rest from the checkpoint."""
    view_adapter: int = 0
    """With --view-conditioning: give every block an adapter of this hidden width for each view of --adapter-views
    (DynamicsConfig.view_adapter; 0: none). With --init-from a checkpoint without adapters, they start closed and the
    rest from the checkpoint."""
    adapter_views: tuple[str, ...] = ("top_down",)
    """With --view-adapter: the views that get adapters (DynamicsConfig.adapter_views)."""
    train_only: str | None = None
    """Train only part of the dynamics, the rest held as it is: "view-adapters" (the per-view adapters; with the
    episodes of one view, --views top_down, the model changes in that view alone); "patch-io" (the patch embedding
    and the output projection: a model moved onto another latent by `genie-train transplant` fitting its two ends
    first). None: all of it."""
    view_dropout: float = 0.1
    """With --view-conditioning: probability, in [0, 1], that a window's view is replaced by the unknown view (as
    NULL replaces actions for classifier-free guidance), so that the model also serves prompts of unknown view."""
    memory: bool = False
    """Give the dynamics the pose-keyed memory input (DynamicsConfig.memory: the latest earlier frame seen from the
    same dead-reckoned heading, as more input channels; needs recordings whose actions include turn_left,
    turn_right and forward). With --init-from a checkpoint without it, the memory input starts closed (zero) and
    the rest from the checkpoint."""
    memory_turns_only: bool = False
    """With --memory: only frames the agent turned into get a memory frame (DynamicsConfig.memory_turns_only)."""
    prev_prior: bool = False
    """The denoiser's estimate of each frame starts from its predecessor instead of from zero
    (DynamicsConfig.prev_prior; the identity map unless --init-from a model that set it, e.g. `genie-train
    transplant --prev-prior`)."""
    prev_prior_sigma: tuple[float, ...] | None = None
    """With --prev-prior: the spread of the change from the previous frame, one value or one per action id
    (DynamicsConfig.prev_prior_sigma); default: --init-from's, or the denoiser's sigma_data."""
    prev_prior_gain: tuple[float, ...] | None = None
    """With --prev-prior: the factor on the previous frame in the prior's mean, one value or one per action id
    (DynamicsConfig.prev_prior_gain); default: --init-from's, or 1."""
    pad_short_episodes: bool = False
    """Give episodes shorter than the window one window each, padded in front with copies of their first frame
    under noop (WindowDataset's pad_action; the recordings must have a "noop" action under which nothing changes).
    Without it those episodes are left out, and with them most of a bot's solved episodes: the door it opens, the
    object it picks up."""
    pad_weight: float | None = None
    """With --pad-short-episodes: how many times as often a padded window is drawn as another; None: the window
    length, so that every recorded frame is about equally likely to be trained on."""
    pad_at: str = "front"
    """With --pad-short-episodes: "front" (copies of the first frame, then the episode) or "end" (the episode from its
    first frame, as a rollout from a prompt, then copies of its last frame)."""

    pad_views: tuple[str, ...] | None = None
    """With --pad-short-episodes: pad only the short episodes rendered in these views (e.g. first_person; the others
    are left out, as without padding); None pads every view's."""

    def __post_init__(self):
        super().__post_init__()
        if self.context_frames is not None and self.context_frames < 1:
            raise ValueError(f"--context-frames must be >= 1, got {self.context_frames}")
        if self.memory_turns_only and not self.memory:
            raise ValueError("--memory-turns-only is a setting of the memory input; add --memory")
        if self.view_adapter < 0 or (self.view_adapter and not self.view_conditioning):
            raise ValueError(f"--view-adapter {self.view_adapter}: the adapters are per view; it must be >= 0, and "
                             "> 0 needs --view-conditioning")
        if self.train_only not in (None, *TRAIN_ONLY):
            raise ValueError(f"--train-only must be one of {', '.join(TRAIN_ONLY)}, got {self.train_only!r}")
        if self.train_only == "view-adapters" and not self.view_adapter:
            raise ValueError("--train-only view-adapters needs adapters to train: add --view-adapter N (e.g. 256)")
        if ((self.pad_weight is not None or self.pad_at != "front" or self.pad_views is not None)
                and not self.pad_short_episodes):
            raise ValueError("--pad-weight, --pad-at and --pad-views are settings of the padding of short episodes; "
                             "add --pad-short-episodes")
        if self.pad_weight is not None and not self.pad_weight > 0:
            raise ValueError(f"--pad-weight must be > 0, got {self.pad_weight}")
        from .dataset import PAD_AT  # imported here, as open_windows does: importing the trainer stays cheap

        if self.pad_at not in PAD_AT:
            raise ValueError(f"--pad-at must be one of {', '.join(PAD_AT)}, got {self.pad_at!r}")
        cfg = self.diffusion_config  # validates the diffusion knobs (ValueError)
        window = self.train_window
        if cfg.unroll_steps > window - 2:
            raise ValueError(f"unroll_steps={cfg.unroll_steps} needs windows of at least unroll_steps + 2 frames; "
                             f"--window is {window}")

    @property
    def train_window(self) -> int:
        """Frames per training window: --window, else the context (--context-frames or the preset's) + 1."""
        return self.window or (self.context_frames or self.presets[self.preset].context_frames) + 1

    @property
    def diffusion_config(self) -> DiffusionConfig:
        """The DiffusionConfig of these arguments: every field of it named like one of theirs, the rest default."""
        mine = {f.name for f in fields(self)}
        return DiffusionConfig(**{f.name: getattr(self, f.name) for f in fields(DiffusionConfig) if f.name in mine})

    def trainer(self, data=None) -> "DynamicsTrainer":
        return DynamicsTrainer(self, data)


MEMORY_ACTION_FIELDS = {"turn_left_action": "turn_left", "turn_right_action": "turn_right",
                        "forward_action": "forward"}
"""DynamicsConfig's memory action ids, and the action meaning each must name."""


def memory_action_ids(meanings) -> dict:
    """DynamicsConfig's memory action ids from the recordings' action meanings (the config's defaults when the data
    names none)."""
    meanings = list(meanings)
    if not meanings:
        return {}
    missing = [m for m in MEMORY_ACTION_FIELDS.values() if m not in meanings]
    if missing:
        raise ValueError(f"--memory dead-reckons headings from turn_left / turn_right / forward, but the recordings' "
                         f"actions ({', '.join(meanings)}) lack {', '.join(missing)}; train without --memory")
    return {field: meanings.index(m) for field, m in MEMORY_ACTION_FIELDS.items()}


def load_autoencoder(path: str | Path) -> Autoencoder:
    """An autoencoder (eval mode, fp32) from an autoencoder run dir / checkpoint, or from a world-model checkpoint
    ("default": the one shipped in the package), without loading the rest of the model."""
    folder = resolve_checkpoint(DEFAULT_CHECKPOINT if str(path) == "default" else path)
    raw = read_config(folder, formats=(FORMAT_AUTOENCODER, FORMAT_WORLD_MODEL))
    try:
        cfg = AutoencoderConfig.from_dict(raw["autoencoder"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{folder}/config.json has no valid 'autoencoder' section ({e})") from e
    model = Autoencoder(cfg)
    load_into(model, sub_state(read_tensors(folder), "autoencoder"), "autoencoder")
    return model.eval()


def encode_frames(autoencoder: Autoencoder, frames: np.ndarray, device, bf16: bool, batch: int = 256,
                  progress: bool = False) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised latents (N, C, h, w) float16 on CPU."""
    out = []
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    it = range(0, len(frames), batch)
    for i in tqdm(it, desc="encoding frames", disable=not progress, unit_scale=batch):
        px = frames_to_pixels(torch.from_numpy(np.ascontiguousarray(frames[i : i + batch])).to(device))
        with torch.no_grad(), ctx:
            out.append(autoencoder.encode(px).float().half().cpu().contiguous())
    return torch.cat(out).contiguous()


def fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
    return h.hexdigest()[:16]


def latent_cache(run_dir: Path, windows, autoencoder: Autoencoder, rt: Runtime,
                 args: TrainArgs) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's frames, and its counterfactual branch frames, encoded once by the frozen autoencoder, cached in
    RUN/latents.safetensors: (latents (N, C, h, w), branch latents (G, C, h, w)), float16 on CPU.

    Pre-encoding costs one encoder pass per frame; encoding windows on the fly would cost window * batch encoder
    passes per step, several times more over a run. Under torchrun every rank encodes a share of the frames.
    """
    ep = windows.episodes
    branch_frames = getattr(ep, "branch_frames", None)
    if branch_frames is None:
        branch_frames = np.zeros((0, *ep.frames.shape[1:]), np.uint8)
    G = len(branch_frames)
    ae_hash = hashlib.sha256()
    for k, v in sorted(autoencoder.state_dict().items()):
        ae_hash.update(k.encode())
        ae_hash.update(v.detach().float().cpu().numpy().tobytes())
    parts = [ep.num_frames, ep.frames.shape, list(args.data), args.split, args.views, ae_hash.hexdigest(), args.bf16]
    if G:  # data without branches keeps the key (and the caches) of before branches existed
        parts += ["branches", G, branch_frames.shape]
    key = fingerprint(*parts)
    path = run_dir / "latents.safetensors"

    def read() -> tuple[torch.Tensor, torch.Tensor] | None:
        if not path.is_file():
            return None
        try:
            data = load_file(str(path))
        except (SafetensorError, OSError) as e:
            print(f"[genie-train] ignoring unreadable latent cache {path} ({e}); re-encoding")
            return None
        if "latents" not in data or "key" not in data or bytes(data["key"].tolist()).decode() != key:
            return None
        branch = data.get("branch_latents", data["latents"][:0])
        return data["latents"], branch

    cached = read()
    rt.barrier()  # every rank has looked before anyone writes
    if cached is None:
        # each rank encodes a contiguous slice (of the frames and of the branch frames); rank 0 joins the parts
        def share(n: int) -> slice:
            return slice(n * rt.rank // rt.world_size, n * (rt.rank + 1) // rt.world_size)

        part = run_dir / f"latents.part{rt.rank}.safetensors"
        mine = encode_frames(autoencoder, ep.frames[share(ep.num_frames)], rt.device, args.bf16, progress=rt.is_main)
        mine_b = encode_frames(autoencoder, branch_frames[share(G)], rt.device, args.bf16) if G else mine[:0]
        save_file({"latents": mine, "branch_latents": mine_b.contiguous()}, str(part))
        rt.barrier()
        if rt.is_main:
            parts = [load_file(str(run_dir / f"latents.part{r}.safetensors")) for r in range(rt.world_size)]
            cached = (torch.cat([p["latents"] for p in parts]), torch.cat([p["branch_latents"] for p in parts]))
            tmp = path.with_name(path.name + ".tmp")
            save_file({"latents": cached[0], "branch_latents": cached[1],
                       "key": torch.tensor(list(key.encode()), dtype=torch.uint8)}, str(tmp))
            os.replace(tmp, path)
            for r in range(rt.world_size):
                (run_dir / f"latents.part{r}.safetensors").unlink()
        rt.barrier()
        if not rt.is_main:
            cached = read()
    if cached is None or len(cached[0]) != ep.num_frames or len(cached[1]) != G:
        raise RuntimeError(f"rank {rt.rank}: the latent cache {path} does not match the data; delete it and rerun")
    return cached


class BranchIndex:
    """The counterfactual branches of an EpisodeDataset, grouped by the state they branch from, as training rows.

    A branched state is frame i (global index) of its episode; its branch g leads, under action actions[g], to
    branch frame g. A training row of window T holds frames i - T + 2 .. i (padding before the episode's start)
    and the branch frame last, the branch action leading to it."""

    def __init__(self, episodes, window: int):
        counts = np.diff(episodes.branch_offsets)  # (E,) branches per episode
        episode = np.repeat(np.arange(episodes.num_episodes), counts)  # (G,)
        self.source = episodes.episode_offsets[episode] + episodes.branch_sources  # (G,) global frame index
        self.episode = episode  # (G,) episode of each branch
        self.episode_start = episodes.episode_offsets[episode]  # (G,)
        self.actions = episodes.branch_actions.astype(np.int64)  # (G,)
        order = np.argsort(self.source, kind="stable")
        states, first = np.unique(self.source[order], return_index=True)
        self.members = np.split(order, first[1:])  # branch ids of each branched state
        self.num_states = len(states)
        self.window = window

    def sample(self, n: int, np_gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n branch ids in groups of one state each (a state's branches in random order, the last group cut short),
        and the group id of each (n,)."""
        ids, groups = [], []
        g = 0
        while len(ids) < n:
            members = np_gen.permutation(self.members[int(np_gen.integers(self.num_states))])[: n - len(ids)]
            ids.extend(members.tolist())
            groups.extend([g] * len(members))
            g += 1
        return np.asarray(ids, np.int64), np.asarray(groups, np.int64)

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global frame indices (n, T-1) of the context of branches `ids` (clipped to the episode's start) and
        their validity (n, T) (the branch frame, last, is valid)."""
        T = self.window
        idx = self.source[ids, None] + np.arange(-(T - 2), 1)  # (n, T-1)
        start = self.episode_start[ids, None]
        valid = np.concatenate([idx >= start, np.ones((len(ids), 1), bool)], 1)
        return np.maximum(idx, start), valid


class WindowObjective(nn.Module):
    """Denoiser.loss over DynamicsTrainer batches (latents, actions, group, frame_valid, view), with the step's
    generator last, as training.LossModule passes them."""

    def __init__(self, denoiser: Denoiser):
        super().__init__()
        self.denoiser = denoiser

    def loss(self, y, actions, group, frame_valid, view, generator) -> torch.Tensor:
        return self.denoiser.loss(y, actions, generator, group=group, frame_valid=frame_valid, view=view)


# ---------------------------------------------------------------------------------------------- the trainer


class DynamicsTrainer(Trainer):
    prefix = "dynamics"
    format = FORMAT_WORLD_MODEL

    def build(self) -> None:
        args = self.args
        self.ae_path = resolve_checkpoint(args.autoencoder)
        # a resumed run keeps the autoencoder it started with (stored in its checkpoints), even if the
        # autoencoder run has written newer checkpoints since
        resume_from = latest_checkpoint(self.run_dir)
        self.ae = load_autoencoder(resume_from or self.ae_path).to(self.rt.device)
        for p in self.ae.parameters():
            p.requires_grad_(False)
        ae_cfg = self.ae.config
        preset = args.presets[args.preset]
        self.window = args.train_window
        views = len(dyn_mod.VIEW_IDS) if args.view_conditioning else 0
        if self.data is None:
            self.data = open_windows(args, window=self.window, pad_noop=args.pad_short_episodes,
                                     pad_weight=args.pad_weight, pad_at=args.pad_at, pad_views=args.pad_views)
            meanings = self.data.episodes.meta.action_meanings  # the recordings name their actions
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.latents, self.branch_latents = latent_cache(self.run_dir, self.data, self.ae, self.rt, args)
            if self.rt.device.type == "cuda":  # kept in GPU memory: batches are gathered there (fp16, 2 KB a frame)
                self.latents = self.latents.to(self.rt.device)
                self.branch_latents = self.branch_latents.to(self.rt.device)
        else:
            meanings = ()  # a custom data object: generic action names, the preset's number of actions
            self.latents = self.branch_latents = None  # ... and its windows are encoded on the fly
        layout = {k: getattr(args, k) for k in ("attention", "patch_size", "context_frames")
                  if getattr(args, k) is not None}
        if args.prev_prior:
            prior = {"prev_prior_sigma": args.prev_prior_sigma, "prev_prior_gain": args.prev_prior_gain}
            if args.init_from is not None:  # the checkpoint's own, unless given
                theirs = read_config(resolve_checkpoint(args.init_from), formats=(FORMAT_WORLD_MODEL,)).get(
                    "dynamics", {})
                prior = {k: theirs.get(k) if v is None else v for k, v in prior.items()}
            layout.update(prev_prior=True, **prior)
        elif args.prev_prior_sigma is not None or args.prev_prior_gain is not None:
            raise ValueError("--prev-prior-sigma and --prev-prior-gain need --prev-prior")
        if args.memory:
            layout.update(memory=True, memory_turns_only=args.memory_turns_only, **memory_action_ids(meanings))
        dyn_cfg = replace(preset, latent_channels=ae_cfg.latent_channels, latent_size=ae_cfg.latent_size,
                          num_actions=len(meanings) or preset.num_actions, views=views,
                          view_adapter=args.view_adapter,
                          adapter_views=tuple(args.adapter_views) if args.view_adapter else (), **layout)
        self.episode_views = None  # (E,) view id of every episode, for view-conditioned training
        episodes = getattr(self.data, "episodes", None)
        if views and episodes is not None:
            try:
                self.episode_views = dyn_cfg.view_ids(episodes.views, episodes.num_episodes, self.rt.device)
            except ValueError as e:
                raise ValueError(f"--view-conditioning: {e}; keep episodes of those views (--views "
                                 f"{' '.join(dyn_mod.VIEW_IDS)})") from e
        self.wm_config = WorldModelConfig(autoencoder=ae_cfg, dynamics=dyn_cfg, diffusion=args.diffusion_config,
                                          sampler=SamplerConfig(), action_meanings=meanings)
        self.dyn = self.model = Dynamics(dyn_cfg)
        self.init_metadata = None
        if args.init_from is not None and resume_from is None:
            self.init_metadata = self._init_from_checkpoint(args.init_from, dyn_cfg)
        if args.train_only:  # the rest is held: no gradients, no optimizer state, no decay
            for name, p in self.dyn.named_parameters():
                p.requires_grad_(any(part in name for part in TRAINED_PARTS[args.train_only]))
        self.denoiser = Denoiser(self.wm_config.diffusion, self.dyn, sampler=self.wm_config.sampler)
        self.objective = WindowObjective(self.denoiser)
        self.branches = None
        if self.wm_config.diffusion.branch_share > 0:
            episodes = getattr(self.data, "episodes", None)
            if self.latents is None or not getattr(episodes, "num_branches", 0):
                raise ValueError(f"--branch-share {args.branch_share} needs recordings with counterfactual branches "
                                 f"(genie-data record with branches); {list(args.data)} have none")
            self.branches = BranchIndex(episodes, self.window)
        self.eval_windows = None
        if self.rt.is_main:  # held-out windows (frames, actions) for the autoregressive PSNR at checkpoints
            b = self.held_out(8, salt=54321, window=self.window)
            views = getattr(b, "views", None)
            self.eval_windows = np.asarray(b.frames), np.asarray(b.actions), None if views is None else list(views)

    def _init_from_checkpoint(self, path: str, dyn_cfg: DynamicsConfig) -> dict:
        """Load the dynamics weights of a world-model checkpoint into self.dyn (strictly), after checking that it
        has this run's architecture and was trained on this autoencoder's latents. Returns what the metadata
        records about it."""
        folder = resolve_checkpoint(path)
        raw = read_config(folder, formats=(FORMAT_WORLD_MODEL,))
        try:
            other = DynamicsConfig.from_dict(raw["dynamics"])
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{folder}/config.json has no valid 'dynamics' section ({e})") from e
        # what this run changes of the checkpoint's model: inputs it adds (each starting closed, so the same function
        # at step 0), or the memory's rule of which frames get a memory frame
        added = {}
        if other.views and not dyn_cfg.views:
            raise CheckpointError(f"--init-from {path} is conditioned on the view; pass --view-conditioning to keep "
                                  "training it (its recordings must be of known views)")
        if dyn_cfg.views and not other.views:
            added["views"] = 0
        if other.view_adapter and (dyn_cfg.view_adapter, dyn_cfg.adapter_views) != (other.view_adapter,
                                                                                      other.adapter_views):
            raise CheckpointError(f"--init-from {path} has per-view adapters of width {other.view_adapter} for "
                                  f"{' '.join(other.adapter_views)}; pass --view-adapter {other.view_adapter} "
                                  f"--adapter-views {' '.join(other.adapter_views)} to keep training them")
        prior = ("prev_prior", "prev_prior_sigma", "prev_prior_gain")
        if [getattr(other, k) for k in prior] != [getattr(dyn_cfg, k) for k in prior]:
            raise CheckpointError(
                f"--init-from {path} " + ("starts its estimates from the previous frame with the spreads "
                                          f"{other.prev_prior_sigma} and gains {other.prev_prior_gain}; pass "
                                          "--prev-prior (without --prev-prior-sigma / --prev-prior-gain) to keep "
                                          "training it" if other.prev_prior else
                                          "starts its estimates from zero, and a prior would change what it predicts; "
                                          "drop --prev-prior (genie-train transplant --prev-prior makes a model with "
                                          "one)"))
        if dyn_cfg.view_adapter and not other.view_adapter:
            added.update(view_adapter=0, adapter_views=())
        if dyn_cfg.memory and not other.memory:
            added.update(memory=False, memory_turns_only=other.memory_turns_only,
                         **{k: getattr(other, k) for k in MEMORY_ACTION_FIELDS})
        elif dyn_cfg.memory:  # the rule of which frames get a memory frame may change (the weights are the same)
            added["memory_turns_only"] = other.memory_turns_only
        if other != replace(dyn_cfg, **added):
            raise CheckpointError(f"--init-from {path}: its dynamics ({other}) differ from --preset "
                                  f"{self.args.preset} ({dyn_cfg}); pick the preset it was trained with")
        stats = torch.tensor([raw.get("latent_shift", []), raw.get("latent_scale", [])], dtype=torch.float32)
        mine = torch.stack([self.ae.latent_shift.float().cpu(), self.ae.latent_scale.float().cpu()])
        if stats.shape != mine.shape or not torch.allclose(stats, mine, rtol=1e-3, atol=1e-3):
            raise CheckpointError(f"--init-from {path} was trained on the latents of another autoencoder than "
                                  f"--autoencoder {self.args.autoencoder}; pass the autoencoder it was trained with "
                                  "(a world-model checkpoint holds its own: --autoencoder can name the same folder)")
        state = sub_state(read_tensors(folder), "dynamics")
        mine = self.dyn.state_dict()
        if "views" in added:
            state["view_emb.weight"] = mine["view_emb.weight"].clone()  # zero: the same function at step 0
        if "view_adapter" in added:  # closed (zero gates), as initialised: the same function at step 0
            state.update({k: v.clone() for k, v in mine.items() if ".adapters." in k})
        if "memory" in added:  # the memory's input columns and embeddings: zero, as initialised
            w = mine["patch_in.weight"].clone()
            w[:, : state["patch_in.weight"].shape[1]] = state["patch_in.weight"]
            state["patch_in.weight"] = w
            state.update({k: v.clone() for k, v in mine.items() if k.startswith("mem_")})
        load_into(self.dyn, state, "dynamics")
        return {"path": str(path), "step": raw.get("training", {}).get("step")}

    def batch(self, np_gen: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                          torch.Tensor | None, torch.Tensor | None]:
        """(latents (B, T, C, h, w), actions (B, T), group (B,) or None, frame_valid (B, T) or None, view (B,) or
        None): windows, and, with branch_share, counterfactual branch rows last (group ids >= 0; windows -1); view:
        the view id of each row's episode (view-conditioned training), else None."""
        B, dev = self.args.batch_size, self.rt.device
        n_branch = round(self.wm_config.diffusion.branch_share * B) if self.branches is not None else 0
        if n_branch:
            latents, actions, _, _, view = self._windows(B - n_branch, np_gen) if n_branch < B else (None,) * 5
            b_lat, b_act, group, valid, b_view = self._branch_rows(n_branch, np_gen)
            if latents is not None:
                latents, actions = torch.cat([latents, b_lat]), torch.cat([actions, b_act])
                view = None if view is None else torch.cat([view, b_view])
                group = torch.cat([torch.full((B - n_branch,), -1, dtype=torch.long, device=dev), group])
                valid = torch.cat([torch.ones((B - n_branch, self.window), dtype=torch.bool, device=dev), valid])
            else:
                latents, actions, view = b_lat, b_act, b_view
            return latents, actions, group, (None if bool(valid.all()) else valid), view
        return self._windows(B, np_gen)

    def _branch_rows(self, n: int, np_gen: np.random.Generator):
        """n counterfactual branch rows (see BranchIndex) and their group ids, frame validity and view ids (or None),
        on the device."""
        dev, br = self.rt.device, self.branches
        ids, group = br.sample(n, np_gen)
        idx, valid = br.rows(ids)  # (n, T-1), (n, T)
        ctx = self.latents[torch.from_numpy(idx).to(self.latents.device)]  # (n, T-1, C, h, w)
        last = self.branch_latents[torch.from_numpy(ids).to(self.branch_latents.device)][:, None]
        latents = torch.cat([ctx, last], 1).to(dev).float()
        latents = latents * torch.from_numpy(valid).to(dev)[..., None, None, None]  # padding frames are zeros
        actions = np.zeros((n, self.window), np.int64)
        actions[:, :-2] = self.data.episodes.actions[idx[:, :-1]]  # the recorded actions between context frames
        actions[:, -2] = br.actions[ids]  # the branch's action leads the last context frame to its frame
        actions = torch.from_numpy(actions).to(dev).clamp_min(0)
        return (latents, actions, torch.from_numpy(group).to(dev), torch.from_numpy(valid).to(dev),
                self._views(br.episode[ids]))

    def _windows(self, B: int, np_gen: np.random.Generator):
        dev = self.rt.device
        if self.latents is not None:  # pre-encoded: gather latent windows directly
            pick = self.data.draw(B, np_gen)
            idx, pad = self.data.window_indices(pick)  # (B, T) each
            latents = self.latents[torch.from_numpy(idx)].to(dev).float()  # (B, T, C, h, w)
            actions = torch.from_numpy(self.data.window_actions(idx, pad)).to(dev)
            view = self._views(self.data.window_episode[pick])
        else:
            b = self.data.sample_batch(B, np_gen)
            frames = torch.from_numpy(np.asarray(b.frames)).to(dev)  # (B, T, H, W, 3)
            T = frames.shape[1]
            with torch.no_grad(), self.autocast():
                latents = self.ae.encode(frames_to_pixels(frames.flatten(0, 1))).float()
            latents = latents.view(B, T, *latents.shape[1:])
            actions = torch.from_numpy(np.asarray(b.actions)).to(dev)
            view = None
            if self.dyn.config.views and getattr(b, "views", None) is not None:
                view = self.dyn.config.view_ids(list(b.views), B, dev)
        # (actions[T-1] may be -1 at an episode end: never used)
        return latents, actions.long().clamp_min(0), None, None, view

    def _views(self, episode: np.ndarray) -> torch.Tensor | None:
        """View ids (n,) of episodes `episode` (n,) of the recordings; None when training is not view-conditioned."""
        if self.episode_views is None:
            return None
        return self.episode_views[torch.from_numpy(np.asarray(episode)).to(self.episode_views.device)]

    def model_config(self) -> dict:
        return self.wm_config.to_dict()

    def tokens_per_example(self) -> int:
        return self.window * self.dyn.config.tokens_per_frame

    def flops_per_example(self) -> float:
        """One window's forward + backward (`transformer_flops`): the adaLN and noise-embedding layers run once
        per frame, every other linear layer once per token. The frame-causal mask is applied to a full score
        matrix, so its attention counts every token pair; the factorised layout scores the pairs within each frame
        and those of each position across frames."""
        per_frame = ("ada", "ada_out", "noise_emb", "prev_noise_emb")  # names of the per-frame modules
        linears = [(n, m.weight.numel()) for n, m in self.dyn.named_modules() if isinstance(m, torch.nn.Linear)]
        frame = sum(k for n, k in linears if set(n.split(".")) & set(per_frame))
        cfg = self.dyn.config
        T, N = self.window, cfg.tokens_per_frame
        pairs = T * N * N + N * T * T if cfg.attention == "factorised" else None
        return transformer_flops(sum(k for _, k in linears) - frame, self.tokens_per_example(), cfg.depth,
                                 cfg.width, frame_params=frame, frames=self.window, attention_pairs=pairs)

    def saved_model_config(self, config: dict) -> dict:
        return WorldModelConfig.from_dict(config).to_dict()

    def on_resume(self, checkpoint: Path) -> None:
        # where a run started from --init-from, recorded in its checkpoints
        self.init_metadata = read_config(checkpoint).get("training", {}).get("init_from")

    def checkpoint(self, training: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        training.update(window=self.window, autoencoder=str(self.ae_path), objective=self.args.objective)
        if self.init_metadata is not None:
            training["init_from"] = self.init_metadata
        if self.eval_windows is not None:
            training.update(self.eval_rollout())
        wm = WorldModel(self.wm_config, self.ae, self.averaged)
        self.dyn.train()  # WorldModel() puts its modules in eval mode
        return wm.checkpoint_config(training), wm.state_tensors()

    @torch.no_grad()
    def eval_rollout(self, horizons=(1, 4, 16)) -> dict:
        """Mean per-frame PSNR of frames generated from the first frame of each eval window with its recorded
        actions, by horizon."""
        frames, actions, views = self.eval_windows
        wm = WorldModel(self.wm_config, self.ae, self.averaged, autocast=self.args.bf16)
        gen = torch.Generator(device=self.rt.device).manual_seed(0)
        views = views if self.wm_config.dynamics.views and set(views or ()) <= set(dyn_mod.VIEW_IDS) else None
        state = wm.reset(frames[:, :1], generator=gen, view=views)
        out = {}
        for t in range(frames.shape[1] - 1):
            pred, state = wm.step(state, np.clip(actions[:, t], 0, None), generator=gen)
            if t + 1 in horizons:
                out[f"eval_psnr_h{t + 1}"] = float(psnr(pred, frames[:, t + 1]).mean())
        self.dyn.train()
        return out


def export(dynamics: str | Path, out: str | Path, autoencoder: str | Path | None = None,
           dtype: torch.dtype = torch.float16, sampler: dict | None = None, average_last: int = 1,
           blend_with: str | Path | None = None, blend_weight: float = 0.5) -> Path:
    """Write the compact inference checkpoint of a dynamics run (optionally with another autoencoder's weights,
    and other sampler defaults, e.g. sampler={"guidance": 1.0}).

    average_last: average the dynamics weights of the run's last K checkpoints (checkpoint averaging, a cheap
    stand-in for an EMA of the weights: it smooths the noise of the last steps of SGD); 1 exports the latest.
    blend_with: a checkpoint with the same dynamics and autoencoder, typically the one `dynamics` was fine-tuned
    from; the exported dynamics weights are (1 - blend_weight) * dynamics' + blend_weight * its (interpolating a
    fine-tune towards its start, as WiSE-FT does, keeps more of what the start could do)."""
    if average_last < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
    if not 0.0 <= blend_weight <= 1.0:
        raise ValueError(f"blend_weight must be in [0, 1], got {blend_weight}")
    wm = WorldModel.load(dynamics, autocast=False)
    training = dict(getattr(wm, "training_metadata", {}))
    if average_last > 1:
        folders = run_checkpoints(dynamics)[-average_last:]
        if len(folders) < average_last:
            raise CheckpointError(f"--average-last {average_last} needs a run directory with at least {average_last} "
                                  f"checkpoints; {str(dynamics)!r} has {len(folders)}")
        states = [WorldModel.load(f, autocast=False).dynamics.state_dict() for f in folders]
        mean = {k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) for k, v in states[-1].items()}
        wm.dynamics.load_state_dict(mean, strict=True)
        training["averaged_checkpoints"] = [f.name for f in folders]
    if blend_with is not None:
        other = WorldModel.load(blend_with, autocast=False)
        if (other.config.dynamics, other.config.autoencoder) != (wm.config.dynamics, wm.config.autoencoder):
            raise CheckpointError(f"--blend-with {blend_with}: its dynamics or autoencoder differ from those of "
                                  f"{dynamics}; blend a fine-tune with the checkpoint it started from")
        if any(not torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-5)  # fp16 and fp32 copies alike
               for a, b in zip(other.autoencoder.state_dict().values(), wm.autoencoder.state_dict().values())):
            raise CheckpointError(f"--blend-with {blend_with} holds another autoencoder's weights than {dynamics}: "
                                  "their dynamics work on different latents and do not blend")
        mine, theirs = wm.dynamics.state_dict(), other.dynamics.state_dict()
        wm.dynamics.load_state_dict({k: (v.float().lerp(theirs[k].float(), blend_weight)).to(v.dtype)
                                     if v.is_floating_point() else v for k, v in mine.items()}, strict=True)
        training["blended_with"] = {"path": str(blend_with), "weight": blend_weight,
                                    "step": other.training_metadata.get("step")}
    if sampler:
        if sampler.get("context_sigma") is not None and "trained_context_sigma" not in training:
            training["trained_context_sigma"] = wm.config.diffusion.trained_context_sigma
        wm = wm.with_sampler(**sampler)
    if autoencoder is not None:
        other = load_autoencoder(autoencoder)
        if other.config != wm.config.autoencoder:
            raise CheckpointError(f"the autoencoder {autoencoder} ({other.config}) is not the one the dynamics "
                                  f"model was trained with ({wm.config.autoencoder})")
        wm.autoencoder.load_state_dict(other.state_dict(), strict=True)
    return wm.save(out, dtype=dtype, training=training)
