"""Writes BENCHMARKS.md from the saved results in benchmarks/results/*.json: no figure is typed by hand.

    python -m benchmarks.report [--results benchmarks/results [DIR ...]] [--out BENCHMARKS.md]
    genie-bench report --results benchmarks/results runs/bench --out BENCHMARKS.md

Every ``*.json`` under the results folders (subfolders included) with a known ``"benchmark"`` key becomes a
section; genie-bench results (``genie-bench run SUITE --out DIR``) link the plots saved beside their JSON. Each
section names the command that produced its JSON file and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def _machine(m: dict) -> str:
    return f"{m.get('cpu', '?')}, {m.get('cores_usable', '?')} usable cores, {m.get('memory_gb', '?')} GB"


def world_speed_section(r: dict) -> list[str]:
    lines = [
        "## Ground-truth world speed",
        "",
        "`python -m benchmarks.world_speed --repeats 5 --out benchmarks/results/world_speed.json`: random actions, "
        f"{r['size'][0]}x{r['size'][1]} {r['view']} frames, rendering and resets included, pinned to one core, "
        f"{r['steps_per_repeat']} steps per repeat. Machine: {_machine(r['machine'])}.",
        "",
        "| level | steps/s (median) | min | max |",
        "|---|---:|---:|---:|",
    ]
    for level, v in r["levels"].items():
        lines.append(f"| {level} | {v['median_steps_per_s']:.0f} | {v['min']:.0f} | {v['max']:.0f} |")
    lines += [f"| **median over levels** | **{r['median_over_levels']:.0f}** | | |", ""]
    return lines


def dataset_speed_section(r: dict) -> list[str]:
    return [
        "## Training data throughput",
        "",
        f"`python -m benchmarks.dataset_speed --data runs/data/train/* --out benchmarks/results/dataset_speed.json`: "
        f"{r['frames']:,} frames in {r['episodes']:,} episodes loaded in {r['load_s']:.1f} s; windows of "
        f"{r['window']} frames, batches of {r['batch_size']}. Machine: {_machine(r['machine'])}.",
        "",
        "| path | windows/s (median) |",
        "|---|---:|",
        f"| `sample_batch` (training loops) | {r['sample_batch_windows_per_s']['median']:,.0f} |",
        f"| `__getitem__` (torch DataLoader) | {r['getitem_windows_per_s']['median']:,.0f} |",
        "",
    ]


def fidelity_section(r: dict, candidate: str | None = None) -> list[str]:
    """candidate: the name of a result kept under a `candidates/` folder (a model that is not the shipped one:
    a candidate, or an earlier default); None for the shipped model's result."""
    lines = [
        "## World-model fidelity (held-out worlds)" + ("" if candidate is None else f": `{candidate}` (not the "
                                                       "shipped model)"),
        "",
        f"`{r.get('command', 'python -m benchmarks.fidelity')}` on model `{r['model']}`; sampler "
        f"{r['sampler']}. Machine: {_machine(r['machine'])}.",
        "",
    ]
    views = [v for v in ("first_person", "top_down") if v in r]
    if views:
        lines += ["| figure | " + " | ".join(views) + " |", "|---|" + "---:|" * len(views)]
        rows = [("autoencoder reconstruction PSNR (dB)", lambda x: x["reconstruction_psnr"]),
                ("one-step teacher-forced PSNR (dB)", lambda x: x["one_step_psnr"]),
                ("one-step teacher-forced SSIM", lambda x: x["one_step_ssim"]),
                ("one-step copy-the-last-frame baseline PSNR (dB)", lambda x: x.get("one_step_copy_last_psnr"))]
        for kind in ("turn", "forward", "other"):
            rows += [(f"one-step PSNR on {kind} actions, model (dB)",
                      lambda x, k=kind: x["one_step_by_action"][k]["psnr"]),
                     (f"one-step PSNR on {kind} actions, copy-last (dB)",
                      lambda x, k=kind: x["one_step_by_action"][k]["copy_last_psnr"])]
        for h in ("1", "4", "16", "64"):
            rows.append((f"autoregressive PSNR @ {h} (dB)", lambda x, h=h: x["autoregressive_psnr"].get(h)))
            rows.append((f"autoregressive PSNR @ {h}, holding the prompt frame (dB)",
                         lambda x, h=h: x.get("autoregressive_hold_prompt_psnr", {}).get(h)))
        for h in ("4", "16", "64"):
            rows += [(f"share of worlds unchanged since the prompt @ {h}",
                      lambda x, h=h: x.get("prompt_unchanged_share", {}).get(h)),
                     (f"autoregressive PSNR @ {h} over the worlds that changed, model (dB)",
                      lambda x, h=h: x.get("autoregressive_psnr_changed", {}).get(h)),
                     (f"autoregressive PSNR @ {h} over the worlds that changed, holding the prompt frame (dB)",
                      lambda x, h=h: x.get("autoregressive_hold_prompt_psnr_changed", {}).get(h))]
        for t in ("4", "16"):
            rows.append((f"ΔPSNR_{t} ceiling: perfect dynamics through this autoencoder (dB)",
                         lambda x, t=t: x.get("delta_psnr_ceiling", {}).get(t)))
        for view in views[:1]:
            for w in r[view]["guidance"]:
                for t in ("4", "16"):
                    rows.append((f"ΔPSNR_{t} at guidance {w} (dB)", lambda x, w=w, t=t: x["guidance"][w]["delta_psnr"].get(t)))
        for name, get in rows:
            cells = []
            for v in views:
                try:
                    value = get(r[v])
                except KeyError:
                    value = None
                cells.append("" if value is None else f"{value:.3f}" if abs(value) < 2 else f"{value:.2f}")
            if any(cells):  # results written before a figure existed leave its row out
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "speed" in r:
        s = r["speed"]
        lines += ["| speed (default sampler, full 16-frame context) | env-steps/s (median; worlds x steps/s) |",
                  "|---|---:|"]
        for k, v in s.items():
            lines.append(f"| {k.replace('_', ' ')} | {v:.2f} |")
        lines.append("")
    return lines


