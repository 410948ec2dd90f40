"""EDM denoiser: preconditioning of the dynamics network and the training loss (Karras et al. 2022, "Elucidating
the Design Space of Diffusion-Based Generative Models", Table 1 and Section 5).

Notation (code name -> paper symbol):

| code          | paper                 | meaning                                                         |
|---------------|-----------------------|-----------------------------------------------------------------|
| `y`           | y                     | clean latent frame (normalised, ~unit variance)                 |
| `x`           | x = y + n             | noisy latent, n ~ N(0, sigma^2 I)                               |
| `sigma`       | sigma                 | noise level (per frame)                                         |
| `sigma_data`  | sigma_data            | std of the data (1 for our normalised latents)                  |
| `c_skip`      | c_skip(sigma)         | sigma_data^2 / (sigma^2 + sigma_data^2)                         |
| `c_out`       | c_out(sigma)          | sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)               |
| `c_in`        | c_in(sigma)           | 1 / sqrt(sigma^2 + sigma_data^2)                                |
| `c_noise`     | c_noise(sigma)        | ln(sigma) / 4                                                   |
| `F`           | F_theta               | the raw network (`Dynamics`)                                    |
| `D`           | D_theta               | the denoiser, D = c_skip x + c_out F(c_in x; c_noise)  (Eq. 7)   |
| `weight`      | lambda(sigma)         | (sigma^2 + sigma_data^2) / (sigma sigma_data)^2                 |
| `p_mean/p_std`| P_mean, P_std         | ln(sigma) ~ N(P_mean, P_std^2) at training                      |

Training, `objective="forcing"` (the default): Diffusion Forcing (Chen et al. 2024) with clean-context mixing.
Every frame of a window of T frames gets its own noise level and all T frames are denoised in parallel under the
frame-causal mask; with probability `context_prob` a frame is instead set to the small `context_sigma` that
sampling uses for past frames, and such frames carry no loss. One forward trains T targets, and the context the
model sees at training includes the inference-time condition (past frames at `context_sigma`) as well as noisier
ones, which makes long rollouts robust to the model's own errors.

`objective="augment"`: GameNGen-style noise augmentation (Valevski et al. 2024): the window's last frame is the
only target, every earlier frame is context corrupted with a random noise level up to `augment_sigma_max`.

Training on the model's own frames (both objectives, off by default):
- context-noise augmentation ("forcing"): context levels drawn from [context_sigma_min or context_sigma,
  context_sigma_max or context_sigma], log-uniformly or uniformly (`context_sigma_draw`), the level embedded; the
  sampler keeps caching past frames at `context_sigma` (GameNGen: levels up to 0.7, uniform, embedded).
- autoregressive unroll (`unroll_steps`, `unroll_prob`; DIAMOND unrolls its own predictions): in a share of the
  windows, `unroll_steps` consecutive frames are replaced by the model's own predictions, generated one after the
  other from the true frames before them with the sampler the model is used with (`Denoiser.rollout`: current
  weights, no gradient), and sit in the context at `context_sigma` as at inference; the frame after them is a
  target.
- counterfactual branches (`loss(..., group=...)`): rows of a group share one context (frames, noise levels and
  noise) and differ in the last frame's action and target (the next frame under that action); only that last frame
  carries a loss, weighted `branch_weight` against a window's target frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .dynamics import Dynamics, KVCache
from .sampler import SamplerConfig, karras_sigmas, sample


OBJECTIVES = ("forcing", "augment")
CONTEXT_SIGMA_DRAWS = ("log_uniform", "uniform")
CHANGE_SCOPES = ("frame", "window", "past")
CHANGE_NORMS = ("batch", "window")


@dataclass(frozen=True)
class DiffusionConfig:
    sigma_data: float = 1.0
    """Std of the (normalised) latents."""
    p_mean: float = -0.4
    """Mean of ln(sigma) at training (EDM uses -1.2 for images; DIAMOND uses -0.4 for next-frame prediction)."""
    p_std: float = 1.2
    """Std of ln(sigma) at training."""
    context_sigma: float = 0.1
    """Noise level of past (context) frames, at training (mixed in) and at sampling."""
    context_sigma_min: float | None = None
    """Training ("forcing"): if set (in (0, context_sigma)), each context frame's noise level is drawn from
    [context_sigma_min, context_sigma_max or context_sigma] (`context_sigma_draw`) instead of sitting at
    context_sigma (the level is embedded, so sampling may then cache past frames at any level of that range:
    `genie-train export --context-sigma`). None: the range starts at context_sigma."""
    context_sigma_max: float | None = None
    """Training ("forcing"): if set (> context_sigma), the upper end of the range context levels are drawn from,
    [context_sigma_min or context_sigma, context_sigma_max], while sampling still caches past frames at
    context_sigma (the level is embedded): context-noise augmentation well above the sampling level, as GameNGen's
    (up to 0.7). None: the range ends at context_sigma."""
    context_sigma_draw: str = "log_uniform"
    """Training ("forcing"): how a context level is drawn from its range: "log_uniform" (equal weight per decade)
    or "uniform" (GameNGen; most draws in the upper part of the range, where the model's own frames' errors lie)."""
    context_prob: float = 0.5
    """Training: probability that a frame is a context frame at `context_sigma` (no loss) rather than noised."""
    null_action_prob: float = 0.1
    """Training: probability of replacing a frame's action by NULL (classifier-free guidance)."""
    view_dropout: float = 0.1
    """Training, view-conditioned dynamics only (`DynamicsConfig.views`): probability, in [0, 1], of replacing a
    window's view by the unknown view, so that the model also learns worlds whose view nobody gives."""
    objective: str = "forcing"
    """Training objective: "forcing" (Diffusion Forcing: every frame of a window gets its own noise level and a
    loss, with clean-context mixing) or "augment" (GameNGen-style noise augmentation: only the window's last frame
    is a target; every earlier frame is context corrupted with a random noise level up to `augment_sigma_max`)."""
    augment_sigma_max: float = 0.7
    """"augment": context frames get sigma ~ U(context_sigma / 10, augment_sigma_max) (the level is embedded, as
    GameNGen does; sampling uses `context_sigma`)."""
    change_weight: float = 0.0
    """Training: extra loss weight lambda >= 0 on the latent positions that change from the previous frame (see
    `change_weights`): weight (1 + lambda min(m, change_cap)) / (1 + lambda), m the squared change of a position
    over its batch mean. 0 (the default) weights every position alike; larger values tilt the optimum towards
    frames that change, at the cost of a biased denoiser. A reasonable range is [0, 2]."""
    change_cap: float = 10.0
    """Training: the largest relative change m (> 0) that `change_weight` counts."""
    change_scope: str = "frame"
    """Training: where `change_weight` looks for change: "frame" (each frame's own change from its predecessor),
    "window" (a position's largest change anywhere in its window, the same weight on every frame of the window: the
    places where things move, whatever this frame's action did there) or "past" (a position's largest change among
    the transitions *before* the frame, measured against those transitions' mean: a weight that never looks at the
    frame it weighs, so it moves the model's capacity towards where things have moved without tilting the optimum
    towards frames that change)."""
    change_norm: str = "batch"
    """Training: what a position's change is measured against in `change_weight`: "batch" (the batch's mean change)
    or "window" (its own window's mean change). With "batch", a window whose actions change little of the frame (the
    top-down view: a turn moves ~1% as much latent as a first-person turn) gets no extra weight where it changes
    when the batch also holds windows that change a lot; with "window" its changed positions weigh as much as
    another window's."""
    unroll_steps: int = 0
    """Training: frames (>= 0) of an unrolled window that are the model's own predictions, generated
    autoregressively (`Denoiser.rollout`); 0 = no unroll. The window needs at least unroll_steps + 2 frames."""
    unroll_prob: float = 0.0
    """Training: probability, in [0, 1], that a window (not a branch row) is unrolled when unroll_steps > 0. Each
    unrolled window costs unroll_steps x sampler steps (x 2 with guidance) one-frame network evaluations more."""
    branch_share: float = 0.0
    """Training: share, in [0, 1], of each batch's rows that are counterfactual branch rows (round(share x batch)
    rows): groups of rows sharing a context of recorded frames, each with one branch's action and next frame as the
    only target. Needs recordings with branches. 0 = none."""
    branch_weight: float = 1.0
    """Training: loss weight (> 0) of a branch row's target frame relative to a window's target frame. A window
    ("forcing") has about window x (1 - context_prob) targets (8.5 at 17 frames), a branch row one: a weight of
    that size weighs a branch row like a window."""

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.context_sigma > 0:
            raise ValueError(f"context_sigma must be > 0, got {self.context_sigma}")
        if not (self.change_weight >= 0 and self.change_cap > 0):
            raise ValueError(f"need change_weight >= 0 and change_cap > 0, got change_weight={self.change_weight}, "
                             f"change_cap={self.change_cap}")
        if self.change_scope not in CHANGE_SCOPES:
            raise ValueError(f"change_scope must be one of {CHANGE_SCOPES}, got {self.change_scope!r}")
        if self.change_norm not in CHANGE_NORMS:
            raise ValueError(f"change_norm must be one of {CHANGE_NORMS}, got {self.change_norm!r}")
        if self.context_sigma_min is not None and not 0 < self.context_sigma_min < self.context_sigma:
            raise ValueError(f"context_sigma_min must be in (0, context_sigma={self.context_sigma}), got "
                             f"{self.context_sigma_min}")
        if self.context_sigma_max is not None and not self.context_sigma_max > self.context_sigma:
            raise ValueError(f"context_sigma_max must be > context_sigma={self.context_sigma} (the sampling level "
                             f"lies inside the trained range), got {self.context_sigma_max}")
        if self.context_sigma_draw not in CONTEXT_SIGMA_DRAWS:
            raise ValueError(f"context_sigma_draw must be one of {CONTEXT_SIGMA_DRAWS}, got "
                             f"{self.context_sigma_draw!r}")
        if not 0 <= self.view_dropout <= 1:
            raise ValueError(f"view_dropout must be in [0, 1], got {self.view_dropout}")
        if self.unroll_steps < 0 or not 0 <= self.unroll_prob <= 1:
            raise ValueError(f"need unroll_steps >= 0 and unroll_prob in [0, 1], got unroll_steps="
                             f"{self.unroll_steps}, unroll_prob={self.unroll_prob}")
        if not 0 <= self.branch_share <= 1 or not self.branch_weight > 0:
            raise ValueError(f"need branch_share in [0, 1] and branch_weight > 0, got branch_share="
                             f"{self.branch_share}, branch_weight={self.branch_weight}")

    @property
    def context_sigma_range(self) -> tuple[float, float] | None:
        """(low, high) of the training context levels, or None when they sit at context_sigma."""
        if self.context_sigma_min is None and self.context_sigma_max is None:
            return None
        lo = self.context_sigma if self.context_sigma_min is None else self.context_sigma_min
        hi = self.context_sigma if self.context_sigma_max is None else self.context_sigma_max
        return lo, hi

    @property
    def trained_context_sigma(self) -> float | list[float]:
        """The context noise of training: one level, or the [min, max] range it was drawn from."""
        r = self.context_sigma_range
        return self.context_sigma if r is None else list(r)

    @property
    def unrolls(self) -> bool:
        """Whether training unrolls windows on the model's own predictions."""
        return self.unroll_steps > 0 and self.unroll_prob > 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        return cls(**d)


