"""A trained world model's dynamics moved onto another autoencoder's latent, through least-squares bridges.

    genie-train transplant --model default --autoencoder runs/train/ae_fine --data runs/data/td \\
        --out runs/candidates/transplant
    genie-train dynamics --autoencoder runs/candidates/transplant --init-from runs/candidates/transplant \\
        --patch-size 4 ...

Why (experiments/LOG.md entry 35): a finer latent (the `fine` autoencoder preset, 32 x 32 x 4) keeps what the top-down
floor and the README demo need, but dynamics trained on it from scratch would need far more compute than the shipped
model had to come as far. The transformer between the patch embedding and the output projection works on tokens, one per patch of
the frame; when the new latent is cut into as many tokens, each covering the same pixels, only the two ends have to
change. Both autoencoders encode the same frames; a linear map from each new token to the old one (fitted by least
squares) feeds the old patch embedding, and a linear map from each old token to the new one turns the old output
into the new latent's. The result starts as the old model seen through the bridges (its predictions of what the old
latent holds, decoded through the new one) and is trained further with `genie-train dynamics --init-from`.
"""

from __future__ import annotations

import copy
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
    return _Ridge(x, y).fit(ridge)


class _Ridge:
    """Ridge fits of y on x at any ridge, from the sums computed once."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.n, self.d = x.shape
        self.xx, self.xy, self.yy = x.T @ x, x.T @ y, (y**2).sum()

    def fit(self, ridge: float) -> tuple[torch.Tensor, float]:
        m = torch.linalg.solve(self.xx + ridge * self.n * torch.eye(self.d, dtype=self.xx.dtype), self.xy)
        residual = self.yy - 2 * (m * self.xy).sum() + (m * (self.xx @ m)).sum()  # |x m - y|^2, expanded
        return m, 1.0 - float(residual / self.yy.clamp_min(1e-12))


def noise_gain(m: torch.Tensor) -> float:
    """The variance that unit white noise on the inputs of the linear map `m` (d_in, d_out) has on its outputs, on
    average over them."""
    return float((m**2).sum(0).mean())


def fit_noise_matched(x: torch.Tensor, y: torch.Tensor, lo: float = 1e-6,
                      hi: float = 10.0) -> tuple[torch.Tensor, float, float]:
    """(M, share, ridge): `fit_linear` with the ridge at which M carries unit white noise on x to unit noise on y (on
    average; `noise_gain` 1), found by bisection in log space between `lo` and `hi` (`lo` when it is under 1 there).

    The dynamics read a noisy frame x + sigma * n and are told sigma: through the bridge the old patch embedding sees
    M^T (x + sigma * n), and with a near-plain least-squares fit (nearly collinear inputs, large weights) the noise it
    sees is several times the sigma it is told, so it leaves noise in; matched, it sees about the noise it expects."""
    ridge = _Ridge(x, y)
    m, share = ridge.fit(lo)
    if noise_gain(m) <= 1.0:
        return m, share, lo
    a, b = np.log(lo), np.log(hi)
    for _ in range(30):
        mid = (a + b) / 2
        a, b = (mid, b) if noise_gain(ridge.fit(float(np.exp(mid)))[0]) > 1.0 else (a, mid)
    return (*ridge.fit(float(np.exp(b))), float(np.exp(b)))


PRIOR_MAPS = ("residual", "complement")


@torch.no_grad()
def fit_prior(ae: Autoencoder, prior_map: torch.Tensor, patch: int, episodes, num_actions: int) -> dict:
    """The prior's gains and spreads per action id (`DynamicsConfig.prev_prior_gain` / `prev_prior_sigma`: the
    actions, then START and NULL, which get the mean over the actions) on `episodes`, pairs (uint8 frames (L + 1,
    H, W, 3), actions (L,) or longer, int): in the directions `prior_map` (d, d) keeps of the tokens of `ae`'s
    latent in p x p patches, the regression of a frame on its predecessor over an action's transitions (the gain,
    clipped to [0, 1]), and the root mean square of what it leaves per direction (the map's trace; the spread).
    An action the episodes never take gets gain 1 and the mean spread. Also returns the transitions counted."""
    sums = np.zeros((num_actions, 4))  # per action: n, sum y.p, sum p.p, sum y.y (means over a token's numbers)
    mt = prior_map.double().T
    for frames, actions in episodes:
        z = ae.encode(frames_to_pixels(torch.from_numpy(np.ascontiguousarray(frames))))
        mz = patchify(z[None].double(), patch)[0] @ mt  # (L + 1, N, d)
        y, p = mz[1:], mz[:-1]
        stats = torch.stack([(y * p).mean(dim=(1, 2)), (p * p).mean(dim=(1, 2)), (y * y).mean(dim=(1, 2))], 1)
        acts = np.asarray(actions)[: len(y)]
        for a in np.unique(acts[(acts >= 0) & (acts < num_actions)]):
            rows = stats[torch.from_numpy(acts == a)]
            sums[a] += [len(rows), *rows.sum(0).tolist()]
    n, yp, pp, yy = sums.T
    seen = n > 0
    if not seen.any():
        raise ValueError("no transitions to fit the prior on; pass recordings with episodes of two frames or more")
    gains = np.where(seen & (pp > 0), np.clip(yp / np.where(pp > 0, pp, 1), 0.0, 1.0), 1.0)
    resid = np.where(seen, (yy - 2 * gains * yp + gains**2 * pp) / np.maximum(n, 1), np.nan)
    scale = prior_map.shape[0] / max(float(prior_map.double().trace()), 1e-9)  # per direction the map keeps
    spreads = np.sqrt(np.clip(resid * scale, 0.0, None))
    spreads = np.where(seen, spreads, np.nanmean(spreads))
    gains, spreads = list(gains) + [float(np.mean(gains))] * 2, list(spreads) + [float(np.mean(spreads))] * 2
    return {"gains": tuple(round(float(v), 4) for v in gains), "spreads": tuple(round(float(v), 4) for v in spreads),
            "transitions": int(n.sum())}


@torch.no_grad()
def transplant_world_model(wm, ae: Autoencoder, frames: np.ndarray, ridge: float | None = None,
                           ridge_out: float = 1e-3, prev_prior: bool = False,
                           prev_prior_sigma: float | tuple[float, ...] | None = None,
                           prev_prior_gain: float | tuple[float, ...] | None = None, prior_map: str = "residual",
                           episodes=None):
    """A copy of world model `wm` (world_model.WorldModel) on autoencoder `ae`, its dynamics' patch embedding and output
    projection bridged to the new latent by least squares on `frames` (uint8 (N, H, W, 3), both views; a few thousand):
    every input block (frame, previous frame, memory) of the embedding reads new tokens through the map new -> old,
    and the output is the old one mapped old -> new. The rest of the dynamics is `wm`'s. The new latent must give as
    many tokens per frame: its side a multiple of the old token grid's (the patch size becomes latent side / grid).
    ridge: of the new -> old fit (`fit_linear`); None: noise-matched (`fit_noise_matched`). ridge_out: of the
    old -> new fit. prev_prior: the new model's denoiser starts each estimate from the previous frame
    (`DynamicsConfig.prev_prior`, with prev_prior_sigma and prev_prior_gain) in what the old model cannot say:
    prior_map "residual", what a new token loses on the round trip new -> old -> new (so that where the old model
    copies its input, the new one copies the whole previous frame), or "complement", the directions the old ->
    new map cannot reach (the orthogonal projector onto them). Without prev_prior_sigma and prev_prior_gain, both
    are fitted per action on `episodes` (`fit_prior`; needed then).
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
    if (prev_prior_sigma is not None or prev_prior_gain is not None) and not prev_prior:
        raise ValueError("--prev-prior-sigma and --prev-prior-gain need --prev-prior")
    if prior_map not in PRIOR_MAPS:
        raise ValueError(f"unknown prior map {prior_map!r}; choose one of {', '.join(PRIOR_MAPS)}")
    fit = prev_prior and prev_prior_sigma is None and prev_prior_gain is None
    if fit and not episodes:
        raise ValueError("fitting the prior's gains and spreads needs episodes (or pass --prev-prior-gain and "
                         "--prev-prior-sigma)")
    if dyn.prev_prior:
        raise ValueError("the model starts its estimates from the previous frame through a prior map fitted to its "
                         "own latent (DynamicsConfig.prev_prior); transplant the model it was made from instead")
    patch = size // grid
    old = latent_tokens(copy.deepcopy(wm.autoencoder).float(), frames, dyn.patch_size)  # wm itself left as it is
    new = latent_tokens(ae, frames, patch)
    if ridge is None:
        to_old, explained_old, ridge = fit_noise_matched(new, old)  # (d_new, d_old): new token -> old token
    else:
        to_old, explained_old = fit_linear(new, old, ridge)
    to_new, explained_new = fit_linear(old, new, ridge_out)  # (d_old, d_new): old token -> new token
    d_old, d_new = dyn.patch_dim, ae.config.latent_channels * patch**2
    m = None
    if prev_prior and prior_map == "residual":  # what the round trip new -> old -> new loses: t - t to_old to_new
        m = torch.eye(d_new, dtype=torch.float64) - (to_old @ to_new).T
    elif prev_prior:  # the orthogonal projector onto what the old -> new map cannot reach (its rows span what it can)
        u, sv, _ = torch.linalg.svd(to_new.T, full_matrices=False)  # (d_new, d_old)
        basis = u[:, sv > sv.max() * 1e-6]
        m = torch.eye(d_new, dtype=torch.float64) - basis @ basis.T
    fitted = {}
    if fit:
        fitted = fit_prior(ae, m, patch, episodes, dyn.num_actions)
        prev_prior_gain, prev_prior_sigma = fitted["gains"], fitted["spreads"]
    cfg = replace(wm.config, autoencoder=ae.config,
                  dynamics=replace(dyn, latent_channels=ae.config.latent_channels, latent_size=size, patch_size=patch,
                                   prev_prior=prev_prior, prev_prior_sigma=prev_prior_sigma,
                                   prev_prior_gain=prev_prior_gain))
    out = WorldModel.from_config(cfg, autocast=False)
    out.autoencoder.load_state_dict(ae.state_dict())
    src, dst = wm.dynamics.state_dict(), out.dynamics.state_dict()
    if prev_prior:
        dst["prior_map"].copy_(m.to(dst["prior_map"].dtype))
    for k, t in dst.items():
        if k == "prior_map":
            continue
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
                                              "ridge_new_to_old": ridge,
                                              "noise_gain_new_to_old": round(noise_gain(to_old), 4),
                                              "explained_old_to_new": round(explained_new, 4),
                                              **({"prior_map": prior_map, "prior_trace": round(float(m.trace()), 2)}
                                                 if prev_prior else {}),
                                              **({"prior_fit_transitions": fitted["transitions"]} if fitted else {})}}
    return out.eval()
