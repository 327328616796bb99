"""Benchmark suite: ``python -m toolkit bench [--only PATTERN] --json``.

A benchmark is a function registered with :func:`benchmark` in one of the suite modules listed in ``_SUITES``.
It returns a dict of figures (``{"median_ms": 1.2, "target_ms": 5, ...}``); the runner adds its name, wall time,
whether it met its target, and the machine it ran on. Benchmarks live in the package (not in the tests) so that
users can measure their own machines.
"""

from __future__ import annotations

import fnmatch
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._machine import machine_info

_SUITES: tuple[str, ...] = (
    "prior", "data", "retrieval", "app", "encoders", "simulate", "metrics", "generation", "explain", "bundle",
    "explain_validation", "demo_models", "app_requests",
)


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark."""

    name: str
    func: Callable[[], dict]
    description: str


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, description: str) -> Callable[[Callable[[], dict]], Callable[[], dict]]:
    """Register ``func`` as the benchmark ``name``.

    Parameters
    ----------
    name : str
        Dotted name, ``"<suite>.<what>"``.
    description : str
        One line: what is measured and the target.
    """

    def wrap(func: Callable[[], dict]) -> Callable[[], dict]:
        _REGISTRY[name] = Benchmark(name, func, description)
        return func

    return wrap


def list_benchmarks() -> list[Benchmark]:
    """All registered benchmarks (imports the suite modules)."""
    for suite in _SUITES:
        importlib.import_module(f".{suite}", __name__)
    return sorted(_REGISTRY.values(), key=lambda b: b.name)


def run_benchmarks(pattern: str = "*") -> dict:
    """Run the benchmarks whose names match the glob ``pattern`` and return the report."""
    results = []
    for bench in list_benchmarks():
        if not fnmatch.fnmatch(bench.name, pattern):
            continue
        start = time.perf_counter()
        figures = bench.func()
        results.append(
            {
                "name": bench.name,
                "description": bench.description,
                "wall_s": round(time.perf_counter() - start, 3),
                **figures,
            }
        )
    return {"machine": machine_info(), "results": results}


__all__ = ["Benchmark", "benchmark", "list_benchmarks", "machine_info", "run_benchmarks"]
