"""Windows per second served by the training dataset (is training ever starved by data?).

    python -m benchmarks.dataset_speed --data DIR [--batch-size 32] [--window 16] [--repeats 5]

Loads every shard of DIR into a ``WindowDataset`` (the load time is reported too), then times
``sample_batch`` (the vectorised path training loops use) and, for reference, the per-item
``__getitem__`` path a torch ``DataLoader`` would use. Prints one JSON object: the machine, the
data, and the median and spread of windows/s over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.result_file import publish
from world_model.dataset import WindowDataset


def sample_batch_rate(dataset: WindowDataset, batch_size: int, batches: int, seed: int) -> float:
    """Windows/s of `batches` calls of sample_batch."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(batches):
        dataset.sample_batch(batch_size, rng)
    return batches * batch_size / (time.perf_counter() - start)


def getitem_rate(dataset: WindowDataset, items: int, seed: int) -> float:
    """Windows/s of `items` random dataset[i] calls (no collation)."""
    picks = np.random.default_rng(seed).integers(len(dataset), size=items)
    start = time.perf_counter()
    for i in picks:
        dataset[int(i)]
    return items / (time.perf_counter() - start)


def _stats(runs: list[float]) -> dict:
    return {"median": round(statistics.median(runs), 1), "min": round(min(runs), 1), "max": round(max(runs), 1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="recording folder(s) from `genie-data record`")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per batch")
    parser.add_argument("--window", type=int, default=16, help="frames per window (T)")
    parser.add_argument("--batches", type=int, default=200, help="sample_batch calls per repeat")
    parser.add_argument("--items", type=int, default=2000, help="__getitem__ calls per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    dataset = WindowDataset.from_folders(args.data, args.window)
    load_s = time.perf_counter() - start
    batch_runs = [sample_batch_rate(dataset, args.batch_size, args.batches, seed=r) for r in range(args.repeats)]
    item_runs = [getitem_rate(dataset, args.items, seed=r) for r in range(args.repeats)]
    summary = dataset.summary()
    frame_bytes = int(np.prod(summary["frame_shape"]))
    result = {
        "benchmark": "dataset_speed",
        "machine": describe_machine(),
        "data": args.data,
        "frames": summary["frames"],
        "episodes": summary["episodes"],
        "frame_shape": summary["frame_shape"],
        "windows": summary["windows"],
        "batch_size": args.batch_size,
        "window": args.window,
        "load_s": round(load_s, 3),
        "sample_batch_windows_per_s": _stats(batch_runs),
        "sample_batch_mb_per_s": round(statistics.median(batch_runs) * args.window * frame_bytes / 2**20, 1),
        "getitem_windows_per_s": _stats(item_runs),
    }
    return publish(result, args.out)


if __name__ == "__main__":
    main()
