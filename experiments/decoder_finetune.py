"""Fine-tune only the decoder of a world model's autoencoder, with a loss weighted towards fine detail (small
objects, edges), for a wall-clock budget (experiments/LOG.md entry 23).

    python -m experiments.decoder_finetune --model default --data runs/data/base/* --eval-data runs/data/test/* \
        --minutes 20 --detail-weight 4 --out runs/candidates/dec_w4

The encoder, the latent statistics and the dynamics stay as they are, so the latents the dynamics reads and
predicts mean what they meant: every rollout of the model is the same latent trajectory, only drawn (decoded)
differently. Loss per pixel: (L1 + MSE) x (1 + detail_weight x c / mean(c)), where c is the target frame's local
contrast (the mean over RGB of |x - its 3x3 box average|): the autoencoder's own L1 + MSE at detail_weight 0.

Reported before and after, per view, on held-out frames of --eval-data (the test split): ``frame_psnr`` (mean
per-frame PSNR, dB) and ``detail_psnr`` (PSNR over the 10% of each frame's pixels with the highest local contrast:
objects, edges, the top-down agent). Writes a world-model checkpoint (the same config and dynamics, the new
decoder) to --out every --save-minutes and at the end, with the figures in its training metadata and in
OUT/decoder_finetune.json; a run whose --out holds a checkpoint of it continues from that (same budget in all).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.result_file import command_line
from world_model import WorldModel
from world_model.autoencoder import frames_to_pixels, local_contrast, pixels_to_frames, reconstruction_loss
from world_model.dataset import EpisodeDataset

DETAIL_SHARE = 0.10


def detail_loss(recon: torch.Tensor, target: torch.Tensor, detail_weight: float) -> torch.Tensor:
    """(L1 + MSE) per pixel, weighted by 1 + detail_weight x local contrast / its batch mean (the autoencoder
    trainer's `--detail-weight` loss)."""
    return reconstruction_loss(recon, target, detail_weight)


@torch.no_grad()
def reconstruct(ae, frames: np.ndarray, batch: int = 128) -> np.ndarray:
    out = []
    for i in range(0, len(frames), batch):
        px = frames_to_pixels(torch.from_numpy(np.ascontiguousarray(frames[i:i + batch])))
        out.append(pixels_to_frames(ae.decode(ae.encode(px))).numpy())
    return np.concatenate(out)


def figures(ae, frames: np.ndarray) -> dict:
    """frame_psnr and detail_psnr (dB) of the autoencoder's reconstructions of uint8 frames (N, H, W, 3)."""
    rec = reconstruct(ae, frames).astype(np.float64)
    ref = frames.astype(np.float64)
    err = ((rec - ref) ** 2).mean(axis=-1)  # (N, H, W)
    c = local_contrast(frames_to_pixels(torch.from_numpy(frames))).numpy()[:, 0]
    k = max(1, int(round(DETAIL_SHARE * c[0].size)))
    top = np.argsort(c.reshape(len(c), -1), axis=1)[:, -k:]
    detail = np.take_along_axis(err.reshape(len(err), -1), top, axis=1).mean(axis=1)
    db = lambda mse: float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))))  # noqa: E731
    return {"frame_psnr": round(db(err.reshape(len(err), -1).mean(axis=1)), 3), "detail_psnr": round(db(detail), 3),
            "frames": int(len(frames))}


def held_out(folders, n: int, seed: int) -> dict[str, np.ndarray]:
    """Up to n frames per view of the folders' test split, drawn once with `seed`."""
    ds = EpisodeDataset(folders, split="test")
    starts, ends = ds.episode_offsets[:-1], ds.episode_offsets[1:]
    rng, out = np.random.default_rng(seed), {}
    for view in sorted(set(ds.views.tolist())):
        idx = np.concatenate([np.arange(s, e) for s, e, v in zip(starts, ends, ds.views) if v == view])
        out[view] = ds.frames[np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="'default' or a world-model checkpoint folder")
    p.add_argument("--data", nargs="+", required=True, help="recording folders (their train split is used)")
    p.add_argument("--eval-data", nargs="+", required=True, help="recording folders (their test split is used)")
    p.add_argument("--out", required=True, help="world-model checkpoint folder to write")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of the training (> 0)")
    p.add_argument("--detail-weight", type=float, default=4.0, help=">= 0; 0: plain L1 + MSE")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-frames", type=int, default=256, help="held-out frames per view")
    p.add_argument("--save-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.detail_weight < 0 or a.batch_size < 1 or a.lr <= 0:
        p.error("--minutes and --lr must be > 0, --detail-weight >= 0 and --batch-size >= 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    resumed = (out / "decoder_finetune.json").is_file()
    state = json.loads((out / "decoder_finetune.json").read_text()) if resumed else {}
    wm = WorldModel.load(out if resumed else a.model, autocast=False)
    base = WorldModel.load(a.model, autocast=False) if resumed else wm
    ae = wm.autoencoder
    train = EpisodeDataset(a.data, split="train").frames
    evals = held_out(a.eval_data, a.eval_frames, a.seed)
    before = state.get("before") or {v: figures(base.autoencoder, f) for v, f in evals.items()}
    print(json.dumps({"before": before}), flush=True)
    for q in ae.parameters():
        q.requires_grad_(False)
    params = list(ae.decoder.parameters())
    for q in params:
        q.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    budget, spent, step = 60.0 * a.minutes, float(state.get("seconds", 0.0)), int(state.get("steps", 0))
    rng = np.random.default_rng(a.seed + step)
    losses: list[float] = []

    def save() -> None:
        record = {"command": command_line("experiments.decoder_finetune", argv), "model": a.model,
                  "detail_weight": a.detail_weight, "lr": a.lr, "batch_size": a.batch_size, "minutes": a.minutes,
                  "steps": step, "seconds": round(spent, 1), "before": before,
                  "loss_last_100": round(float(np.mean(losses[-100:])), 5) if losses else None}
        ae.eval()
        record["after"] = {v: figures(ae, f) for v, f in evals.items()}
        training = dict(getattr(base, "training_metadata", {}) or {})
        training["decoder_finetune"] = record
        wm.save(out, training=training)
        (out / "decoder_finetune.json").write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps({"step": step, "after": record["after"]}), flush=True)

    bar = tqdm(total=int(budget), initial=int(spent), unit="s", desc="decoder fine-tune")
    last_save = spent
    ae.decoder.train()
    while spent < budget:
        t0 = time.perf_counter()
        lr = a.lr * 0.5 * (1 + math.cos(math.pi * min(spent / budget, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        px = frames_to_pixels(torch.from_numpy(train[rng.integers(len(train), size=a.batch_size)]))
        with torch.no_grad():
            z = ae.encode(px)
        loss = detail_loss(ae.decode(z).float(), px, a.detail_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        dt = time.perf_counter() - t0
        spent += dt
        bar.update(int(spent) - bar.n)
        if spent - last_save >= 60.0 * a.save_minutes or spent >= budget:
            save()
            ae.decoder.train()
            last_save = spent
    bar.close()
    if not losses:
        print(json.dumps({"done": True, "steps": step}))
    return json.loads((out / "decoder_finetune.json").read_text())


if __name__ == "__main__":
    main()
