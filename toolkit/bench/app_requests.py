"""Benchmarks of the app's decoding tabs (run with ``python -m toolkit bench --only 'app.*'``).

``app.retrieval_request`` and ``app.saliency_request`` time the tab handlers in-process; ``app.cold_start`` times a
fresh Python process importing the app, building it on the (already built) demo bundle and serving it;
``app.load_test`` serves the app in a separate process and hammers its ``/retrieve`` with concurrent
:mod:`gradio_client` clients running in other processes, measuring the server process's memory
(:func:`run_load_test`, also used by the test suite).
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def _served_threads() -> Iterator[None]:
    """Torch and BLAS limited to one thread, as the served app runs its handlers (``demos.app.launch``), then
    restored: several requests at once share the cores instead of each spinning a pool of its own."""
    import torch

    from ..utils import require

    threadpoolctl = require("threadpoolctl", extra="demo", purpose="limiting the handlers' threads as the app does")
    before = torch.get_num_threads()
    try:
        with threadpoolctl.threadpool_limits(limits=1):
            torch.set_num_threads(1)
            yield
    finally:
        torch.set_num_threads(before)


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
    rankings and the k-way evaluation), as the first visitor of the app does. Torch runs single-threaded, as in the
    served app (``demos.app.launch``).
    """
    from ..commands.demo import load_app_module

    pipeline, build_s = _pipeline()
    tab = load_app_module("retrieval_tab").RetrievalTab(pipeline)
    calls = [(*sel, 5) for sel in _selections(pipeline, N_REQUESTS, seed=0)]
    with _served_threads():
        for subject in pipeline.subjects:
            tab.retrieve(subject, 0, -1, 5)
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
    the timed requests are new trials, so every one runs the attribution. Torch runs single-threaded, as in the
    served app.
    """
    from ..commands.demo import load_app_module

    pipeline, build_s = _pipeline()
    tab = load_app_module("saliency_tab").SaliencyTab(pipeline)
    encoder = pipeline.encoders[0]
    calls = [
        (subject, condition, repetition, encoder, "ig", "similarity", 0.2)
        for subject, condition, repetition in _selections(pipeline, N_REQUESTS // 3, seed=1)
    ]
    with _served_threads():
        warm = time.perf_counter()
        for subject in pipeline.subjects:
            tab.saliency(subject, 0, -1, encoder, "ig", "similarity", 0.2)
        warm_s = time.perf_counter() - warm
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
app = app_module.build_app("demo", cache_examples=sys.argv[2] == "eager")
url = app_module.launch(app, port=int(sys.argv[1]), block=False, quiet=True)
built = app.toolkit_pipeline is not None
print(f"COLD_START {time.perf_counter() - start:.3f} {int(built)}", flush=True)
app.close()
"""


