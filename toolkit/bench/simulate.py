"""Benchmarks of the simulator: the ``tiny`` and ``demo`` presets end to end.

Each run is a fresh ``python -m toolkit simulate`` process in a temporary folder, so the figure includes starting
Python, importing MNE and computing the forward model, as a user of the command line experiences it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import benchmark


def _run(preset: str, target_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="eeg-toolkit-bench-") as tmp:
        out = Path(tmp) / "sim"
        env = {**os.environ, "EEG_TOOLKIT_NO_PROGRESS": "1"}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "toolkit", "simulate", str(out), "--preset", preset, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "target_s": target_s}
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "seconds": round(seconds, 3),
        "target_s": target_s,
        "met_target": seconds < target_s,
        "size_mb": round(size / 1e6, 1),
        "stages_s": summary["timings_s"],
    }


@benchmark("simulate.tiny", "python -m toolkit simulate --preset tiny in a fresh process (target < 10 s)")
def bench_tiny() -> dict:
    """Seconds to write the ``tiny`` preset, forward model and interpreter start included."""
    return _run("tiny", 10.0)


@benchmark("simulate.demo", "python -m toolkit simulate --preset demo in a fresh process (target < 60 s)")
def bench_demo() -> dict:
    """Seconds to write the ``demo`` preset."""
    return _run("demo", 60.0)
