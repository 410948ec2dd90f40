"""Stateless EDM samplers over Karras sigmas (Karras et al. 2022, Eq. 5, Algorithms 1 and 2).

Notation (code name -> paper symbol): `sigmas[i]` -> t_i (with sigma(t) = t), `sigma_min/max` -> sigma_min/max,
`rho` -> rho, `denoise(x, sigma)` -> D_theta(x; sigma), `d` -> dx/dt = (x - D(x; t)) / t (Eq. 3, ODE derivative).

A sampler is a pure function of its arguments: the noise comes from the caller's torch.Generator and nothing is
kept between calls, so two rollouts can share one sampler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch

SOLVERS = ("euler", "heun")


@dataclass(frozen=True)
class SamplerConfig:
    num_steps: int = 3
    """Denoising steps per frame (network evaluations per frame with "euler"; DIAMOND uses 3)."""
    sigma_min: float = 0.1
    """Smallest noise level of the schedule (t_{N-1}), in (0, sigma_max). The last step returns D(x; sigma_min),
    the frame the world commits to as context: at a tiny sigma_min (EDM uses 0.002) that evaluation is nearly the
    identity (c_skip ~ 1, c_out ~ sigma_min) and adds a network call without changing the frame; at 0.5 it is a
    posterior mean blurred where the model is unsure, which a still scene accumulates step after step
    (experiments/LOG.md entry 16); with 2-3 steps a reasonable range is [0.1, 0.5]."""
    sigma_max: float = 5.0
    """Largest noise level (t_0); the new frame starts as N(0, sigma_max^2)."""
    rho: float = 7.0
    """Karras schedule exponent (Eq. 5)."""
    solver: str = "euler"
    """'euler' (Algorithm 1 with first-order steps) or 'heun' (Algorithm 1, second order). Heun is for many
    steps: its correction on a step t -> t' moves the frame by (t - t') / (2 t') times the change of D between the
    two levels (`heun_gain`), which at 2-3 steps is 4.5 or more and overshoots (see `sample`)."""
    guidance: float = 1.5
    """Classifier-free guidance weight w on the action: D = D_null + w (D_act - D_null); 1 disables it."""
    guidance_min_sigma: float = 1.0
    """Guidance applies at noise levels >= this; below it D is the action-conditioned denoiser alone, one network
    pass instead of two (guidance in a limited interval, Kynkäänniemi et al. 2024: the action decides the frame's
    layout at high noise, and the low-noise steps that sharpen it gain little from guidance). 0: every step (what
    a checkpoint saved before this setting existed does)."""
    cache_refresh: int = 0
    """Frames the KV cache is rebuilt from when it is full. 0: the ring buffer slides frame by frame, and every
    cached frame keeps the keys it was given while it could still see frames that have since left the window
    (information passes through layers), a context no training window has, which a long still scene drifts on.
    K in [1, context_frames - 1]: before a world's next frame is generated on a full cache, its latest K frames are
    run again as a fresh window (`WorldModel.refresh`, the window a training sample starts), so a new frame sees K
    to context_frames - 1 past frames and the cache is rebuilt every context_frames - K steps, at the cost of one
    K-frame forward then (experiments/LOG.md entry 18)."""

    def __post_init__(self):
        check_solver(self.solver)
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")
        if not self.guidance_min_sigma >= 0:
            raise ValueError(f"guidance_min_sigma must be >= 0, got {self.guidance_min_sigma}")
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0, got {self.rho}")
        if self.cache_refresh < 0:
            raise ValueError(f"cache_refresh must be >= 0 (0: slide the cache), got {self.cache_refresh}")

    def to_dict(self) -> dict:
        return asdict(self)

    def guides(self, sigma, guidance: float | None = None) -> bool:
        """Whether a denoising step at noise level sigma (float or 0-d tensor) runs both branches: guidance weight
        (this config's unless given) != 1 and sigma >= guidance_min_sigma."""
        w = self.guidance if guidance is None else guidance
        return w != 1.0 and float(sigma) >= self.guidance_min_sigma

    @classmethod
    def from_dict(cls, d: dict) -> "SamplerConfig":
        """From a checkpoint's config; one saved before guidance_min_sigma existed guided every step."""
        return cls(**{"guidance_min_sigma": 0.0, **d})


def parse_settings(spec: str) -> dict:
    """"num_steps=2,sigma_min=0.5" -> {"num_steps": 2, "sigma_min": 0.5}; "default" or "" -> {}. Keys: the fields
    of SamplerConfig and context_sigma (the noise level past frames are cached at); values are converted to the
    field's type (`WorldModel.with_sampler` checks the combination). Raises ValueError on a bad spec, naming the
    keys."""
    types = {f.name: type(f.default) for f in fields(SamplerConfig)}
    types["context_sigma"] = float
    if spec.strip() in ("", "default"):
        return {}
    out = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in types:
            raise ValueError(f"bad sampler setting {item!r} in {spec!r}: write key=value with a key from "
                             f"{sorted(types)}, e.g. num_steps=2,sigma_min=0.5")
        try:
            out[key] = types[key](value.strip())
        except ValueError:
            raise ValueError(f"bad value for {key} in {spec!r}: {value!r} is not a {types[key].__name__}") from None
    return out


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown sampler {solver!r}; choose one of {SOLVERS}")


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float, device=None) -> torch.Tensor:
    """Eq. 5: t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, plus t_N = 0.

    Returns (num_steps + 1,) float32, decreasing, last entry 0.
    """
    if num_steps == 1:
        ramp = torch.zeros(1, dtype=torch.float64)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).float().to(device)


def sample(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigmas: torch.Tensor,
    solver: str = "euler",
) -> torch.Tensor:
    """Integrate the probability-flow ODE from x ~ N(0, sigmas[0]^2) down to sigma = 0 (Algorithm 1, S_churn = 0).

    denoise(x, sigma) -> D(x; sigma), with sigma a 0-d tensor; x: the initial noise already scaled by sigmas[0].
    Euler: x_{i+1} = x_i + (t_{i+1} - t_i) d_i. Heun adds the 2nd-order correction (Alg. 1, lines 9-11) except
    on the last step to sigma = 0.

    Why Heun wants many steps: write x = D_c + t eps (eps = d at t). Euler lands on x' = D_c + t' eps; Heun on
    x' = D_c + t' eps + k (D_n - D_c) with D_n = D(Euler's x'; t') and k = (t - t') / (2 t') (`heun_gain`). For
    k ~ 1 that is the trapezoid rule; for a step 5 -> 0.5 (k = 4.5) it extrapolates 3.5 times past D_n.
    """
    check_solver(solver)
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        d_cur = (x - denoise(x, t_cur)) / t_cur  # Alg. 1 line 7
        x_next = x + (t_next - t_cur) * d_cur  # line 8
        if solver == "heun" and t_next > 0:
            d_next = (x_next - denoise(x_next, t_next)) / t_next  # line 10
            x_next = x + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_next)  # line 11
        x = x_next
    return x


def heun_gain(sigmas: torch.Tensor) -> float:
    """The largest k = (t - t') / (2 t') over the steps of a schedule that Heun corrects (t' > 0); see `sample`.
    Above ~1 the correction extrapolates instead of averaging (0 for a one-step schedule)."""
    t, t_next = sigmas[:-1].double(), sigmas[1:].double()
    keep = t_next > 0
    return float(((t - t_next)[keep] / (2 * t_next[keep])).max()) if bool(keep.any()) else 0.0
