"""Frames/s of several world models side by side: one world and batches of worlds stepped with the KV cache under
each model's own default sampler, timed in rounds that take the models in turn (median over rounds), so that a
slow spell of a shared machine hits them all and their ratio holds where the absolute figures drift.

    python -m experiments.model_speed --model runs/candidates/v5 --model default --batch 1 16 --rounds 5 \\
        --out experiments/results/cache_refresh/model_speed.json

``--runtime auto bf16 fp32`` times each model under each inference runtime (auto: bf16 where the CPU has it natively,
world_model.hardware; bf16 / fp32 forced).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

#: --runtime choices -> WorldModel's autocast argument
RUNTIMES = {"auto": None, "bf16": True, "fp32": False}


def main(argv=None) -> dict:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import command_line, publish
    from experiments.sampler_sweep import frames_per_s
    from world_model import WorldModel

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="checkpoint folder or 'default'; repeatable")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="worlds stepped together")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=24, help="timed steps per measurement (whole refresh periods)")
    p.add_argument("--runtime", nargs="+", default=["auto"], choices=list(RUNTIMES),
                   help="inference runtimes to time each model under")
    p.add_argument("--out")
    args = p.parse_args(argv)
    models = {(m, r): WorldModel.load(m, autocast=RUNTIMES[r]) for m in args.model for r in args.runtime}
    frame = np.full((64, 64, 3), 100, np.uint8)
    runs = {(key, b): [] for key in models for b in args.batch}
    for _ in range(args.rounds):
        for b in args.batch:
            for key, wm in models.items():
                runs[(key, b)].append(frames_per_s(wm, frame, repeats=args.repeats, batch=b))
    first = next(iter(models))
    results = [{"model": m, "runtime": r, "bf16": models[(m, r)].autocast, "batch": b,
                "sampler": models[(m, r)].config.sampler.to_dict(),
                "env_steps_per_s": round(statistics.median(v), 2), "per_round": v,
                "vs_first": round(statistics.median(v) / statistics.median(runs[(first, b)]), 3)}
               for ((m, r), b), v in runs.items()]
    report = {"benchmark": "genie-model-speed", "machine": describe_machine(), "rounds": args.rounds,
              "command": command_line("experiments.model_speed", argv), "results": results}
    lines = [f"`{report['command']}` (median of {args.rounds} interleaved rounds; machine: see the JSON)", "",
             "| model | runtime | worlds | env-steps/s | vs the first |", "|---|---|---:|---:|---:|"]
    lines += [f"| `{r['model']}` | {r['runtime']} ({'bf16' if r['bf16'] else 'fp32'}) | {r['batch']} | "
              f"{r['env_steps_per_s']:.2f} | {r['vs_first']:.2f}x |" for r in results]
    return publish(report, args.out, lines)


if __name__ == "__main__":
    main()
