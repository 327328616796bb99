"""Benchmarks of the demo bundle (``python -m toolkit bench --only 'bundle.*' --json``).

``bundle.demo_build`` builds the whole demo bundle (simulation, store, vision models, embeddings, ATM-S and NICE,
diffusion prior) from scratch in a temporary toolkit home and reports each stage's seconds and the test figures;
``bundle.pipeline_calls`` times the pipeline's task calls on it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from . import benchmark
from ._timing import toolkit_home

_BUILD_TARGET_S = 120.0
_CALL_TARGET_MS = 1000.0


def _build(home: Path) -> tuple[float, dict]:
    from ..bundles import build_demo_bundle, read_bundle_manifest

    with toolkit_home(home):
        start = time.perf_counter()
        build_demo_bundle(progress_bar=False)
        return time.perf_counter() - start, read_bundle_manifest("demo")


@benchmark(
    "bundle.demo_build",
    "Build the demo bundle from scratch (simulate, convert, train vision models, embed, train ATM-S and NICE "
    "jointly over 2 subjects, train the prior) on the CPU; target < 120 s on 2 cores.",
)
def demo_build() -> dict:
    """Wall time of a from-scratch demo bundle build, per stage, with the encoders' test top-1."""
    import torch

    with tempfile.TemporaryDirectory(prefix="eeg-toolkit-bench-") as tmp:
        seconds, manifest = _build(Path(tmp))
    components = manifest["components"]
    return {
        "seconds": round(seconds, 1),
        "target_s": _BUILD_TARGET_S,
        "met_target": seconds < _BUILD_TARGET_S,
        "data_s": components["dataset"]["build_seconds"],
        "stages_s": components["models"]["seconds"],
        "test_top1": {name: entry["test_top1"] for name, entry in components["encoders"].items()},
        "test_chance": round(1 / int(manifest["components"]["vision"]["metrics"]["test"]["n_concepts"]), 4),
        "torch_threads": torch.get_num_threads(),
    }


@benchmark(
    "bundle.pipeline_calls",
    "Retrieve (top-5), reconstruct (10 trials, 50 steps, with both controls) and evaluate one subject with the "
    "demo pipeline (built bundle in a temporary home); target < 1 s per call.",
)
def pipeline_calls() -> dict:
    """Median-free single timings of the pipeline's task calls on the demo bundle's test trials."""
    from ..pipeline import load_pipeline

    with tempfile.TemporaryDirectory(prefix="eeg-toolkit-bench-") as tmp:
        _build(Path(tmp))
        with toolkit_home(tmp):
            pipe = load_pipeline("demo", build=False)
            trials = pipe.trials(pipe.subjects[0], "test", average=True)
            eeg = trials.data[:, 0]
            out = {}
            for name, call in (
                ("retrieve_ms", lambda: pipe.retrieve(eeg, pipe.subjects[0], k=5)),
                ("reconstruct_10_ms", lambda: pipe.reconstruct(eeg[:10], pipe.subjects[0])),
                ("evaluate_ms", lambda: pipe.evaluate(pipe.subjects[0], n_draws=100)),
            ):
                call()  # warm-up (loads the models)
                start = time.perf_counter()
                call()
                out[name] = round((time.perf_counter() - start) * 1000, 1)
    return {**out, "target_ms": _CALL_TARGET_MS, "met_target": max(out.values()) < _CALL_TARGET_MS}