def _check_view(cache: KVCache | None, view: torch.Tensor | None) -> None:
    if cache is not None and view is not None:
        raise ValueError("frames over a cache take their world's view from the cache (KVCache.views); drop view")


def _per_frame(c: torch.Tensor) -> torch.Tensor:
    """A per-frame conditioner (...) broadcast over a latent frame's (C, h, w) -> (..., 1, 1, 1)."""
    return c[..., None, None, None]


@dataclass(frozen=True)
class Conditioners:
    """The EDM preconditioning of noise levels sigma (Karras et al. 2022, Table 1, EDM column); every field has
    sigma's shape, e.g. (B, T) for a window of frames."""

    c_skip: torch.Tensor
    """Weight of the noisy input in D: sigma_data^2 / (sigma^2 + sigma_data^2), in (0, 1]."""
    c_out: torch.Tensor
    """Scale of the network output in D: sigma sigma_data / sqrt(sigma^2 + sigma_data^2), in (0, sigma_data)."""
    c_in: torch.Tensor
    """Scale of the network input: 1 / sqrt(sigma^2 + sigma_data^2), so that c_in x has unit variance."""
    c_noise: torch.Tensor
    """The noise level as the network embeds it: ln(sigma) / 4."""

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """c_in x for noisy frames x (..., C, h, w)."""
        return _per_frame(self.c_in) * x

    def denoised(self, x: torch.Tensor, F_x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """D = c_skip x + c_out F (Eq. 7) from noisy frames x and the network output F, both (..., C, h, w), plus
        the prior's term (`Denoiser.prior`) when there is one."""
        d = _per_frame(self.c_skip) * x + _per_frame(self.c_out) * F_x
        return d if prior is None else d + prior

    def network_target(self, y: torch.Tensor, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The F that makes D equal the clean frames y: (y - c_skip x) / c_out (Eq. 8), less the prior's term."""
        y = y if prior is None else y - prior
        return (y - _per_frame(self.c_skip) * x) / _per_frame(self.c_out)


class Denoiser(nn.Module):
    """D_theta: EDM preconditioning around the dynamics transformer, plus the training loss.

    Two ways to run it: over a window of frames (`forward` without a cache: training and the recompute path), or
    on new frames attending to a KV cache of past frames (`forward` with a cache, `guided`, and `commit`, which
    stores frames in the cache)."""

    def __init__(self, config: DiffusionConfig, dynamics: Dynamics, sampler: SamplerConfig | None = None):
        super().__init__()
        self.config = config
        self.dynamics = dynamics
        self.sampler = SamplerConfig() if sampler is None else sampler  # what `rollout` generates frames with

    def compute_conditioners(self, sigma: torch.Tensor) -> Conditioners:
        """c_skip, c_out, c_in, c_noise of noise levels sigma (any shape) (Karras et al. 2022, Table 1)."""
        sd = self.config.sigma_data
        sigma = sigma.float()
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        return Conditioners(c_skip=c_skip, c_out=c_out, c_in=c_in, c_noise=c_noise)

    def forward(self, x, sigma, actions, positions, cache: KVCache | None = None, frame_valid=None, view=None):
        """D(x; sigma) for frames x (B, T, C, h, w), sigma (B, T) -> (B, T, C, h, w) (Eq. 7).

        Without a cache the T frames are a window under the frame-causal mask (frame_valid: optional (B, T) bool,
        False for padding frames; view: optional (B,) long view ids, None unknown); with one they are new frames
        attending to the cached past, in the view of their world in the cache (`KVCache.views`)."""
        if cache is not None and frame_valid is not None:
            raise ValueError("frame_valid applies to a window; new frames over a cache are all valid")
        _check_view(cache, view)
        return self._denoise(x, sigma, actions, positions, cache, frame_valid, view=view)

    def _denoise(self, x, sigma, actions, positions, cache: KVCache | None, frame_valid=None,
                 independent: bool = False, view=None) -> torch.Tensor:
        cs = self.compute_conditioners(sigma)
        if cache is None:
            F_x = self.dynamics(cs.network_input(x), cs.c_noise, actions, positions, frame_valid=frame_valid,
                                **({} if view is None else {"view": view}))
        else:
            F_x = self.dynamics.forward_cached(cs.network_input(x), cs.c_noise, actions, positions, cache,
                                               prev=self.cache_prev(cache), independent=independent,
                                               memory=self.cache_inputs(cache))
        return cs.denoised(x, F_x, self.prior(x, sigma, actions, cache, frame_valid, independent))

    def prior(self, x, sigma, actions, cache: KVCache | None = None, frame_valid=None, independent: bool = False):
        """The term `DynamicsConfig.prev_prior` adds to D for noisy frames x (B, T, C, h, w) at levels sigma (B, T),
        led to by the conditioning actions (B, T), or None for models without it: M ((1 - k) p + (k - c_skip) x),
        M the prior map (`Dynamics.prior_project`), so that D = p + k (x - p) + c_out F in what M keeps and EDM's
        c_skip x + c_out F in the rest. p is the frame's predecessor (in the window; the first one's the cache's
        latest frame) times `prev_prior_gain` of the frame's action and g = sigma_data^2 / (sigma_p^2 +
        sigma_data^2), the share of it that is signal; k = s^2 / (sigma^2 + s^2) with s^2 the spread of the
        change (`prev_prior_sigma` of the frame's action) squared plus the noise p carries. A frame without a
        predecessor gets nothing (k = c_skip, p = 0)."""
        cfg = self.dynamics.config
        if not cfg.prev_prior:
            return None
        sd = self.config.sigma_data
        px, ps, has = self.dynamics.predecessors(x, sigma, self.cache_latest(cache), frame_valid, independent)
        ps, sigma = ps.float(), sigma.float()
        g = torch.where(has, sd**2 / (ps**2 + sd**2), torch.zeros_like(ps))
        spread = sd if cfg.prev_prior_sigma is None else cfg.prev_prior_sigma
        if isinstance(spread, tuple):
            spread = torch.tensor(spread, device=x.device)[actions]  # (B, T)
        if cfg.prev_prior_gain is not None:
            gain = cfg.prev_prior_gain
            g = g * (torch.tensor(gain, device=x.device)[actions] if isinstance(gain, tuple) else gain)
        s2 = spread**2 + (g * ps) ** 2
        c_skip = sd**2 / (sigma**2 + sd**2)
        k = torch.where(has, s2 / (sigma**2 + s2), c_skip)
        mix = _per_frame((1 - k) * g) * px.float() + _per_frame(k - c_skip) * x.float()
        return self.dynamics.prior_project(mix)

    @torch.no_grad()
    def commit(self, x, sigma, actions, positions, cache: KVCache) -> None:
        """Store noisy frames x (B, T, C, h, w) at noise levels sigma (B, T), led to by `actions` (B, T) at frame
        indices `positions` (B, T), in the cache as context for later frames (their keys/values; no output)."""
        cs = self.compute_conditioners(sigma)
        self.dynamics.append(cs.network_input(x), cs.c_noise, actions, positions, cache, latents=x, sigmas=sigma,
                             prev=self.cache_prev(cache), memory=self.cache_inputs(cache))

    def cache_inputs(self, cache: KVCache | None):
        """Every cached frame as the network sees it: (c_in x (B, S, C, h, w), c_noise (B, S)) (empty slots at
        sigma 1), the memory candidates of memory models (`DynamicsConfig.memory`); None without a cache or for
        models without memory."""
        if cache is None or not self.dynamics.config.memory:
            return None
        sigma = torch.where(cache.valid, cache.sigmas, torch.ones_like(cache.sigmas))
        cs = self.compute_conditioners(sigma)
        return cs.network_input(cache.latents), cs.c_noise

    @staticmethod
    def cache_latest(cache: KVCache | None):
        """The latest cached frame of every world: (noisy latent (B, C, h, w), sigma (B,) (1 where absent),
        present (B,) bool); None without a cache."""
        if cache is None:
            return None
        slot = (cache.next_slot - 1) % cache.slots  # (B,)
        b = torch.arange(cache.batch, device=slot.device)
        present = cache.valid[b, slot]
        sigma = torch.where(present, cache.sigmas[b, slot], torch.ones_like(cache.sigmas[b, slot]))
        return cache.latents[b, slot], sigma, present

    def cache_prev(self, cache: KVCache | None):
        """The latest cached frame of every world as the network sees it: (c_in x (B, C, h, w), c_noise (B,),
        present (B,) bool), the predecessor of the next frame for `prev_frame` models; None without a cache."""
        if cache is None or not self.dynamics.config.prev_frame:
            return None
        latent, sigma, present = self.cache_latest(cache)
        cs = self.compute_conditioners(sigma)
        return cs.network_input(latent), cs.c_noise, present

    def guided(self, x, sigma, actions, positions, guidance: float, cache: KVCache | None = None, frame_valid=None,
               view=None):
        """Classifier-free guidance on the action of the last frame: D = D_null + w (D_act - D_null).

        Both branches run in one forward; the NULL branch replaces only the *last* frame's action (the action
        being simulated). With a cache (one new frame, T = 1) the two branches are two independent frames of the
        same world attending to the shared cache; without one, the window is batched twice (2B).
        """
        B, T = actions.shape
        _check_view(cache, view)
        if cache is not None:
            if frame_valid is not None:
                raise ValueError("frame_valid marks padding frames of a window; drop it when passing a cache")
            if T != 1:
                raise ValueError(f"guidance over a cache takes one new frame per world (T = 1), got T = {T}")
            null = torch.full_like(actions, self.dynamics.config.null_action)
            both = self._denoise(torch.cat([x, x], 1), torch.cat([sigma, sigma], 1), torch.cat([actions, null], 1),
                                 torch.cat([positions, positions], 1), cache, independent=True)  # (B, 2, C, h, w)
            d_act, d_null = both[:, :1], both[:, 1:]
            return d_null + guidance * (d_act - d_null)
        null = actions.clone()
        null[:, -1] = self.dynamics.config.null_action
        both = self(
            torch.cat([x, x]),
            torch.cat([sigma, sigma]),
            torch.cat([actions, null]),
            torch.cat([positions, positions]),
            frame_valid=None if frame_valid is None else torch.cat([frame_valid, frame_valid]),
            view=None if view is None else torch.cat([view, view]),
        )
        d_act, d_null = both[:B], both[B:]
        return d_null + guidance * (d_act - d_null)

    def sample_sigma(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        """ln(sigma) ~ N(P_mean, P_std^2) (Karras et al. 2022, Table 1, training section)."""
        z = torch.randn(shape, generator=generator, device=device)
        return (self.config.p_mean + self.config.p_std * z).exp()

    def sample_context_sigma(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        """Noise levels of context frames at training: context_sigma, or drawn from `context_sigma_range`
        (log-uniformly or uniformly, `context_sigma_draw`) when a range is set."""
        cfg = self.config
        r = cfg.context_sigma_range
        if r is None:
            return torch.full(shape, cfg.context_sigma, device=device)
        if cfg.context_sigma_draw == "uniform":
            return r[0] + (r[1] - r[0]) * torch.rand(shape, generator=generator, device=device)
        lo, hi = math.log(r[0]), math.log(r[1])
        return (lo + (hi - lo) * torch.rand(shape, generator=generator, device=device)).exp()

    @torch.no_grad()
    def rollout(self, y: torch.Tensor, cond: torch.Tensor, steps: int, generator: torch.Generator,
                view: torch.Tensor | None = None) -> torch.Tensor:
        """The model's own continuation of windows of clean latents y (B, s, C, h, w): `steps` frames generated one
        after the other as a world model steps (`self.sampler`; past frames in a KV cache at context_sigma, each
        new frame committed there at context_sigma), without gradient. cond: (B, s + steps) conditioning actions
        (START first; cond[:, s + j] leads to generated frame j); view: optional (B,) long view ids (None unknown).
        Returns (B, steps, C, h, w) float32, detached.
        Only the last context_frames frames of y fit the cache."""
        cfg, sc, dyn_cfg = self.config, self.sampler, self.dynamics.config
        B, s = y.shape[:2]
        dev = y.device
        keep = min(s, dyn_cfg.context_frames)
        cache = KVCache.empty(dyn_cfg, B, dev, views=view)

        def commit(frames: torch.Tensor, t0: int) -> None:  # (B, n, C, h, w) clean latents at frame t0...
            n = frames.shape[1]
            sig = torch.full((B, n), cfg.context_sigma, device=dev)
            x = frames.float() + cfg.context_sigma * torch.randn(frames.shape, generator=generator, device=dev)
            positions = torch.arange(t0, t0 + n, device=dev).expand(B, n)
            self.commit(x, sig, cond[:, t0 : t0 + n], positions, cache)

        commit(y[:, s - keep :], s - keep)
        sigmas = karras_sigmas(sc.num_steps, sc.sigma_min, sc.sigma_max, sc.rho, device=dev)
        out = []
        for j in range(steps):
            t = s + j
            a = cond[:, t : t + 1]
            positions = torch.full((B, 1), t, device=dev)

            def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
                sig = sigma.expand(B, 1)
                if not sc.guides(sigma):
                    d = self(x[:, None], sig, a, positions, cache=cache)
                else:
                    d = self.guided(x[:, None], sig, a, positions, sc.guidance, cache=cache)
                return d[:, 0].float()

            x = sigmas[0] * torch.randn((B, *y.shape[2:]), generator=generator, device=dev)
            frame = sample(denoise, x, sigmas, sc.solver).float()  # (B, C, h, w)
            out.append(frame)
            if j < steps - 1:
                commit(frame[:, None], t)
        return torch.stack(out, 1)

    def change_weights(self, y: torch.Tensor, frame_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Loss weights (B, T, 1, h, w) of clean latents y (B, T, C, h, w) that favour what moves.

        m = ||y_t - y_{t-1}||^2 per latent position (mean over channels), divided by its mean over the batch
        (change_norm "batch") or over the position's own window ("window");
        weight = (1 + lambda min(m, cap)) / (1 + lambda); the first frame of a window (no predecessor) has m = 0, as
        has a frame next to padding (frame_valid False). Where an action changes a small part of the frame, uniform
        weights let copying the last frame earn most of the loss. With change_scope "frame" the weight depends on
        the target's own change, so it tilts the optimum towards frames that change (D -> E[w y | x] / E[w | x]);
        `change_cap` bounds that tilt. With "window" every frame of a window gets, at each position, the largest m
        of the window: the agent's cells weigh alike whether this frame's action moved it or not. With "past" frame
        t gets, at each position, the largest change of transitions 1..t-1 over their mean (frames 0 and 1 weigh
        1 / (1 + lambda) everywhere): the weight is a function of the frames before t alone, so where those frames
        are given (context) the optimum of the weighted loss is the unweighted one's."""
        cfg = self.config
        change = torch.zeros_like(y[:, :, :1], dtype=torch.float32)  # (B, T, 1, h, w)
        change[:, 1:] = (y[:, 1:].float() - y[:, :-1].float()).pow(2).mean(dim=2, keepdim=True)
        if frame_valid is not None:
            both = frame_valid[:, 1:] & frame_valid[:, :-1]  # (B, T - 1)
            change[:, 1:] = change[:, 1:] * both[..., None, None, None].float()
        if cfg.change_scope == "past":  # frame t sees transitions 1..t-1 only: their largest change, their mean
            dims = (0, 2, 3, 4) if cfg.change_norm == "batch" else (2, 3, 4)
            real = torch.ones_like(change[:, :, :1, :1, :1])  # (B, T, 1, 1, 1): transitions that exist
            real[:, 0] = 0
            if frame_valid is not None:
                real[:, 1:] = both[..., None, None, None].float()
            total = change.sum(dim=dims, keepdim=True).cumsum(dim=1)  # through transition t
            count = (real.sum(dim=dims, keepdim=True) * change[0, 0].numel()).cumsum(dim=1)
            mean = (total / count.clamp_min(1)).roll(1, dims=1)  # through transition t - 1
            peak = change.cummax(dim=1).values.roll(1, dims=1)
            m = (peak / mean.clamp_min(1e-12)).clamp(max=cfg.change_cap)
            m[:, :2] = 0  # frames 0 and 1 have no transition before them
            return (1 + cfg.change_weight * m) / (1 + cfg.change_weight)
        mean = change.mean() if cfg.change_norm == "batch" else change.mean(dim=(1, 2, 3, 4), keepdim=True)
        m = (change / mean.clamp_min(1e-12)).clamp(max=cfg.change_cap)
        if cfg.change_scope == "window":
            m = m.amax(dim=1, keepdim=True).expand_as(m)
        return (1 + cfg.change_weight * m) / (1 + cfg.change_weight)

    def loss(self, y: torch.Tensor, actions: torch.Tensor, generator: torch.Generator,
             group: torch.Tensor | None = None, frame_valid: torch.Tensor | None = None,
             view: torch.Tensor | None = None) -> torch.Tensor:
        """Diffusion Forcing (or, with objective="augment", noise-augmentation) loss on a window of clean latents
        y (B, T, C, h, w) with data actions (B, T).

        actions[:, t] leads frame t -> t+1, so frame t is conditioned on actions[:, t-1] and frame 0 on START.
        Returns the mean over noised frames of lambda(sigma) ||D(x; sigma) - y||^2 (Eq. 2 / Eq. 8), computed
        in F-space: ||F(c_in x) - (y - c_skip x) / c_out||^2.

        group: optional (B,) long, -1 for ordinary windows and a group id >= 0 for counterfactual branch rows: the
        rows of a group hold the same context frames (all but the last) and each its own last frame, led to by its
        own action actions[:, T-2]; they share context levels, noise and context actions (those of the group's
        first row), and only their last frame carries a loss. frame_valid: optional (B, T) bool, False for padding
        frames at the start of a row (no loss, attended by nothing; the first real frame is conditioned on START).
        With unroll_steps and unroll_prob, some windows are first unrolled on the model's own predictions
        (`rollout`; see the module docstring). view: optional (B,) long view ids of the windows (None: unknown);
        view-conditioned dynamics see each replaced by the unknown id with probability view_dropout (a branch
        group shares its first row's).
        """
        cfg, dyn_cfg = self.config, self.dynamics.config
        B, T = y.shape[:2]
        dev = y.device
        cond = torch.cat([torch.full((B, 1), dyn_cfg.start_action, device=dev, dtype=torch.long), actions[:, :-1]], 1)
        if frame_valid is not None:  # a row's first real frame is conditioned on START
            first = frame_valid & ~torch.cat([torch.zeros_like(frame_valid[:, :1]), frame_valid[:, :-1]], 1)
            cond = torch.where(first, torch.full_like(cond, dyn_cfg.start_action), cond)
        data_cond = cond
        drop = torch.rand((B, T), generator=generator, device=dev) < cfg.null_action_prob
        cond = torch.where(drop, torch.full_like(cond, dyn_cfg.null_action), cond)  # (B, T)
        data_view = view
        if dyn_cfg.views:  # (no draw otherwise: the generator's stream stays that of unconditioned training)
            if view is None:
                view = torch.full((B,), dyn_cfg.unknown_view, dtype=torch.long, device=dev)
            drop_view = torch.rand(B, generator=generator, device=dev) < cfg.view_dropout
            view = torch.where(drop_view, torch.full_like(view, dyn_cfg.unknown_view), view)  # (B,)

        sigma = train_sigma = self.sample_sigma((B, T), generator, dev)
        if cfg.objective == "forcing":
            is_context = torch.rand((B, T), generator=generator, device=dev) < cfg.context_prob
            sigma = torch.where(is_context, self.sample_context_sigma((B, T), generator, dev), sigma)  # (B, T)
        else:  # "augment": the last frame is the only target; earlier frames are noise-augmented context
            is_context = torch.ones((B, T), dtype=torch.bool, device=dev)
            is_context[:, -1] = False
            lo = cfg.context_sigma / 10
            aug = lo + (cfg.augment_sigma_max - lo) * torch.rand((B, T), generator=generator, device=dev)
            sigma = torch.where(is_context, aug, sigma)
        branch = None
        if group is not None and bool((group >= 0).any()):
            branch = group >= 0
            if cfg.objective == "forcing":  # every frame but the last is context (in "augment" it already is)
                ctx = self.sample_context_sigma((B, T), generator, dev)
                is_context = torch.where(branch[:, None], True, is_context)
                is_context[:, -1] &= ~branch
                sigma = torch.where(is_context, torch.where(branch[:, None], ctx, sigma), train_sigma)
        if cfg.unrolls:
            y, sigma, is_context = self._unroll(y, data_cond, sigma, train_sigma, is_context, branch, generator,
                                                data_view)
        noise = torch.randn(y.shape, generator=generator, device=dev)
        if branch is not None:  # a group's rows share their context: levels, noise and actions of its first row
            same = (group[:, None] == group[None, :]) & branch[:, None]  # (B, B)
            lead = torch.where(branch, same.float().argmax(dim=1), torch.arange(B, device=dev))  # (B,)
            ctx_frames = torch.ones(T, dtype=torch.bool, device=dev)
            ctx_frames[-1] = False
            shared = branch[:, None] & ctx_frames  # (B, T)
            sigma = torch.where(shared, sigma[lead], sigma)
            cond = torch.where(shared, cond[lead], cond)
            noise = torch.where(shared[..., None, None, None], noise[lead], noise)
            if view is not None:
                view = view[lead]
        x = y + sigma[..., None, None, None] * noise

        cs = self.compute_conditioners(sigma)
        positions = torch.arange(T, device=dev).expand(B, T)
        extra = {k: v for k, v in (("frame_valid", frame_valid), ("view", view)) if v is not None}
        F_x = self.dynamics(cs.network_input(x), cs.c_noise, cond, positions, **extra)  # (B, T, C, h, w)
        target = cs.network_target(y, x, self.prior(x, sigma, cond, frame_valid=frame_valid))
        err = (F_x.float() - target).pow(2)  # (B, T, C, h, w)
        if cfg.change_weight > 0:
            err = err * self.change_weights(y, frame_valid)
        per_frame = err.mean(dim=(2, 3, 4))  # (B, T)
        weight = (~is_context).float()
        if frame_valid is not None:
            weight = weight * frame_valid.float()
        if branch is not None and cfg.branch_weight != 1.0:
            weight[:, -1] = torch.where(branch, weight[:, -1] * cfg.branch_weight, weight[:, -1])
        return (per_frame * weight).sum() / weight.sum().clamp_min(1.0)

    def _unroll(self, y, data_cond, sigma, train_sigma, is_context, branch, generator, view=None):
        """Replace, in windows drawn with probability unroll_prob (branch rows excepted), frames [s, s + u) by the
        model's own predictions (u = unroll_steps; s drawn once per batch in [1, T - 1 - u], T - 1 - u for
        "augment"): at context_sigma, without loss; frame s + u becomes a target. Returns (y, sigma, is_context)."""
        cfg = self.config
        B, T = y.shape[:2]
        u, dev = cfg.unroll_steps, y.device
        if T < u + 2:
            raise ValueError(f"unroll_steps={u} needs windows of at least {u + 2} frames, got {T}")
        rows = torch.rand(B, generator=generator, device=dev) < cfg.unroll_prob
        if branch is not None:
            rows &= ~branch
        if cfg.objective == "forcing":
            s = int(torch.randint(1, T - u, (1,), generator=generator, device=dev))
        else:
            s = T - 1 - u
        if not bool(rows.any()):
            return y, sigma, is_context
        idx = rows.nonzero()[:, 0]
        extra = {} if view is None else {"view": view[idx]}
        pred = self.rollout(y[idx, :s], data_cond[idx, : s + u], u, generator, **extra)  # (n, u, C, h, w), no grad
        y = y.clone()
        y[idx, s : s + u] = pred.to(y.dtype)
        unrolled = torch.zeros((B, T), dtype=torch.bool, device=dev)
        unrolled[idx, s : s + u] = True
        after = torch.zeros((B, T), dtype=torch.bool, device=dev)
        after[idx, s + u] = True
        sigma = torch.where(unrolled, torch.full_like(sigma, cfg.context_sigma), torch.where(after, train_sigma, sigma))
        is_context = (is_context | unrolled) & ~after
        return y, sigma, is_context
