"""Phases 2-5 of world_model/recipes/gpu_run.sh (read its header first): record, train, export, report.

    python world_model/recipes/gpu_run.py run --out OUT --minutes 8.5 --start EPOCH_S ...   (gpu_run.sh calls this)
    python world_model/recipes/gpu_run.py join OUT/model    (rejoin a checkpoint file split into parts < 16 MiB)

A script, not a module of the package: it runs the repository's commands (`python -m genie_env.data_cli record`,
`python -m world_model.train_cli dynamics / export`) as subprocesses (it imports world_model only to count the
recorded frames), so a crash of one phase cannot take the exports already written with it.

With --widen-latent N (gpu_run.sh's WIDEN_LATENT), a phase between recording and training widens the latent first
(world_model/widen.py): `genie-train autoencoder --init-from AUTOENCODER --latent-channels N` trains the widened
autoencoder on the recordings for --widen-minutes (its old channels kept when there is a model to widen), `genie-train
widen` gives --init-from's dynamics the new channels, and the dynamics train on the widened model's latents. With
--ae-preset P (AE_PRESET) that phase instead trains a new autoencoder of preset P from scratch for --ae-minutes
(`genie-train autoencoder --preset P`; with --ae-whiten S its latent then whitened in S x S patches, `genie-train
whiten`), and the dynamics train on its latents: from scratch, or, with --init-from, from that model moved onto the
new latent (`genie-train transplant`, world_model/transplant.py).

Deadline: every phase is bounded by the wall clock of the whole run, counted from --start (the moment gpu_run.sh
began): recording gets --record-share of it, training the rest less --final-margin-s, which the last export and
the report use. The trainer stops itself at its --time-budget-minutes with a checkpoint; a watchdog sends it
SIGTERM (it checkpoints at the next step) if it overruns, and SIGKILL at the deadline.

OUT, at most 8 files (what a lent GPU machine returns), each under --max-file-mib:
    OUT/model/config.json, OUT/model/model.safetensors   the newest fp16 inference checkpoint (genie-train export),
                                                         re-exported every --export-minutes and at the end; a file
                                                         over the size limit is stored as NAME.part0, NAME.part1
                                                         (`join` above, or `cat NAME.part* > NAME`)
    OUT/log.jsonl, OUT/eval.jsonl                        the training log (loss, throughput) and held-out curve
    OUT/summary.json                                     the run's settings, data, phase timings, figures, machine
    OUT/runner.log                                       everything printed (written by gpu_run.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def log(msg: str) -> None:
    print(f"[gpu_run {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------- OUT files


def write_atomic(src: Path, dst: Path) -> None:
    """Copy src to dst through a temporary name in dst's folder, so dst is always whole."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def publish(folder: Path, dest: Path, max_bytes: int) -> list[str]:
    """Copy the files of a checkpoint folder into dest, each atomically; a file over max_bytes is stored as
    NAME.part0, NAME.part1, ... (each <= max_bytes) instead. Model files first, config.json last, so a reader
    that sees the new config sees the new weights. Returns the names written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted(folder.iterdir(), key=lambda p: p.name == "config.json"):
        if not src.is_file():
            continue
        names = []
        if src.stat().st_size <= max_bytes:
            write_atomic(src, dest / src.name)
            names.append(src.name)
        else:
            with open(src, "rb") as f:
                while chunk := f.read(max_bytes):
                    part = dest / f"{src.name}.part{len(names)}"
                    tmp = part.with_name(f".{part.name}.tmp")
                    tmp.write_bytes(chunk)
                    os.replace(tmp, part)
                    names.append(part.name)
        for old in [dest / src.name, *dest.glob(f"{src.name}.part*")]:  # what the previous export left
            if old.name not in names:
                old.unlink(missing_ok=True)
        written += names
    return written


def join(folder: Path) -> list[str]:
    """Rejoin every NAME.part0, NAME.part1, ... of folder into NAME (and delete the parts). Returns the names."""
    joined = []
    for first in sorted(folder.glob("*.part0")):
        name = first.name[: -len(".part0")]
        parts = sorted(folder.glob(f"{name}.part*"), key=lambda p: int(p.name.rsplit(".part", 1)[1]))
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as out:
            for p in parts:
                out.write(p.read_bytes())
        os.replace(tmp, folder / name)
        for p in parts:
            p.unlink()
        joined.append(name)
    return joined


# ---------------------------------------------------------------------------------------------- phases


def child_env() -> dict:
    """The environment of the subprocesses: the repository importable, one thread each for recorders."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TQDM_MININTERVAL", "30")  # progress bars: a line every 30 s in the log, not every step
    env.setdefault("SDL_VIDEODRIVER", "dummy")  # minigrid imports pygame; no display there
    env.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    return env


