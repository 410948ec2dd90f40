"""The training loop every model kind shares: DDP, lr schedule, bf16 autocast, EMA, resume, logs, checkpoints, stop.

A model kind (world_model/train_autoencoder.py, world_model/train_dynamics.py) subclasses `TrainArgs` with its
own knobs and `Trainer` with what differs: the model and its loss (`build`), a batch (`batch`), its model config
(`model_config`, `saved_model_config`) and its checkpoint (`checkpoint`).

A run directory holds:

    RUN/run.json             the arguments of the run (kind, preset, data, ...)
    RUN/ckpt-00001000/       training checkpoints (see checkpoint.py), the newest `keep_checkpoints` are kept
    RUN/log.jsonl            one JSON line per log interval: step, loss, lr, examples_per_s, wall_time, elapsed_s;
                             and, where the model kind estimates them (`Trainer.tokens_per_example`,
                             `Trainer.flops_per_example`), tokens_per_s and tflops (achieved TFLOP/s of the
                             forward + backward passes, from the estimate; see `transformer_flops`)
    RUN/eval.jsonl           one JSON line per checkpoint with held-out figures: step, eval_psnr* (dB)

Start a run again with the same --out and it resumes from its newest checkpoint: weights, EMA, optimizer state and
the step counter are restored, log lines past the checkpoint are dropped, and training continues. The checkpoint's
model config must equal the one the arguments build (otherwise use another --out). Randomness is counter-based
(every step's numpy and torch generators are seeded from (seed, rank, step)), so a resumed run draws exactly the
batches and noise an uninterrupted run would have.

A wall-clock budget (--time-budget-minutes) stops the run with a checkpoint once it is spent, counted from the
trainer's start (data loading, latent encoding and start-up included); the lr schedule then runs on time as well
(see `TrainArgs.lr_at`), so the cosine ends with the budget even though the number of steps it allows is unknown in
advance.

Distributed: under torchrun (WORLD_SIZE > 1) the loss module is wrapped in DistributedDataParallel (gloo on CPU,
nccl on CUDA); every rank draws its own batches, rank 0 writes checkpoints and logs. --batch-size is per rank.
SIGTERM / SIGINT stop every rank at the same step, with a checkpoint.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from .checkpoint import (CheckpointError, latest_checkpoint, load_into, load_training_state, prefixed, read_config,
                         read_tensors, save_training_checkpoint, sub_state, write_json)
from .hardware import resolve_bf16


@dataclass(frozen=True, kw_only=True)
class TrainArgs:
    """The knobs of every training run; each model kind adds its own (`genie-train KIND --help` lists them)."""

    kind: ClassVar[str]
    """The model kind these arguments train (the `genie-train` subcommand)."""
    presets: ClassVar[dict]
    """Model size presets of the kind, by name."""

    data: tuple[str, ...]
    """Recording folders of episode shards (genie-data record --out ...)."""
    out: str
    """Run directory (created; an existing one is resumed)."""
    preset: str = "default"
    """Model size preset, one of the kind's: "tiny", "default" or "fine" (autoencoder; "fine": a 32 x 32 latent, for
    dynamics with --patch-size 4), "tiny", "small" or "default" (dynamics; "small" for quick ablations)."""
    steps: int = 20000
    """Total optimizer steps (a resumed run continues up to this)."""
    stop_at: int | None = None
    """Stop (with a checkpoint) at this step without changing the schedule, which `steps` sets; a later run with a
    larger or no stop_at continues."""
    batch_size: int
    """Per-rank batch."""
    lr: float
    """Peak learning rate."""
    warmup: int = 200
    """Linear warm-up steps, then cosine decay to lr * min_lr_ratio."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak, in [0, 1]."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases, norms and embeddings)."""
    grad_clip: float = 1.0
    """Max global gradient norm."""
    bf16: bool | None = None
    """bf16 autocast; weights and optimizer stay fp32. None: on where the device runs bf16 natively (CUDA, CPUs with
    AVX512-BF16 or AMX), off where PyTorch would emulate it (slower than fp32; world_model.hardware)."""
    ema_decay: float
    """Decay of the exponential moving average of the weights that checkpoints, evaluation and export use, in
    [0, 1) (0 = off; the raw weights are kept beside it for resuming)."""
    split: str | None = "train"
    """Episode split to train on ("train", "test"; "all" or None = every split)."""
    eval_data: tuple[str, ...] | None = None
    """Folders of held-out episodes (default: --data, split "test", if recorded) for the held-out figures at every
    checkpoint (mean per-frame PSNR, world_model/metrics.py)."""
    views: tuple[str, ...] | None = None
    """Keep only episodes of these views (e.g. first_person); None keeps all."""
    checkpoint_every: int = 1000
    """Save a checkpoint every this many steps (and at the end)."""
    checkpoint_minutes: float = 10.0
    """... and at least this often in wall-clock minutes."""
    time_budget_minutes: float | None = None
    """Wall-clock budget of this invocation in minutes (> 0), counted from the trainer's start (loading and
    encoding the data included): the run stops with a checkpoint when the budget is spent, and the lr schedule's
    progress is the larger of step / steps and the spent share of the training time the budget leaves (so the
    cosine ends with the budget; set --steps high to let the budget decide). A resumed run continues the schedule
    from the progress its checkpoint recorded. None: no budget, a schedule in steps only."""
    keep_checkpoints: int = 2
    """Checkpoints kept in the run directory, newest first (`genie-train export --average-last K` needs K)."""
    log_every: int = 20
    """Steps between log.jsonl lines."""
    seed: int = 0
    """Seed of the weight initialisation and of the counter-based data and noise generators."""
    device: str = "auto"
    """"cpu", "cuda" or "auto" (cuda when available)."""
    threads: int | None = None
    """CPU threads per process (default: OMP_NUM_THREADS when it is set, else all cores / processes on this
    machine)."""

    def __post_init__(self):
        if self.split == "all":
            object.__setattr__(self, "split", None)
        if self.stop_at is not None and self.stop_at < 1:
            raise ValueError(f"stop_at must be >= 1, got {self.stop_at}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.preset not in self.presets:
            raise ValueError(f"unknown {self.kind} preset {self.preset!r}; choose one of {sorted(self.presets)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.time_budget_minutes is not None and not self.time_budget_minutes > 0:
            raise ValueError(f"time_budget_minutes must be > 0 (or None for no budget), got {self.time_budget_minutes}")

    def lr_at(self, step: int, time_progress: float = 0.0) -> float:
        """Linear warm-up over `warmup` steps, then cosine decay to lr * min_lr_ratio; the decay's progress is the
        larger of the steps' and `time_progress` (in [0, 1]: the spent share of a time budget; 0 without one).
        Step counts from 0."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = min(1.0, max((step - self.warmup) / max(1, self.steps - self.warmup), time_progress))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    def trainer(self, data=None) -> "Trainer":
        """The trainer of these arguments; `data` overrides args.data (tests, custom data)."""
        raise NotImplementedError


