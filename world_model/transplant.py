"""A trained world model's dynamics moved onto another autoencoder's latent, through least-squares bridges.

    genie-train transplant --model default --autoencoder runs/train/ae_fine --data runs/data/td \\
        --out runs/candidates/transplant
    genie-train dynamics --autoencoder runs/candidates/transplant --init-from runs/candidates/transplant \\
        --patch-size 4 ...

Why (experiments/LOG.md entry 35): a finer latent (the `fine` autoencoder preset, 32 x 32 x 4) keeps what the top-down
floor and the README demo need, but dynamics trained on it from scratch start slower than the shipped model has come
on the CPU. The transformer between the patch embedding and the output projection works on tokens, one per patch of
the frame; when the new latent is cut into as many tokens, each covering the same pixels, only the two ends have to
change. Both autoencoders encode the same frames; a linear map from each new token to the old one (fitted by least
squares) feeds the old patch embedding, and a linear map from each old token to the new one turns the old output
into the new latent's. The result starts as the old model seen through the bridges (its predictions of what the old
latent holds, decoded through the new one) and is trained further with `genie-train dynamics --init-from`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .autoencoder import Autoencoder, frames_to_pixels
from .dynamics import patchify


@torch.no_grad()
def latent_tokens(ae: Autoencoder, frames: np.ndarray, patch: int, batch: int = 256) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) -> their normalised latents cut into tokens, (N * tokens per frame, C * patch**2)
    float64, in the dynamics' patch layout (`patchify`)."""
    out = []
    for i in range(0, len(frames), batch):
        z = ae.encode(frames_to_pixels(torch.from_numpy(np.ascontiguousarray(frames[i:i + batch]))))
        out.append(patchify(z[:, None].double(), patch).flatten(0, 2))
    return torch.cat(out)


def fit_linear(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-3) -> tuple[torch.Tensor, float]:
    """(M, share): the (dx, dy) matrix minimising |x M - y|^2 + ridge * n * |M|^2 over rows (x, y: (n, d) float64),
    and the share of y's variance (about zero: the latents are normalised) that x M explains."""
    n, d = x.shape
    m = torch.linalg.solve(x.T @ x + ridge * n * torch.eye(d, dtype=x.dtype), x.T @ y)
    share = 1.0 - float(((x @ m - y) ** 2).sum() / (y**2).sum().clamp_min(1e-12))
    return m, share


@torch.no_grad()
def transplant_world_model(wm, ae: Autoencoder, frames: np.ndarray, ridge: float = 1e-3):
    """A copy of world model `wm` (world_model.WorldModel) on autoencoder `ae`, its dynamics' patch embedding and output
    projection bridged to the new latent by least squares on `frames` (uint8 (N, H, W, 3), both views; a few thousand):
    every input block (frame, previous frame, memory) of the embedding reads new tokens through the map new -> old,
    and the output is the old one mapped old -> new. The rest of the dynamics is `wm`'s. The new latent must give as
    many tokens per frame: its side a multiple of the old token grid's (the patch size becomes latent side / grid).
    `training_metadata["transplanted"]` records both fits (the variance each explains) for the model card."""
    from .inference import WorldModel

    dyn = wm.config.dynamics
    grid, size = dyn.grid, ae.config.latent_size
    if size % grid:
        raise ValueError(f"the autoencoder's {size} x {size} latent cannot be cut into the model's {grid} x {grid} "
                         f"tokens; pick an autoencoder whose latent side is a multiple of {grid}")
    if len(frames) < 64:
        raise ValueError(f"fitting the bridges needs at least 64 frames, got {len(frames)}; pass more --frames or "
                         "other --data")
    patch = size // grid
    old = latent_tokens(wm.autoencoder.float(), frames, dyn.patch_size)
    new = latent_tokens(ae, frames, patch)
    to_old, explained_old = fit_linear(new, old, ridge)  # (d_new, d_old): new token -> old token
    to_new, explained_new = fit_linear(old, new, ridge)  # (d_old, d_new): old token -> new token
    cfg = replace(wm.config, autoencoder=ae.config,
                  dynamics=replace(dyn, latent_channels=ae.config.latent_channels, latent_size=size, patch_size=patch))
    out = WorldModel.from_config(cfg, autocast=False)
    out.autoencoder.load_state_dict(ae.state_dict())
    src, dst = wm.dynamics.state_dict(), out.dynamics.state_dict()
    d_old, d_new = dyn.patch_dim, cfg.dynamics.patch_dim
    for k, t in dst.items():
        s = src[k].double()
        if k == "patch_in.weight":  # blocks [frame, prev, memory] of patch_dim columns each
            t.copy_(torch.cat([s[:, b * d_old:(b + 1) * d_old] @ to_old.T for b in range(s.shape[1] // d_old)],
                              dim=1).to(t.dtype))
        elif k == "patch_out.weight":
            t.copy_((to_new.T @ s).to(t.dtype))
        elif k == "patch_out.bias":
            t.copy_((s @ to_new).to(t.dtype))
        elif s.shape == t.shape:
            t.copy_(s.to(t.dtype))
        else:
            raise RuntimeError(f"unexpected shape change in dynamics.{k}: {tuple(s.shape)} -> {tuple(t.shape)}")
    out.dynamics.load_state_dict(dst)
    out.training_metadata = {**(getattr(wm, "training_metadata", None) or {}),
                             "transplanted": {"latent": [[dyn.latent_channels, dyn.latent_size, dyn.latent_size],
                                                         [cfg.dynamics.latent_channels, size, size]],
                                              "patch_size": [dyn.patch_size, patch], "frames": len(frames),
                                              "explained_new_to_old": round(explained_old, 4),
                                              "explained_old_to_new": round(explained_new, 4)}}
    return out.eval()
