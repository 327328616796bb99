"""A description of the machine a figure was measured on."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict:
    """CPU, core count, memory, device and library versions (torch only if already installed)."""
    info: dict = {
        "hostname": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            kib = int(fh.readline().split()[1])
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["device"] = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            info["device"] = "cpu"
    except ImportError:
        info["device"] = "cpu (torch not installed)"
    return info