def train(args: TrainArgs, data=None) -> Path:
    """Train (or resume) a run; returns the run directory. `data` overrides args.data (tests, custom data)."""
    return args.trainer(data).run()


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

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is True on any rank."""
        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)


def _env_threads() -> int | None:
    """OMP_NUM_THREADS as a positive int, or None when it is unset or not one."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n > 0 else None


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
        torch.set_num_threads(args.threads or _env_threads() or max(1, (os.cpu_count() or 1) // local_world))
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


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "emb" not in name and name.split(".")[-1] != "pos" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def open_windows(args: TrainArgs, window: int, pad_noop: bool = False, pad_weight: float | None = None,
                 pad_at: str = "front", pad_views: Sequence[str] | None = None):
    """The recordings of args.data (split, views) as windows of `window` consecutive frames; with `pad_noop`,
    episodes shorter than the window (of `pad_views`, default every view) get one window padded (`pad_at`: in front
    or at the end) under the recordings' "noop" action, drawn `pad_weight` times as often as another
    (WindowDataset)."""
    from .dataset import DatasetError, EpisodeDataset, WindowDataset  # imported here: importing the trainer stays cheap

    episodes = EpisodeDataset(list(args.data), split=args.split, views=args.views)
    pad_action = None
    if pad_noop:
        meanings = episodes.meta.action_meanings
        if "noop" not in meanings:
            raise DatasetError(f"--pad-short-episodes pads under the 'noop' action, and these recordings have none "
                               f"({', '.join(meanings)}); train without it")
        pad_action = meanings.index("noop")
    return WindowDataset(episodes, window=window, pad_action=pad_action, pad_weight=pad_weight, pad_at=pad_at,
                         pad_views=pad_views)


def transformer_flops(token_params: int, tokens: int, layers: int, width: int, frame_params: int = 0,
                      frames: int = 0, attention_pairs: int | None = None) -> float:
    """Estimated FLOPs of one forward + backward pass of a transformer over one example of `tokens` tokens, whose
    attention scores `attention_pairs` (query, key) pairs per layer (default tokens^2: all attend to each other, as
    a masked attention computes the whole score matrix):

        6 * token_params * tokens        the matrix products of the weights applied to every token (2 FLOPs per
                                         multiply-add, forward; the backward pass costs twice the forward)
      + 6 * frame_params * frames        those applied once per frame (e.g. adaLN modulation from a per-frame
                                         conditioning)
      + 12 * layers * pairs * width      attention: Q K^T and A V, 2 * pairs * width FLOPs each per layer,
                                         forward, times 3 with the backward pass

    Element-wise work (norms, activations, softmax, optimizer) is left out, so achieved TFLOP/s from this count
    slightly understate the work done; it is the usual estimate (Kaplan et al. 2020, Chinchilla's appendix F)."""
    pairs = tokens**2 if attention_pairs is None else attention_pairs
    return 6.0 * (token_params * tokens + frame_params * frames) + 12.0 * layers * pairs * width


def _leaves(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------------------------------------- the loop


class LossModule(nn.Module):
    """`objective.loss(*batch, generator)` as the forward of a module, which DistributedDataParallel can wrap."""

    def __init__(self, objective: nn.Module):
        super().__init__()
        self.objective = objective

    def forward(self, *batch_and_generator) -> torch.Tensor:
        return self.objective.loss(*batch_and_generator)


class Trainer:
    """One training run; `run()` trains to args.steps, resuming if possible.

    A subclass sets, in `build()`, `self.model` (the module being trained) and `self.objective` (the module whose
    `loss(*batch, generator)` -> scalar is minimised: the model itself, or a wrapper such as the Denoiser), and
    names its checkpoint tensors with the class attribute `prefix` and its config format with `format`.
    """

    prefix: ClassVar[str]
    """Name of the trained module's tensors in checkpoints ("autoencoder", "dynamics")."""
    format: ClassVar[str]
    """The checkpoint format its config.json declares (checkpoint.py)."""

    def __init__(self, args: TrainArgs, data=None):
        self.t_init = time.time()  # the time budget counts from here
        self.schedule_progress = 0.0  # time progress of the lr schedule at the checkpoint resumed from
        self.rt = setup_runtime(args)
        self.args = args = replace(args, bf16=resolve_bf16(args.bf16, self.rt.device))
        self.run_dir = Path(args.out)
        self.data = data  # an object with sample_batch(batch_size, np.random.Generator), or None: from args.data
        self.stop_requested = False
        self.step = 0
        torch.manual_seed(args.seed)  # weight init (DDP also broadcasts rank 0's weights)
        self.build()
        self.loss_module = LossModule(self.objective)
        # EMA of the weights (evaluated, checkpointed as the model and exported); not a parameter of the optimizer
        self.ema = copy.deepcopy(self.model).requires_grad_(False) if args.ema_decay > 0 else None
        self.loss_module.to(self.rt.device)
        if self.ema is not None:
            self.ema.to(self.rt.device)
        self.module = self.loss_module
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.module = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=ids)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, args.weight_decay), lr=args.lr,
                                           betas=(0.9, 0.99), fused=self.rt.device.type == "cuda")

    # ------------------------------------------------------------------ what a model kind provides

    def build(self) -> None:
        """Set self.model and self.objective (and open self.data when it is None)."""
        raise NotImplementedError

    def batch(self, np_gen: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """The next training batch on the device: the arguments of objective.loss before the generator."""
        raise NotImplementedError

    def model_config(self) -> dict:
        """The model config this run trains (what a resumed checkpoint must match)."""
        raise NotImplementedError

    def saved_model_config(self, config: dict) -> dict:
        """The model config of a checkpoint's config.json, in the form of `model_config`."""
        raise NotImplementedError

    def checkpoint(self, training: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        """(config.json, model tensors) of the averaged model, with `training` (metadata) recorded in the config;
        may add held-out figures (keys "eval_psnr*") to `training`."""
        raise NotImplementedError

    def on_resume(self, checkpoint: Path) -> None:
        """Restore what the kind keeps in its checkpoints besides weights (nothing by default)."""

    def after_step(self) -> None:
        """Called after every optimizer step, before the EMA update (nothing by default): a kind that keeps some
        weights fixed puts them back here."""

    def tokens_per_example(self) -> int | None:
        """Tokens one training example feeds the model (for tokens/s in the log), or None if the kind has no
        tokens."""
        return None

    def flops_per_example(self) -> float | None:
        """Estimated FLOPs of one example's forward + backward pass (for the achieved TFLOP/s in the log; see
        `transformer_flops`), or None if the kind does not estimate them."""
        return None

    # ------------------------------------------------------------------ shared parts

    @property
    def averaged(self) -> nn.Module:
        """The weights that evaluation, checkpoints and export use: the EMA, or the trained ones without one."""
        return self.ema if self.ema is not None else self.model

    def autocast(self):
        if not self.args.bf16:
            return nullcontext()
        return torch.autocast(self.rt.device.type, dtype=torch.bfloat16)

    def held_out(self, n: int, salt: int, window: int):
        """A fixed sample of n held-out windows (the test split of --eval-data or --data when recorded, else of the
        training data), the same at every checkpoint."""
        gen = np.random.default_rng([self.args.seed, salt])
        if self.args.data and (self.args.eval_data or self.args.split == "train"):
            try:
                test = replace(self.args, data=self.args.eval_data or self.args.data, split="test")
                return open_windows(test, window=window).sample_batch(n, gen)
            except (ValueError, OSError) as e:  # DatasetError is a ValueError: no test split recorded
                print(f"[genie-train] no held-out test episodes ({e}); evaluating on training episodes")
        return self.data.sample_batch(n, gen)

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights, with the usual warm-up (decay <= (1 + step) / (10 + step)) so
        the EMA of a fresh run is not dominated by its random initialisation. Depends only on the step, so a resumed
        run's EMA equals an uninterrupted one's; a run resumed from a checkpoint without an EMA starts it there."""
        decay = min(self.args.ema_decay, (1 + self.step) / (10 + self.step))
        torch._foreach_lerp_(list(self.ema.parameters()), [p.detach() for p in self.model.parameters()], 1 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def save(self) -> Path | None:
        if not self.rt.is_main:
            return None
        training = {"kind": self.args.kind, "step": self.step, "preset": self.args.preset,
                    "data": list(self.args.data), "world_size": self.rt.world_size}
        if self.ema is not None:
            training["ema_decay"] = self.args.ema_decay
        cfg, tensors = self.checkpoint(training)
        state = {"args": self.args.to_dict(), "world_size": self.rt.world_size, "time": time.time(),
                 "time_progress": self.time_progress(),
                 "rng": "counter-based: numpy/torch generators are seeded from (seed, rank, step) every step"}
        raw = prefixed(f"train_{self.prefix}", self.model) if self.ema is not None else None  # the weights trained
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
        self._check_same_model(ckpt)
        state, opt_state, extra = load_training_state(ckpt)
        tensors = sub_state(read_tensors(ckpt), self.prefix)
        raw = sub_state(extra, f"train_{self.prefix}")
        # a checkpoint written with an EMA holds the EMA as the model and the trained weights beside it
        load_into(self.model, raw or tensors, self.prefix)
        if self.ema is not None:
            load_into(self.ema, tensors if raw else self.model.state_dict(), f"{self.prefix} EMA")
        self.on_resume(ckpt)
        self.optimizer.load_state_dict(opt_state)
        self.step = int(state["step"])
        self.schedule_progress = float(state.get("time_progress", 0.0))
        if self.rt.is_main:
            self._truncate_log(self.step)
            print(f"[genie-train] resumed {self.run_dir} from {ckpt.name} (step {self.step})")
        return True

    def _check_same_model(self, ckpt: Path) -> None:
        """Refuse to resume a checkpoint whose model config differs from the one these arguments build."""
        saved = read_config(ckpt, formats=(self.format,), written_by=f"`genie-train {self.args.kind}`")
        saved, mine = _leaves(self.saved_model_config(saved)), _leaves(self.model_config())
        differ = [k for k in sorted(saved.keys() | mine.keys()) if saved.get(k) != mine.get(k)]
        if not differ:
            return
        flags = {f"--{k.replace('_', '-')}" for k in self.args.to_dict()}

        def describe(config: dict) -> str:
            parts = []
            for k in differ:
                flag = "--" + k.rsplit(".", 1)[-1].replace("_", "-")
                value = config.get(k)
                parts.append(f"{k}={value}" + (f" ({flag} {value})" if flag in flags else ""))
            return ", ".join(parts)

        raise CheckpointError(f"{self.run_dir} was trained with {describe(saved)}; cannot resume it with "
                              f"{describe(mine)}: use another --out, or the run's settings (see its run.json)")

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

    def time_progress(self) -> float:
        """The lr schedule's progress in time, in [0, 1]: the progress resumed from, plus the rest of it in
        proportion to the training time of the budget spent in this invocation (0 without a budget)."""
        budget = self.args.time_budget_minutes
        if budget is None or getattr(self, "t_loop", None) is None:
            return self.schedule_progress
        span = max(1e-9, self.t_init + 60 * budget - self.t_loop)
        spent = min(1.0, max(0.0, (time.time() - self.t_loop) / span))
        return self.schedule_progress + (1 - self.schedule_progress) * spent

    def _budget_spent(self, step_s: float, save_s: float) -> bool:
        """True when the time budget does not leave room for one more step and the final checkpoint."""
        budget = self.args.time_budget_minutes
        return budget is not None and time.time() + step_s + save_s >= self.t_init + 60 * budget

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def _should_stop(self) -> bool:
        """Every rank stops at the same step (the flag is all-reduced)."""
        return self.rt.any(self.stop_requested)

    def run(self) -> Path:
        args, rt = self.args, self.rt
        if rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "run.json", {**args.to_dict(), "world_size": rt.world_size})
        rt.barrier()
        self.resume()
        self.model.train()
        handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                handlers[sig] = signal.signal(sig, self._request_stop)
            except ValueError:  # not the main thread: leave signals alone
                pass
        tokens, flops = self.tokens_per_example(), self.flops_per_example()
        if rt.is_main:
            n_params = sum(p.numel() for p in self.model.parameters())
            print(f"[genie-train] {args.kind} preset={args.preset} params={n_params:,} device={rt.device} "
                  f"world_size={rt.world_size} batch/rank={args.batch_size} bf16={args.bf16}"
                  + (f" tokens/example={tokens}" if tokens else "")
                  + (f" GFLOP/example={flops / 1e9:.3g} (forward + backward, estimated)" if flops else "")
                  + (f" time budget={args.time_budget_minutes:g} min" if args.time_budget_minutes else ""))
        end = min(args.steps, args.stop_at) if args.stop_at is not None else args.steps
        bar = tqdm(total=end, initial=self.step, disable=not rt.is_main, desc=f"train {args.kind}",
                   dynamic_ncols=True)
        log_path = self.run_dir / "log.jsonl"
        t_start = t_last = t_ckpt = self.t_loop = time.time()
        loss_sum, n_loss, ex_since = 0.0, 0, 0
        saved_at = self.step
        step_s = save_s = 0.0  # the longest step and checkpoint so far: what the budget must still leave room for
        first = self.step  # where this invocation starts (0, or the checkpoint it resumed from)
        out_of_time = False
        try:
            while self.step < end:
                t_step = time.time()
                lr = args.lr_at(self.step, self.time_progress())
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                np_gen, torch_gen = step_generators(args, rt, self.step)
                batch = self.batch(np_gen)
                with self.autocast():
                    loss = self.module(*batch, torch_gen)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), args.grad_clip)
                self.optimizer.step()
                self.after_step()
                self.step += 1
                if self.ema is not None:
                    self._update_ema()
                loss_sum += loss.item()
                n_loss += 1
                ex_since += args.batch_size * rt.world_size
                bar.update(1)
                now = time.time()
                step_s = max(step_s, now - t_step) if self.step > first + 1 else step_s  # the first warms up
                if self.step % args.log_every == 0 or self.step == end:
                    rec = {"step": self.step, "loss": loss_sum / n_loss, "lr": lr,
                           "examples_per_s": ex_since / max(now - t_last, 1e-9), "wall_time": now,
                           "elapsed_s": now - t_start}
                    if tokens:
                        rec["tokens_per_s"] = rec["examples_per_s"] * tokens
                    if flops:
                        rec["tflops"] = rec["examples_per_s"] * flops / 1e12
                    if rt.is_main:
                        with open(log_path, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                        bar.set_postfix(loss=f"{rec['loss']:.4f}", ex_s=f"{rec['examples_per_s']:.1f}")
                    loss_sum, n_loss, ex_since, t_last = 0.0, 0, 0, now
                out_of_time = rt.any(self._budget_spent(step_s, save_s))  # every rank stops at the same step
                stop = self._should_stop() or out_of_time
                # every rank must agree on saving (the time check may differ)
                due = rt.any(self.step % args.checkpoint_every == 0 or self.step == end or stop
                             or now - t_ckpt > 60 * args.checkpoint_minutes)
                if due:
                    t_save = time.time()
                    self.save()
                    saved_at, t_ckpt = self.step, time.time()
                    save_s = max(save_s, t_ckpt - t_save)
                    rt.barrier()
                if stop:
                    if rt.is_main:
                        why = f"the time budget ({args.time_budget_minutes:g} min) is spent" if out_of_time else \
                            "asked to stop"
                        tqdm.write(f"[genie-train] stopped at step {self.step}: {why}; run the same command to "
                                   "resume")
                    break
            if saved_at != self.step:
                self.save()
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        return self.run_dir
