"""Autoencoder training: reconstruction of single frames (`Autoencoder.loss`), then per-channel latent statistics.

    genie-train autoencoder --data data/recordings --preset default --out runs/ae --steps 6000

From a trained one, widened to more latent channels with its old ones kept (world_model/widen.py; then
`genie-train widen` gives its world model's dynamics the same channels):

    genie-train autoencoder --data data/recordings --init-from default --latent-channels 8 --keep-old-channels \
        --detail-weight 4 --lr 1e-4 --warmup 100 --out runs/ae8 --time-budget-minutes 30

The loop, run directory and resume are world_model/training.py's. A checkpoint (format "genie-autoencoder") holds
the autoencoder with latent statistics fitted on held-out frames, and records their reconstruction PSNR
(`eval_psnr`, mean per-frame PSNR in dB) in its metadata and in RUN/eval.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from . import autoencoder as ae_mod
from .autoencoder import Autoencoder, AutoencoderConfig, frames_to_pixels, pixels_to_frames, reconstruction_loss
from .checkpoint import FORMAT_AUTOENCODER, FORMAT_VERSION, CheckpointError, prefixed
from .metrics import psnr
from .training import TrainArgs, Trainer, open_windows
from .widen import OldChannels, widen_autoencoder


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
    init_from: str | None = None
    """A world-model or autoencoder checkpoint ("default": the shipped model; a run directory: its latest checkpoint)
    whose autoencoder the run starts from; its architecture is kept (--preset then only names the run)."""
    latent_channels: int | None = None
    """Latent channels of the trained autoencoder (None: the preset's, or --init-from's). More than --init-from's
    widens it first without changing its reconstructions (world_model/widen.py)."""
    keep_old_channels: bool = False
    """With --init-from and --latent-channels above its own: train only what leaves its latent channels as they
    are (the decoder and the encoder's filters of the new channels; the old channels' statistics kept), so that a
    dynamics model trained on its latents can be widened to read the new ones (`genie-train widen`)."""
    detail_weight: float = 0.0
    """Weight of fine detail in the loss, >= 0: each pixel's L1 + MSE weighs 1 + detail_weight x its local contrast
    over the batch's mean (edges, small objects: the top-down agent's heading); 0: plain L1 + MSE."""

    def __post_init__(self):
        super().__post_init__()
        if self.latent_channels is not None and self.latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1, got {self.latent_channels}")
        if not self.detail_weight >= 0:
            raise ValueError(f"detail_weight must be >= 0, got {self.detail_weight}")
        if self.keep_old_channels and (self.init_from is None or self.latent_channels is None):
            raise ValueError("keep_old_channels needs --init-from (the autoencoder whose channels are kept) and "
                             "--latent-channels (how many channels it is widened to)")

    def trainer(self, data=None) -> "AutoencoderTrainer":
        return AutoencoderTrainer(self, data)


class AutoencoderTrainer(Trainer):
    prefix = "autoencoder"
    format = FORMAT_AUTOENCODER

    def build(self) -> None:
        args = self.args
        self.old_channels = None
        self.init_metadata = None
        if args.init_from is None:
            cfg = args.presets[args.preset]
            if args.latent_channels is not None:
                cfg = replace(cfg, latent_channels=args.latent_channels)
            self.ae = Autoencoder(cfg)
        else:
            self.ae = self._init_from(args.init_from, args.latent_channels)
        self.model = self.ae
        self.objective = ReconstructionObjective(self.ae, args.detail_weight)
        if self.data is None:
            self.data = open_windows(self.args, window=1)
        # held-out frames (B, H, W, 3) for the PSNR and the latent statistics
        self.eval_frames = self.held_out(256, salt=12345, window=1).frames[:, 0]

    def _init_from(self, path: str, channels: int | None) -> Autoencoder:
        """The autoencoder of checkpoint `path`, widened to `channels`; with --keep-old-channels, its old channels
        held fixed while training."""
        from .inference import DEFAULT_CHECKPOINT
        from .train_dynamics import load_autoencoder

        ae = load_autoencoder(DEFAULT_CHECKPOINT if path == "default" else path).float()
        old = ae.config.latent_channels
        if channels is not None and channels < old:
            raise ValueError(f"--latent-channels {channels}: --init-from {path} has {old}; an autoencoder can be "
                             "widened, not narrowed (leave --latent-channels out to keep its channels)")
        if channels is not None and channels > old:
            ae = widen_autoencoder(ae, channels, seed=self.args.seed)
        if self.args.keep_old_channels:
            if channels == old:
                raise ValueError(f"--keep-old-channels: --latent-channels {channels} is --init-from's own; pass more "
                                 "channels to widen it, or leave --keep-old-channels out to train all of it")
            self.old_channels = OldChannels(ae, old)
        self.init_metadata = {"path": str(path), "latent_channels": [old, ae.config.latent_channels],
                              "keep_old_channels": self.args.keep_old_channels}
        return ae.train()

    def after_step(self) -> None:
        if self.old_channels is not None:
            self.old_channels.restore()

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
        if self.old_channels is not None:  # the old channels keep the statistics their dynamics were trained on
            self.old_channels.restore(ae)
        if self.init_metadata is not None:
            training["init_from"] = self.init_metadata
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


class ReconstructionObjective(torch.nn.Module):
    """The autoencoder's training loss, `reconstruction_loss` of its reconstruction with `detail_weight`."""

    def __init__(self, ae: Autoencoder, detail_weight: float = 0.0):
        super().__init__()
        self.ae, self.detail_weight = ae, detail_weight

    def loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """pixels (B, 3, H, W) in [-1, 1]; deterministic (the generator, which the loop passes, is unused)."""
        return reconstruction_loss(self.ae(pixels).float(), pixels, self.detail_weight)


