"""Benchmarks of the Gradio app (run with ``python -m toolkit bench --only 'app.*'``)."""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any

import numpy as np

from ..errors import ToolkitError
from . import benchmark

N_CHANGES = 50
TARGET_MS = 300.0


def _render(browser: Any, subject: str, split: str, condition: int, repetition: int, average: bool, latency: float):
    return browser.render(subject, split, condition, repetition=repetition, average=average, latency=latency)


@benchmark(
    "app.trial_rerender",
    f"Trials tab: median time of the trial handler over {N_CHANGES} random trial changes on the demo bundle "
    f"(target < {TARGET_MS:.0f} ms)",
)
def trial_rerender() -> dict:
    """Time the "Trials" tab's ``trial`` handler (ERP + topomap + image + metadata) on random selections.

    The demo bundle is built first if needed (not timed). One warm-up call opens the trial sets and the cached MNE
    Info, as the app does once at start-up; then every call picks a random subject, split, condition, repetition,
    average flag and latency. Wall time and process CPU time are both reported: on a shared machine the wall time
    includes waiting for other processes.
    """
    from ..bundles import build_demo_data, demo_paths, load_demo_store
    from ..commands.demo import load_app_module
    from ..viz import TrialBrowser

    build_start = time.perf_counter()
    build_demo_data()
    build_s = time.perf_counter() - build_start
    browser = TrialBrowser(load_demo_store(), images_root=demo_paths()["images_root"])
    try:
        tab = load_app_module("trials_tab").TrialsTab(browser)
        handler, what = tab.show_trial, "demos.trials_tab.TrialsTab.show_trial"
    except ToolkitError:  # no demos folder (an installed wheel) or no gradio: time the library call it wraps
        handler, what = functools.partial(_render, browser), "toolkit.viz.TrialBrowser.render"
    rng = np.random.default_rng(0)
    choices = []
    for _ in range(N_CHANGES + 1):
        subject = str(rng.choice(browser.subjects))
        split = str(rng.choice(browser.splits(subject)))
        ts = browser.trials(subject, split)
        choices.append(
            (
                subject,
                split,
                int(rng.integers(ts.n_conditions)),
                int(rng.integers(ts.n_repetitions)),
                bool(rng.random() < 0.5),
                float(rng.uniform(ts.times[0], ts.times[-1])),
            )
        )
    handler(*choices[0])  # warm-up: first figure, font cache, montage
    times_ms, cpu_ms = [], []
    for args in choices[1:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        handler(*args)
        times_ms.append((time.perf_counter() - start) * 1000.0)
        cpu_ms.append((time.process_time() - start_cpu) * 1000.0)
    median = statistics.median(times_ms)
    return {
        "handler": what,
        "n_changes": N_CHANGES,
        "median_ms": round(median, 1),
        # CPU time of this process: what the wall time would be on an idle machine (the work is single-threaded).
        "median_cpu_ms": round(statistics.median(cpu_ms), 1),
        "p90_ms": round(float(np.percentile(times_ms, 90)), 1),
        "max_ms": round(max(times_ms), 1),
        "target_ms": TARGET_MS,
        "met_target": median < TARGET_MS,
        "bundle_build_s": round(build_s, 2),
    }
