"""Image-fidelity metrics on uint8 frames: PSNR and SSIM (Wang et al. 2004), one value per frame.

Both take frames uint8 (..., H, W, 3) and return one value per frame (...). A figure over a batch or a rollout is
the mean of the per-frame values (`float(psnr(a, b).mean())`), never the PSNR of the batch's pooled MSE: a few
badly predicted frames then weigh as much as their share of frames, however large their error.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PSNR_CAP = 60.0
"""The largest PSNR in dB reported: identical frames (MSE 0) and frames that differ by less than 1/255 in RMS
score this, a finite cap instead of inf, so that means stay finite and a do-nothing baseline that shows the true
frame exactly does not outweigh every other world."""


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB, 10 log10(255^2 / MSE), of uint8 frames (..., H, W, 3) -> (...) float64.

    Capped at PSNR_CAP (60 dB), which identical frames score."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs frames of the same shape, got {a.shape} and {b.shape}")
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return np.minimum(10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), PSNR_CAP)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-frame SSIM in [-1, 1] of uint8 frames (..., H, W, 3) -> (...): Gaussian window 11 / 1.5, K1 = 0.01,
    K2 = 0.03 (Wang et al. 2004, Eq. 13), computed per channel and averaged."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim needs frames of the same shape, got {a.shape} and {b.shape}")
    lead = a.shape[:-3]
    x = torch.as_tensor(a.reshape(-1, *a.shape[-3:]), dtype=torch.float64).permute(0, 3, 1, 2)  # (N, 3, H, W)
    y = torch.as_tensor(b.reshape(-1, *b.shape[-3:]), dtype=torch.float64).permute(0, 3, 1, 2)
    g = torch.exp(-((torch.arange(window, dtype=torch.float64) - window // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, window, window)
    blur = lambda t: F.conv2d(t, kernel, groups=3)  # noqa: E731  (valid convolution, as the reference code)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).numpy().reshape(lead)
