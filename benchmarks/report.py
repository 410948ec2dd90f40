"""Writes BENCHMARKS.md from the saved results in benchmarks/results/*.json: no figure is typed by hand.

    python -m benchmarks.report [--results benchmarks/results [DIR ...]] [--out BENCHMARKS.md]
    genie-bench report --results benchmarks/results runs/bench --out BENCHMARKS.md

Every ``*.json`` under the results folders (subfolders included) with a known ``"benchmark"`` key becomes a
section, in the order of :data:`ORDER`: the shipped model's consistency and fidelity, what its autoencoder keeps of
the top-down view's small objects, speed (the world model, the ground-truth world, the training data), tasks and the
headline (with the agreement of the two worlds), the success judge; then a link to the ablations in
``experiments/LOG.md`` and the table of the recipe and layout ablations (``experiments/results/ablation_small``). Each section says in one sentence what it measures, names the command that
produced its JSON file and the machine it ran on, then gives the table; genie-bench results (``genie-bench run SUITE
--out DIR``) link the plots saved beside their JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.machine import in_words
from world_model.checkpoint import write_text

#: The experiments' log (studies and rejected candidates), linked at the end of the report when it exists.
EXPERIMENTS_LOG = Path(__file__).resolve().parents[1] / "experiments" / "LOG.md"


def sampler_words(s: dict) -> str:
    """A sampler settings dict (``SamplerConfig.to_dict()``) as a phrase, e.g. "2 euler steps, sigma 5.0 -> 0.5
    (rho 7.0), guidance 1.5"."""
    text = (f"{s.get('num_steps')} {s.get('solver')} step{'s' if s.get('num_steps') != 1 else ''}, sigma "
            f"{s.get('sigma_max')} -> {s.get('sigma_min')} (rho {s.get('rho')}), guidance {s.get('guidance')}")
    if s.get("guidance_min_sigma") and s.get("guidance") != 1.0:
        text += f" at noise levels >= {s['guidance_min_sigma']}"
    if s.get("context_sigma") is not None:
        text += f", past frames at noise {s['context_sigma']}"
    if s.get("cache_refresh"):
        text += f", a full KV cache rebuilt from its latest {s['cache_refresh']} frames"
    return text


def world_speed_section(r: dict) -> list[str]:
    lines = [
        "## Ground-truth world speed",
        "",
        "How many steps per second the 3D BabyAI world runs on one CPU core, rendering and resets included.",
        "",
        "`python -m benchmarks.world_speed --repeats 5 --out benchmarks/results/world_speed.json`: random actions, "
        f"{r['size'][0]}x{r['size'][1]} {r['view']} frames, pinned to one core, {r['steps_per_repeat']} steps per "
        f"repeat. Machine: {in_words(r['machine'])}.",
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
        "How many training windows per second the dataset serves from the recorded shards (whether training ever "
        "waits for data).",
        "",
        f"`python -m benchmarks.dataset_speed --data runs/data/train/* --out benchmarks/results/dataset_speed.json`: "
        f"{r['frames']:,} frames in {r['episodes']:,} episodes loaded in {r['load_s']:.1f} s; windows of "
        f"{r['window']} frames, batches of {r['batch_size']}. Machine: {in_words(r['machine'])}.",
        "",
        "| path | windows/s (median) |",
        "|---|---:|",
        f"| `sample_batch` (training loops) | {r['sample_batch_windows_per_s']['median']:,.0f} |",
        f"| `__getitem__` (torch DataLoader) | {r['getitem_windows_per_s']['median']:,.0f} |",
        "",
    ]