def stop(proc: subprocess.Popen, sig: int) -> None:
    """Send sig to a child's process group (each child runs in its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def level_quotas(levels: list[str], procs: int, frames_per_proc: int) -> list[tuple[str, int]]:
    """(level, frames) per recorder slot: levels dealt round-robin over the slots, and each level's share of the
    frames (``procs * frames_per_proc / len(levels)``) split over its slots, so every level gets the same number of
    frames when the procs are not a multiple of the levels (16 recorders over 10 levels: 2 slots of 20,000 frames
    for six levels, 1 slot of 40,000 for four, at 25,000 frames a recorder)."""
    if not levels or procs < 1:
        raise ValueError("level_quotas needs at least one level and one process")
    names = [levels[p % len(levels)] for p in range(procs)]
    per_level = procs * frames_per_proc / len(set(names))
    return [(name, max(1, round(per_level / names.count(name)))) for name in names]


def record(args, work: Path, deadline: float, latest: float) -> dict:
    """Phase 2: one recorder per process slot, train worlds only, levels and seeds split across the slots; the
    first slots first record a few held-out (test-world) frames of one level each for the held-out curve (first, so
    that a recorder cut off by the deadline still leaves a held-out set).

    At `deadline` the recorders stop (SIGTERM: their whole shards stay, the one being written goes), except a
    train recorder with no shard yet, which may go on until `latest` to finish one; a slot whose held-out recorder
    ran to the deadline (a slow or shared machine) still starts its train recorder for that one shard."""
    levels = args.levels.split()
    env = {**child_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    base = [args.python, "-m", "genie_env.data_cli", "record", *shlex.split(args.data_args), "--quiet"]
    slots = []
    for p, (level, frames) in enumerate(level_quotas(levels, args.procs, args.frames_per_proc)):
        out = work / "data" / "train" / f"p{p:02d}-{level}"
        cmds = []
        if p < len(levels) and args.test_frames > 0:
            test = work / "data" / "test" / level
            cmds.append((None, [*base, "--env", f"genie_env/BabyAI3D-{level}-v0", "--worlds", "test", "--frames",
                                str(args.test_frames), "--seed", str(100 + p), "--episodes-per-shard", "16",
                                "--out", str(test)]))
        cmds.append((out, [*base, "--env", f"genie_env/BabyAI3D-{level}-v0", "--worlds", "train", "--frames",
                           str(frames), "--seed", str(1 + p), "--episodes-per-shard", "16",
                           "--out", str(out)]))
        slots.append(cmds)
    log(f"recording: {args.procs} processes, {len(levels)} levels, up to {args.frames_per_proc} frames each on average (the same per level), "
        f"until {time.strftime('%H:%M:%S', time.localtime(deadline))}; data options: {args.data_args}")
    failures = []

    def run_slot(cmds):
        for must_have, cmd in cmds:  # must_have: a folder that needs one shard before its recorder may stop
            if time.time() >= (deadline if must_have is None else latest):
                continue
            proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            try:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:  # the time share is spent
                while must_have is not None and not any(must_have.glob("shard_*.npz")) and time.time() < latest:
                    try:
                        proc.wait(timeout=1.0)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                stop(proc, signal.SIGTERM)
                _, err = proc.communicate()
                continue
            if proc.returncode != 0:
                failures.append(f"{' '.join(cmd[-1:])}: exit {proc.returncode}: {err.strip()[-500:]}")

    threads = [threading.Thread(target=run_slot, args=(c,)) for c in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in failures:
        log(f"recorder failed: {f}")
    train = sorted(d for d in (work / "data" / "train").glob("*") if any(d.glob("shard_*.npz")))
    test = sorted(d for d in (work / "data" / "test").glob("*") if any(d.glob("shard_*.npz")))
    if not train:
        raise SystemExit("gpu_run: no training shard was recorded; see the recorder errors above (a longer budget "
                         "or a larger --record-share gives the recorders time to finish a shard)")
    return {"train": [str(d) for d in train], "test": [str(d) for d in test], "failures": failures}


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines log (a trainer's log.jsonl or eval.jsonl); [] when it is not there yet."""
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def count_frames(folders: list[str]) -> int:
    """Frames in the recordings (from the manifests' shard indexes, without loading frames)."""
    sys.path.insert(0, str(REPO))
    from world_model.shards import list_shards, read_shard_index  # numpy only: no torch import

    return sum(read_shard_index(s).num_frames for f in folders for s in list_shards(f))


