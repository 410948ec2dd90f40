"""The frame autoencoder: 64x64x3 uint8 frames <-> a 16x16x4 latent grid.

Why 16x16x4 (4x downsampling, 4 channels; 12x fewer numbers than the pixels): in flat-shaded renders the
smallest details (a distant object, a texture near the horizon) are a few pixels wide. A 4x downsampling keeps
them inside one or two latent cells, while 8x (8x8x16) would need the decoder to invent them from channel codes;
both grids hold 1024 numbers, but the 4x grid reconstructs sharper for the same compute and patchifies (2x2
patches) into 64 tokens of dimension 16 for the dynamics transformer.

The autoencoder is deterministic (no KL). Latents are normalised per channel with a fixed shift and scale computed
from training frames after (and during) training, stored as buffers (so they travel in ``model.safetensors``), so
the diffusion model sees zero-mean, unit-variance latents and can use ``sigma_data = 1``.

Shapes: frames (B, H, W, 3) uint8 or pixels (B, 3, H, W) float in [-1, 1]; latents (B, C, H/f, W/f).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dynamics import patchify, unpatchify


@dataclass(frozen=True)
class AutoencoderConfig:
    image_size: int = 64
    """Frame height and width in pixels (any multiple of `downsample` works)."""
    pixel_patch: int = 2
    """Space-to-depth factor applied to the pixels first (and depth-to-space last): no conv runs at full size."""
    channels: tuple[int, ...] = (64, 128)
    """Conv channels per resolution level; there are len(channels) - 1 stride-2 downsamplings after the patch."""
    encoder_blocks: int = 1
    """Residual blocks per level in the encoder."""
    decoder_blocks: int = 2
    """Residual blocks per level in the decoder (decoding is the harder direction)."""
    latent_channels: int = 4
    """Channels of the latent grid."""
    groups: int = 8
    """GroupNorm groups."""
    whiten_patch: int = 0
    """0: the latent is normalised per channel only. p > 0: then whitened in p x p patches (the dynamics' tokens at
    --patch-size p): each patch's C * p * p numbers are decorrelated and scaled to unit variance by a fixed linear
    map fitted on frames (`Autoencoder.fit_whitening`, `genie-train whiten`), inverted before decoding. A fine latent's
    patches put half their directions at under 5% of the mean variance (experiments/LOG.md entry 35), where a
    denoiser preconditioned for one data scale must learn to cancel almost all of the noise."""

    @property
    def downsample(self) -> int:
        return self.pixel_patch * 2 ** (len(self.channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AutoencoderConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


PRESETS = {
    "tiny": AutoencoderConfig(channels=(8, 16), encoder_blocks=1, decoder_blocks=1, groups=4),
    "default": AutoencoderConfig(),
    # One resolution level after the 2x2 pixel patch: a 32 x 32 x 4 latent (3x compression against the default's
    # 12x) that keeps objects of 2-3 pixels, at about the default's convolution FLOPs per frame; dynamics read it in
    # 4 x 4 patches (genie-train dynamics --patch-size 4: 64 tokens per frame, as the default latent in 2 x 2).
    "fine": AutoencoderConfig(channels=(64,), encoder_blocks=2, decoder_blocks=3),
}


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def resolution_levels(channels: tuple[int, ...], blocks: int, groups: int, between) -> nn.Sequential:
    """`blocks` residual blocks per level of `channels` (the first moving to the level's width), with the modules
    `between(c)` after every level but the last (the resampling to the next level)."""
    layers: list[nn.Module] = []
    c_prev = channels[0]
    for i, c in enumerate(channels):
        for _ in range(blocks):
            layers.append(ResBlock(c_prev, c, groups))
            c_prev = c
        if i < len(channels) - 1:
            layers.extend(between(c))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.channels
        self.patch = nn.PixelUnshuffle(cfg.pixel_patch)  # (B, 3, H, W) -> (B, 3 p^2, H/p, W/p)
        self.conv_in = nn.Conv2d(3 * cfg.pixel_patch**2, ch[0], 3, padding=1)
        # between levels: a stride-2 conv halves H, W
        self.blocks = resolution_levels(ch, cfg.encoder_blocks, cfg.groups,
                                        lambda c: [nn.Conv2d(c, c, 3, stride=2, padding=1)])
        self.norm_out = nn.GroupNorm(cfg.groups, ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.conv_in(self.patch(x)))  # (B, C_last, h, w)
        return self.conv_out(F.silu(self.norm_out(x)))  # (B, latent_channels, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.channels[::-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        # between levels: nearest-neighbour upsampling doubles H, W, then a conv
        self.blocks = resolution_levels(ch, cfg.decoder_blocks, cfg.groups,
                                        lambda c: [nn.Upsample(scale_factor=2, mode="nearest"),
                                                   nn.Conv2d(c, c, 3, padding=1)])
        self.norm_out = nn.GroupNorm(cfg.groups, ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3 * cfg.pixel_patch**2, 3, padding=1)
        self.unpatch = nn.PixelShuffle(cfg.pixel_patch)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.conv_in(z))  # (B, C_first, H/p, W/p)
        return self.unpatch(self.conv_out(F.silu(self.norm_out(x))))  # (B, 3, H, W)


def local_contrast(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): mean over RGB of |x - its 3x3 box average| (replicate padding)."""
    blur = F.avg_pool2d(F.pad(pixels, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (pixels - blur).abs().mean(dim=1, keepdim=True)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, detail_weight: float = 0.0) -> torch.Tensor:
    """L1 + MSE of pixels (B, 3, H, W); with detail_weight > 0 each pixel's weighs 1 + detail_weight x its local
    contrast in the target over the batch's mean, so edges and small objects count more."""
    if detail_weight <= 0:
        return F.l1_loss(recon, target) + F.mse_loss(recon, target)
    per_px = ((recon - target).abs() + (recon - target) ** 2).mean(dim=1, keepdim=True)
    c = local_contrast(target)
    w = 1.0 + detail_weight * c / c.mean().clamp_min(1e-6)
    return (per_px * w).sum() / w.sum()


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return frames.movedim(-1, -3).float().div(127.5).sub(1.0)


def pixels_to_frames(pixels: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3) (rounded, clamped)."""
    return pixels.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)


class Autoencoder(nn.Module):
    """Frames <-> normalised latents. `encode` and `decode` work on normalised latents (unit scale)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        # Per-channel latent statistics (raw = normalised * scale + shift); set by `fit_latent_stats`.
        self.register_buffer("latent_shift", torch.zeros(config.latent_channels))
        self.register_buffer("latent_scale", torch.ones(config.latent_channels))
        if config.whiten_patch:  # patch mean and the whitening map and its inverse; set by `fit_whitening`
            if config.latent_size % config.whiten_patch:
                raise ValueError(f"whiten_patch {config.whiten_patch} must divide the latent side {config.latent_size}")
            d = config.latent_channels * config.whiten_patch**2
            self.register_buffer("patch_mean", torch.zeros(d))
            self.register_buffer("whiten", torch.eye(d))
            self.register_buffer("unwhiten", torch.eye(d))

    #: buffers that hold statistics, kept in fp32 in a low-precision runtime copy
    STATS = ("latent_shift", "latent_scale", "patch_mean", "whiten", "unwhiten")

    @property
    def conv_dtype(self) -> torch.dtype:
        """dtype of the conv weights (fp32, or bf16 for a runtime copy)."""
        return self.encoder.conv_in.weight.dtype

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> normalised latents (B, C, h, w) (fp32; whitened with `whiten_patch`)."""
        z = self.encoder(pixels.to(self.conv_dtype))
        z = (z.float() - self.latent_shift[:, None, None]) / self.latent_scale[:, None, None]
        return self._patchwise(z, self.whiten.float(), before=-self.patch_mean.float()) if self.config.whiten_patch \
            else z

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) -> pixels (B, 3, H, W), roughly in [-1, 1]."""
        z = latents.float()
        if self.config.whiten_patch:
            z = self._patchwise(z, self.unwhiten.float(), after=self.patch_mean.float())
        z = z * self.latent_scale[:, None, None] + self.latent_shift[:, None, None]
        return self.decoder(z.to(self.conv_dtype))

    def _patchwise(self, z: torch.Tensor, m: torch.Tensor, before=0.0, after=0.0) -> torch.Tensor:
        """(B, C, h, w): every p x p patch's numbers v, in the dynamics' token layout (`patchify`), -> (v + before)
        @ m + after."""
        B, C, h, w = z.shape
        v = patchify(z[:, None], self.config.whiten_patch)
        return unpatchify((v + before) @ m + after, self.config.whiten_patch, C, h, w)[:, 0]

    @torch.no_grad()
    def fit_whitening(self, pixels: torch.Tensor, floor: float = 1e-3, batch_size: int = 256) -> dict:
        """Fit the patch whitening (`whiten_patch` > 0) on sample frames (B, 3, H, W), after the per-channel
        statistics: the patch mean, and the symmetric (ZCA) map that scales each principal direction of the patches
        to unit variance, directions under `floor` (in units of the normalised latent's variance) as if at `floor`.
        Returns the spectrum's summary."""
        if not self.config.whiten_patch:
            raise ValueError("this autoencoder has no patch whitening (AutoencoderConfig.whiten_patch = 0)")
        eye = torch.eye(len(self.patch_mean))
        self.patch_mean.zero_()
        self.whiten.copy_(eye)
        self.unwhiten.copy_(eye)  # encode gives the normalised latent alone while fitting
        toks = [patchify(self.encode(pixels[i:i + batch_size]).double()[:, None], self.config.whiten_patch)
                .flatten(0, 2) for i in range(0, len(pixels), batch_size)]
        t = torch.cat(toks)
        mean = t.mean(0)
        eig, vec = torch.linalg.eigh(torch.cov((t - mean).T))
        kept = eig.clamp_min(floor)
        self.patch_mean.copy_(mean.float())
        self.whiten.copy_((vec @ torch.diag(kept.rsqrt()) @ vec.T).float())
        self.unwhiten.copy_((vec @ torch.diag(kept.sqrt()) @ vec.T).float())
        return {"patch": self.config.whiten_patch, "directions": len(eig), "floor": floor,
                "under_floor": int((eig < floor).sum()), "under_5pct_of_mean": int((eig < 0.05 * eig.mean()).sum()),
                "eigenvalues": [round(float(e), 5) for e in eig.flip(0)]}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(pixels))

    def loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training loss: reconstruction L1 + MSE of pixels (B, 3, H, W) in [-1, 1]; deterministic (the generator,
        which the training loop passes to every loss, is unused)."""
        return reconstruction_loss(self(pixels).float(), pixels)

    @torch.no_grad()
    def fit_latent_stats(self, pixels: torch.Tensor, batch_size: int = 256) -> None:
        """Set the per-channel shift/scale from sample frames (B, 3, H, W) so latents are zero-mean, unit-std."""
        zs = [self.encoder(pixels[i : i + batch_size]).float() for i in range(0, len(pixels), batch_size)]
        z = torch.cat(zs).transpose(0, 1).flatten(1)  # (C, B*h*w)
        self.latent_shift.copy_(z.mean(dim=1))
        self.latent_scale.copy_(z.std(dim=1).clamp_min(1e-6))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

