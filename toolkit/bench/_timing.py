"""Helpers shared by the benchmark suites: torch thread count, load average, median timing, a temporary home."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_average() -> float | None:
    """The 1-minute load average rounded to 2 decimals, or ``None`` where the platform has none.

    Other processes on a shared machine slow the benchmark's threads down; the figure says how busy it was.
    """
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median_seconds(func: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``func`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def toolkit_home(home: str | Path) -> Iterator[None]:
    """Point ``EEG_TOOLKIT_HOME`` at ``home`` for the block, restoring (or removing) the previous value after."""
    previous = os.environ.get("EEG_TOOLKIT_HOME")
    os.environ["EEG_TOOLKIT_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("EEG_TOOLKIT_HOME", None)
        else:
            os.environ["EEG_TOOLKIT_HOME"] = previous