class Exporter:
    """Exports the newest checkpoint of a run to OUT/model (and copies the logs) every `every_s` seconds in a
    background thread, and once more at the end."""

    def __init__(self, args, run: Path, work: Path):
        self.args, self.run, self.work = args, run, work
        self.exported = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def newest(self) -> Path | None:
        ckpts = sorted(self.run.glob("ckpt-*"))
        return ckpts[-1] if ckpts else None

    def export(self) -> bool:
        """Export the newest checkpoint if it is new; True if OUT/model changed."""
        with self.lock:
            self.copy_logs()
            ckpt = self.newest()
            if ckpt is None or ckpt == self.exported:
                return False
            tmp = self.work / "export"
            cmd = [self.args.python, "-m", "world_model.train_cli", "export", "--dynamics", str(ckpt), "--out",
                   str(tmp), *shlex.split(self.args.export_args)]
            res = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
            if res.returncode != 0:  # e.g. the checkpoint was rotated away while read: the next tick retries
                log(f"export of {ckpt.name} failed (exit {res.returncode}): {res.stderr.strip()[-400:]}")
                return False
            names = publish(tmp, Path(self.args.out) / "model", int(self.args.max_file_mib * MIB))
            self.exported = ckpt
            log(f"exported {ckpt.name} -> {self.args.out}/model ({', '.join(names)})")
            return True

    def copy_logs(self) -> None:
        for name in ("log.jsonl", "eval.jsonl"):
            if (self.run / name).is_file():
                write_atomic(self.run / name, Path(self.args.out) / name)

    def _loop(self) -> None:
        while not self.stopping.wait(self.args.export_minutes * 60):
            self.export()

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.export()


def wait_for(proc: subprocess.Popen, ends: float, grace_s: float, what: str) -> None:
    """Wait for a trainer that stops itself at its budget (`ends`); grace_s past it, SIGTERM (it checkpoints at its
    next step), and grace_s later SIGKILL."""
    try:
        proc.wait(timeout=max(1.0, ends - time.time() + grace_s))
    except subprocess.TimeoutExpired:
        log(f"the {what} trainer overran its budget: SIGTERM (it checkpoints at the next step)")
        stop(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=max(1.0, grace_s))
        except subprocess.TimeoutExpired:
            log(f"the {what} trainer did not stop: SIGKILL (its last checkpoint is used)")
            stop(proc, signal.SIGKILL)
            proc.wait()


