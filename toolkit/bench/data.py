"""Benchmarks of the data layer (``python -m toolkit bench --only 'data.*' --json``).

``data.random_trial`` builds, once, a full-size THINGS-EEG training store for one subject (16540 × 4 × 63 × 250
float32, 4.2 GB of random data, cached under ``cache_dir("bench")``), then in a fresh Python process opens it and
reads 1000 random trials. The file's pages are dropped from the page cache first (``posix_fadvise``), so the
latencies are those of cold reads from disk. The reference loader (``np.load(allow_pickle=True)`` of the official
file) holds 8.3 GB for the same subject.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import benchmark

_SHAPE = (16540, 4, 63, 250)
_N_READS = 1000
_TARGET_MEDIAN_MS = 5.0
_TARGET_RSS_MB = 200.0
_REFERENCE_GB = 8.3
_CACHE_NAME = "data-random-trial-v1"


class _RandomRows:
    """A float32 array-like whose rows are generated when sliced (seeded by position), never held whole.

    :func:`toolkit.data.store.write_store` reads data only through ``shape`` and slices along the first axis, so
    this writes a 4.2 GB store while holding one chunk in memory.
    """

    def __init__(self, shape: tuple[int, ...], seed: int = 0) -> None:
        self.shape = shape
        self.ndim = len(shape)
        self.dtype = np.dtype(np.float32)
        self.seed = seed

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(self.shape[0])
        rng = np.random.default_rng([self.seed, start])
        return rng.standard_normal((stop - start, *self.shape[1:]), dtype=np.float32)


def _rss_mb() -> float:
    """Resident set size of this process in MB (psutil if installed, else /proc/self/statm)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _drop_from_page_cache(path: Path) -> bool:
    """Ask the kernel to drop ``path``'s clean pages from the page cache, so reads come from disk."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _full_size_store() -> tuple[Path, float]:
    """The cached full-size store (built on first use) and the seconds spent building it now (0 if cached)."""
    from ..data.channels import THINGS_EEG_63
    from ..data.store import is_store, open_store, write_store
    from ..data.trials import TrialSet
    from ..errors import ToolkitError
    from ..utils import cache_dir

    path = cache_dir("bench") / _CACHE_NAME
    if is_store(path) and open_store(path).entry("sub-01", "train").shape == _SHAPE:
        return path, 0.0
    need = int(np.prod(_SHAPE)) * 4
    free = shutil.disk_usage(path.parent).free
    if free < need * 1.1:
        raise ToolkitError(
            f"data.random_trial needs {need / 2**30:.1f} GiB free under '{path.parent}' for its store; "
            f"{free / 2**30:.1f} GiB are free (set EEG_TOOLKIT_HOME to a larger disk)."
        )
    trials = TrialSet(
        data=_RandomRows(_SHAPE),  # type: ignore[arg-type]  # duck-typed: shape, ndim and row slices
        ch_names=list(THINGS_EEG_63),
        sfreq=250.0,
        times=np.arange(_SHAPE[3]) / 250.0,
        subject="sub-01",
        split="train",
        dataset="things-eeg-250hz",
        extra={"note": "random data written by the data.random_trial benchmark"},
    )
    start = time.perf_counter()
    write_store(path, [trials], overwrite=True)
    return path, time.perf_counter() - start


def _measure(path: str, n_reads: int) -> dict:
    """Run in a fresh process: open the store, read ``n_reads`` random trials, report latencies and RSS growth."""
    from ..data.store import open_store

    rss_before = _rss_mb()
    start = time.perf_counter()
    store = open_store(path)
    trials = store.load("sub-01", "train")
    open_ms = (time.perf_counter() - start) * 1e3
    cold = _drop_from_page_cache(Path(path) / store.entry("sub-01", "train").file)
    rng = np.random.default_rng(0)
    picks = list(zip(rng.integers(0, trials.n_conditions, n_reads), rng.integers(0, trials.n_repetitions, n_reads)))

    def read_all() -> list[float]:
        out = []
        for c, r in picks:
            t0 = time.perf_counter()
            trial = trials.trial(int(c), int(r))
            out.append((time.perf_counter() - t0) * 1e3)
            if trial.shape != _SHAPE[2:]:
                raise RuntimeError(f"read a trial of shape {trial.shape}; expected {_SHAPE[2:]}")
        return out

    cold_ms = read_all()
    rss_after = _rss_mb()
    warm_ms = read_all()
    return {
        "open_ms": round(open_ms, 2),
        "median_ms": round(statistics.median(cold_ms), 3),
        "p95_ms": round(float(np.percentile(cold_ms, 95)), 3),
        "max_ms": round(max(cold_ms), 3),
        "warm_median_ms": round(statistics.median(warm_ms), 4),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "page_cache_dropped": cold,
    }


def _subprocess_env() -> dict:
    env = dict(os.environ, EEG_TOOLKIT_NO_PROGRESS="1")
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


@benchmark(
    "data.random_trial",
    "Open a full-size THINGS-EEG store (16540x4x63x250 float32, 4.2 GB) in a fresh process and read 1000 random "
    "trials from a cold page cache; targets: median < 5 ms per trial, RSS growth < 200 MB.",
)
def random_trial() -> dict:
    """Latency and memory of random single-trial reads from a memory-mapped store."""
    path, build_s = _full_size_store()
    code = (
        "import json, sys\nfrom toolkit.bench.data import _measure\n"
        "print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), str(_N_READS)],
        capture_output=True, text=True, env=_subprocess_env(), timeout=1800, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"data.random_trial measurement failed:\n{proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        **figures,
        "target_median_ms": _TARGET_MEDIAN_MS,
        "target_rss_growth_mb": _TARGET_RSS_MB,
        "met_target": figures["median_ms"] < _TARGET_MEDIAN_MS and figures["rss_growth_mb"] < _TARGET_RSS_MB,
        "reference_loader_gb": _REFERENCE_GB,
        "n_reads": _N_READS,
        "shape": list(_SHAPE),
        "store_gb": round(sum(f.stat().st_size for f in path.iterdir()) / 1e9, 2),
        "store_build_s": round(build_s, 1),
    }


@benchmark(
    "data.convert_tiny",
    "Convert a small official THINGS-EEG root (1 subject: 100x4 training and 20x20 test trials of 63x250 float64, "
    "101 MB) into a store; reports seconds and source MB/s (no target).",
)
def convert_tiny() -> dict:
    """Wall time of ``toolkit.data.store.convert`` on a small official root written for the purpose."""
    import tempfile

    from ..data.channels import THINGS_EEG_63
    from ..data.store import convert
    from ..data.things import write_things_eeg_file
    from ..utils import cache_dir

    times = -0.2 + np.arange(300) / 250.0
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=cache_dir("bench")) as tmp:
        root = Path(tmp) / "root"
        size = 0
        for split, shape in (("training", (100, 4, 63, 250)), ("test", (20, 20, 63, 250))):
            file = root / "Preprocessed_data_250Hz" / "sub-01" / f"preprocessed_eeg_{split}.npy"
            write_things_eeg_file(file, rng.standard_normal(shape), list(THINGS_EEG_63), times)
            size += file.stat().st_size
        start = time.perf_counter()
        convert(root, Path(tmp) / "store")
        seconds = time.perf_counter() - start
    mb = size / 1e6
    return {"seconds": round(seconds, 3), "source_mb": round(mb, 1), "mb_per_s": round(mb / seconds, 1)}
