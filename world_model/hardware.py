"""What the machine runs fast: whether bf16 autocast pays off on a device.

PyTorch runs bf16 matmuls natively on CUDA GPUs with bf16 support and on CPUs with AVX512-BF16 or AMX; on other CPUs
(AVX2-only ones: most laptops, AMD Zen 3 and older) it emulates them, several times slower than fp32. Every
``bf16`` / ``autocast`` switch of the project left at None resolves through :func:`resolve_bf16`.
"""
from __future__ import annotations

from functools import lru_cache

import torch


def bf16_native(device: str | torch.device = "cpu") -> bool:
    """True where bf16 matmuls run natively on `device` (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_has_bf16()


@lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    """The CPU's bf16 instructions, read once (~50 us a read, and the world model asks at every step)."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_bf16(flag: bool | None, device: str | torch.device = "cpu") -> bool:
    """An explicit True / False as given; None: bf16 where it runs natively on `device`, fp32 elsewhere."""
    return bf16_native(device) if flag is None else bool(flag)
