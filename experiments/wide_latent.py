"""A wider latent for the autoencoder: does it keep what the 16 x 16 x 4 latent loses (experiments/LOG.md entry 27)?

    python -m experiments.wide_latent train --model default --channels 8 --data runs/data/td/* \
        --eval-data runs/data/td_test/* --minutes 35 --out runs/candidates/ae8
    python -m experiments.wide_latent measure --autoencoder default runs/candidates/ae8 --worlds 64 \
        --eval-data runs/data/td_test/* --out experiments/results/wide_latent/measure.json \
        --sheet experiments/results/wide_latent/reconstructions.png
    python -m experiments.wide_latent fit-head --model runs/candidates/w8init_zero --data runs/data/td/* \
        --out runs/candidates/w8init_fit_zero --report experiments/results/wide_latent/fit_head_zero.json
    python -m experiments.wide_latent curves --runs runs/train/w8_zero runs/train/w8_rand \
        --out experiments/results/wide_latent/init_curves.json --plot experiments/results/wide_latent/init_curves.png

The shipped autoencoder sets a ceiling on what any dynamics model can show: on the consistency suite's 22 x 22
top-down grids (2.9 pixels per cell) the true next frames under every action, encoded and decoded, tell the
agent's headings apart in about half the worlds (the counterfactual ceiling, `benchmarks.consistency`), and the
README demo's far objects come out as blobs (entry 24: the latent, not the decoder, loses them).

``train`` widens a world model's (or autoencoder checkpoint's) autoencoder to ``--channels`` latent channels
without changing what it computes (Net2Net-style: the first channels are the old ones, the decoder's weights on the
new channels start at zero, the encoder's new output filters at a tenth of their default initialisation), then
trains it for a wall-clock budget on recorded frames (the train split) with the
autoencoder's own loss, L1 + MSE, weighted per pixel towards fine detail as experiments/decoder_finetune.py does
(``--detail-weight``; 0: the plain loss), AdamW, cosine learning rate, bf16 autocast where native. By default
(``--keep-old``) only the decoder and the encoder's new output filters learn, and the old channels keep their
statistics: the old channels stay exactly the latents the world model's dynamics reads and predicts, so that
dynamics can be widened the same way (`widen_dynamics`). It writes an
autoencoder checkpoint (format "genie-autoencoder", the latent statistics fitted on held-out frames) that
``genie-train dynamics --autoencoder`` reads, every ``--save-minutes`` and at the end; a run whose --out holds one
continues from it (the same budget in all).

``measure`` reports, per autoencoder: frame and detail PSNR per view on held-out frames (the test split of
--eval-data, experiments/decoder_finetune.py's figures), and the counterfactual ceiling on the suite's worlds per
view and per level (the suite's own scenario and rule: the true frames after a look-around, every action, through
the autoencoder). ``--sheet`` draws held-out frames of both views: truth over each autoencoder's reconstruction.

``fit-head`` fits the new channels' output rows of a widened world model by ridge regression on training batches
instead of starting them at zero (the rest of the network fixed; see `fit_head`).

``curves`` compares the training losses of dynamics runs (their log.jsonl) step by step: runs from the same data,
seed and batch size see the same windows at each step, so the losses compare directly (entry 30: the widened
dynamics with their new input columns zero or drawn small). Per run, the mean loss over consecutive blocks of
``--block`` steps up to the last step every run reached, and their mean difference to the first run's.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from benchmarks.machine import describe_machine
from benchmarks.result_file import command_line
from experiments.decoder_finetune import detail_loss, figures, held_out, reconstruct
from world_model import WorldModel
from world_model.autoencoder import Autoencoder, frames_to_pixels
from world_model.checkpoint import FORMAT_AUTOENCODER, FORMAT_VERSION, prefixed, save_model, write_json
from world_model.dataset import EpisodeDataset
from world_model.hardware import resolve_bf16
from world_model.train_dynamics import load_autoencoder
from world_model.widen import OldChannels, widen_autoencoder, widen_world_model

STATE = "wide_latent.json"


def load_any(path: str) -> Autoencoder:
    """The autoencoder of a world model ('default' or a folder) or of an autoencoder checkpoint or run directory,
    fp32, eval mode."""
    return load_autoencoder(path)


widen = widen_autoencoder  # the old channels first, computing the same reconstructions (world_model/widen.py)


def keep_old_channels(ae: Autoencoder, old: int) -> list[torch.nn.Parameter]:
    """Freeze what computes the first `old` latent channels (the encoder but its new output filters), so that they
    stay the latents an existing dynamics model reads; returns the parameters left to train (AdamW without weight
    decay here, so the old filters, whose gradient is zero, stay as they are)."""
    OldChannels(ae, old)
    return [q for q in ae.parameters() if q.requires_grad]


def save(ae: Autoencoder, out: Path, eval_frames: np.ndarray, record: dict, keep: int = 0) -> None:
    """Fit the latent statistics on held-out frames (all but the first `keep` channels') and write a
    "genie-autoencoder" checkpoint with `record`."""
    ae.eval()
    shift, scale = ae.latent_shift[:keep].clone(), ae.latent_scale[:keep].clone()
    ae.fit_latent_stats(frames_to_pixels(torch.from_numpy(eval_frames)))
    ae.latent_shift[:keep], ae.latent_scale[:keep] = shift, scale
    cfg = {"format": FORMAT_AUTOENCODER, "format_version": FORMAT_VERSION, "autoencoder": ae.config.to_dict(),
           "latent_shift": ae.latent_shift.tolist(), "latent_scale": ae.latent_scale.tolist(),
           "training": {"wide_latent": record}}
    save_model(out, cfg, prefixed("autoencoder", ae))
    write_json(out / STATE, record)


def train(a, argv) -> dict:
    out = Path(a.out)
    resumed = (out / STATE).is_file()
    state = json.loads((out / STATE).read_text()) if resumed else {}
    base = load_any(a.model)
    ae = load_any(str(out)) if resumed else widen(base, a.channels, a.seed)
    keep = base.config.latent_channels if a.keep_old else 0
    params = keep_old_channels(ae, keep) if keep else list(ae.parameters())
    frames = EpisodeDataset(a.data, split="train").frames
    evals = held_out(a.eval_data, a.eval_frames, a.seed)
    eval_all = np.concatenate(list(evals.values()))
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    budget, spent, step = 60.0 * a.minutes, float(state.get("seconds", 0.0)), int(state.get("steps", 0))
    rng = np.random.default_rng(a.seed + step)
    losses: list[float] = list(state.get("loss_tail", []))
    bf16 = resolve_bf16(a.bf16)

    def record() -> dict:
        return {"command": command_line("experiments.wide_latent", argv), "model": a.model,
                "channels": ae.config.latent_channels, "keep_old": bool(keep), "detail_weight": a.detail_weight,
                "lr": a.lr, "warmup": a.warmup,
                "batch_size": a.batch_size, "minutes": a.minutes, "bf16": bool(bf16), "steps": step,
                "seconds": round(spent, 1), "loss_tail": [round(x, 5) for x in losses[-100:]],
                "machine": describe_machine()}

    bar = tqdm(total=int(budget), initial=int(spent), unit="s", desc=f"autoencoder x{ae.config.latent_channels}")
    last_save = spent
    ae.train()
    while spent < budget:
        t0 = time.perf_counter()
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(spent / budget, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        px = frames_to_pixels(torch.from_numpy(frames[rng.integers(len(frames), size=a.batch_size)]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            recon = ae(px)
        loss = detail_loss(recon.float(), px, a.detail_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        spent += time.perf_counter() - t0
        bar.update(int(spent) - bar.n)
        bar.set_postfix(step=step, loss=f"{np.mean(losses[-50:]):.4f}")
        if spent - last_save >= 60.0 * a.save_minutes or spent >= budget:
            save(ae, out, eval_all, record(), keep)
            ae.train()
            last_save = spent
    bar.close()
    if not (out / STATE).is_file():  # a budget spent before the first step
        save(ae, out, eval_all, record(), keep)
    ae.eval()
    result = {**record(), "figures": {v: figures(ae, f) for v, f in evals.items()}}
    print(json.dumps({k: result[k] for k in ("steps", "seconds", "figures")}), flush=True)
    return result


def ceiling(ae: Autoencoder, view: str, worlds, seed: int) -> dict:
    """The suite's counterfactual scenario (consistency.counterfactual's worlds, moves and rule) through `ae`:
    mean accuracy overall and per level of the true next frames encoded and decoded."""
    truth = GroundTruth(64)
    rng = np.random.default_rng(seed + 20)  # as consistency.counterfactual draws its warm-up moves
    per = collections.defaultdict(list)
    try:
        for lvl, s in worlds:
            prefix = [int(x) for x in rng.choice([C.FORWARD, C.LEFT, C.RIGHT], p=[0.5, 0.25, 0.25],
                                                  size=C.ConsistencyConfig().warmup)] + [C.LEFT] * 4
            env, _ = truth.env(lvl, s, view, prefix)
            gt = np.stack([copy.deepcopy(env).step(act)[0] for act in range(len(C.ACTION_MEANINGS))])
            per[lvl].append(float(C.counterfactual_scores(reconstruct(ae, gt)[None], gt[None])["accuracy"][0]))
    finally:
        truth.close()
    every = [x for v in per.values() for x in v]
    return {"overall": round(float(np.mean(every)), 4), "worlds": len(every),
            "per_level": {k: round(float(np.mean(v)), 4) for k, v in sorted(per.items())}}


def widen_model(model: str, ae: Autoencoder, new_input_std: float = 0.0, seed: int = 0) -> WorldModel:
    """World model `model` with autoencoder `ae` (its own widened by `train` with --keep-old) and its dynamics
    widened to match (world_model/widen.py's `widen_world_model`: the patch embedding's columns for the new channels
    and the output rows for them zero). `new_input_std` > 0 draws those input columns instead from a normal
    distribution with that fraction of the old columns' standard deviation (the output rows stay zero), so the trunk
    sees the new channels from the first step (experiments/LOG.md entries 29-30)."""
    wm = widen_world_model(WorldModel.load(model, autocast=False), ae)
    if new_input_std > 0:
        old, new = wm.training_metadata["widened"]["latent_channels"]
        pp = wm.config.dynamics.patch_size ** 2
        w = wm.dynamics.patch_in.weight
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for b in range(w.shape[1] // (new * pp)):
                o = w[:, b * new * pp:b * new * pp + old * pp]
                cols = slice(b * new * pp + old * pp, (b + 1) * new * pp)
                w[:, cols] = torch.randn(w[:, cols].shape, generator=g) * float(o.std()) * new_input_std
        wm.training_metadata["widened"]["new_input_std"] = new_input_std
    return wm


def measure(a, argv) -> dict:
    evals = held_out(a.eval_data, a.eval_frames, a.seed)
    worlds = draw_worlds(a.worlds, 0, C.ConsistencyConfig().levels)
    result = {"benchmark": "wide_latent", "command": command_line("experiments.wide_latent", argv),
              "worlds": a.worlds, "machine": describe_machine(), "autoencoders": {}}
    shown = {v: f[np.linspace(0, len(f) - 1, min(a.sheet_frames, len(f))).round().astype(int)]
             for v, f in evals.items()}  # spread over the held-out episodes (levels)
    rows = {v: [(f"truth ({''.join(w[0] for w in v.split('_'))})", list(f))] for v, f in shown.items()}
    for path in a.autoencoder:
        ae = load_any(path)
        r = {"latent_channels": ae.config.latent_channels,
             "figures": {v: figures(ae, f) for v, f in evals.items()},
             "counterfactual_ceiling": {v: ceiling(ae, v, worlds, 0) for v in a.views}}
        result["autoencoders"][path] = r
        print(json.dumps({path: r}), flush=True)
        for v, f in shown.items():
            rows[v].append((f"{Path(path).name} x{ae.config.latent_channels}", list(reconstruct(ae, f))))
    if a.out:
        write_json(a.out, result)
    if a.sheet:
        if a.out:  # the sheet beside the JSON file is linked from RESULTS.md
            result["figures"] = {"held-out frames: truth over each autoencoder": os.path.relpath(a.sheet,
                                                                                               Path(a.out).parent)}
            write_json(a.out, result)
        C.contact_sheet([r for v in sorted(rows) for r in rows[v]], [""] * len(next(iter(shown.values()))), a.sheet)
    return result


def read_log(run: Path) -> list[dict]:
    """The rows of a training run's log.jsonl (step, loss, ...)."""
    path = Path(run) / "log.jsonl"
    if not path.is_file():
        raise SystemExit(f"wide_latent curves: {path} is missing; pass training run folders (genie-train --out)")
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@torch.no_grad()
def fit_head(model: str, data, out: str, batches: int = 64, ridge: float = 1e-3, min_sigma: float = 0.15,
             batch_size: int = 8, seed: int = 0, preset: str = "default") -> dict:
    """The output rows for the new channels of a widened world model (`widen-model`) fitted by ridge regression
    instead of starting at zero: on `batches` training batches of `data` (drawn as genie-train dynamics draws them
    from --init-from `model` of preset `preset`, with `seed`; its run folder, with the data's latent cache, is
    OUT.run), the features the output layer reads for every token of every frame noised to sigma >= `min_sigma`
    (the training targets; context frames sit at 0.01-0.1), against the network target F = (y - c_skip x) / c_out
    of the new channels (the loss is ||F(x) - target||^2 in F-space, so the fit minimises it over those rows, the
    rest of the network fixed). The old channels' rows are untouched. Writes the model to `out`; returns the new
    channels' loss on the fitting batches before and after, and on as many other batches (later steps of the same
    stream), and the old channels' loss over all of them (what the new input columns cost the old predictions)."""
    from world_model.diffusion import Conditioners
    from world_model.dynamics import patchify
    from world_model.train_dynamics import DynamicsArgs
    from world_model.training import step_generators

    wm = WorldModel.load(model, autocast=False)
    widened = (wm.training_metadata or {}).get("widened", {}).get("latent_channels")
    if not widened:
        raise SystemExit(f"wide_latent fit-head: {model} is not a widened model (experiments.wide_latent widen-model)")
    old, new = widened
    run = Path(out + ".run")
    args = DynamicsArgs(data=tuple(data), out=str(run), autoencoder=model, init_from=model, preset=preset,
                        batch_size=batch_size, steps=1, memory=wm.config.dynamics.memory,
                        memory_turns_only=wm.config.dynamics.memory_turns_only,
                        view_conditioning=bool(wm.config.dynamics.views),
                        seed=seed, threads=torch.get_num_threads(), context_sigma=0.1, context_sigma_min=0.01)
    trainer = args.trainer()
    dyn = trainer.dyn
    pp = dyn.config.patch_size ** 2
    rows = slice(old * pp, new * pp)
    seen: dict = {}
    target_of = Conditioners.network_target

    def keep_target(self, y, x, prior=None):
        t = target_of(self, y, x, prior)
        seen["target"], seen["c_out"] = t, self.c_out
        return t

    def keep_features(_module, inputs):
        seen["z"] = inputs[0].float()

    def draw(step: int):
        """The features (M, D + 1) and the new channels' targets (M, new - old) of one batch's target frames."""
        np_gen, gen = step_generators(args, trainer.rt, step)
        batch = trainer.batch(np_gen)
        with trainer.autocast():
            trainer.objective.loss(*batch, gen)
        target = patchify(seen["target"].float(), dyn.config.patch_size)  # (B, T, N, new * pp)
        z = seen["z"]  # (B, T, N, D)
        pick = seen["c_out"] >= c_out_min  # (B, T): c_out grows with sigma
        zf = z[pick].reshape(-1, z.shape[-1])
        Z = torch.cat([zf, torch.ones(len(zf), 1)], 1).double()
        target = target[pick].reshape(-1, target.shape[-1]).double()
        old_err["sum"] += float((Z @ W_old - target[:, :old * pp]).pow(2).sum())
        old_err["n"] += target[:, :old * pp].numel()
        return Z, target[:, rows]

    c_out_min = float(trainer.denoiser.compute_conditioners(torch.tensor(min_sigma)).c_out)
    W_old = torch.cat([dyn.patch_out.weight[:old * pp].T, dyn.patch_out.bias[:old * pp][None]]).double()
    old_err = {"sum": 0.0, "n": 0}  # the old channels' loss on every batch drawn (their rows are not refitted)
    hook = dyn.patch_out.register_forward_pre_hook(keep_features)
    Conditioners.network_target = keep_target
    try:
        D = dyn.patch_out.in_features
        A = torch.zeros(D + 1, D + 1, dtype=torch.float64)
        Bm = torch.zeros(D + 1, (new - old) * pp, dtype=torch.float64)
        W0 = torch.cat([dyn.patch_out.weight[rows].T, dyn.patch_out.bias[rows][None]]).double()
        yy, count = 0.0, 0
        for step in tqdm(range(batches), desc="fit-head features"):
            Z, Y = draw(step)
            A += Z.T @ Z
            Bm += Z.T @ Y
            yy += float(Y.pow(2).sum())
            count += Y.numel()
        reg = ridge * (count / Y.shape[1]) * (torch.arange(D + 1) < D).double()  # per token, the bias unpenalised
        W = torch.linalg.solve(A + reg.diag(), Bm)

        def fit_error(V: torch.Tensor) -> float:  # ||Z V - Y||^2 over the fitting batches, from their moments
            return float((V * (A @ V)).sum() - 2 * (V * Bm).sum()) + yy

        fit_err0, fit_err = fit_error(W0), fit_error(W)
        held0 = held = 0.0
        held_n = 0
        for step in range(batches, 2 * batches):  # other steps: other windows, noise and levels
            Z, Y = draw(10_000_000 + step)
            held0 += float((Z @ W0 - Y).pow(2).sum())
            held += float((Z @ W - Y).pow(2).sum())
            held_n += Y.numel()
    finally:
        hook.remove()
        Conditioners.network_target = target_of
    wm.dynamics.patch_out.weight[rows] = W[:D].T.to(wm.dynamics.patch_out.weight.dtype)
    wm.dynamics.patch_out.bias[rows] = W[D].to(wm.dynamics.patch_out.bias.dtype)
    wm.training_metadata["widened"]["fitted_head"] = {"batches": batches, "ridge": ridge, "min_sigma": min_sigma}
    wm.save(out, training=wm.training_metadata)
    result = {"new_channel_loss": {"fit_batches": {"before": fit_err0 / count, "after": fit_err / count},
                                   "held_out_batches": {"before": held0 / held_n, "after": held / held_n}},
              "old_channel_loss": old_err["sum"] / old_err["n"], "tokens": count // Y.shape[1], "out": out}
    print(json.dumps(result, indent=1))
    return result


def curves(a, argv) -> dict:
    """Training losses of `a.runs` compared step by step (module docstring, ``curves``)."""
    logs = {str(r): read_log(r) for r in a.runs}
    last = min(max((row["step"] for row in rows), default=0) for rows in logs.values())
    if last < a.block:
        raise SystemExit(f"wide_latent curves: the shortest run reached step {last}, less than one --block "
                         f"({a.block}); train longer or pass a smaller --block")
    edges = list(range(0, last - last % a.block + 1, a.block))
    runs = {}
    for name, rows in logs.items():
        blocks = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            xs = [row["loss"] for row in rows if lo < row["step"] <= hi]
            blocks.append(round(float(np.mean(xs)), 5))
        runs[name] = {"steps": [row["step"] for row in rows], "loss": [round(row["loss"], 5) for row in rows],
                      "block_mean": blocks, "last_step": rows[-1]["step"],
                      "elapsed_s": round(float(rows[-1].get("elapsed_s", float("nan"))), 1)}
    first = runs[str(a.runs[0])]["block_mean"]
    for r in runs.values():
        r["mean_diff_to_first"] = round(float(np.mean(np.subtract(r["block_mean"], first))), 5)
    result = {"benchmark": "wide_latent", "curves": runs, "block": a.block, "blocks": [[lo, hi] for lo, hi in
              zip(edges[:-1], edges[1:])], "command": command_line("experiments.wide_latent", argv),
              "machine": describe_machine()}
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name, r in runs.items():
            ax.plot(r["steps"], r["loss"], label=Path(name).name, lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend()
        fig.tight_layout()
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=120)
        plt.close(fig)
        result["figures"] = {"training loss": Path(a.plot).name}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(a.out, result)
    print(json.dumps({k: {"block_mean": v["block_mean"], "mean_diff_to_first": v["mean_diff_to_first"]}
                      for k, v in runs.items()}, indent=1))
    return result


def curves_section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown section of a ``curves`` result: the mean loss per block of steps, a row per run."""
    from benchmarks.machine import in_words

    head = ["run"] + [f"steps {lo + 1}-{hi}" for lo, hi in r["blocks"]] + ["mean difference to the first run"]
    lines = ["## Training losses of widened dynamics runs, step by step", "",
             f"`{r['command']}` (experiments/LOG.md entry 30): mean training loss per block of {r['block']} steps "
             f"(the runs see the same windows at each step). Machine: {in_words(r['machine'])}.", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, x in r["curves"].items():
        lines.append(f"| `{name}` | " + " | ".join(f"{v:.4f}" for v in x["block_mean"])
                     + f" | {x['mean_diff_to_first']:+.4f} |")
    for title, img in (images or {}).items():
        lines += ["", f"![{title}]({img})"]
    return lines + [""]


def fit_head_section(r: dict) -> list[str]:
    """Markdown section of a ``fit-head`` report: the new channels' loss before and after the fit."""
    from benchmarks.machine import in_words

    loss = r["new_channel_loss"]
    return [f"## The new output rows of `{r['model']}` fitted by ridge regression", "",
            f"`{r['command']}` (experiments/LOG.md entry 30): the training loss (F-space) on the new latent channels "
            f"with their output rows at zero and fitted, over {r['tokens']:,} tokens of the fitting batches and as "
            f"many other batches; the old channels' loss (their rows not refitted). Machine: "
            f"{in_words(r['machine'])}.", "",
            "| batches | new channels, rows zero | new channels, rows fitted | old channels |", "|---|---:|---:|---:|",
            f"| fitted on | {loss['fit_batches']['before']:.4f} | {loss['fit_batches']['after']:.4f} | "
            f"{r['old_channel_loss']:.4f} |",
            f"| held out | {loss['held_out_batches']['before']:.4f} | {loss['held_out_batches']['after']:.4f} | |", ""]


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown section (experiments.report): a row per autoencoder (``measure``), or a ``curves`` or ``fit-head``
    result's."""
    from benchmarks.machine import in_words

    if "curves" in r:
        return curves_section(r, images)
    if r.get("benchmark") == "wide_latent_fit_head":
        return fit_head_section(r)

    views = sorted({v for x in r["autoencoders"].values() for v in x["figures"]})
    cviews = sorted({v for x in r["autoencoders"].values() for v in x["counterfactual_ceiling"]})
    head = (["autoencoder", "latent channels"] + [f"{v.replace('_', ' ')} frame / detail PSNR (dB)" for v in views]
            + [f"{v.replace('_', ' ')} counterfactual ceiling" for v in cviews])
    lines = [f"## Autoencoders with a wider latent: {r['worlds']} suite worlds per view", "",
             f"`{r['command']}` (experiments/LOG.md entry 27): reconstruction PSNR of held-out frames (detail: the "
             "10% of each frame's pixels with the highest local contrast), and the consistency suite's "
             "counterfactual accuracy of the true next frames through each autoencoder, the ceiling of any dynamics "
             f"model on it. Machine: {in_words(r['machine'])}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, x in r["autoencoders"].items():
        cells = [f"`{path}`", str(x["latent_channels"])]
        cells += [f"{x['figures'][v]['frame_psnr']:.2f} / {x['figures'][v]['detail_psnr']:.2f}" for v in views]
        cells += [f"{x['counterfactual_ceiling'][v]['overall']:.3f}" for v in cviews]
        lines.append("| " + " | ".join(cells) + " |")
    levels = sorted({lvl for x in r["autoencoders"].values()
                     for lvl in x["counterfactual_ceiling"].get("top_down", {}).get("per_level", {})})
    if levels:
        lines += ["", "Top-down counterfactual ceiling per level:", "",
                  "| autoencoder | " + " | ".join(levels) + " |", "|---|" + "---:|" * len(levels)]
        for path, x in r["autoencoders"].items():
            per = x["counterfactual_ceiling"]["top_down"]["per_level"]
            lines.append(f"| `{path}` | " + " | ".join(f"{per.get(lvl, float('nan')):.2f}" for lvl in levels) + " |")
    for title, img in (images or {}).items():
        lines += ["", f"![{title}]({img})"]
    return lines + [""]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="widen an autoencoder's latent and train it")
    t.add_argument("--model", default="default", help="'default', a world-model or an autoencoder checkpoint folder")
    t.add_argument("--channels", type=int, default=8, help="latent channels of the widened autoencoder")
    t.add_argument("--data", nargs="+", required=True, help="recording folders (their train split is used)")
    t.add_argument("--eval-data", nargs="+", required=True, help="recording folders (their test split is used)")
    t.add_argument("--out", required=True, help="autoencoder checkpoint folder to write (resumed if it exists)")
    t.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of the training (> 0)")
    t.add_argument("--detail-weight", type=float, default=4.0, help=">= 0; 0: plain L1 + MSE")
    t.add_argument("--keep-old", action=argparse.BooleanOptionalAction, default=True,
                   help="freeze the encoder but its new output filters, and the old channels' statistics, so the old "
                        "channels stay the latents the model's dynamics reads (default); --no-keep-old trains all")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--warmup", type=int, default=100, help="linear warm-up steps, then cosine decay over the budget")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--eval-frames", type=int, default=256, help="held-out frames per view")
    t.add_argument("--save-minutes", type=float, default=5.0)
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: where the CPU runs it natively)")
    w = sub.add_parser("widen-model", help="a world model with a widened autoencoder, its dynamics widened to match")
    w.add_argument("--model", default="default", help="'default' or a world-model checkpoint folder")
    w.add_argument("--autoencoder", required=True, help="the model's autoencoder widened by `train` (--keep-old)")
    w.add_argument("--out", required=True, help="world-model checkpoint folder to write")
    w.add_argument("--new-input-std", type=float, default=0.0,
                   help="> 0: the new channels' input columns drawn at this fraction of the old columns' std")
    m = sub.add_parser("measure", help="reconstruction figures and counterfactual ceilings of autoencoders")
    m.add_argument("--autoencoder", nargs="+", required=True,
                   help="'default', world-model or autoencoder checkpoint folders")
    m.add_argument("--eval-data", nargs="+", required=True, help="recording folders (their test split is used)")
    m.add_argument("--worlds", type=int, default=64, help="the suite's worlds per view for the ceiling")
    m.add_argument("--views", nargs="+", default=["top_down", "first_person"], choices=["top_down", "first_person"])
    m.add_argument("--eval-frames", type=int, default=256, help="held-out frames per view")
    m.add_argument("--sheet-frames", type=int, default=8)
    m.add_argument("--out", help="JSON file to write")
    m.add_argument("--sheet", help="PNG contact sheet to write")
    f = sub.add_parser("fit-head", help="the new channels' output rows of a widened model fitted by ridge regression")
    f.add_argument("--model", required=True, help="a widened world model (widen-model)")
    f.add_argument("--data", nargs="+", required=True, help="recording folders (genie-train dynamics --data)")
    f.add_argument("--out", required=True, help="world-model checkpoint folder to write")
    f.add_argument("--batches", type=int, default=64, help="training batches to fit on (and as many to check)")
    f.add_argument("--ridge", type=float, default=1e-3)
    f.add_argument("--preset", default="default", help="the model's dynamics preset (genie-train dynamics --preset)")
    f.add_argument("--report", help="JSON file to write the losses to")
    c = sub.add_parser("curves", help="training losses of dynamics runs compared step by step")
    c.add_argument("--runs", nargs="+", required=True, help="training run folders (their log.jsonl); the first is "
                                                           "the reference")
    c.add_argument("--block", type=int, default=100, help="steps per block of the table (>= 1)")
    c.add_argument("--out", help="JSON file to write")
    c.add_argument("--plot", help="PNG of the losses to write")
    for q in (t, m, w, c, f):
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.cmd == "train" and (a.minutes <= 0 or a.detail_weight < 0 or a.batch_size < 1 or a.lr <= 0
                             or a.channels < 1 or a.warmup < 1):
        p.error("--minutes, --lr and --channels must be > 0, --detail-weight >= 0, --batch-size and --warmup >= 1")
    if a.cmd == "measure" and a.worlds < 1:
        p.error("--worlds must be >= 1")
    if a.cmd == "curves" and a.block < 1:
        p.error("--block must be >= 1")
    torch.set_num_threads(a.threads)
    if a.cmd == "curves":
        return curves(a, argv)
    if a.cmd == "fit-head":
        r = fit_head(a.model, a.data, a.out, a.batches, a.ridge, seed=a.seed, preset=a.preset)
        if a.report:
            r.update(benchmark="wide_latent_fit_head", model=a.model,
                     command=command_line("experiments.wide_latent", argv), machine=describe_machine())
            Path(a.report).parent.mkdir(parents=True, exist_ok=True)
            write_json(a.report, r)
        return r
    if a.cmd == "widen-model":
        wm = widen_model(a.model, load_any(a.autoencoder), a.new_input_std, a.seed)
        wm.save(a.out, training=wm.training_metadata)
        print(f"wrote {a.out}")
        return {"out": a.out}
    return train(a, argv) if a.cmd == "train" else measure(a, argv)


if __name__ == "__main__":
    main()
