"""Success judges on recorded and on dreamed held-out episodes, side by side (LOG entry 19).

    python -m experiments.judge_eval --judge default runs/judge/recorded runs/judge/dreamed \
        --recorded runs/data/test --dreamed runs/dream/test --out experiments/results/judge_dream/judge_eval.json

For every judge and each of the two sets of held-out episodes (the recordings, and the same episodes re-played
inside the world model by ``genie-data dream``): frame-level precision / recall / F1 and episode-level agreement
with the verifier (``genie_env.judge.evaluate_judge``) at each threshold, overall and for the headline tasks'
levels. Prints a Markdown table of the overall figures at threshold 0.5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.machine import describe_machine
from benchmarks.result_file import command_line, publish
from genie_env.judge import SuccessJudge, evaluate_judge

HEADLINE_LEVELS = ("OpenRedDoor", "GoToRedBall")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge", nargs="+", required=True, help="judges: default or checkpoint folders")
    parser.add_argument("--recorded", required=True, help="folder of held-out recording folders (one per level)")
    parser.add_argument("--dreamed", required=True, help="folder of the same recordings dreamed (one per level)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7])
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    sets = {}
    for name, root in (("recorded", args.recorded), ("dreamed", args.dreamed)):
        levels = sorted(p for p in Path(root).iterdir() if p.is_dir() and list(p.glob("shard_*.npz")))
        if not levels:
            raise SystemExit(f"no recordings under {root}")
        sets[name] = {"all": levels, **{lv: [p for p in levels if p.name == lv] for lv in HEADLINE_LEVELS}}
    rows = []
    for judge_name in args.judge:
        judge = SuccessJudge.load(judge_name)
        for set_name, groups in sets.items():
            for group, folders in groups.items():
                if not folders:
                    continue
                for thr in args.thresholds:
                    r = evaluate_judge(judge, folders, split=None, threshold=thr)
                    rows.append({"judge": judge_name, "episodes_from": set_name, "levels": group, **r})
    lines = ["| judge | episodes | precision | recall | F1 | fires when solved | on time | fires when unsolved | "
             "episode accuracy |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["levels"] == "all" and r["threshold"] == 0.5:
            e = r["episodes"]
            lines.append(f"| `{r['judge']}` | {r['episodes_from']} ({e['solved']} solved / {e['unsolved']}) | "
                         f"{r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | {_fmt(e['fires_when_solved'])} "
                         f"| {_fmt(e['on_time_when_solved'])} | {_fmt(e['fires_when_unsolved'])} | "
                         f"{_fmt(e['accuracy'])} |")
    result = {"benchmark": "judge-on-dreams", "rows": rows, "machine": describe_machine(),
              "command": command_line("experiments.judge_eval", argv)}
    return publish(result, args.out, lines)


if __name__ == "__main__":
    main()