def train_autoencoder(args, data: dict, run: Path, deadline: float, minutes: float, how: list[str], extra: str,
                      what: str) -> dict:
    """`genie-train autoencoder` on the recordings into `run` for `minutes` (at most what `deadline` leaves), with the
    options `how` (the starting point) and `extra`; returns its last held-out row (eval.jsonl)."""
    minutes = min(minutes, (deadline - time.time() - 2 * args.startup_s) / 60)
    if minutes < 0.1:
        raise SystemExit(f"gpu_run: recording left {minutes:.2f} min before training; too little to train the "
                         f"{what} (a longer budget, or a smaller --record-share or autoencoder budget)")
    cmd = [args.python, "-m", "world_model.train_cli", "autoencoder", "--data", *data["train"],
           *(["--eval-data", *data["test"]] if data["test"] else []), *how, "--out", str(run), "--steps", "100000000",
           "--time-budget-minutes", f"{minutes:.3f}", "--checkpoint-every", "100000000",
           "--checkpoint-minutes", "1000", "--keep-checkpoints", "1", "--device", "cuda" if args.cuda else "cpu",
           *shlex.split(extra)]
    log(f"training the {what}: {minutes:.2f} min: {shlex.join(cmd[3:])}")
    ends = time.time() + args.startup_s + 60 * minutes
    proc = subprocess.Popen(cmd, env=child_env(), start_new_session=True)
    try:
        wait_for(proc, ends, args.final_margin_s / 3, "autoencoder")
    finally:
        stop(proc, signal.SIGKILL)
    rows = read_jsonl(run / "eval.jsonl")
    if not rows:
        raise SystemExit(f"gpu_run: the {what} wrote no checkpoint; see its log above")
    log(f"{what}: {rows[-1]}")
    return {"minutes": round(minutes, 3), "autoencoder_eval": rows[-1]}