def fidelity_section(r: dict, candidate: str | None = None) -> list[str]:
    """The fidelity figures of one `benchmarks.fidelity` result (its speed table is :func:`speed_table`).
    candidate: the name of a model that is not the shipped one (experiments.report); None for the shipped model."""
    lines = [
        "## World-model fidelity on unseen worlds" + ("" if candidate is None else f": `{candidate}` (not the "
                                                      "shipped model)"),
        "",
        "How close the world model's frames stay to the ground truth's on unseen worlds (test seeds), one step ahead "
        "and rolled out on its own, beside copying the last frame or holding the prompt frame, and how much the "
        "actions matter (ΔPSNR: PSNR under the true actions minus under random ones).",
        "",
        f"`{r.get('command', 'python -m benchmarks.fidelity')}` on model `{r['model']}`; sampler: "
        f"{sampler_words(r['sampler'])}. Machine: {in_words(r['machine'])}.",
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
    return lines


def speed_table(speed: dict) -> list[str]:
    """The env-steps/s table of a fidelity result's ``speed`` entry."""
    lines = ["| setting (default sampler, full 16-frame context) | env-steps/s (median; worlds x steps/s) |",
             "|---|---:|"]
    lines += [f"| {k.replace('_', ' ')} | {v:.2f} |" for k, v in speed.items()]
    return lines + [""]


def world_model_speed_section(r: dict) -> list[str]:
    """The speed measured beside a fidelity result (`benchmarks.fidelity`); empty if it has none."""
    if "speed" not in r:
        return []
    return [
        "## World-model speed",
        "",
        "How many environment steps per second the world model generates, one world or a batch of worlds, with and "
        "without the KV cache.",
        "",
        f"`{r.get('command', 'python -m benchmarks.fidelity')}` on model `{r['model']}`; sampler: "
        f"{sampler_words(r['sampler'])}. Machine: {in_words(r['machine'])}.",
        "",
        *speed_table(r["speed"]),
    ]


def judge_section(r: dict) -> list[str]:
    f = lambda d, k, digits=3: "n/a" if d.get(k) is None else f"{d[k]:.{digits}f}"  # noqa: E731
    machine = in_words(r["machine"]) if r.get("machine") else "not recorded"
    rows = [("recorded (ground-truth frames)", r)]
    if r.get("dreamed"):
        rows.append(("dreamed (the same episodes' actions, world-model frames)", r["dreamed"]))
    lines = [
        "## Success judge (GenieWorld's reward)",
        "",
        "How well the learned success judge tells, from frames and the mission, that a mission is done, on held-out "
        "(test-seed) episodes"
        + (": as recorded in the ground truth, and re-played inside the default world model (`genie-data dream`: the "
           "recorded prompt and actions, the model's frames, the verifier's success flags)" if r.get("dreamed") else
           ", as recorded in the ground truth")
        + ". Per frame: precision / recall / F1; per episode, as GenieWorld uses the judge (an episode ends at its "
        "first firing): the share of solved episodes where it fires at all and where it first fires at the verifier's "
        "success frame, and the share of unsolved episodes where it fires.",
        "",
        f"`{r.get('command', 'genie-train judge')}`. Machine: {machine}.",
        "",
        "| episodes | precision | recall | F1 | threshold | positive / negative frames | fires when solved | "
        "on time | fires when unsolved |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d in rows:
        e = d.get("episodes") or {}
        lines.append(f"| {name} | {f(d, 'precision')} | {f(d, 'recall')} | {f(d, 'f1')} | {d.get('threshold')} | "
                     f"{d.get('positives')} / {d.get('negatives')} | {f(e, 'fires_when_solved', 2)} | "
                     f"{f(e, 'on_time_when_solved', 2)} | {f(e, 'fires_when_unsolved', 2)} |")
    return lines + [""]


def judge_on_dreams_section(r: dict) -> list[str]:
    from benchmarks.judge_on_dreams import section

    return section(r)


def train_speed_section(r: dict) -> list[str]:
    from benchmarks.train_speed import section

    return section(r)


def consistency_section(r: dict) -> list[str]:
    from benchmarks.consistency import section

    return section(r).split("\n") + [""]


def top_down_objects_section(r: dict) -> list[str]:
    from benchmarks.top_down_objects import section

    return section(r)


def vector_speed_section(r: dict) -> list[str]:
    from benchmarks.vector_speed import section

    return section(r)


#: Result kinds written outside genie-bench: benchmark key -> renderer(result).
SECTIONS = {"world_speed": world_speed_section, "dataset_speed": dataset_speed_section, "judge": judge_section,
            "judge-on-dreams": judge_on_dreams_section,
            "genie-vector-speed": vector_speed_section, "consistency": consistency_section,
            "train_speed": train_speed_section, "top_down_objects": top_down_objects_section}


def _bench_fidelity_section(r: dict, images: dict[str, str]) -> list[str]:
    from benchmarks.memory import section as memory_section

    lines = fidelity_section(r["fidelity"]) if "fidelity" in r else []
    if "speed" in r.get("fidelity", {}):
        lines += speed_table(r["fidelity"]["speed"])
    return lines + memory_section(r, images)


def _bench_section(name: str):
    """The section renderer of a genie-bench suite (imported on use)."""
    import importlib

    module = {"tasks": "benchmarks.tasks", "agreement": "benchmarks.agreement", "speed": "benchmarks.speed",
              "headline": "benchmarks.headline"}[name]
    return importlib.import_module(module).section


#: genie-bench suites: benchmark key -> renderer(result, images) where images maps titles to relative paths.
BENCH_SECTIONS = {
    "genie-bench-consistency": lambda r, images: consistency_section(r),
    "genie-bench-tasks": lambda r, images: _bench_section("tasks")(r, images),
    "genie-bench-fidelity": _bench_fidelity_section,
    "genie-bench-agreement": lambda r, images: _bench_section("agreement")(r, images),
    "genie-bench-speed": lambda r, images: _bench_section("speed")(r, images),
    "genie-bench-headline": lambda r, images: _bench_section("headline")(r, images),
}

#: The order of the report's sections by result kind: (benchmark key, renderer name); results of a kind keep the
#: order of their paths. A fidelity result gives two sections: its figures first, its speed with the speed group.
ORDER = [("consistency", "consistency"), ("genie-bench-consistency", "bench"), ("fidelity", "fidelity"),
         ("genie-bench-fidelity", "bench"), ("top_down_objects", "top_down_objects"),
         ("fidelity", "world_model_speed"),
         ("genie-bench-speed", "bench"), ("genie-vector-speed", "vector_speed"),
         ("train_speed", "train_speed"), ("world_speed", "world_speed"), ("dataset_speed", "dataset_speed"),
         ("genie-bench-tasks", "bench"), ("genie-bench-headline", "bench"), ("genie-bench-agreement", "bench"),
         ("judge", "judge"), ("judge-on-dreams", "judge_on_dreams")]


def _with_media(lines: list[str], r: dict, json_path: Path, out_dir: Path) -> list[str]:
    videos = [v for v in r.get("videos", []) if (Path(json_path).parent / v).is_file()]
    if videos:
        links = ", ".join(f"[{Path(v).stem}]({os.path.relpath(Path(json_path).parent / v, out_dir)})"
                          for v in videos)
        lines += [f"Sample videos: {links}.", ""]
    return lines


def bench_section(r: dict, json_path: Path, out_dir: Path) -> list[str]:
    """The section of a genie-bench result; its plots and videos are linked relative to `out_dir`."""
    images = {title: os.path.relpath(Path(json_path).parent / name, out_dir)
              for title, name in r.get("figures", {}).items() if (Path(json_path).parent / name).is_file()}
    return _with_media(BENCH_SECTIONS[r["benchmark"]](r, images), r, json_path, out_dir)


def section_for(r: dict, json_path: Path, out_dir: Path) -> list[str]:
    """The Markdown of one result file, all its sections (figures are linked relative to `out_dir`, where the .md
    goes); empty for a result kind this report does not know."""
    benchmark = r.get("benchmark")
    if benchmark == "fidelity":
        return fidelity_section(r) + world_model_speed_section(r)
    if benchmark in SECTIONS:
        return SECTIONS[benchmark](r)
    if benchmark in BENCH_SECTIONS:
        return bench_section(r, json_path, out_dir)
    return []


def load_results(dirs: list[Path]) -> list[tuple[Path, dict]]:
    """(path, result) of every JSON object file under the folders (subfolders included), sorted by path."""
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise FileNotFoundError(f"results folder(s) {', '.join(missing)} do not exist; run a benchmark with --out "
                                "there first")
    results = []
    for path in sorted({p for d in dirs for p in d.rglob("*.json")}):
        try:
            with open(path) as f:
                r = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # not a results file
        if isinstance(r, dict):
            results.append((path, r))
    return results


def render(results_dir: Path | str | list, out_dir: Path | str = ".") -> str:
    """BENCHMARKS.md's text from every known result file under `results_dir` (one folder or a list), in the
    order of :data:`ORDER`."""
    dirs = [Path(d) for d in (results_dir if isinstance(results_dir, (list, tuple)) else [results_dir])]
    results = load_results(dirs)
    out_dir = Path(out_dir)
    renderers = {"fidelity": fidelity_section, "world_model_speed": world_model_speed_section,
                 "world_speed": world_speed_section, "dataset_speed": dataset_speed_section,
                 "judge": judge_section, "judge_on_dreams": judge_on_dreams_section,
                 "vector_speed": vector_speed_section, "consistency": consistency_section,
                 "train_speed": train_speed_section, "top_down_objects": top_down_objects_section}
    lines = ["# Benchmarks", "",
             "What the shipped world model and the agents measure, generated by `genie-bench report` (`python -m "
             f"benchmarks.report`) from the JSON files in {', '.join(f'`{d}`' for d in dirs)}; rerun the command "
             "named in each section to reproduce its figures.",
             ""]
    for benchmark, kind in ORDER:
        for path, r in results:
            if r.get("benchmark") == benchmark:
                lines += bench_section(r, path, out_dir) if kind == "bench" else renderers[kind](r)
    if EXPERIMENTS_LOG.is_file():
        lines += ["## Ablations", "",
                  "The studies behind the shipped model's design and settings (training objective, context noise, "
                  "sampler schedule, guidance) and the candidate models that did not ship, each with its figure and "
                  f"decision: [experiments/LOG.md]({Path(os.path.relpath(EXPERIMENTS_LOG, out_dir)).as_posix()}).",
                  ""]
        lines += ablation_table(load_results([ABLATIONS]) if ABLATIONS.is_dir() else [])
        lines += memory_table(load_results([MEMORY]) if MEMORY.is_dir() else [])
        lines += cache_refresh_table(load_results([CACHE_REFRESH]) if CACHE_REFRESH.is_dir() else [])
    return "\n".join(lines) + "\n"


#: The training-recipe and layout ablations (experiments/ablation_small.sh): consistency results, one per arm.
ABLATIONS = EXPERIMENTS_LOG.parent / "results" / "ablation_small"
#: The arms in the order of the table (the script's order); others follow by name.
ABLATION_ARMS = ("base", "noise", "unroll", "branch", "all", "factorised", "patch4", "patch4_long")


def ablation_table(results: list[tuple[Path, dict]]) -> list[str]:
    """The recipe and layout ablations: per view, a row per arm in :data:`ABLATION_ARMS` order
    (:func:`benchmarks.consistency.headline_table`)."""
    from benchmarks.consistency import headline_table

    rows = [(p, r) for p, r in results if r.get("benchmark") == "consistency"]
    if not rows:
        return []
    order = {arm: i for i, arm in enumerate(ABLATION_ARMS)}
    rows.sort(key=lambda pr: (order.get(Path(pr[0]).stem, len(order)), str(pr[0])))
    r0 = rows[0][1]
    return ["### Training recipe and attention layout, from scratch at equal wall-clock", "",
            "Dynamics of the small preset trained from scratch for the same wall-clock each (20 minutes, one thread, "
            "two arms at a time; `patch4_long`: 38 minutes on both cores) on the same data, then measured with the "
            f"consistency suite ({r0['config']['worlds']} unseen worlds per view; means, the intervals are in the "
            "JSON files). Command: `bash experiments/ablation_small.sh` (arms and decisions: experiments/LOG.md entry "
            f"12). Machine: {in_words(r0['machine'])}.", ""] + headline_table(
        [(Path(p).stem, r) for p, r in rows], heading="####")


#: The memory study (experiments/memory_finetune.sh): consistency results, one per arm.
MEMORY = EXPERIMENTS_LOG.parent / "results" / "memory"
#: The memory study's arms in the order of the table; others follow by name.
MEMORY_ARMS = ("consistency_ft_plain", "consistency_ft_mem", "consistency_ft_mem_turns")


def memory_table(results: list[tuple[Path, dict]]) -> list[str]:
    """The pose-keyed memory study: per view, the shipped model's row, then a row per arm in :data:`MEMORY_ARMS`
    order (:func:`benchmarks.consistency.headline_table`)."""
    from benchmarks.consistency import headline_table

    rows = [(p, r) for p, r in results if r.get("benchmark") == "consistency"]
    if not rows:
        return []
    order = {arm: i for i, arm in enumerate(MEMORY_ARMS)}
    rows.sort(key=lambda pr: (order.get(Path(pr[0]).stem, len(order)), str(pr[0])))
    shipped = Path(__file__).resolve().parent / "results" / "consistency.json"
    named = [(Path(p).stem.removeprefix("consistency_"), r) for p, r in rows]
    if shipped.is_file():
        named.insert(0, ("shipped", json.loads(shipped.read_text())))
    r0 = rows[0][1]
    return ["### Pose-keyed memory, fine-tuned at equal wall-clock", "",
            "v5 (the default model before v6) fine-tuned for the same wall-clock (75 minutes, one thread, both arms "
            "side by side) on the same data with the memory input (`ft_mem`: the latest frame seen from the same "
            "dead-reckoned heading as more input channels, `genie-train dynamics --memory`) and without it "
            "(`ft_plain`); `ft_mem_turns` is `ft_mem` with only frames the agent turned into given a memory frame "
            "(`memory_turns_only`); `ft_mem_turns2_*` is `ft_mem` trained further under that rule, after 400 steps "
            "and at the end of its 65 minutes (`end`: the weights of v6, the default before v7, whose own row adds the KV "
            "cache refresh of the next table). Measured with the consistency suite "
            f"({r0['config']['worlds']} unseen worlds per view, the shipped model's worlds, v5's sampler; means, the "
            "intervals are in the JSON files; a row of 64 worlds is on the worlds of the issue's floors, where v5's "
            "own row is experiments/results/sampler/consistency_64_shipped.json). Command: "
            "`bash experiments/memory_finetune.sh` (decision: "
            f"experiments/LOG.md entry 17). Machine: {in_words(r0['machine'])}.", ""] + headline_table(
        named, heading="####")


#: The KV-cache refresh study (experiments/cache_refresh.sh): consistency results with SamplerConfig.cache_refresh.
CACHE_REFRESH = EXPERIMENTS_LOG.parent / "results" / "cache_refresh"


def cache_refresh_table(results: list[tuple[Path, dict]]) -> list[str]:
    """The KV-cache refresh study: per view, a row per result (v5 and v6's weights with the cache rebuilt from its
    latest 8 frames when full); the sliding rows are the shipped v5 row of the sampler study and the memory
    table's `ft_mem_turns2_end` rows."""
    from benchmarks.consistency import headline_table

    rows = sorted(((p, r) for p, r in results if r.get("benchmark") == "consistency"), key=lambda pr: str(pr[0]))
    if not rows:
        return []
    r0 = rows[0][1]
    return ["### The KV cache rebuilt when full", "",
            "The same weights with a full KV cache rebuilt from its latest 8 frames before the next frame "
            "(`SamplerConfig.cache_refresh`, `--sampler cache_refresh=8`) instead of sliding frame by frame: "
            "`v5_refresh8` is v5 (measured as world_model/checkpoints/default while it was the default), "
            "`end_refresh8` is v6's weights (v6 shipped with 4 frames kept, `64_fp_v6` is that model on the 64 "
            "first-person worlds of the issue's floors; experiments/LOG.md entry 18 says why; v7 keeps 4). It changes only what runs past 16 frames "
            "(still@64, rollouts). Command: `bash "
            f"experiments/cache_refresh.sh suite` (decision: experiments/LOG.md entry 18). Machine: "
            f"{in_words(r0['machine'])}.", ""] + headline_table(
        [(Path(p).stem.removeprefix("consistency_"), r) for p, r in rows], heading="####")


def write(results: list, out: str) -> str:
    text = render(results, os.path.dirname(os.path.abspath(out)))
    write_text(out, text)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", default=["benchmarks/results"], help="folders of result JSON files")
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    print(f"wrote {write(args.results, args.out)}")


if __name__ == "__main__":
    main()
