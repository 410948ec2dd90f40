"""A wider latent without starting over: an autoencoder widened to more latent channels, and a world model's dynamics
widened to read and predict them, each computing exactly what it did before the new channels learn anything.

    genie-train autoencoder --init-from default --latent-channels 8 --keep-old-channels --detail-weight 4 \\
        --data runs/data/* --out runs/ae8 --preset default --time-budget-minutes 30
    genie-train widen --model default --autoencoder runs/ae8 --out runs/candidates/v8w8
    genie-train dynamics --autoencoder runs/candidates/v8w8 --init-from runs/candidates/v8w8 ...

Why (experiments/LOG.md entry 27): the shipped 16 x 16 x 4 latent loses the top-down agent's heading on the
22 x 22 grids (2.9 pixels per cell), a ceiling no dynamics model can pass; 8 channels keep it. Net2Net-style: the
old channels come first; the decoder reads the new ones with zero weights and the encoder's new output filters
start small, so the widened autoencoder reconstructs as the old one did; `freeze_old_channels` lets training change
only what leaves the old channels as they were, so a dynamics model trained on them stays valid, and `widen_world_model`
gives that dynamics zero weights on the new channels of every input (frame, previous frame, memory) and zero output
rows for them: its predictions of the old channels are the old model's, and the new ones are learnt by training it
further.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .autoencoder import Autoencoder

#: the autoencoder tensors whose shape follows the latent channels, and how a widened one fills them
_ENCODER_OUT = ("encoder.conv_out.weight", "encoder.conv_out.bias")
_DECODER_IN = "decoder.conv_in.weight"
_STATS = ("latent_shift", "latent_scale")


@torch.no_grad()
def widen_autoencoder(ae: Autoencoder, channels: int, seed: int = 0) -> Autoencoder:
    """`ae` with `channels` (>= its own) latent channels, computing the same reconstructions: the old channels
    first, the decoder's input weights on the new ones zero, the encoder's new output filters at a tenth of their
    default initialisation (seeded), the old channels' latent statistics kept (the new ones' shift 0, scale 1 until
    fitted)."""
    old = ae.config.latent_channels
    if channels < old:
        raise ValueError(f"latent channels must be >= the autoencoder's {old} to widen it, got {channels}")
    with torch.random.fork_rng(devices=[]):  # seeded, without moving the caller's generator
        torch.manual_seed(seed)
        wide = Autoencoder(replace(ae.config, latent_channels=channels))
    src, dst = ae.state_dict(), wide.state_dict()
    for k, t in dst.items():
        s = src[k].to(t.dtype)
        if s.shape == t.shape:
            t.copy_(s)
        elif k in _ENCODER_OUT:
            t.mul_(0.1)
            t[:old].copy_(s)
        elif k == _DECODER_IN:
            t.zero_()
            t[:, :old].copy_(s)
        elif k in _STATS:
            t[:old].copy_(s)
        else:
            raise RuntimeError(f"unexpected shape change in autoencoder.{k}: {tuple(s.shape)} -> {tuple(t.shape)}")
    return wide.to(ae.latent_shift.device).eval()


class OldChannels:
    """Keeps the first `old` latent channels of `ae` exactly as they are while it trains: the encoder is frozen
    but its output filters for the new channels (their gradient on the old filters is zeroed), and `restore()`,
    called after every optimizer step, puts back what weight decay moved and the old channels' statistics."""

    def __init__(self, ae: Autoencoder, old: int):
        if not 0 < old <= ae.config.latent_channels:
            raise ValueError(f"old channels must be in [1, {ae.config.latent_channels}], got {old}")
        self.ae, self.old = ae, old
        for q in ae.encoder.parameters():
            q.requires_grad_(False)
        conv = ae.encoder.conv_out
        self.saved = {name: getattr(conv, name).detach()[:old].clone() for name in ("weight", "bias")}
        self.stats = {name: getattr(ae, name)[:old].clone() for name in _STATS}
        for name in ("weight", "bias"):
            q = getattr(conv, name)
            q.requires_grad_(True)
            q.register_hook(lambda g: torch.cat([torch.zeros_like(g[:old]), g[old:]]))

    @torch.no_grad()
    def restore(self, ae: Autoencoder | None = None) -> None:
        """Put the old channels' output filters and statistics back (into `ae`, by default the trained one: an EMA
        copy too)."""
        ae = self.ae if ae is None else ae
        conv = ae.encoder.conv_out
        for name, t in self.saved.items():
            getattr(conv, name)[: self.old].copy_(t.to(getattr(conv, name).device))
        for name, t in self.stats.items():
            getattr(ae, name)[: self.old].copy_(t.to(getattr(ae, name).device))


def same_first_channels(a: Autoencoder, b: Autoencoder, k: int) -> bool:
    """Whether b's encoder computes a's first k latent channels, with a's statistics (compared in fp16, as stored)."""
    sa, sb = a.state_dict(), b.state_dict()
    for key, t in sa.items():
        if not (key.startswith("encoder.") or key.startswith("latent_")):
            continue
        u = sb.get(key)
        if u is None:
            return False
        if key in _ENCODER_OUT or key in _STATS:
            t, u = t[:k], u[:k]
        if t.shape != u.shape or not torch.equal(t.half().cpu(), u.half().cpu()):
            return False
    return True


@torch.no_grad()
def widen_world_model(wm, ae: Autoencoder):
    """A copy of world model `wm` (world_model.WorldModel) with autoencoder `ae` (`wm`'s own widened by
    `widen_autoencoder` and trained with `OldChannels`: the same first channels) and its dynamics widened to match:
    the patch embedding's weights on the new channels of every input (frame, previous frame, memory) and the output's
    rows for them start at zero, so the old channels' predictions are `wm`'s and the new channels are learnt by
    training it further (genie-train dynamics --init-from)."""
    from .inference import WorldModel

    old, new = wm.config.autoencoder.latent_channels, ae.config.latent_channels
    if new < old or not same_first_channels(wm.autoencoder, ae, old):
        raise ValueError("the autoencoder must be this world model's own widened with its old channels kept "
                         "(genie-train autoencoder --init-from MODEL --latent-channels N --keep-old-channels)")
    cfg = replace(wm.config, autoencoder=ae.config, dynamics=replace(wm.config.dynamics, latent_channels=new))
    out = WorldModel.from_config(cfg, autocast=False)
    out.autoencoder.load_state_dict(ae.state_dict())
    pp = wm.config.dynamics.patch_size ** 2
    src, dst = wm.dynamics.state_dict(), out.dynamics.state_dict()
    for k, t in dst.items():
        s = src[k].to(t.dtype)
        if s.shape == t.shape:
            t.copy_(s)
        elif k == "patch_in.weight":  # columns [frame, prev, memory] blocks of C * p * p, channel-major
            t.zero_()
            for b in range(s.shape[1] // (old * pp)):
                t[:, b * new * pp:b * new * pp + old * pp] = s[:, b * old * pp:(b + 1) * old * pp]
        elif k in ("patch_out.weight", "patch_out.bias"):
            t.zero_()
            t[:old * pp] = s
        else:
            raise RuntimeError(f"unexpected shape change in dynamics.{k}: {tuple(s.shape)} -> {tuple(t.shape)}")
    out.dynamics.load_state_dict(dst)
    out.training_metadata = {**(getattr(wm, "training_metadata", None) or {}),
                             "widened": {"latent_channels": [old, new]}}
    return out.eval()
