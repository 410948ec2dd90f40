"""The headline experiment: PPO trained only inside GenieWorld, beside PPO trained in the ground truth with the same
budget and the random agent, all evaluated on unseen worlds (test seeds) both in GenieWorld and in 3D BabyAI.

The numbers come from `genie-bench run tasks` results (one ``tasks.json`` per agent and task); this module only
collects them into one table with each agent's training budget and wall time, so the table can be regenerated
from the saved results. The whole experiment, training included, is `benchmarks/recipes/headline.sh`.

    python -m benchmarks.headline runs/bench/headline/*/tasks.json --out benchmarks/results/headline/headline.json

JSON (``headline.json``): ``benchmark`` = "genie-bench-headline", ``rows``: [{task, agent, name, trained_in,
timesteps, training_seconds, genie, ground_truth}] where genie / ground_truth are {success_rate, ci95, episodes},
``model``, ``judge``, ``episodes``, ``sources`` (the tasks.json files), ``machine``, ``command``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.machine import in_words

WORLDS = ("genie", "ground_truth")
TRAINED_IN = {"genie": "GenieWorld", "ground_truth": "3D BabyAI", None: "-"}


def headline(runs: list[dict]) -> dict:
    """The headline rows from tasks-suite results (one per agent; each may cover several tasks)."""
    rows = []
    for run in runs:
        agent = run["agent"]
        for task, t in run["tasks"].items():
            row = {"task": task, "agent": agent.get("label", agent["name"]), "name": agent["name"],
                   "trained_in": agent.get("world"), "timesteps": agent.get("timesteps"),
                   "training_seconds": agent.get("training_seconds")}
            for w in WORLDS:
                e = t.get(w, {})
                if "success_rate" in e:
                    row[w] = {"success_rate": e["success_rate"], "ci95": e["ci95"], "episodes": len(e["episodes"])}
            rows.append(row)
    rows.sort(key=lambda r: (r["task"], _order(r["name"]), r["agent"]))
    models = {r.get("model") for r in runs if r.get("model")}
    judges = {r.get("judge") for r in runs if r.get("judge")}
    return {"benchmark": "genie-bench-headline", "rows": rows, "model": sorted(models), "judge": sorted(judges),
            "episodes": sorted({r["episodes"] for r in runs}), "worlds": sorted({r["worlds"] for r in runs})}


def _order(name: str) -> int:
    return {"ppo-genie": 0, "ppo-gt": 1, "random": 2}.get(name, 3)


def _cell(e: dict | None) -> str:
    if not e:
        return ""
    return f"{100 * e['success_rate']:.0f}% [{100 * e['ci95'][0]:.0f}, {100 * e['ci95'][1]:.0f}]"


def _time(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min"


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    lines = [
        "## Headline: PPO trained inside GenieWorld vs in the ground truth vs random",
        "",
        "Whether an agent trained only inside the world model succeeds in the real (ground-truth) world: PPO trained "
        "in GenieWorld beside PPO trained in 3D BabyAI with the same budget and the random agent.",
        "",
        f"`{r.get('command', 'python -m benchmarks.headline')}` over the saved `genie-bench run tasks` results "
        f"(whole experiment: `bash benchmarks/recipes/headline.sh`). Unseen worlds ({', '.join(r['worlds'])} seeds), "
        f"{', '.join(map(str, r['episodes']))} episodes per task and world, the same level seeds in both worlds; "
        f"world model {', '.join(f'`{x}`' for x in r['model']) or '-'}, GenieWorld success from the judge "
        f"{', '.join(f'`{x}`' for x in r['judge']) or '-'}. Success rate [95% bootstrap CI]. Machine: "
        f"{in_words(r.get('machine', {}))}.",
        "",
        "| task | agent | trained in | budget (env steps) | training wall time | success in GenieWorld | "
        "success in 3D BabyAI |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        steps = "-" if row["timesteps"] is None else f"{row['timesteps']:,}"
        lines.append(f"| {row['task']} | {row['agent']} | {TRAINED_IN.get(row['trained_in'], row['trained_in'])} | "
                     f"{steps} | {_time(row['training_seconds'])} | {_cell(row.get('genie'))} | "
                     f"{_cell(row.get('ground_truth'))} |")
    lines.append("")
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines


def plot(r: dict, path) -> str:
    """Grouped bars: success of every (task, agent) in both worlds, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["rows"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows)), 3.8))
    for j, (w, label) in enumerate((("genie", "in GenieWorld"), ("ground_truth", "in 3D BabyAI"))):
        v = np.array([row[w]["success_rate"] if w in row else np.nan for row in rows])
        lo = np.array([row[w]["success_rate"] - row[w]["ci95"][0] if w in row else 0 for row in rows])
        hi = np.array([row[w]["ci95"][1] - row[w]["success_rate"] if w in row else 0 for row in rows])
        ax.bar(x + (j - 0.5) * 0.4, v, 0.4, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(x, [f"{row['task']}\n{row['agent'].split('@')[0]}" for row in rows], fontsize=7)
    ax.set(ylim=(0, 1.05), ylabel="success rate", title="PPO inside GenieWorld vs ground truth vs random")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def main(argv=None) -> None:
    from benchmarks.machine import describe_machine
    from benchmarks.result_file import command_line
    from world_model.checkpoint import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="tasks.json files written by `genie-bench run tasks`")
    parser.add_argument("--out", default="benchmarks/results/headline/headline.json")
    args = parser.parse_args(argv)
    runs = []
    for p in args.results:
        try:
            r = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            parser.error(f"cannot read {p} ({e}); pass tasks.json files written by `genie-bench run tasks`")
        if not isinstance(r, dict) or r.get("benchmark") != "genie-bench-tasks":
            parser.error(f"{p} is not a `genie-bench run tasks` result")
        runs.append(r)
    result = headline(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.update(sources=list(args.results), machine=describe_machine(),
                  command=command_line("benchmarks.headline", argv))
    plot(result, out.parent / "headline.png")
    result["figures"] = {"headline": "headline.png"}
    write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
