"""Stateless EDM samplers over Karras sigmas (Karras et al. 2022, Eq. 5, Algorithms 1 and 2).

Notation (code name -> paper symbol): `sigmas[i]` -> t_i (with sigma(t) = t), `sigma_min/max` -> sigma_min/max,
`rho` -> rho, `denoise(x, sigma)` -> D_theta(x; sigma), `d` -> dx/dt = (x - D(x; t)) / t (Eq. 3, ODE derivative).

A sampler is a pure function of its arguments: the noise comes from the caller's torch.Generator and nothing is
kept between calls, so two rollouts can share one sampler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch

SOLVERS = ("euler", "heun")


@dataclass(frozen=True)
class SamplerConfig:
    num_steps: int = 3
    """Denoising steps per frame (DIAMOND uses 3)."""
    sigma_min: float = 2e-3
    """Smallest noise level of the schedule (t_{N-1})."""
    sigma_max: float = 5.0
    """Largest noise level (t_0); the new frame starts as N(0, sigma_max^2)."""
    rho: float = 7.0
    """Karras schedule exponent (Eq. 5)."""
    solver: str = "euler"
    """'euler' (Algorithm 1 with first-order steps) or 'heun' (Algorithm 1, second order)."""
    guidance: float = 1.5
    """Classifier-free guidance weight w on the action: D = D_null + w (D_act - D_null); 1 disables it."""

    def __post_init__(self):
        check_solver(self.solver)
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0, got {self.rho}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SamplerConfig":
        return cls(**d)


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
