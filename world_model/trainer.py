"""Training loops for the autoencoder and the dynamics model, with resume, bf16 autocast and torchrun DDP.

A run directory holds:

    RUN/run.json             the arguments of the run (kind, preset, data, ...)
    RUN/ckpt-00001000/       training checkpoints (see checkpoint.py), the newest two are kept
    RUN/log.jsonl            one JSON line per log interval: step, loss, lr, examples_per_s, wall_time, elapsed_s
    RUN/latents.safetensors  (dynamics) the dataset pre-encoded by the frozen autoencoder

Start a run again with the same --out and it resumes from its newest checkpoint: weights, optimizer state and the
step counter are restored, log.jsonl lines past the checkpoint are dropped, and training continues. Randomness is
counter-based (every step's numpy and torch generators are seeded from (seed, rank, step)), so a resumed run draws
exactly the batches and noise an uninterrupted run would have.

A dynamics checkpoint holds the frozen autoencoder too and is a complete world-model checkpoint: WorldModel.load
accepts the run directory (newest checkpoint) or one ckpt folder. `genie-train export` writes a compact fp16 copy.

Distributed: under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on
CUDA); every rank draws its own windows, rank 0 writes checkpoints and logs. --batch-size is per rank.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from . import autoencoder as ae_mod
from . import dynamics as dyn_mod
from .autoencoder import Autoencoder, AutoencoderConfig, frames_to_pixels, pixels_to_frames
from .checkpoint import (FORMAT_AUTOENCODER, FORMAT_VERSION, FORMAT_WORLD_MODEL, CheckpointError, latest_checkpoint,
                         load_into, load_training_state, prefixed, read_config, read_tensors, resolve_checkpoint, run_checkpoints,
                         save_training_checkpoint, sub_state, write_json)
from .diffusion import Denoiser, DiffusionConfig
from .dynamics import Dynamics, DynamicsConfig
from .inference import WorldModel, WorldModelConfig
from .metrics import psnr
from .sampler import SamplerConfig

KINDS = ("autoencoder", "dynamics")


@dataclass(frozen=True)
class TrainArgs:
    kind: str
    """What to train: "autoencoder" or "dynamics"."""
    data: tuple[str, ...]
    """Recording folders of episode shards (genie-data record --out ...)."""
    out: str
    """Run directory (created; an existing one is resumed)."""
    preset: str = "default"
    """Model size preset: "tiny", "default" (both kinds) or "small" (dynamics only, for quick ablations)."""
    steps: int = 20000
    """Total optimizer steps (a resumed run continues up to this)."""
    stop_at: int | None = None
    """Stop (with a checkpoint) at this step without changing the schedule, which `steps` sets; a later run with a
    larger or no stop_at continues."""
    batch_size: int | None = None
    """Per-rank batch: frames (autoencoder, default 32) or windows (dynamics, default 8)."""
    lr: float | None = None
    """Peak learning rate (default 1e-3 autoencoder, 3e-4 dynamics)."""
    warmup: int = 200
    """Linear warm-up steps, then cosine decay to lr * min_lr_ratio."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases, norms and embeddings)."""
    grad_clip: float = 1.0
    """Max global gradient norm."""
    bf16: bool = True
    """bf16 autocast (CPU AMX / CUDA); weights and optimizer stay fp32."""
    window: int | None = None
    """Dynamics: frames per training window (default context_frames + 1, what the sampler sees)."""
    autoencoder: str | None = None
    """Dynamics: the autoencoder run directory or checkpoint (or a world-model checkpoint)."""
    split: str | None = "train"
    """Episode split to train on ("train"; None = all)."""
    eval_data: tuple[str, ...] | None = None
    """Folders of held-out episodes (default: --data, split "test", if recorded): autoencoder PSNR, and the
    dynamics' autoregressive PSNR by horizon at every checkpoint (mean per-frame PSNR, world_model/metrics.py)."""
    objective: str = "forcing"
    """Dynamics: "forcing" (Diffusion Forcing, every frame a target) or "augment" (GameNGen noise augmentation,
    the last frame of each window the only target); see world_model/diffusion.py."""
    context_sigma: float = 0.1
    """Dynamics: noise level of past frames, the sampler's default (and at training, unless context_sigma_min)."""
    context_sigma_min: float | None = None
    """Dynamics: draw each training context frame's noise level log-uniformly from [context_sigma_min,
    context_sigma], so that sampling can cache past frames at any level of that range."""
    change_weight: float = 0.0
    """Dynamics: extra loss weight on latent positions that change from the previous frame (0 = uniform; see
    DiffusionConfig.change_weight)."""
    init_from: str | None = None
    """Dynamics: start a new run from the dynamics weights of this world-model checkpoint (e.g. the shipped
    world_model/checkpoints/default) instead of random ones; it must have the preset's architecture and the
    --autoencoder's latents. Ignored when the run resumes."""
    ema_decay: float = 0.998
    """Dynamics: decay of the exponential moving average of the weights that checkpoints, evaluation and export
    use (0 = off; the raw weights are kept beside it for resuming)."""
    views: tuple[str, ...] | None = None
    """Keep only episodes of these views (e.g. first_person); None keeps all."""
    checkpoint_every: int = 1000
    """Save a checkpoint every this many steps (and at the end)."""
    checkpoint_minutes: float = 10.0
    """... and at least this often in wall-clock minutes."""
    keep_checkpoints: int = 2
    """Checkpoints kept in the run directory, newest first (`genie-train export --average-last K` needs K)."""
    log_every: int = 20
    """Steps between log.jsonl lines."""
    seed: int = 0
    """Seed of the counter-based data and noise generators."""
    device: str = "auto"
    """"cpu", "cuda" or "auto" (cuda when available)."""
    threads: int | None = None
    """CPU threads per process (default: all cores / processes on this machine)."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.stop_at is not None and self.stop_at < 1:
            raise ValueError(f"stop_at must be >= 1, got {self.stop_at}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        presets = ae_mod.PRESETS if self.kind == "autoencoder" else dyn_mod.PRESETS
        if self.preset not in presets:
            raise ValueError(f"unknown {self.kind} preset {self.preset!r}; choose one of {sorted(presets)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        self.diffusion_config  # validates objective and context noise levels (ValueError)
        if self.kind == "dynamics" and self.autoencoder is None:
            raise ValueError("dynamics training needs --autoencoder (an autoencoder run directory or checkpoint)")

    @property
    def diffusion_config(self) -> DiffusionConfig:
        """The dynamics' diffusion settings these arguments choose."""
        return DiffusionConfig(objective=self.objective, context_sigma=self.context_sigma,
                               context_sigma_min=self.context_sigma_min, change_weight=self.change_weight)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or (32 if self.kind == "autoencoder" else 8)

    @property
    def effective_lr(self) -> float:
        return self.lr or (1e-3 if self.kind == "autoencoder" else 3e-4)

    def lr_at(self, step: int) -> float:
        """Linear warm-up then cosine decay (step counts from 0)."""
        peak = self.effective_lr
        if step < self.warmup:
            return peak * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return peak * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- distributed


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup_runtime(args: TrainArgs) -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif args.device in ("cpu", "cuda"):
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda but CUDA is not available; use --device cpu")
    else:
        raise ValueError(f"--device must be cpu, cuda or auto, got {args.device!r}")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local_world))
    if world_size > 1 and not dist.is_initialized():
        # a long timeout: rank 0 may write a checkpoint / the latent cache while the others wait at a barrier
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(hours=2))
    return Runtime(device=device, rank=rank, world_size=world_size)


