"""The *agreement* suite: does success measured inside the world model say what success in the real world says?

Every agent is run on every task in both worlds (the *tasks* suite, same level seeds in both). Each (agent, task)
gives a pair (success rate in GenieWorld, success rate in the ground truth); across the pairs we report Pearson's r
and Spearman's rho with 95% bootstrap intervals over the pairs (:func:`benchmarks.stats.correlation_with_ci`), and,
per agent, the mean success over tasks in both worlds with the Spearman correlation of the agents' ranking. Agents
that only act in the ground truth (the bot) have no GenieWorld score and are left out of the pairs.

Published anchor: WorldGym ("WorldGym: World Model as An Environment for Policy Evaluation", 2025) reports a
correlation of about r = 0.78 between policies' success rates inside its video world model and in the real world.

JSON (``agreement.json``): ``benchmark`` = "genie-bench-agreement", ``agents`` (descriptions), ``tasks``, ``pairs``:
[{agent, task, genie, ground_truth, genie_ci95, ground_truth_ci95, episodes}], ``correlation`` {pairs,
pearson: {r, ci95, defined_share}, spearman: {...}}, ``agent_ranking`` {agents: [{agent, genie, ground_truth}],
spearman}, ``anchor``, ``runs`` (the tasks-suite result of every agent).
"""

from __future__ import annotations

import numpy as np

from benchmarks.machine import in_words
from benchmarks.stats import correlation_with_ci, spearman

ANCHOR = {"pearson_r": 0.78, "source": "WorldGym (2025): policy success in a video world model vs the real world"}


def agreement(runs: list[dict], seed: int = 0) -> dict:
    """The agreement JSON (without run metadata) from tasks-suite results, one per agent."""
    pairs, ranking = [], []
    for run in runs:
        name = run["agent"].get("label", run["agent"]["name"])
        g_rates, t_rates = [], []
        for task, t in run["tasks"].items():
            g, gt = t.get("genie", {}), t.get("ground_truth", {})
            if "success_rate" not in g or "success_rate" not in gt:
                continue
            pairs.append({"agent": name, "task": task, "genie": g["success_rate"], "ground_truth": gt["success_rate"],
                          "genie_ci95": g["ci95"], "ground_truth_ci95": gt["ci95"], "episodes": len(g["episodes"])})
            g_rates.append(g["success_rate"])
            t_rates.append(gt["success_rate"])
        if g_rates:
            ranking.append({"agent": name, "genie": float(np.mean(g_rates)), "ground_truth": float(np.mean(t_rates))})
    corr = correlation_with_ci([p["genie"] for p in pairs], [p["ground_truth"] for p in pairs], seed=seed)
    rank_rho = spearman([a["genie"] for a in ranking], [a["ground_truth"] for a in ranking]) if ranking else np.nan
    return {
        "agents": [r["agent"] for r in runs],
        "tasks": sorted({p["task"] for p in pairs}),
        "pairs": pairs,
        "correlation": corr,
        "agent_ranking": {"agents": ranking, "spearman": float(rank_rho) if np.isfinite(rank_rho) else None},
        "anchor": ANCHOR,
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------- report


def _r(c: dict) -> str:
    if c["r"] is None:
        return "undefined (one side constant)"
    lo, hi = c["ci95"]
    ci = "" if lo is None else f" [{lo:.2f}, {hi:.2f}]"
    return f"{c['r']:.2f}{ci}"


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    c = r["correlation"]
    lines = [
        "## Agreement: success inside the world model vs in the ground truth",
        "",
        "Whether success measured inside GenieWorld ranks agents as success in the ground truth does, over the "
        "(agent, task) pairs of the tasks results.",
        "",
        f"`{r.get('command', 'genie-bench run agreement')}`: {len(r['pairs'])} (agent, task) pairs, agents "
        f"{', '.join(a.get('label', a['name']) for a in r['agents'])}. Pearson r = {_r(c['pearson'])}, Spearman "
        f"rho = {_r(c['spearman'])} (95% bootstrap CI over pairs). Published anchor: {r['anchor']['source']}, "
        f"r = {r['anchor']['pearson_r']}. Machine: {in_words(r.get('machine', {}))}.",
        "",
        "| agent | mean success in GenieWorld | mean success in the ground truth |",
        "|---|---:|---:|",
    ]
    for a in r["agent_ranking"]["agents"]:
        lines.append(f"| {a['agent']} | {100 * a['genie']:.0f}% | {100 * a['ground_truth']:.0f}% |")
    rho = r["agent_ranking"]["spearman"]
    lines += ["", f"Spearman correlation of the agents' ranking: {'undefined' if rho is None else f'{rho:.2f}'}.", ""]
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines


def plot(r: dict, path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    agents = list(dict.fromkeys(p["agent"] for p in r["pairs"]))
    for name in agents:
        ps = [p for p in r["pairs"] if p["agent"] == name]
        x = np.array([p["ground_truth"] for p in ps])
        y = np.array([p["genie"] for p in ps])
        xe = np.abs(np.array([p["ground_truth_ci95"] for p in ps]).T - x)
        ye = np.abs(np.array([p["genie_ci95"] for p in ps]).T - y)
        ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="o", capsize=2, label=name, alpha=0.8)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    c = r["correlation"]["pearson"]
    title = "agreement" + ("" if c["r"] is None else f": Pearson r = {c['r']:.2f}")
    ax.set(xlim=(-0.05, 1.05), ylim=(-0.05, 1.05), xlabel="success in the ground truth",
           ylabel="success in GenieWorld", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