def whiten_autoencoder(autoencoder: str, data, out: str, patch: int = 4, floor: float = 1e-3, frames: int = 4096,
                       seed: int = 0):
    """`genie-train whiten`: the autoencoder at `autoencoder` (run, checkpoint or world model) with its latent
    whitened in `patch` x `patch` patches (AutoencoderConfig.whiten_patch, `Autoencoder.fit_whitening` with `floor`),
    fitted on `frames` frames drawn from the train split of the recordings `data`; written to `out` as an
    autoencoder checkpoint. Returns (the folder, the fit's summary)."""
    from .checkpoint import save_model
    from .dataset import EpisodeDataset
    from .train_dynamics import load_autoencoder

    if frames < 64:
        raise ValueError(f"--frames must be >= 64 to fit the whitening, got {frames}")
    if patch < 1:
        raise ValueError(f"--patch must be >= 1, got {patch}")
    old = load_autoencoder(autoencoder)
    if old.config.whiten_patch:
        raise ValueError(f"{autoencoder} is whitened already (in {old.config.whiten_patch} x "
                         f"{old.config.whiten_patch} patches); whiten the autoencoder it was made from")
    ae = Autoencoder(replace(old.config, whiten_patch=patch))  # ValueError: a patch that does not divide the latent
    missing, unexpected = ae.load_state_dict(old.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"patch_mean", "whiten", "unwhiten"}, (missing, unexpected)
    pool = EpisodeDataset(data, split="train").frames
    pick = np.sort(np.random.default_rng(seed).choice(len(pool), min(frames, len(pool)), replace=False))
    fit = ae.eval().fit_whitening(frames_to_pixels(torch.from_numpy(np.asarray(pool[pick]))), floor=floor)
    cfg = {"format": FORMAT_AUTOENCODER, "format_version": FORMAT_VERSION, "autoencoder": ae.config.to_dict(),
           "latent_shift": ae.latent_shift.tolist(), "latent_scale": ae.latent_scale.tolist(),
           "training": {"whitened": {"from": str(autoencoder), "frames": len(pick), **fit}}}
    return save_model(out, cfg, prefixed("autoencoder", ae)), fit