def step_generators(args: TrainArgs, rt: Runtime, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """Counter-based randomness: the generators of (seed, rank, step); a resumed run redraws the same stream."""
    np_gen = np.random.default_rng([args.seed, rt.rank, step])
    torch_gen = torch.Generator(device=rt.device)
    torch_gen.manual_seed(int(np_gen.integers(2**62)))
    return np_gen, torch_gen


# ---------------------------------------------------------------------------------------------- models


class AutoencoderLoss(nn.Module):
    """Reconstruction loss L1 + MSE on pixels in [-1, 1] (a plain module so DDP can wrap it)."""

    def __init__(self, autoencoder: Autoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        recon = self.autoencoder(pixels).float()
        return F.l1_loss(recon, pixels) + F.mse_loss(recon, pixels)


class DynamicsLoss(nn.Module):
    """Diffusion Forcing loss of the denoiser (see diffusion.py), as a module so DDP can wrap it."""

    def __init__(self, denoiser: Denoiser):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, latents: torch.Tensor, actions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.denoiser.loss(latents, actions, generator)


def load_autoencoder(path: str | Path) -> Autoencoder:
    """An autoencoder from an autoencoder run dir / checkpoint, or from a world-model checkpoint."""
    folder = resolve_checkpoint(path)
    raw = read_config(folder, formats=(FORMAT_AUTOENCODER, FORMAT_WORLD_MODEL))
    try:
        cfg = AutoencoderConfig.from_dict(raw["autoencoder"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{folder}/config.json has no valid 'autoencoder' section ({e})") from e
    model = Autoencoder(cfg)
    load_into(model, sub_state(read_tensors(folder), "autoencoder"), "autoencoder")
    return model.eval()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "emb" not in name and name.split(".")[-1] != "pos" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ---------------------------------------------------------------------------------------------- data


def open_windows(args: TrainArgs, window: int):
    from .dataset import WindowDataset  # the data layer; imported here so importing the trainer stays cheap

    return WindowDataset.from_folders(list(args.data), window=window, split=args.split, views=args.views)


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


def latent_cache(run_dir: Path, windows, autoencoder: Autoencoder, rt: Runtime, args: TrainArgs) -> torch.Tensor:
    """The dataset's frames encoded once by the frozen autoencoder, cached in RUN/latents.safetensors.

    Pre-encoding costs one encoder pass per frame; encoding windows on the fly would cost window * batch encoder
    passes per step, several times more over a run. Under torchrun every rank encodes a share of the frames.
    """
    ep = windows.episodes
    ae_hash = hashlib.sha256()
    for k, v in sorted(autoencoder.state_dict().items()):
        ae_hash.update(k.encode())
        ae_hash.update(v.detach().float().cpu().numpy().tobytes())
    key = fingerprint(ep.num_frames, ep.frames.shape, list(args.data), args.split, args.views, ae_hash.hexdigest(),
                      args.bf16)
    path = run_dir / "latents.safetensors"

    def read() -> torch.Tensor | None:
        if not path.is_file():
            return None
        try:
            data = load_file(str(path))
        except (SafetensorError, OSError) as e:
            print(f"[genie-train] ignoring unreadable latent cache {path} ({e}); re-encoding")
            return None
        if "latents" not in data or "key" not in data or bytes(data["key"].tolist()).decode() != key:
            return None
        return data["latents"]

    latents = read()
    rt.barrier()  # every rank has looked before anyone writes
    if latents is None:
        # each rank encodes a contiguous slice; rank 0 joins the parts into the cache file
        n = ep.num_frames
        lo, hi = n * rt.rank // rt.world_size, n * (rt.rank + 1) // rt.world_size
        part = run_dir / f"latents.part{rt.rank}.safetensors"
        mine = encode_frames(autoencoder, ep.frames[lo:hi], rt.device, args.bf16, progress=rt.is_main)
        save_file({"latents": mine}, str(part))
        rt.barrier()
        if rt.is_main:
            parts = [run_dir / f"latents.part{r}.safetensors" for r in range(rt.world_size)]
            latents = torch.cat([load_file(str(p))["latents"] for p in parts])
            tmp = path.with_name(path.name + ".tmp")
            save_file({"latents": latents, "key": torch.tensor(list(key.encode()), dtype=torch.uint8)}, str(tmp))
            os.replace(tmp, path)
            for p in parts:
                p.unlink()
        rt.barrier()
        if not rt.is_main:
            latents = read()
    if latents is None or len(latents) != ep.num_frames:
        raise RuntimeError(f"rank {rt.rank}: the latent cache {path} does not match the data; delete it and rerun")
    return latents


# ---------------------------------------------------------------------------------------------- the loop


class Trainer:
    """One training run (autoencoder or dynamics); `run()` trains to args.steps, resuming if possible."""

    def __init__(self, args: TrainArgs, data=None):
        self.args = args
        self.rt = setup_runtime(args)
        self.run_dir = Path(args.out)
        self.data = data  # an object with sample_batch(batch_size, np.random.Generator), or None: from args.data
        self.stop_requested = False
        self.ema = None
        torch.manual_seed(args.seed)  # weight init (DDP also broadcasts rank 0's weights)
        if args.kind == "autoencoder":
            self._build_autoencoder()
        else:
            self._build_dynamics()
        self.loss_module.to(self.rt.device)
        if self.ema is not None:
            self.ema.to(self.rt.device)
        self.module = self.loss_module
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.module = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=ids)
        self.optimizer = torch.optim.AdamW(param_groups(self.trainable, args.weight_decay), lr=args.effective_lr,
                                           betas=(0.9, 0.99), fused=self.rt.device.type == "cuda")
        self.step = 0

    # ------------------------------------------------------------------ model + data per kind

    def _build_autoencoder(self) -> None:
        args = self.args
        self.ae = Autoencoder(ae_mod.PRESETS[args.preset])
        self.trainable = self.ae
        self.loss_module = AutoencoderLoss(self.ae)
        if self.data is None:
            self.data = open_windows(args, window=1)
        self.eval_frames = self._eval_frames()

    def _eval_frames(self, n: int = 256) -> np.ndarray | None:
        """Held-out frames for PSNR (the test split when it exists) and for the latent statistics."""
        gen = np.random.default_rng([self.args.seed, 12345])
        if self.args.data and (self.args.eval_data or self.args.split == "train"):
            try:
                test = replace(self.args, data=self.args.eval_data or self.args.data, split="test")
                return open_windows(test, window=1).sample_batch(n, gen).frames[:, 0]
            except (ValueError, OSError) as e:  # DatasetError is a ValueError: no test split recorded
                print(f"[genie-train] no held-out test frames ({e}); PSNR is measured on training frames")
        return self.data.sample_batch(n, gen).frames[:, 0]

    def _build_dynamics(self) -> None:
        args = self.args
        self.ae_path = resolve_checkpoint(args.autoencoder)
        # a resumed run keeps the autoencoder it started with (stored in its checkpoints), even if the
        # autoencoder run has written newer checkpoints since
        resume_from = latest_checkpoint(self.run_dir)
        self.ae = load_autoencoder(resume_from or self.ae_path).to(self.rt.device)
        for p in self.ae.parameters():
            p.requires_grad_(False)
        ae_cfg = self.ae.config
        preset = dyn_mod.PRESETS[args.preset]
        self.window = args.window or preset.context_frames + 1
        if self.data is None:
            self.data = open_windows(args, window=self.window)
            meanings = self.data.episodes.meta.action_meanings  # the recordings name their actions
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.latents = latent_cache(self.run_dir, self.data, self.ae, self.rt, args)
        else:
            meanings = ()  # a custom data object: generic action names, the preset's number of actions
            self.latents = None  # ... and its windows are encoded on the fly
        dyn_cfg = replace(preset, latent_channels=ae_cfg.latent_channels, latent_size=ae_cfg.latent_size,
                          num_actions=len(meanings) or preset.num_actions)
        self.wm_config = WorldModelConfig(autoencoder=ae_cfg, dynamics=dyn_cfg,
                                          diffusion=args.diffusion_config,
                                          sampler=SamplerConfig(), action_meanings=meanings)
        self.dyn = Dynamics(dyn_cfg)
        self.init_metadata = None
        if args.init_from is not None and resume_from is None:
            self.init_metadata = self._init_from_checkpoint(args.init_from, dyn_cfg)
        self.trainable = self.dyn
        # EMA of the weights (evaluated, checkpointed as the model and exported); not a parameter of the optimizer
        self.ema = copy.deepcopy(self.dyn).requires_grad_(False) if args.ema_decay > 0 else None
        self.loss_module = DynamicsLoss(Denoiser(self.wm_config.diffusion, self.dyn))
        self.eval_windows = self._eval_windows() if self.rt.is_main else None

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
        if other != dyn_cfg:
            raise CheckpointError(f"--init-from {path}: its dynamics ({other}) differ from --preset "
                                  f"{self.args.preset} ({dyn_cfg}); pick the preset it was trained with")
        stats = torch.tensor([raw.get("latent_shift", []), raw.get("latent_scale", [])], dtype=torch.float32)
        mine = torch.stack([self.ae.latent_shift.float().cpu(), self.ae.latent_scale.float().cpu()])
        if stats.shape != mine.shape or not torch.allclose(stats, mine, rtol=1e-3, atol=1e-3):
            raise CheckpointError(f"--init-from {path} was trained on the latents of another autoencoder than "
                                  f"--autoencoder {self.args.autoencoder}; pass the autoencoder it was trained with "
                                  "(a world-model checkpoint holds its own: --autoencoder can name the same folder)")
        load_into(self.dyn, sub_state(read_tensors(folder), "dynamics"), "dynamics")
        return {"path": str(path), "step": raw.get("training", {}).get("step")}

    def _eval_windows(self, n: int = 8):
        """Held-out windows (frames, actions) for the autoregressive PSNR at checkpoints, or None."""
        gen = np.random.default_rng([self.args.seed, 54321])
        if self.args.data and (self.args.eval_data or self.args.split == "train"):
            try:
                test = replace(self.args, data=self.args.eval_data or self.args.data, split="test")
                b = open_windows(test, window=self.window).sample_batch(n, gen)
                return b.frames, b.actions
            except ValueError as e:  # DatasetError: no test split recorded
                print(f"[genie-train] no held-out test windows ({e}); rollouts are evaluated on training windows")
        b = self.data.sample_batch(n, gen)
        return np.asarray(b.frames), np.asarray(b.actions)

    @torch.no_grad()
    def eval_rollout(self, horizons=(1, 4, 16)) -> dict:
        """PSNR of frames generated from the first frame of each eval window with its recorded actions."""
        frames, actions = self.eval_windows
        dyn = self.ema if self.ema is not None else self.dyn
        wm = WorldModel(self.wm_config, self.ae, dyn, autocast=self.args.bf16)
        gen = torch.Generator(device=self.rt.device).manual_seed(0)
        state = wm.reset(frames[:, :1], generator=gen)
        out = {}
        for t in range(frames.shape[1] - 1):
            pred, state = wm.step(state, np.clip(actions[:, t], 0, None), generator=gen)
            if t + 1 in horizons:
                out[f"eval_psnr_h{t + 1}"] = float(psnr(pred, frames[:, t + 1]).mean())
        self.dyn.train()
        return out

    def _batch(self, np_gen: np.random.Generator):
        B, dev = self.args.effective_batch_size, self.rt.device
        if self.args.kind == "autoencoder":
            frames = self.data.sample_batch(B, np_gen).frames  # (B, 1, H, W, 3)
            return (frames_to_pixels(torch.from_numpy(frames[:, 0]).to(dev)),)
        if self.latents is not None:  # pre-encoded: gather latent windows directly
            pick = np_gen.integers(len(self.data), size=B)
            idx = self.data.window_start[pick, None] + np.arange(self.window)  # (B, T)
            latents = self.latents[torch.from_numpy(idx)].to(dev).float()  # (B, T, C, h, w)
            actions = torch.from_numpy(self.data.episodes.actions[idx]).to(dev)
        else:
            b = self.data.sample_batch(B, np_gen)
            frames = torch.from_numpy(np.asarray(b.frames)).to(dev)  # (B, T, H, W, 3)
            T = frames.shape[1]
            with torch.no_grad(), self._autocast():
                latents = self.ae.encode(frames_to_pixels(frames.flatten(0, 1))).float()
            latents = latents.view(B, T, *latents.shape[1:])
            actions = torch.from_numpy(np.asarray(b.actions)).to(dev)
        return latents, actions.long().clamp_min(0)  # (actions[T-1] may be -1 at an episode end: never used)

    def _autocast(self):
        if not self.args.bf16:
            return nullcontext()
        return torch.autocast(self.rt.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ checkpoints

    def _model_config_and_tensors(self) -> tuple[dict, dict]:
        meta = {"kind": self.args.kind, "step": self.step, "preset": self.args.preset,
                "data": list(self.args.data), "world_size": self.rt.world_size}
        if self.args.kind == "autoencoder":
            self.ae.eval()
            self.ae.fit_latent_stats(frames_to_pixels(torch.from_numpy(self.eval_frames).to(self.rt.device)))
            meta["eval_psnr"] = self.eval_psnr()
            self.ae.train()
            cfg = {"format": FORMAT_AUTOENCODER, "format_version": FORMAT_VERSION,
                   "autoencoder": self.ae.config.to_dict(), "latent_shift": self.ae.latent_shift.tolist(),
                   "latent_scale": self.ae.latent_scale.tolist(), "training": meta}
            return cfg, prefixed("autoencoder", self.ae)
        meta["window"] = self.window
        meta["autoencoder"] = str(self.ae_path)
        meta["objective"] = self.args.objective
        if self.init_metadata is not None:
            meta["init_from"] = self.init_metadata
        if self.ema is not None:
            meta["ema_decay"] = self.args.ema_decay
        if self.eval_windows is not None:
            meta.update(self.eval_rollout())
        wm = WorldModel(self.wm_config, self.ae, self.ema if self.ema is not None else self.dyn)
        self.dyn.train()  # WorldModel() puts its modules in eval mode
        return wm.checkpoint_config(meta), wm.state_tensors()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights, with the usual warm-up (decay <= (1 + step) / (10 + step)) so
        the EMA of a fresh run is not dominated by its random initialisation. Depends only on the step, so a resumed
        run's EMA equals an uninterrupted one's; a run resumed from a checkpoint without an EMA starts it there."""
        decay = min(self.args.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.dyn.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.ema.buffers(), self.dyn.buffers()):
            e.copy_(b)

    @torch.no_grad()
    def eval_psnr(self) -> float:
        frames = self.eval_frames
        recon = []
        for i in range(0, len(frames), 64):
            px = frames_to_pixels(torch.from_numpy(frames[i : i + 64]).to(self.rt.device))
            with self._autocast():
                recon.append(pixels_to_frames(self.ae(px)).cpu().numpy())
        return float(psnr(np.concatenate(recon), frames).mean())

    def save(self) -> Path | None:
        if not self.rt.is_main:
            return None
        cfg, tensors = self._model_config_and_tensors()
        state = {"args": self.args.to_dict(), "world_size": self.rt.world_size, "time": time.time(),
                 "rng": "counter-based: numpy/torch generators are seeded from (seed, rank, step) every step"}
        raw = prefixed("train_dynamics", self.dyn) if self.ema is not None else None  # the weights being trained
        path = save_training_checkpoint(self.run_dir, self.step, cfg, tensors, self.optimizer, state,
                                        extra_tensors=raw, keep=self.args.keep_checkpoints)
        evals = {k: round(v, 2) for k, v in cfg["training"].items() if k.startswith("eval_psnr")}
        if evals:
            tqdm.write(f"[genie-train] step {self.step}: held-out PSNR (dB) {evals}")
            with open(self.run_dir / "eval.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, **evals}) + "\n")
        return path

    def resume(self) -> bool:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            return False
        state, opt_state, extra = load_training_state(ckpt)
        prev = state.get("args", {})
        if prev.get("kind") != self.args.kind or prev.get("preset") != self.args.preset:
            raise CheckpointError(f"{self.run_dir} holds a {prev.get('kind')}/{prev.get('preset')} run; cannot resume "
                                  f"it as {self.args.kind}/{self.args.preset}: use another --out")
        if self.args.kind == "dynamics" and prev.get("objective", "forcing") != self.args.objective:
            raise CheckpointError(f"{self.run_dir} was trained with --objective {prev.get('objective', 'forcing')}; "
                                  f"cannot resume it with --objective {self.args.objective}: use another --out")
        for key, default in (("context_sigma", 0.1), ("context_sigma_min", None), ("change_weight", 0.0)):
            if self.args.kind == "dynamics" and prev.get(key, default) != getattr(self.args, key):
                raise CheckpointError(f"{self.run_dir} was trained with {key}={prev.get(key, default)}; cannot resume "
                                      f"it with {key}={getattr(self.args, key)}: use another --out")
        tensors = read_tensors(ckpt)
        if self.args.kind == "dynamics":  # where a run started from --init-from, recorded in its checkpoints
            self.init_metadata = read_config(ckpt).get("training", {}).get("init_from")
        if self.args.kind == "autoencoder":
            load_into(self.ae, sub_state(tensors, "autoencoder"), "autoencoder")
        else:
            raw = sub_state(extra, "train_dynamics")
            # a checkpoint written with an EMA holds the EMA as the model and the trained weights beside it
            load_into(self.dyn, raw or sub_state(tensors, "dynamics"), "dynamics")
            if self.ema is not None:
                load_into(self.ema, sub_state(tensors, "dynamics") if raw else self.dyn.state_dict(), "dynamics EMA")
        self.optimizer.load_state_dict(opt_state)
        self.step = int(state["step"])
        if self.rt.is_main:
            self._truncate_log(self.step)
            print(f"[genie-train] resumed {self.run_dir} from {ckpt.name} (step {self.step})")
        return True

    def _truncate_log(self, step: int) -> None:
        """Drop log/eval lines past the checkpoint we resume from (those steps are trained again)."""
        for name in ("log.jsonl", "eval.jsonl"):
            log = self.run_dir / name
            if not log.is_file():
                continue
            kept = [ln for ln in log.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
            tmp = log.with_name(log.name + ".tmp")
            tmp.write_text("".join(ln + "\n" for ln in kept))
            os.replace(tmp, log)

    # ------------------------------------------------------------------ loop

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def _should_stop(self) -> bool:
        flag = torch.tensor([float(self.stop_requested)], device=self.rt.device)
        if self.rt.distributed:
            dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def run(self) -> Path:
        args, rt = self.args, self.rt
        if rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "run.json", {**args.to_dict(), "world_size": rt.world_size})
        rt.barrier()
        self.resume()
        self.trainable.train()
        handlers = {}
        if True:  # every rank stops at the same step (the flag is all-reduced)
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    handlers[sig] = signal.signal(sig, self._request_stop)
                except ValueError:  # not the main thread: leave signals alone
                    pass
        if rt.is_main:
            n_params = sum(p.numel() for p in self.trainable.parameters())
            print(f"[genie-train] {args.kind} preset={args.preset} params={n_params:,} device={rt.device} "
                  f"world_size={rt.world_size} batch/rank={args.effective_batch_size} bf16={args.bf16}")
        end = min(args.steps, args.stop_at) if args.stop_at is not None else args.steps
        bar = tqdm(total=end, initial=self.step, disable=not rt.is_main, desc=f"train {args.kind}",
                   dynamic_ncols=True)
        log_path = self.run_dir / "log.jsonl"
        t_start = t_last = t_ckpt = time.time()
        loss_sum, n_loss, ex_since = 0.0, 0, 0
        saved_at = self.step
        try:
            while self.step < end:
                lr = args.lr_at(self.step)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                np_gen, torch_gen = step_generators(args, rt, self.step)
                batch = self._batch(np_gen)
                with self._autocast():
                    loss = self.module(*batch, torch_gen) if args.kind == "dynamics" else self.module(*batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.trainable.parameters(), args.grad_clip)
                self.optimizer.step()
                self.step += 1
                if self.ema is not None:
                    self._update_ema()
                loss_sum += loss.item()
                n_loss += 1
                ex_since += args.effective_batch_size * rt.world_size
                bar.update(1)
                now = time.time()
                if self.step % args.log_every == 0 or self.step == end:
                    rec = {"step": self.step, "loss": loss_sum / n_loss, "lr": lr,
                           "examples_per_s": ex_since / max(now - t_last, 1e-9), "wall_time": now,
                           "elapsed_s": now - t_start}
                    if rt.is_main:
                        with open(log_path, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                        bar.set_postfix(loss=f"{rec['loss']:.4f}", ex_s=f"{rec['examples_per_s']:.1f}")
                    loss_sum, n_loss, ex_since, t_last = 0.0, 0, 0, now
                stop = self._should_stop()
                due = (self.step % args.checkpoint_every == 0 or self.step == end or stop
                       or now - t_ckpt > 60 * args.checkpoint_minutes)
                if rt.distributed:  # every rank must agree on saving (the time check may differ)
                    flag = torch.tensor([float(due)], device=rt.device)
                    dist.all_reduce(flag)
                    due = bool(flag.item() > 0)
                if due:
                    self.save()
                    saved_at, t_ckpt = self.step, time.time()
                    rt.barrier()
                if stop:
                    if rt.is_main:
                        tqdm.write(f"[genie-train] stopped at step {self.step}; run the same command to resume")
                    break
            if saved_at != self.step:
                self.save()
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        return self.run_dir


def train(args: TrainArgs, data=None) -> Path:
    """Train (or resume) a run; returns the run directory. `data` overrides args.data (tests, custom data)."""
    return Trainer(args, data).run()


def export(dynamics: str | Path, out: str | Path, autoencoder: str | Path | None = None,
           dtype: torch.dtype = torch.float16, sampler: dict | None = None, average_last: int = 1) -> Path:
    """Write the compact inference checkpoint of a dynamics run (optionally with another autoencoder's weights,
    and other sampler defaults, e.g. sampler={"guidance": 1.0}).

    average_last: average the dynamics weights of the run's last K checkpoints (checkpoint averaging, a cheap
    stand-in for an EMA of the weights: it smooths the noise of the last steps of SGD); 1 exports the latest."""
    if average_last < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
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
