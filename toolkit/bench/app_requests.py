"""Benchmarks of the app's decoding tabs (run with ``python -m toolkit bench --only 'app.*'``).

``app.retrieval_request`` and ``app.saliency_request`` time the tab handlers in-process; ``app.cold_start`` times a
fresh Python process importing the app, building it on the (already built) demo bundle and serving it;
``app.load_test`` hammers ``/retrieve`` of a live local server with concurrent :mod:`gradio_client` clients
(:func:`run_load_test`, also used by the test suite).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from ..errors import ToolkitError
from . import benchmark

N_REQUESTS = 30
RETRIEVAL_TARGET_MS = 300.0
SALIENCY_TARGET_S = 1.5
COLD_START_TARGET_S = 15.0
LOAD_CLIENTS = 16
LOAD_REQUESTS = 25
LOAD_P95_TARGET_S = 1.0
LOAD_RSS_TARGET_MB = 200.0


def _pipeline() -> tuple[Any, float]:
    """The demo bundle's pipeline (data and models built first if needed; that time is returned, not timed)."""
    from ..bundles import build_demo_bundle
    from ..pipeline import load_pipeline

    start = time.perf_counter()
    build_demo_bundle()
    build_s = time.perf_counter() - start
    return load_pipeline("demo", build=False), build_s