def judge_section(r: dict) -> list[str]:
    f = lambda k: "n/a" if r.get(k) is None else f"{r[k]:.3f}"  # noqa: E731
    return [
        "## Success judge (GenieWorld's reward)",
        "",
        f"`{r.get('command', 'genie-train judge')}`, evaluated on held-out (test-seed) ground-truth episodes: "
        f"precision {f('precision')}, recall {f('recall')}, F1 {f('f1')} at threshold {r.get('threshold')} "
        f"({r.get('positives')} positive, {r.get('negatives')} negative frames).",
        "",
    ]


SECTIONS = {"world_speed": world_speed_section, "dataset_speed": dataset_speed_section,
            "fidelity": fidelity_section, "judge": judge_section}


def _bench_fidelity_section(r: dict, images: dict[str, str]) -> list[str]:
    from benchmarks.memory import section as memory_section

    lines = fidelity_section(r["fidelity"]) if "fidelity" in r else []
    return lines + memory_section(r, images)


def _bench_section(name: str):
    """The section renderer of a genie-bench suite (imported on use)."""
    import importlib

    module = {"tasks": "benchmarks.tasks", "agreement": "benchmarks.agreement", "speed": "benchmarks.speed",
              "headline": "benchmarks.headline", "objective": "benchmarks.objective",
              "context_sigma": "benchmarks.context_sigma", "sampler_sweep": "benchmarks.sampler_sweep"}[name]
    return importlib.import_module(module).section


#: genie-bench suites: benchmark key -> renderer(result, images) where images maps titles to relative paths.
BENCH_SECTIONS = {
    "genie-bench-tasks": lambda r, images: _bench_section("tasks")(r, images),
    "genie-bench-fidelity": _bench_fidelity_section,
    "genie-bench-agreement": lambda r, images: _bench_section("agreement")(r, images),
    "genie-bench-speed": lambda r, images: _bench_section("speed")(r, images),
    "genie-bench-headline": lambda r, images: _bench_section("headline")(r, images),
    "genie-bench-objective": lambda r, images: _bench_section("objective")(r, images),
    "genie-bench-context-sigma": lambda r, images: _bench_section("context_sigma")(r, images),
    "genie-bench-sampler-sweep": lambda r, images: _bench_section("sampler_sweep")(r, images),
}


def section_for(r: dict, json_path: Path, out_dir: Path) -> list[str]:
    """The Markdown section of one result file; figures are linked relative to `out_dir` (where the .md goes)."""
    benchmark = r.get("benchmark")
    if benchmark == "fidelity":
        return fidelity_section(r, Path(json_path).stem if "candidates" in Path(json_path).parts else None)
    if benchmark in SECTIONS:
        return SECTIONS[benchmark](r)
    if benchmark in BENCH_SECTIONS:
        images = {title: os.path.relpath(Path(json_path).parent / name, out_dir)
                  for title, name in r.get("figures", {}).items() if (Path(json_path).parent / name).is_file()}
        lines = BENCH_SECTIONS[benchmark](r, images)
        videos = [v for v in r.get("videos", []) if (Path(json_path).parent / v).is_file()]
        if videos:
            links = ", ".join(f"[{Path(v).stem}]({os.path.relpath(Path(json_path).parent / v, out_dir)})"
                              for v in videos)
            lines += [f"Sample videos: {links}.", ""]
        return lines
    return []


def render(results_dir: Path | str | list, out_dir: Path | str = ".") -> str:
    """BENCHMARKS.md's text from every known result file under `results_dir` (one folder or a list)."""
    dirs = [Path(d) for d in (results_dir if isinstance(results_dir, (list, tuple)) else [results_dir])]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise FileNotFoundError(f"results folder(s) {', '.join(missing)} do not exist; run a benchmark with --out "
                                "there first")
    lines = ["# Benchmarks", "",
             "Generated by `genie-bench report` (`python -m benchmarks.report`) from the JSON files in "
             f"{', '.join(f'`{d}`' for d in dirs)}; rerun the command named in each section to reproduce its figures.",
             ""]
    for path in sorted({p for d in dirs for p in d.rglob("*.json")}):
        try:
            with open(path) as f:
                r = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # not a results file
        if isinstance(r, dict):
            lines += section_for(r, path, Path(out_dir))
    return "\n".join(lines) + "\n"


def write(results: list, out: str) -> str:
    text = render(results, os.path.dirname(os.path.abspath(out)))
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", default=["benchmarks/results"], help="folders of result JSON files")
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    print(f"wrote {write(args.results, args.out)}")


if __name__ == "__main__":
    main()
