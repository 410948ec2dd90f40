"""Autoencoder training: reconstruction of single frames (`Autoencoder.loss`), then per-channel latent statistics.

    genie-train autoencoder --data data/recordings --preset default --out runs/ae --steps 6000

The loop, run directory and resume are world_model/training.py's. A checkpoint (format "genie-autoencoder") holds
the autoencoder with latent statistics fitted on held-out frames, and records their reconstruction PSNR
(`eval_psnr`, mean per-frame PSNR in dB) in its metadata and in RUN/eval.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from . import autoencoder as ae_mod
from .autoencoder import Autoencoder, AutoencoderConfig, frames_to_pixels, pixels_to_frames
from .checkpoint import FORMAT_AUTOENCODER, FORMAT_VERSION, CheckpointError, prefixed
from .metrics import psnr
from .training import TrainArgs, Trainer, open_windows


@dataclass(frozen=True, kw_only=True)
class AutoencoderArgs(TrainArgs):
    kind: ClassVar[str] = "autoencoder"
    presets: ClassVar[dict] = ae_mod.PRESETS

    batch_size: int = 32
    """Frames per rank and step."""
    lr: float = 1e-3
    """Peak learning rate."""
    ema_decay: float = 0.0
    """Decay of the exponential moving average of the weights that checkpoints and evaluation use, in [0, 1)
    (0 = off)."""

    def trainer(self, data=None) -> "AutoencoderTrainer":
        return AutoencoderTrainer(self, data)


class AutoencoderTrainer(Trainer):
    prefix = "autoencoder"
    format = FORMAT_AUTOENCODER

    def build(self) -> None:
        self.ae = self.model = self.objective = Autoencoder(self.args.presets[self.args.preset])
        if self.data is None:
            self.data = open_windows(self.args, window=1)
        # held-out frames (B, H, W, 3) for the PSNR and the latent statistics
        self.eval_frames = self.held_out(256, salt=12345, window=1).frames[:, 0]

    def batch(self, np_gen: np.random.Generator) -> tuple[torch.Tensor]:
        frames = self.data.sample_batch(self.args.batch_size, np_gen).frames  # (B, 1, H, W, 3)
        return (frames_to_pixels(torch.from_numpy(frames[:, 0]).to(self.rt.device)),)

    def model_config(self) -> dict:
        return self.ae.config.to_dict()

    def saved_model_config(self, config: dict) -> dict:
        try:
            return AutoencoderConfig.from_dict(config["autoencoder"]).to_dict()
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"the checkpoint of {self.run_dir} has no valid 'autoencoder' section ({e})") from e

    def checkpoint(self, training: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        ae = self.averaged
        ae.eval()
        ae.fit_latent_stats(frames_to_pixels(torch.from_numpy(self.eval_frames).to(self.rt.device)))
        training["eval_psnr"] = self.eval_psnr(ae)
        ae.train()
        cfg = {"format": FORMAT_AUTOENCODER, "format_version": FORMAT_VERSION, "autoencoder": ae.config.to_dict(),
               "latent_shift": ae.latent_shift.tolist(), "latent_scale": ae.latent_scale.tolist(),
               "training": training}
        return cfg, prefixed("autoencoder", ae)

    @torch.no_grad()
    def eval_psnr(self, ae: Autoencoder) -> float:
        """Mean per-frame PSNR (dB) of the held-out frames' reconstructions."""
        frames = self.eval_frames
        recon = []
        for i in range(0, len(frames), 64):
            px = frames_to_pixels(torch.from_numpy(frames[i : i + 64]).to(self.rt.device))
            with self.autocast():
                recon.append(pixels_to_frames(ae(px)).cpu().numpy())
        return float(psnr(np.concatenate(recon), frames).mean())
