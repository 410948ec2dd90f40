"""A description of the machine a benchmark ran on, stored beside every figure."""

from __future__ import annotations

import os
import platform


def describe_machine() -> dict:
    """CPU model, usable cores, memory, Python / numpy / torch versions and the GPU (torch only if already
    imported; `gpu` only when CUDA is available)."""
    import sys

    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    info = {
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def in_words(machine: dict) -> str:
    """A machine dict of :func:`describe_machine` as a phrase, e.g. "AMD EPYC, 2 cores, 23.5 GB memory, no GPU".

    The GPU part is the recorded ``gpu`` name, "no GPU" for a CPU-only torch build (a version ending in ``+cpu``),
    and left out when the result does not say (results written without torch imported)."""
    parts = [str(machine.get("cpu") or "unknown CPU")]
    cores = machine.get("cores_usable")
    if cores is not None:
        parts.append(f"{cores} core{'s' if cores != 1 else ''}")
    if machine.get("memory_gb") is not None:
        parts.append(f"{machine['memory_gb']} GB memory")
    if machine.get("gpu"):
        parts.append(str(machine["gpu"]))
    elif str(machine.get("torch", "")).endswith("+cpu"):
        parts.append("no GPU")
    return ", ".join(parts)
