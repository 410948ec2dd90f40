"""The WorldModel runtime: prompt frames in, one generated frame per action out, for B worlds at once.

    wm = WorldModel.load("default")                     # or a checkpoint folder / a dynamics training run dir
    state = wm.reset(prompt_frames, view="top_down")    # uint8 (B, k, H, W, 3) or (B, H, W, 3); view optional
    g = torch.Generator().manual_seed(0)
    frames, state = wm.step(state, actions, generator=g)   # actions int (B,) -> frames uint8 numpy (B, H, W, 3)
    other = state.fork()                                # independent copy, for counterfactual rollouts
    state = wm.observe(state, true_frames, actions)     # real frames (B, n, H, W, 3) seen under actions (B, n)

`step` updates `state` in place (its KV cache is a preallocated ring buffer, so memory stays bounded however long
the rollout) and returns it; fork first to branch. Each step: draw x ~ N(0, sigma_max^2), run the sampler whose
denoiser sees only the new frame's tokens attending to the cached past (classifier-free guidance batches the
action and NULL branches into one forward, at the noise levels >= `SamplerConfig.guidance_min_sigma`), decode the
latent to pixels, then "commit" the frame: add the small context noise, run it once through the transformer and
store its keys/values as context for later frames. With `SamplerConfig.cache_refresh` = K, a world whose cache is
full first has it rebuilt from its latest K frames (`refresh`), so cached keys never depend on frames that left the
window.
A view-conditioned model (`DynamicsConfig.views`) conditions every frame of a world on the view given at reset
(kept in the state's cache; None: unknown); other models ignore the view.
Randomness comes only from the caller's generator (same generator seed -> same rollout).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field, replace as dc_replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import autoencoder as ae_mod
from . import dynamics as dyn_mod
from .autoencoder import Autoencoder, AutoencoderConfig, frames_to_pixels, pixels_to_frames
from .checkpoint import (FORMAT_VERSION, FORMAT_WORLD_MODEL, CheckpointError, load_into, prefixed, read_config,
                         read_tensors, resolve_checkpoint, save_model, sub_state)
from .diffusion import Denoiser, DiffusionConfig
from .dynamics import Dynamics, DynamicsConfig, KVCache
from .hardware import resolve_bf16
from .sampler import SamplerConfig, check_solver, heun_gain, karras_sigmas, sample

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"


@dataclass(frozen=True)
class WorldModelConfig:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    action_meanings: tuple[str, ...] = ()
    """Name of each action id (index -> name), as the training recordings name them (ShardMeta.action_meanings);
    one per dynamics.num_actions. Empty (the default, and a checkpoint without names): generic names action_0,
    action_1, ..."""

    def __post_init__(self):
        a, d = self.autoencoder, self.dynamics
        if (a.latent_channels, a.latent_size) != (d.latent_channels, d.latent_size):
            raise ValueError(f"autoencoder latents ({a.latent_channels}, {a.latent_size}) do not match the dynamics "
                             f"({d.latent_channels}, {d.latent_size}); use presets of the same name")
        names = tuple(str(m) for m in self.action_meanings) or generic_action_meanings(d.num_actions)
        object.__setattr__(self, "action_meanings", names)  # normalised once, at construction
        if len(self.action_meanings) != d.num_actions:
            raise ValueError(f"{len(self.action_meanings)} action meanings for {d.num_actions} actions; name every "
                             "action or none")
        if self.sampler.cache_refresh >= d.context_frames:
            raise ValueError(f"sampler cache_refresh={self.sampler.cache_refresh} must be below the context window "
                             f"({d.context_frames} frames); 0 slides the cache")

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_WORLD_MODEL,
            "format_version": FORMAT_VERSION,
            "autoencoder": self.autoencoder.to_dict(),
            "dynamics": self.dynamics.to_dict(),
            "diffusion": self.diffusion.to_dict(),
            "sampler": self.sampler.to_dict(),
            "action_meanings": list(self.action_meanings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "WorldModelConfig":
        try:
            return cls(
                autoencoder=AutoencoderConfig.from_dict(d["autoencoder"]),
                dynamics=DynamicsConfig.from_dict(d["dynamics"]),
                diffusion=DiffusionConfig.from_dict(d.get("diffusion", {})),
                sampler=SamplerConfig.from_dict(d.get("sampler", {})),
                action_meanings=tuple(d.get("action_meanings", ())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"config.json does not describe a world model ({type(e).__name__}: {e})") from e


def generic_action_meanings(num_actions: int) -> tuple[str, ...]:
    """Names of actions whose meaning nobody recorded: ("action_0", ..., "action_{num_actions-1}")."""
    return tuple(f"action_{i}" for i in range(num_actions))


PRESETS = {name: WorldModelConfig(autoencoder=ae_mod.PRESETS[name], dynamics=dyn_mod.PRESETS[name])
           for name in ("tiny", "default")}


@dataclass
class WorldState:
    """The rollout state of B worlds: the KV cache of their recent frames and each world's next frame index."""

    cache: KVCache
    time: torch.Tensor  # (B,) long: absolute index of the next frame of each world

    @property
    def batch_size(self) -> int:
        return int(self.time.shape[0])

    def fork(self) -> "WorldState":
        """An independent deep copy (stepping one does not change the other)."""
        return WorldState(self.cache.clone(), self.time.clone())

    def select(self, indices) -> "WorldState":
        """A new state holding the worlds `indices` (sequence of ints), in that order."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=self.time.device)
        return WorldState(self.cache.select(idx), self.time[idx].clone())

    def replace(self, i: int, other: "WorldState", j: int = 0) -> None:
        """Overwrite world i by world j of `other` in place (e.g. after resetting one world of a vector env)."""
        self.cache.replace(i, other.cache, j)
        self.time[i] = other.time[j]


class WorldModel(nn.Module):
    """Autoencoder + EDM denoiser over the dynamics transformer, with a KV-cached autoregressive sampler.

    autocast: run inference in bfloat16 (on a bf16 copy of the weights made once; the fp32 weights stay the
    reference): about 2-4x faster on CPUs with AMX / AVX512-BF16, several times slower than fp32 on CPUs without
    (which emulate it). None (the default): on where the model's device runs bf16 natively
    (world_model.hardware.bf16_native), fp32 elsewhere; False runs everything in fp32.
    """

    def __init__(self, config: WorldModelConfig, autoencoder: Autoencoder, dynamics: Dynamics,
                 autocast: bool | None = None):
        super().__init__()
        self.config = config
        self.autoencoder = autoencoder
        self.dynamics = dynamics
        self.denoiser = Denoiser(config.diffusion, dynamics)
        self._autocast = autocast
        self._bf16 = []  # lazily built bf16 copy of (autoencoder, dynamics, denoiser) for the runtime
        self.eval()

    # ------------------------------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: WorldModelConfig, autocast: bool | None = None) -> "WorldModel":
        """Random weights (for tests and as a training starting point)."""
        return cls(config, Autoencoder(config.autoencoder), Dynamics(config.dynamics), autocast=autocast)

    @classmethod
    def load(cls, path: str | Path = "default", device: str | torch.device = "cpu",
             autocast: bool | None = None) -> "WorldModel":
        """Load a checkpoint folder (or a dynamics training run dir: its latest checkpoint); "default" is the
        checkpoint shipped in the package. Weights are loaded as fp32 with strict shape checks."""
        if str(path) == "default":
            path = DEFAULT_CHECKPOINT
            if not (path / "config.json").is_file():
                raise CheckpointError(
                    f"the default world-model checkpoint is not installed ({path} is missing). Train one with "
                    "`genie-train autoencoder ...`, `genie-train dynamics ...` and `genie-train export --out "
                    f"{path}`, or pass the folder of another checkpoint to WorldModel.load")
        folder = resolve_checkpoint(path)
        raw = read_config(folder, formats=(FORMAT_WORLD_MODEL,))
        config = WorldModelConfig.from_dict(raw)
        tensors = read_tensors(folder)
        model = cls.from_config(config, autocast=autocast)
        load_into(model.autoencoder, sub_state(tensors, "autoencoder"), "autoencoder")
        load_into(model.dynamics, sub_state(tensors, "dynamics"), "dynamics")
        leftover = [k for k in tensors if not k.startswith(("autoencoder.", "dynamics."))]
        if leftover:
            raise CheckpointError(f"{folder}/model.safetensors has unexpected tensors {leftover[:3]}; is it a "
                                  "world-model checkpoint?")
        model.training_metadata = raw.get("training", {})
        return model.to(device).eval()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**prefixed("autoencoder", self.autoencoder), **prefixed("dynamics", self.dynamics)}

    def checkpoint_config(self, training: dict | None = None) -> dict:
        d = self.config.to_dict()
        d["latent_shift"] = self.autoencoder.latent_shift.tolist()
        d["latent_scale"] = self.autoencoder.latent_scale.tolist()
        d["training"] = training or {}
        return d

    def save(self, folder: str | Path, dtype: torch.dtype | None = torch.float16, training: dict | None = None) -> Path:
        """Write an inference checkpoint (weights stored in `dtype`, fp16 by default, to keep it small)."""
        return save_model(folder, self.checkpoint_config(training), self.state_tensors(), dtype=dtype)

    # ------------------------------------------------------------------------------------------ runtime

    @property
    def action_meanings(self) -> tuple[str, ...]:
        return self.config.action_meanings

    @property
    def num_actions(self) -> int:
        return self.config.dynamics.num_actions

    @property
    def device(self) -> torch.device:
        return self.dynamics.pos.device

    @property
    def autocast(self) -> bool:
        """Whether inference runs in bf16: the constructor's choice, or (None) whether this device runs it natively."""
        return resolve_bf16(self._autocast, self.device)

    @autocast.setter
    def autocast(self, value: bool | None) -> None:
        self._autocast = value
        self._bf16.clear()

    def _runtime(self) -> tuple[Autoencoder, Dynamics, Denoiser]:
        """The modules that run inference: the fp32 ones, or (autocast on) a bf16 copy made once, so that
        autocast does not re-cast every weight at every forward (which costs more than the matmuls here).
        Call `refresh_runtime()` after changing the weights in place."""
        if not self.autocast:
            return self.autoencoder, self.dynamics, self.denoiser
        if not self._bf16:
            ae = copy.deepcopy(self.autoencoder).to(torch.bfloat16)
            for name in Autoencoder.STATS:  # keep the statistics exact
                if hasattr(self.autoencoder, name):
                    getattr(ae, name).data = getattr(self.autoencoder, name).data.clone()
            dyn = copy.deepcopy(self.dynamics).to(torch.bfloat16).eval()
            for name in Dynamics.STATS:
                if hasattr(self.dynamics, name):
                    getattr(dyn, name).data = getattr(self.dynamics, name).data.clone()
            self._bf16.extend([ae.eval(), dyn, Denoiser(self.config.diffusion, dyn)])
        return tuple(self._bf16)

    def refresh_runtime(self) -> None:
        self._bf16.clear()

    def _apply(self, fn, *args, **kwargs):  # .to(device) etc.: rebuild the bf16 copy from the moved weights
        self._bf16.clear()
        return super()._apply(fn, *args, **kwargs)

    @property
    def _cache_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.autocast else torch.float32

    @torch.no_grad()
    def encode(self, frames) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> normalised latents (B, C, h, w) (fp32)."""
        ae = self._runtime()[0]
        pixels = frames_to_pixels(torch.as_tensor(np.asarray(frames), device=self.device))
        return ae.encode(pixels.to(ae.conv_dtype)).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalised latents (B, C, h, w) -> uint8 numpy (B, H, W, 3)."""
        ae = self._runtime()[0]
        pixels = ae.decode(latents)
        return pixels_to_frames(pixels).cpu().numpy()

    @torch.no_grad()
    def reset(self, prompt_frames, prompt_actions=None, generator: torch.Generator | None = None,
              view=None) -> WorldState:
        """Start B worlds from prompt frames uint8 (B, k, H, W, 3) (or (B, H, W, 3), k = 1).

        prompt_actions: optional int (B, k-1), the actions between the prompt frames (unknown ones are NULL).
        view: the view the worlds are rendered in ("first_person", "top_down"; `dynamics.VIEW_IDS`), one for all or
        a sequence of one per world; None (the default, or a world's entry) for unknown. Only view-conditioned
        models use it.
        """
        frames = np.asarray(prompt_frames)
        if frames.ndim == 4:
            frames = frames[:, None]
        size = self.config.autoencoder.image_size
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[2:4] != (size, size) or frames.dtype != np.uint8:
            raise ValueError(f"prompt_frames must be uint8 (B, k, {size}, {size}, 3) or (B, {size}, {size}, 3); got "
                             f"{frames.dtype} {frames.shape} (resize the prompt image to {size}x{size} first)")
        B, k = frames.shape[:2]
        cfg = self.config.dynamics
        views = cfg.view_ids(view, B, self.device)  # checks the names first
        if not 1 <= k <= cfg.context_frames:
            raise ValueError(f"need 1 <= k <= context_frames={cfg.context_frames} prompt frames, got {k}")
        y = self.encode(frames.reshape(B * k, *frames.shape[2:]))
        y = y.view(B, k, *y.shape[1:])  # (B, k, C, h, w)
        cond = torch.full((B, k), cfg.null_action, dtype=torch.long, device=self.device)
        cond[:, 0] = cfg.start_action
        if prompt_actions is not None and k > 1:
            cond[:, 1:] = self._actions(prompt_actions, (B, k - 1))
        state = WorldState(KVCache.empty(cfg, B, self.device, self._cache_dtype, views=views),
                           torch.zeros(B, dtype=torch.long, device=self.device))
        self._commit(state, y, cond, generator)
        return state

    @torch.no_grad()
    def observe(self, state: WorldState, frames, actions, generator: torch.Generator | None = None) -> WorldState:
        """Append real frames to every world's context, as if `step` had generated them (teacher forcing): frames
        uint8 (B, n, H, W, 3) (or (B, H, W, 3), n = 1), actions int (B, n), actions[:, i] leading to frames[:, i].
        Each frame is committed as `step` commits its own (context noise, KV cache, a full cache rebuilt first under
        the sampler's cache_refresh), so the next `step` continues after the last one. Updates `state` in place and
        returns it. Use it for a prompt clip seen under known actions, e.g. a look-around before play."""
        x = np.asarray(frames)
        if x.ndim == 4:
            x = x[:, None]
        size = self.config.autoencoder.image_size
        B = state.batch_size
        if x.ndim != 5 or x.shape[0] != B or x.shape[2:] != (size, size, 3) or x.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 ({B}, n, {size}, {size}, 3) or ({B}, {size}, {size}, 3) for "
                             f"this state's {B} worlds; got {x.dtype} {x.shape}")
        n = x.shape[1]
        a = self._actions(actions, (B, n))  # checked before anything changes
        y = self.encode(x.reshape(B * n, size, size, 3))
        y = y.view(B, n, *y.shape[1:])  # (B, n, C, h, w)
        keep = self.config.sampler.cache_refresh
        for i in range(n):
            if keep:
                self.refresh(state, keep)
            self._commit(state, y[:, i:i + 1], a[:, i:i + 1], generator)
        return state

    def fork(self, state: WorldState) -> WorldState:
        return state.fork()

    def _actions(self, actions, shape) -> torch.Tensor:
        a = torch.as_tensor(np.asarray(actions) if not torch.is_tensor(actions) else actions)
        if a.is_floating_point() or a.dtype == torch.bool:
            raise TypeError(f"actions must be integers, got {a.dtype}")
        a = a.to(device=self.device, dtype=torch.long).reshape(shape)
        if a.numel() and (a.min() < 0 or a.max() >= self.num_actions):
            raise ValueError(f"actions must be in [0, {self.num_actions}) ({', '.join(self.action_meanings)}); "
                             f"got {a.tolist()}")
        return a

    @torch.no_grad()
    def _commit(self, state: WorldState, y: torch.Tensor, cond: torch.Tensor, generator) -> None:
        """Add context noise to clean latents y (B, T, C, h, w) and store their keys/values in the cache."""
        B, T = y.shape[:2]
        sigma = torch.full((B, T), self.config.diffusion.context_sigma, device=self.device)
        x = y + sigma[..., None, None, None] * torch.randn(y.shape, generator=generator, device=self.device)
        positions = state.time[:, None] + torch.arange(T, device=self.device)  # (B, T)
        self._runtime()[2].commit(x, sigma, cond, positions, state.cache)
        state.time += T

    @torch.no_grad()
    def step(self, state: WorldState, actions, generator: torch.Generator | None = None,
             num_steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
             use_kv_cache: bool = True) -> tuple[np.ndarray, WorldState]:
        """Generate the next frame of every world given actions int (B,). Returns (uint8 (B, H, W, 3), state).

        num_steps / guidance / sampler ("euler" | "heun") default to the checkpoint's sampler config.
        use_kv_cache=False recomputes the whole context window at every denoising step (reference path).
        """
        sc = self.config.sampler
        num_steps = sc.num_steps if num_steps is None else num_steps
        guidance = sc.guidance if guidance is None else guidance
        solver = sc.solver if sampler is None else sampler
        check_solver(solver)
        B = state.batch_size
        a = self._actions(actions, (B, 1))  # (B, 1): frame t+1 is conditioned on a_t
        cfg_a = self.config.autoencoder
        latent_shape = (B, cfg_a.latent_channels, cfg_a.latent_size, cfg_a.latent_size)
        sigmas = karras_sigmas(num_steps, sc.sigma_min, sc.sigma_max, sc.rho, device=self.device)
        gain = heun_gain(sigmas) if solver == "heun" else 0.0
        if gain > 1:  # stacklevel 3: the caller of step, past no_grad
            warnings.warn(f"Heun with {num_steps} steps (sigma {sc.sigma_max} -> {sc.sigma_min}) extrapolates on "
                          f"its large steps (gain {gain:.1f} > 1) and overshoots; use more steps or "
                          "'euler' (see world_model/sampler.py, `sample`)", stacklevel=3)
        if sc.cache_refresh and use_kv_cache:
            self.refresh(state, sc.cache_refresh)
        x = sigmas[0] * torch.randn(latent_shape, generator=generator, device=self.device)
        denoise = self._cached_denoiser(state, a, guidance) if use_kv_cache else self._window_denoiser(state, a, guidance)
        y = sample(denoise, x, sigmas, solver).float()  # (B, C, h, w)
        self._commit(state, y[:, None], a, generator)
        return self.decode(y), state

    @property
    def refresh_period(self) -> int:
        """Steps between two cache rebuilds of a world with a full context under the default sampler
        (`SamplerConfig.cache_refresh`; 1 when the cache slides): time throughput over whole periods."""
        keep = self.config.sampler.cache_refresh
        return self.config.dynamics.context_frames - keep if keep else 1

    @torch.no_grad()
    def refresh(self, state: WorldState, keep: int) -> None:
        """Rebuild the KV cache of every world whose cache is full from its latest `keep` frames, run again as a
        fresh window (their stored noisy latents, noise levels, actions and times; the oldest gets no predecessor,
        as a training window's first frame), so that no cached key depends on a frame that has left the window
        (`SamplerConfig.cache_refresh`). Worlds with room left are untouched."""
        c = state.cache
        if not 1 <= keep < c.slots:
            raise ValueError(f"keep must be in [1, {c.slots - 1}], got {keep}")
        full = c.valid.all(dim=1)
        if not bool(full.any()):
            return
        idx = full.nonzero()[:, 0]
        order = c.times[idx].argsort(dim=1)[:, -keep:]  # the latest `keep` slots of each full world, oldest first

        def take(t: torch.Tensor) -> torch.Tensor:
            t = t[idx]
            return t.gather(1, order.view(*order.shape, *([1] * (t.dim() - 2))).expand(*order.shape, *t.shape[2:]))

        fresh = KVCache.empty(self.config.dynamics, len(idx), self.device, c.k[0].dtype, views=c.views[idx])
        self._runtime()[2].commit(take(c.latents), take(c.sigmas), take(c.actions), take(c.times), fresh)
        if len(idx) == state.batch_size:
            state.cache = fresh
        else:
            for j, i in enumerate(idx.tolist()):
                c.replace(i, fresh, j)

    def _cached_denoiser(self, state: WorldState, a: torch.Tensor, guidance: float):
        positions = state.time[:, None]  # (B, 1)
        sc = self.config.sampler
        denoiser = self._runtime()[2]

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = sigma.expand(x.shape[0], 1)
            if not sc.guides(sigma, guidance):
                d = denoiser(x[:, None], s, a, positions, cache=state.cache)
            else:
                d = denoiser.guided(x[:, None], s, a, positions, guidance, cache=state.cache)
            return d[:, 0].float()

        return denoise

    def _window_denoiser(self, state: WorldState, a: torch.Tensor, guidance: float):
        """Denoiser that runs the whole context window (cached latents, oldest first) + the new frame."""
        c = state.cache
        order = torch.where(c.valid, c.times, torch.full_like(c.times, -1)).argsort(dim=1)  # invalid slots first
        take = lambda t: t.gather(1, order.view(*order.shape, *([1] * (t.dim() - 2))).expand_as(t))  # noqa: E731
        ctx_x, ctx_sigma, ctx_a, ctx_t, ctx_valid = map(take, (c.latents, c.sigmas, c.actions, c.times, c.valid))
        B = state.batch_size
        actions = torch.cat([ctx_a, a], dim=1)  # (B, S+1)
        positions = torch.cat([ctx_t, state.time[:, None]], dim=1)
        valid = torch.cat([ctx_valid, torch.ones(B, 1, dtype=torch.bool, device=self.device)], dim=1)
        frame_valid = None if bool(valid.all()) else valid
        denoiser = self._runtime()[2]
        sc = self.config.sampler

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            xs = torch.cat([ctx_x, x[:, None]], dim=1)  # (B, S+1, C, h, w)
            sig = torch.cat([ctx_sigma.clamp_min(self.config.diffusion.context_sigma), sigma.expand(B, 1)], dim=1)
            if not sc.guides(sigma, guidance):
                d = denoiser(xs, sig, actions, positions, frame_valid=frame_valid, view=c.views)
            else:
                d = denoiser.guided(xs, sig, actions, positions, guidance, frame_valid=frame_valid, view=c.views)
            return d[:, -1].float()

        return denoise

    def with_sampler(self, context_sigma: float | None = None, **changes) -> "WorldModel":
        """The same model (shared weights) with other sampler defaults, e.g. wm.with_sampler(num_steps=4);
        context_sigma: the noise level past frames are stored at in the cache (diffusion.context_sigma; the
        training-only range context_sigma_min is dropped, `genie-train export` keeps it in the metadata)."""
        cfg = dc_replace(self.config, sampler=dc_replace(self.config.sampler, **changes))
        if context_sigma is not None:
            if not context_sigma > 0:
                raise ValueError(f"context_sigma must be > 0, got {context_sigma}")
            cfg = dc_replace(cfg, diffusion=dc_replace(cfg.diffusion, context_sigma=float(context_sigma),
                                                       context_sigma_min=None, context_sigma_max=None))
        out = type(self)(cfg, self.autoencoder, self.dynamics, autocast=self._autocast)
        out.training_metadata = getattr(self, "training_metadata", {})
        return out
