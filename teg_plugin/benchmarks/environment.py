"""What a benchmark ran on, printed with its numbers: scores (and so search paths) can differ
between CPUs, whose convolution kernels round differently, and timings always do."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (Linux: ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    """The machine and software a benchmark ran with, as JSON-ready values.

    Example:
        >>> sorted(environment(torch.device("cpu")))
        ['cpu', 'device', 'onednn', 'python', 'torch', 'torch_threads']
    """
    return {
        "device": str(device) if device.type != "cuda" else f"{device} ({torch.cuda.get_device_name(device)})",
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "onednn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