def _selections(pipeline: Any, n: int, seed: int) -> list[tuple[str, int, int]]:
    """``n`` random ``(subject, test trial, repetition or -1 = average)`` selections (half of them averaged)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        subject = str(rng.choice(pipeline.subjects))
        trials = pipeline.trials(subject, "test")
        repetition = -1 if rng.random() < 0.5 else int(rng.integers(trials.n_repetitions))
        out.append((subject, int(rng.integers(trials.n_conditions)), repetition))
    return out


def _timed(calls: list, func: Any) -> dict:
    """Wall and process-CPU milliseconds of ``func(*args)`` for each ``args`` of ``calls``."""
    wall, cpu = [], []
    for args in calls:
        start, start_cpu = time.perf_counter(), time.process_time()
        func(*args)
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return {
        "median_ms": round(statistics.median(wall), 1),
        # CPU time of this process: what the wall time would be on an idle machine.
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "p90_ms": round(float(np.percentile(wall, 90)), 1),
        "max_ms": round(max(wall), 1),
    }


@benchmark(
    "app.retrieval_request",
    f"Retrieval tab: median time of the /retrieve handler (every encoder's top-5, curves, cards) over {N_REQUESTS} "
    f"random trials of the demo bundle (target < {RETRIEVAL_TARGET_MS:.0f} ms)",
)
def retrieval_request() -> dict:
    """Time :meth:`demos.retrieval_tab.RetrievalTab.retrieve` on random trials (single repetitions and averages).

    One warm-up request per subject loads the encoders and fills the per-subject caches (the averaged test trials'
    rankings and the k-way evaluation), as the first visitor of the app does.
    """
    from ..commands.demo import load_app_module

    pipeline, build_s = _pipeline()
    tab = load_app_module("retrieval_tab").RetrievalTab(pipeline)
    for subject in pipeline.subjects:
        tab.retrieve(subject, 0, -1, 5)
    calls = [(*sel, 5) for sel in _selections(pipeline, N_REQUESTS, seed=0)]
    figures = _timed(calls, tab.retrieve)
    return {
        "handler": "demos.retrieval_tab.RetrievalTab.retrieve",
        "n_requests": N_REQUESTS,
        **figures,
        "target_ms": RETRIEVAL_TARGET_MS,
        "met_target": figures["median_ms"] < RETRIEVAL_TARGET_MS,
        "bundle_build_s": round(build_s, 2),
    }


@benchmark(
    "app.saliency_request",
    f"Saliency tab: median time of the /saliency handler (integrated gradients of one trial, three maps, cached "
    f"ablation bars) over {N_REQUESTS // 3} random trials (target < {SALIENCY_TARGET_S} s)",
)
def saliency_request() -> dict:
    """Time :meth:`demos.saliency_tab.SaliencyTab.saliency` with integrated gradients on random trials.

    A warm-up request per subject computes the cached test-time ablations (seconds, once per subject and encoder);
    the timed requests are new trials, so every one runs the attribution.
    """
    from ..commands.demo import load_app_module

    pipeline, build_s = _pipeline()
    tab = load_app_module("saliency_tab").SaliencyTab(pipeline)
    encoder = pipeline.encoders[0]
    warm = time.perf_counter()
    for subject in pipeline.subjects:
        tab.saliency(subject, 0, -1, encoder, "ig", "similarity", 0.2)
    warm_s = time.perf_counter() - warm
    calls = [
        (subject, condition, repetition, encoder, "ig", "similarity", 0.2)
        for subject, condition, repetition in _selections(pipeline, N_REQUESTS // 3, seed=1)
    ]
    figures = _timed(calls, tab.saliency)
    return {
        "handler": "demos.saliency_tab.SaliencyTab.saliency (method ig)",
        "n_requests": len(calls),
        "median_s": round(figures["median_ms"] / 1000.0, 3),
        "median_cpu_s": round(figures["median_cpu_ms"] / 1000.0, 3),
        "max_s": round(figures["max_ms"] / 1000.0, 3),
        "target_s": SALIENCY_TARGET_S,
        "met_target": figures["median_ms"] / 1000.0 < SALIENCY_TARGET_S,
        "first_requests_with_ablation_s": round(warm_s, 2),
        "bundle_build_s": round(build_s, 2),
    }


_COLD_START = """
import sys, time
start = time.perf_counter()
from toolkit.commands.demo import load_app_module
app_module = load_app_module("app")
app = app_module.build_app("demo")
url = app_module.launch(app, port=int(sys.argv[1]), block=False, quiet=True)
built = app.toolkit_pipeline is not None
print(f"COLD_START {time.perf_counter() - start:.3f} {int(built)}", flush=True)
app.close()
"""


@benchmark(
    "app.cold_start",
    f"App cold start: a fresh Python process imports the app, builds every tab on the built demo bundle and serves "
    f"it (target < {COLD_START_TARGET_S:.0f} s)",
)
def cold_start() -> dict:
    """Time a new interpreter from ``import`` to a listening server (the bundle is built first, not timed)."""
    import socket

    _, build_s = _pipeline()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(port)], capture_output=True, text=True, timeout=300, check=False
    )
    total_s = time.perf_counter() - start
    # Gradio prints its own lines (e.g. when the server closes), so read only the line the script tagged.
    tagged = [line.split() for line in proc.stdout.splitlines() if line.startswith("COLD_START ")]
    if proc.returncode != 0 or not tagged:
        raise ToolkitError(f"The app did not start: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    _, app_s, built = tagged[-1]
    return {
        "start_s": round(float(app_s), 2),
        "process_s": round(total_s, 2),  # with interpreter start-up and shutdown
        "decoding_tabs": bool(int(built)),
        "target_s": COLD_START_TARGET_S,
        "met_target": float(app_s) < COLD_START_TARGET_S,
        "bundle_build_s": round(build_s, 2),
    }


def _rss_mb() -> float:
    from ..utils import require

    psutil = require("psutil", extra="test", purpose="measuring the server's memory in the load test")
    return psutil.Process().memory_info().rss / 2**20


def run_load_test(
    url: str,
    *,
    clients: int = LOAD_CLIENTS,
    requests: int = LOAD_REQUESTS,
    subjects: list[str] | None = None,
    n_conditions: int = 1,
    n_repetitions: int = 0,
    seed: int = 0,
) -> dict:
    """``clients`` threads, each with its own :class:`gradio_client.Client`, send ``requests`` ``/retrieve`` calls.

    The clients do not download the galleries' image files (the server's answer is complete without them).

    The server is expected to run in this process (its memory is measured here: resident set size before and after).

    Parameters
    ----------
    url : str
        The served app.
    clients, requests : int
        Concurrent clients and requests per client.
    subjects : list of str | None
        Subjects to pick from (default: ``["sub-01"]``).
    n_conditions, n_repetitions : int
        Test trials and repetitions to pick from (trial ``0..n_conditions-1``; repetition ``-1`` = average, or
        ``0..n_repetitions-1``).
    seed : int
        Seed of the random selections.

    Returns
    -------
    dict
        ``errors`` (count), ``error_examples``, ``n_requests``, ``wall_s``, ``throughput_rps``, ``p50_s``,
        ``p95_s``, ``max_s``, ``rss_before_mb``, ``rss_after_mb``, ``rss_growth_mb``.
    """
    from ..utils import require

    client_mod = require("gradio_client", extra="test", purpose="the app load test")
    if clients < 1 or requests < 1:
        raise ToolkitError(f"clients and requests must be >= 1; got {clients} and {requests}.")
    subjects = subjects or ["sub-01"]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    rss_before = _rss_mb()

    def work(index: int) -> None:
        rng = np.random.default_rng(seed + index)
        try:
            # download_files=False: the galleries' images are static files a browser fetches on its own; downloading
            # them here would time this process's client threads instead of the server.
            client = client_mod.Client(url, verbose=False, download_files=False)
        except Exception as err:  # a failed connection is an error to count, not to raise
            with lock:
                errors.extend([f"connect: {err}"] * requests)
            return
        for _ in range(requests):
            args = (
                str(rng.choice(subjects)),
                int(rng.integers(n_conditions)),
                int(rng.integers(-1, n_repetitions)) if n_repetitions else -1,
                5,
            )
            start = time.perf_counter()
            try:
                client.predict(*args, api_name="/retrieve")
            except Exception as err:  # every failure of the server counts
                with lock:
                    errors.append(f"{args}: {err}")
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    rss_after = _rss_mb()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "clients": clients,
        "requests_per_client": requests,
        "n_requests": clients * requests,
        "errors": len(errors),
        "error_examples": errors[:3],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_s": round(float(np.percentile(lat, 50)), 3),
        "p95_s": round(float(np.percentile(lat, 95)), 3),
        "max_s": round(float(np.max(lat)), 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
    }


@benchmark(
    "app.load_test",
    f"App load test: {LOAD_CLIENTS} gradio_client clients x {LOAD_REQUESTS} /retrieve requests against a live local "
    f"server on the demo bundle (targets: 0 errors, p95 < {LOAD_P95_TARGET_S:.0f} s, server RSS growth < "
    f"{LOAD_RSS_TARGET_MB:.0f} MB)",
)
def load_test() -> dict:
    """Serve the app in this process, warm it with one request per subject, then run :func:`run_load_test`."""
    import socket

    from ..commands.demo import load_app_module

    pipeline, build_s = _pipeline()
    app_module = load_app_module("app")
    app = app_module.build_app("demo", pipeline=pipeline)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = app_module.launch(app, port=port, block=False, quiet=True)
    try:
        trials = pipeline.trials(pipeline.subjects[0], "test")
        warm = run_load_test(url, clients=1, requests=len(pipeline.subjects), subjects=pipeline.subjects)
        out = run_load_test(
            url, subjects=pipeline.subjects, n_conditions=trials.n_conditions, n_repetitions=trials.n_repetitions
        )
    finally:
        app.close()
    met = out["errors"] == 0 and out["p95_s"] < LOAD_P95_TARGET_S and out["rss_growth_mb"] < LOAD_RSS_TARGET_MB
    return {
        **out,
        "warm_up_errors": warm["errors"],
        "target_errors": 0,
        "target_p95_s": LOAD_P95_TARGET_S,
        "target_rss_growth_mb": LOAD_RSS_TARGET_MB,
        "met_target": met,
        "bundle_build_s": round(build_s, 2),
    }