def widen(args, data: dict, work: Path, deadline: float) -> dict:
    """Phase 3a (with --widen-latent): the autoencoder (--autoencoder) widened to --widen-latent channels and trained
    on the recordings for --widen-minutes (its old channels kept when --init-from names dynamics to widen), then
    --init-from's dynamics widened to read and predict them (`genie-train widen`). Returns the autoencoder and
    init-from the dynamics phase uses, and what the summary records."""
    ae_run = work / "widen_ae"
    keep = ["--keep-old-channels"] if args.init_from else []
    out = {"latent_channels": args.widen_latent, "old_channels_kept": bool(keep),
           **train_autoencoder(args, data, ae_run, deadline, args.widen_minutes,
                               ["--init-from", args.autoencoder, "--latent-channels", str(args.widen_latent), *keep],
                               args.widen_args, f"autoencoder widened to {args.widen_latent} channels")}
    if not args.init_from:
        return {**out, "autoencoder": str(ae_run), "init_from": ""}
    model = work / "widened"
    res = subprocess.run([args.python, "-m", "world_model.train_cli", "widen", "--model", args.init_from,
                          "--autoencoder", str(ae_run), "--out", str(model)], env=child_env(), capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise SystemExit(f"gpu_run: genie-train widen failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")
    log(res.stdout.strip())
    return {**out, "autoencoder": str(model), "init_from": str(model)}


def fresh_autoencoder(args, data: dict, work: Path, deadline: float) -> dict:
    """Phase 3a (with --ae-preset): an autoencoder of that preset trained from scratch on the recordings for
    --ae-minutes; with --init-from, that model's dynamics are then moved onto its latent (`genie-train transplant`,
    least-squares bridges fitted on the recordings), else the dynamics train from scratch. Returns the autoencoder
    and init-from the dynamics phase uses, and what the summary records."""
    ae_run = work / "fresh_ae"
    out = {"preset": args.ae_preset,
           **train_autoencoder(args, data, ae_run, deadline, args.ae_minutes, ["--preset", args.ae_preset],
                               args.ae_args, f"autoencoder (preset {args.ae_preset}, from scratch)")}
    if args.ae_whiten:
        white = work / "fresh_ae_white"
        res = subprocess.run([args.python, "-m", "world_model.train_cli", "whiten", "--autoencoder", str(ae_run),
                              "--data", *data["train"], "--patch", str(args.ae_whiten), "--out", str(white)],
                             env=child_env(), capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"gpu_run: genie-train whiten failed (exit {res.returncode}): "
                             f"{res.stderr.strip()[-800:]}")
        log(res.stdout.strip())
        out["whiten_patch"], ae_run = args.ae_whiten, white
    if not args.init_from:
        return {**out, "autoencoder": str(ae_run), "init_from": ""}
    model = work / "transplanted"
    res = subprocess.run([args.python, "-m", "world_model.train_cli", "transplant", "--model", args.init_from,
                          "--autoencoder", str(ae_run), "--data", *data["train"], "--out", str(model),
                          *shlex.split(args.transplant_args)],
                         env=child_env(), capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"gpu_run: genie-train transplant failed (exit {res.returncode}): "
                         f"{res.stderr.strip()[-800:]}")
    log(res.stdout.strip())
    fit = json.loads((model / "config.json").read_text()).get("training", {}).get("transplanted", {})
    return {**out, "transplanted_from": args.init_from, "transplant": fit, "autoencoder": str(model),
            "init_from": str(model)}


def train(args, data: dict, work: Path, deadline: float, autoencoder: str, init_from: str) -> tuple[Path, int]:
    """Phases 3 + 4: encode the recordings with `autoencoder` (the latents stay in GPU memory) and train the
    dynamics (from `init_from`, if any) until the budget leaves --final-margin-s, exporting in the background."""
    run = work / "run"
    # the trainer's budget counts from its start, after Python, torch and CUDA have started: allow for that
    minutes = (deadline - time.time() - args.startup_s) / 60
    if minutes < 0.1:
        log(f"recording left {minutes:.2f} min to train: training 0.1 min anyway, so that a model comes back")
        minutes = 0.1
    ends = max(deadline, time.time() + args.startup_s + 60 * minutes)  # when the trainer should have stopped
    batch = args.batch or (256 if args.cuda else 8)
    cmd = [args.python, "-m", "world_model.train_cli", "dynamics", "--data", *data["train"],
           *(["--eval-data", *data["test"]] if data["test"] else []), "--autoencoder", autoencoder,
           "--preset", args.preset, "--out", str(run), "--batch-size", str(batch), "--steps", "100000000",
           "--time-budget-minutes", f"{minutes:.3f}", "--checkpoint-every", "100000000",
           "--checkpoint-minutes", str(args.export_minutes), "--keep-checkpoints", "3",
           "--device", "cuda" if args.cuda else "cpu", *(["--init-from", init_from] if init_from else []),
           *shlex.split(args.train_args)]
    log(f"training: {minutes:.2f} min, preset {args.preset}, batch {batch}: {shlex.join(cmd[3:])}")
    exporter = Exporter(args, run, work)
    exporter.start()
    proc = subprocess.Popen(cmd, env=child_env(), start_new_session=True)
    try:
        wait_for(proc, ends, args.final_margin_s / 3, "dynamics")
    finally:
        stop(proc, signal.SIGKILL)
        exporter.finish()
    return run, batch


def report(args, run: Path) -> dict:
    """Phase 5: throughput and the curves, printed and returned."""
    rows, evals = read_jsonl(run / "log.jsonl"), read_jsonl(run / "eval.jsonl")
    steady = rows[len(rows) // 5:] or rows  # the first fifth includes warm-up
    out = {"steps": rows[-1]["step"] if rows else 0}
    for key in ("examples_per_s", "tokens_per_s", "tflops"):
        vals = sorted(r[key] for r in steady if key in r)
        if vals:
            out[f"median_{key}"] = vals[len(vals) // 2]
    log(f"throughput (median of the log after the first fifth): windows/s {out.get('median_examples_per_s', 0):.1f}"
        f", tokens/s {out.get('median_tokens_per_s', 0):.4g}, achieved TFLOP/s {out.get('median_tflops', 0):.4g} "
        f"(estimate: world_model/training.py transformer_flops), {out['steps']} steps")
    log("training loss (step: loss):  " + "  ".join(f"{r['step']}: {r['loss']:.4f}"
                                                    for r in rows[:: max(1, len(rows) // 12)]))
    log("held-out PSNR (dB) by checkpoint:")
    for e in evals:
        log("  " + "  ".join(f"{k} {v}" for k, v in e.items()))
    out["eval"] = evals
    return out


def machine(cuda: bool) -> dict:
    """This machine in benchmarks.machine's words, its GPU named (torch imported here only for the name)."""
    sys.path.insert(0, str(REPO))
    from benchmarks.machine import describe_machine

    if cuda:
        import torch  # noqa: F401  (describe_machine names the GPU of an imported torch)
    return describe_machine()


def run(args) -> int:
    start = args.start or time.time()
    deadline = start + 60 * args.minutes
    work = Path(args.work)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if (work / "run").exists():
        raise SystemExit(f"gpu_run: {work}/run exists; give a fresh --work folder (a run never resumes another)")
    if any(t == "--init-from" or t.startswith("--init-from=") for t in shlex.split(args.train_args)):
        raise SystemExit("gpu_run: give the checkpoint to fine-tune as --init-from (gpu_run.sh: INIT_FROM), not in "
                         "--train-args (TRAIN_ARGS)")
    if args.ae_whiten and not args.ae_preset:
        raise SystemExit("gpu_run: --ae-whiten (AE_WHITEN) whitens the new autoencoder of --ae-preset (AE_PRESET); "
                         "set AE_PRESET too")
    if args.transplant_args and not (args.ae_preset and args.init_from):
        raise SystemExit("gpu_run: --transplant-args (TRANSPLANT_ARGS) are for the transplant of --init-from "
                         "(INIT_FROM) onto the new autoencoder of --ae-preset (AE_PRESET); set both")
    if args.ae_preset and args.widen_latent:
        raise SystemExit("gpu_run: --ae-preset (AE_PRESET) trains a new autoencoder instead of widening the old one; "
                         "leave --widen-latent (WIDEN_LATENT) at 0")
    summary = {"args": vars(args), "phases_s": {}}
    t = time.time()
    record_until = start + 60 * args.minutes * args.record_share
    data = record(args, work, record_until, latest=max(record_until, deadline - args.final_margin_s - args.startup_s))
    summary["phases_s"]["record"] = round(time.time() - t, 1)
    data["train_frames"] = count_frames(data["train"])
    data["test_frames"] = count_frames(data["test"])
    summary["data"] = data
    # with no test-world frames, the trainer's evaluation falls back to training episodes: say so beside the curve
    summary["eval_source"] = "test worlds" if data["test"] else "training episodes (no test-world frames recorded)"
    log(f"recorded {data['train_frames']} train-world frames in {len(data['train'])} folders and "
        f"{data['test_frames']} held-out frames in {summary['phases_s']['record']} s")
    autoencoder, init_from = args.autoencoder, args.init_from
    if args.ae_preset:
        t = time.time()
        summary["fresh_autoencoder"] = fresh = fresh_autoencoder(args, data, work, deadline - args.final_margin_s)
        summary["phases_s"]["autoencoder"] = round(time.time() - t, 1)
        autoencoder, init_from = fresh["autoencoder"], fresh["init_from"]
    elif args.widen_latent:
        t = time.time()
        summary["widen"] = widened = widen(args, data, work, deadline - args.final_margin_s)
        summary["phases_s"]["widen"] = round(time.time() - t, 1)
        autoencoder, init_from = widened["autoencoder"], widened["init_from"]
    t = time.time()
    run_dir, batch = train(args, data, work, deadline - args.final_margin_s, autoencoder, init_from)
    summary["phases_s"]["train_and_export"] = round(time.time() - t, 1)
    summary["batch"] = batch
    summary.update(report(args, run_dir))
    if (run_dir / "run.json").is_file():  # the trainer's settings, for the model card (benchmarks.model_card)
        summary["train_run"] = json.loads((run_dir / "run.json").read_text())
    summary["machine"] = machine(args.cuda)
    summary["wall_s"] = round(time.time() - start, 1)
    tmp = work / "summary.json"
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    write_atomic(tmp, out / "summary.json")
    ok = (out / "model" / "config.json").is_file()
    log(f"done in {summary['wall_s']} s of {60 * args.minutes:.0f}: " + (
        f"{out}/model holds the newest checkpoint" if ok else "NO checkpoint was exported (see the log above)"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="phases 2-5 (gpu_run.sh sets these from its variables)")
    r.add_argument("--out", required=True, help="folder of what comes back: model/, logs, summary.json")
    r.add_argument("--minutes", type=float, required=True, help="wall-clock budget of the whole run, from --start")
    r.add_argument("--start", type=float, default=None, help="epoch seconds the run began (default: now)")
    r.add_argument("--work", required=True, help="fresh scratch folder: recordings, run directory, exports")
    r.add_argument("--python", default=sys.executable, help="the Python that runs the repository's commands")
    r.add_argument("--cuda", action="store_true", help="train on the GPU (batch default 256, else 8)")
    r.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="recorder processes")
    r.add_argument("--levels", required=True, help="BabyAI3D levels, space-separated, spread over the recorders")
    r.add_argument("--data-args", default="", help="genie-data record options of every recorder")
    r.add_argument("--frames-per-proc", type=int, required=True, help="train-world frames per recorder, on average: each level gets procs x this / levels, "
                        "split over its recorders (at most)")
    r.add_argument("--test-frames", type=int, default=600, help="held-out frames per level (one recorder each)")
    r.add_argument("--record-share", type=float, default=0.25, help="share of the budget recording may use")
    r.add_argument("--autoencoder", required=True, help="the frozen autoencoder (a world-model checkpoint)")
    r.add_argument("--init-from", default="", help="the checkpoint whose dynamics the run fine-tunes ('': from scratch)")
    r.add_argument("--widen-latent", type=int, default=0,
                   help="widen --autoencoder to this many latent channels first, and --init-from's dynamics with it "
                        "(0: no)")
    r.add_argument("--widen-minutes", type=float, default=1.0, help="the widened autoencoder's training budget")
    r.add_argument("--widen-args", default="", help="more genie-train autoencoder options for the widened one")
    r.add_argument("--ae-preset", default="",
                   help="train a new autoencoder of this preset (genie-train autoencoder --preset) first, and the "
                        "dynamics on its latents: --init-from's moved onto it (genie-train transplant), or from "
                        "scratch without --init-from ('': the frozen --autoencoder)")
    r.add_argument("--ae-minutes", type=float, default=1.5, help="the new autoencoder's training budget")
    r.add_argument("--ae-whiten", type=int, default=0,
                   help="with --ae-preset: whiten the new autoencoder's latent in patches of this side (genie-train "
                        "whiten; the dynamics' --patch-size) before the dynamics train on it (0: not)")
    r.add_argument("--ae-args", default="", help="more genie-train autoencoder options for the new one")
    r.add_argument("--transplant-args", default="",
                   help="with --ae-preset and --init-from: more genie-train transplant options (e.g. --prev-prior)")
    r.add_argument("--preset", default="default", help="dynamics preset")
    r.add_argument("--batch", type=int, default=0, help="windows per step (0: 256 on CUDA, 8 on CPU)")
    r.add_argument("--train-args", default="", help="more genie-train dynamics options (the recipe)")
    r.add_argument("--export-args", default="", help="genie-train export options (the sampler defaults)")
    r.add_argument("--export-minutes", type=float, default=2.0, help="checkpoint and export cadence")
    r.add_argument("--final-margin-s", type=float, default=45.0, help="seconds kept for the last export and report")
    r.add_argument("--startup-s", type=float, default=10.0,
                   help="seconds the trainer takes to start (Python, torch, CUDA) before its budget counts")
    r.add_argument("--max-file-mib", type=float, default=15.5, help="largest file written to OUT")
    j = sub.add_parser("join", help="rejoin NAME.part* files of a checkpoint folder into NAME")
    j.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "join":
        names = join(Path(args.folder))
        print(f"joined {', '.join(names) or 'nothing (no .part0 files)'} in {args.folder}")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