@benchmark(
    "app.cold_start",
    f"App cold start: a fresh Python process imports the app, builds every tab on the built demo bundle and serves "
    f"it, examples not stored (target < {COLD_START_TARGET_S:.0f} s); also the start storing them (a Space's)",
)
def cold_start() -> dict:
    """Time a new interpreter from ``import`` to a listening server (the bundle is built first, not timed).

    The target is the local start (examples not stored, as on a laptop). A second start stores the examples' outputs
    first, into an empty temporary folder, as a Hugging Face Space does on its first start (``start_eager_s``,
    reported, no target).
    """
    import os
    import socket
    import tempfile

    _, build_s = _pipeline()
    times = {}
    for mode in ("off", "eager"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with tempfile.TemporaryDirectory() as examples:
            env = {**os.environ, "GRADIO_EXAMPLES_CACHE": examples}
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", _COLD_START, str(port), mode], capture_output=True, text=True, timeout=600,
                check=False, env=env,
            )
            total_s = time.perf_counter() - start
        # Gradio prints its own lines (e.g. when the server closes), so read only the line the script tagged.
        tagged = [line.split() for line in proc.stdout.splitlines() if line.startswith("COLD_START ")]
        if proc.returncode != 0 or not tagged:
            raise ToolkitError(f"The app did not start: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
        _, app_s, built = tagged[-1]
        times[mode] = (float(app_s), total_s, bool(int(built)))
    app_s, total_s, built = times["off"]
    return {
        "start_s": round(app_s, 2),
        "process_s": round(total_s, 2),  # with interpreter start-up and shutdown
        "decoding_tabs": built,
        "start_eager_s": round(times["eager"][0], 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_s": COLD_START_TARGET_S,
        "met_target": app_s < COLD_START_TARGET_S,
        "bundle_build_s": round(build_s, 2),
    }


# -- load test --------------------------------------------------------------------------------------------------------
def _client_worker(url: str, plans: list, ssl_verify: bool, barrier: Any, results: Any, timeout_s: float) -> None:
    """One client process: a :class:`gradio_client.Client` and a thread per plan, started together at ``barrier``.

    Puts one dict on ``results``: ``latencies`` (seconds), ``errors`` (messages), ``start`` / ``end`` (wall clock).
    """
    import threading as _threading

    latencies: list[float] = []
    errors: list[str] = []
    lock = _threading.Lock()
    try:
        from gradio_client import Client

        clients = []
        for plan in plans:
            try:
                # download_files=False: the galleries' images are static files a browser fetches on its own.
                clients.append(Client(url, verbose=False, download_files=False, ssl_verify=ssl_verify))
            except Exception as err:  # a failed connection is an error to count, not to raise
                clients.append(None)
                errors.extend([f"connect: {err}"] * len(plan))
    except Exception as err:  # no gradio_client in this interpreter: every request fails
        clients = [None] * len(plans)
        errors.extend([f"client: {err}"] * sum(len(p) for p in plans))
    try:
        barrier.wait(timeout=timeout_s)
    except Exception:  # a broken barrier (another worker failed): report what failed here
        results.put({"latencies": [], "errors": errors or ["start: the other client processes did not start"],
                     "start": time.time(), "end": time.time()})
        return

    def work(client: Any, plan: list) -> None:
        for args in plan:
            start = time.perf_counter()
            try:
                client.predict(*args, api_name="/retrieve")
            except Exception as err:  # every failure of the server counts
                with lock:
                    errors.append(f"{tuple(args)}: {err}")
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    begin = time.time()
    threads = [
        _threading.Thread(target=work, args=(client, plan), daemon=True)
        for client, plan in zip(clients, plans, strict=True)
        if client is not None
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    results.put({"latencies": latencies, "errors": errors, "start": begin, "end": time.time()})


def _run_clients(url: str, plans: list[list], processes: int, timeout_s: float) -> dict:
    """Run one client per plan, spread over ``processes`` spawned processes; gather latencies and errors."""
    import multiprocessing
    import queue as queue_mod

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: never a fork of a process serving an app
    processes = max(1, min(processes, len(plans)))
    shares = [plans[i::processes] for i in range(processes)]
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    # There is no TLS to verify on a plain-http local server, and gradio_client builds a new httpx client per
    # request: with verification on, each one loads the CA bundle (tens of ms of client CPU per request, taken from
    # the server on a small machine).
    ssl_verify = not url.startswith("http://")
    workers = [
        ctx.Process(target=_client_worker, args=(url, share, ssl_verify, barrier, results, timeout_s), daemon=True)
        for share in shares
    ]
    for worker in workers:
        worker.start()
    gathered = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(gathered) < len(workers):
            try:
                gathered.append(results.get(timeout=max(0.1, min(1.0, deadline - time.monotonic()))))
            except queue_mod.Empty:
                if any(w.exitcode not in (None, 0) for w in workers):
                    barrier.abort()  # a client process died: the others stop waiting for it and report
                if time.monotonic() > deadline or not any(w.is_alive() for w in workers):
                    break
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    latencies = [x for g in gathered for x in g["latencies"]]
    errors = [x for g in gathered for x in g["errors"]]
    missing = sum(len(p) for p in plans) - len(latencies) - len(errors)
    if missing > 0:
        errors.extend([f"no answer: a client process stopped or timed out after {timeout_s:g} s"] * missing)
    span = (min(g["start"] for g in gathered), max(g["end"] for g in gathered)) if gathered else (0.0, 0.0)
    return {"latencies": latencies, "errors": errors, "wall_s": span[1] - span[0], "processes": len(workers)}


class _RSSSampler:
    """Resident set size of process ``pid``, sampled every ``interval`` seconds in a thread (peak kept)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        from ..utils import require

        psutil = require("psutil", extra="test", purpose="measuring the server's memory in the load test")
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> float:
        return self.process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> _RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def run_load_test(
    url: str,
    *,
    clients: int = LOAD_CLIENTS,
    requests: int = LOAD_REQUESTS,
    subjects: list[str] | None = None,
    n_conditions: int = 1,
    n_repetitions: int = 0,
    seed: int = 0,
    server_pid: int | None = None,
    processes: int | None = None,
    warm_up: bool = True,
    timeout_s: float = 600.0,
) -> dict:
    """``clients`` concurrent :class:`gradio_client.Client` s, in separate processes, send ``requests`` ``/retrieve``
    calls each; the server's memory is sampled meanwhile.

    The clients run in ``processes`` spawned interpreters (threads within each), so that neither their CPU time
    (under the GIL) nor their memory counts as the server's. They connect first, then all start together; the clients
    do not download the galleries' image files (the server's answer is complete without them). Before the timed run,
    one client sends one request per subject (trial 0, averaged): the first visitor's work of loading the encoders
    and filling the per-subject caches.

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
        Seed of the random selections (client ``i`` uses ``seed + i``).
    server_pid : int | None
        Process serving ``url``, whose resident set size is measured (``None``: this process, for a server
        launched in it with ``block=False``).
    processes : int | None
        Client processes (``None``: ``min(clients, 4)``).
    warm_up : bool
        Send the warm-up requests first.
    timeout_s : float
        Longest wait for the clients to connect and for the run.

    Returns
    -------
    dict
        ``errors`` (count), ``error_examples``, ``n_requests``, ``wall_s``, ``throughput_rps``, ``p50_s``,
        ``p95_s``, ``max_s``, ``warm_up_errors``; the server's resident set size in MB: ``rss_before_mb`` (before
        the warm-up), ``rss_after_warm_up_mb``, ``rss_peak_mb`` (during the run), ``rss_final_mb`` (after it),
        ``rss_growth_mb`` (final - before) and ``rss_peak_growth_mb`` (peak - before).
    """
    for name, value in (("clients", clients), ("requests", requests)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ToolkitError(f"{name} must be an integer >= 1; got {value!r}.")
    processes = min(clients, 4) if processes is None else processes
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ToolkitError(f"processes must be an integer >= 1; got {processes!r}.")
    import os

    subjects = list(subjects or ["sub-01"])
    sampler_pid = os.getpid() if server_pid is None else int(server_pid)
    plans = []
    for index in range(clients):
        rng = np.random.default_rng(seed + index)
        plans.append(
            [
                (
                    str(rng.choice(subjects)),
                    int(rng.integers(n_conditions)),
                    int(rng.integers(-1, n_repetitions)) if n_repetitions else -1,
                    5,
                )
                for _ in range(requests)
            ]
        )
    memory = _RSSSampler(sampler_pid)
    rss_before = memory.now()
    warm = {"errors": []}
    if warm_up:
        warm = _run_clients(url, [[(subject, 0, -1, 5) for subject in subjects]], 1, timeout_s)
    rss_warm = memory.now()
    memory.peak = rss_warm
    with memory:
        out = _run_clients(url, plans, processes, timeout_s)
    rss_final = memory.now()
    lat = np.array(out["latencies"]) if out["latencies"] else np.array([np.nan])
    wall = max(out["wall_s"], 1e-9)
    return {
        "clients": clients,
        "requests_per_client": requests,
        "client_processes": out["processes"],
        "n_requests": clients * requests,
        "errors": len(out["errors"]),
        "error_examples": out["errors"][:3],
        "warm_up_errors": len(warm["errors"]),
        "wall_s": round(out["wall_s"], 2),
        "throughput_rps": round(len(out["latencies"]) / wall, 1),
        "p50_s": round(float(np.percentile(lat, 50)), 3),
        "p95_s": round(float(np.percentile(lat, 95)), 3),
        "max_s": round(float(np.max(lat)), 3),
        "server_pid": sampler_pid,
        "rss_before_mb": round(rss_before, 1),
        "rss_after_warm_up_mb": round(rss_warm, 1),
        "rss_peak_mb": round(memory.peak, 1),
        "rss_final_mb": round(rss_final, 1),
        "rss_growth_mb": round(rss_final - rss_before, 1),
        "rss_peak_growth_mb": round(memory.peak - rss_before, 1),
    }


_SERVE = """
import sys
from toolkit.commands.demo import load_app_module
app_module = load_app_module("app")
app = app_module.build_app("demo", cache_examples=False)
url = app_module.launch(app, port=int(sys.argv[1]), block=False, quiet=True)
print(f"SERVING {url}", flush=True)
sys.stdin.read()  # serve until the parent closes stdin
app.close()
"""


@benchmark(
    "app.load_test",
    f"App load test: {LOAD_CLIENTS} gradio_client clients (separate processes) x {LOAD_REQUESTS} /retrieve requests "
    f"against a live local server process on the demo bundle (targets: 0 errors, p95 < {LOAD_P95_TARGET_S:.0f} s, "
    f"server RSS growth < {LOAD_RSS_TARGET_MB:.0f} MB)",
)
def load_test() -> dict:
    """Serve the app in a fresh process (as ``python -m toolkit demo`` does) and run :func:`run_load_test` on it.

    The server's memory is measured on its own process (before the warm-up, peak during the run, after it); the
    clients run in other processes. The machine's load average is reported: the clients share its cores with the
    server, and other work on the machine lengthens the latencies.
    """
    import os
    import socket
    import tempfile

    pipeline, build_s = _pipeline()
    trials = pipeline.trials(pipeline.subjects[0], "test")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    load_before = os.getloadavg()
    with tempfile.TemporaryFile("w+") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, text=True,
        )
        try:
            url = None
            for line in server.stdout:  # Gradio prints its own lines too: wait for the tagged one
                if line.startswith("SERVING "):
                    url = line.split(maxsplit=1)[1].strip()
                    break
            # Keep reading what the server prints, so that a full pipe never blocks it.
            threading.Thread(target=server.stdout.read, daemon=True).start()
            if url is None:
                stderr.seek(0)
                last = stderr.read().strip().splitlines()[-1:]
                raise ToolkitError(f"The app server did not start: {last or server.poll()}")
            out = run_load_test(
                url, subjects=pipeline.subjects, n_conditions=trials.n_conditions,
                n_repetitions=trials.n_repetitions, server_pid=server.pid,
            )
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    met = out["errors"] == 0 and out["p95_s"] < LOAD_P95_TARGET_S and out["rss_growth_mb"] < LOAD_RSS_TARGET_MB
    return {
        **out,
        "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],  # before, after
        "target_errors": 0,
        "target_p95_s": LOAD_P95_TARGET_S,
        "target_rss_growth_mb": LOAD_RSS_TARGET_MB,
        "met_target": met,
        "bundle_build_s": round(build_s, 2),
    }
