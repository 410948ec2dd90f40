"""The README demo beside its ground truth: what the world model draws, and what each autoencoder keeps of the truth.

    python -m experiments.demo_truth --autoencoder default runs/train/ae_fine --steps 60 --seed 0 \
        --out experiments/results/fine_latent/demo_truth.json --sheet experiments/results/fine_latent/demo_truth.png

`genie-play --headless --steps N --seed S` (README's main job) plays random actions from an unseen world of its
level. This replays the same world (the level seed GenieWorld's reset draws with that seed) and the same actions
(genie-play's own action draw) in the ground-truth 3D BabyAI env, plays the world model (``--model``) as genie-play
does, and passes every true frame through each autoencoder (``--autoencoder``: 'default', a world model, or an
autoencoder checkpoint or run). The issue's demo floor (objects recognisable for 60 steps) needs both rows to keep
them: the autoencoder's (what any dynamics on its latent can show at best) and the model's.

JSON: ``{"study": "demo_truth", "command", "machine", "level", "level_seed", "actions", "model": {"psnr": [...],
"mean_psnr"}, "autoencoders": {name: {"frame_psnr", "detail_psnr", "frames"}}}`` (PSNR of the model's frame t
against the true frame t; the autoencoders' figures over the true frames, experiments/decoder_finetune.py's).
``--sheet``: truth, the model, and each autoencoder's reconstruction of the truth, every ``--every`` steps.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.consistency import contact_sheet
from benchmarks.machine import describe_machine
from benchmarks.result_file import command_line, publish
from experiments.decoder_finetune import figures, reconstruct
from world_model.metrics import psnr
from world_model.train_dynamics import load_autoencoder


def demo_episode(steps: int, seed: int, model: str = "default", level: str | None = None) -> dict:
    """The model's frames and the true frames of genie-play's headless demo: {"level", "level_seed", "actions",
    "model" (steps + 1, H, W, 3), "truth" (the same)}."""
    from genie_env.babyai3d import BabyAI3DEnv
    from genie_env.play import PlayArgs, make_env

    args = PlayArgs(headless=True, steps=steps, seed=seed, model=model, **({"level": level} if level else {}))
    env = make_env(args)
    try:
        frame, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)  # genie-play's draw of its random actions
        actions = [int(rng.integers(env.action_space.n)) for _ in range(steps)]
        model_frames = [frame] + [env.step(a)[0] for a in actions]
        level_name, level_seed = env.level, int(info["level_seed"])
    finally:
        env.close()
    world = BabyAI3DEnv(level=level_name, size=frame.shape[:2], view="first_person", worlds="test")
    try:
        truth = [world.reset(options={"level_seed": level_seed})[0]]
        for a in actions:
            truth.append(world.step(a)[0])
    finally:
        world.close()
    return {"level": level_name, "level_seed": level_seed, "actions": actions,
            "model": np.stack(model_frames), "truth": np.stack(truth)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="the world model genie-play plays ('default' or a folder)")
    p.add_argument("--autoencoder", nargs="*", default=["default"],
                   help="autoencoders to pass the true frames through ('default', a world model, an autoencoder "
                        "checkpoint or run)")
    p.add_argument("--steps", type=int, default=60, help="genie-play --steps (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="genie-play --seed")
    p.add_argument("--every", type=int, default=6, help="a sheet column every this many steps (>= 1)")
    p.add_argument("--scale", type=int, default=2, help="sheet frames upscaled this many times (>= 1)")
    p.add_argument("--out", help="JSON file to write")
    p.add_argument("--sheet", help="PNG contact sheet to write")
    a = p.parse_args(argv)
    if min(a.steps, a.every, a.scale) < 1:
        p.error(f"--steps, --every and --scale must be >= 1, got {a.steps}, {a.every} and {a.scale}")
    ep = demo_episode(a.steps, a.seed, a.model)
    truth, dreamt = ep["truth"], ep["model"]
    model_psnr = psnr(dreamt, truth)
    result = {"study": "demo_truth", "command": command_line("experiments.demo_truth", argv),
              "machine": describe_machine(), "level": ep["level"], "level_seed": ep["level_seed"],
              "actions": ep["actions"], "steps": a.steps, "seed": a.seed,
              "model": {"name": a.model, "psnr": [round(float(x), 2) for x in model_psnr],
                        "mean_psnr": round(float(model_psnr.mean()), 3)},
              "autoencoders": {}}
    cols = list(range(0, a.steps + 1, a.every))
    rows = [("truth", [truth[t] for t in cols]), (f"model {Path(a.model).name}"[:14], [dreamt[t] for t in cols])]
    for name in a.autoencoder:
        ae = load_autoencoder(name)
        rec = reconstruct(ae, truth)
        result["autoencoders"][name] = figures(ae, truth)
        rows.append((f"AE {Path(name).name}"[:14], [rec[t] for t in cols]))
    if a.sheet:
        up = lambda f: f.repeat(a.scale, axis=0).repeat(a.scale, axis=1)  # noqa: E731
        contact_sheet([(label, [up(f) for f in frames]) for label, frames in rows], [f"t={t}" for t in cols],
                      a.sheet)
    return publish(result, a.out, None)


if __name__ == "__main__":
    main()
