"""Load test: 16 concurrent gradio_client clients × 25 ``/retrieve`` requests against the live app (tiny bundle).

Asserts that every request succeeds; the latencies and the server's memory growth are reported (printed and saved
under ``tests/artifacts/``), not asserted: they depend on the machine. ``python -m toolkit bench --only
app.load_test`` measures them against their targets on the demo bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipeline._tiny import GROUP

pytestmark = [
    pytest.mark.xdist_group(GROUP),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def test_sixteen_clients_retrieve_without_errors(decoding_app, tiny_pipeline):
    pytest.importorskip("gradio_client")
    pytest.importorskip("psutil")
    from toolkit.bench.app_requests import run_load_test

    url, _ = decoding_app
    trials = tiny_pipeline.trials("sub-01", "test")
    kwargs = {"subjects": tiny_pipeline.subjects, "n_conditions": trials.n_conditions}
    run_load_test(url, clients=1, requests=2, **kwargs)  # warm-up: encoders and per-subject caches
    out = run_load_test(url, clients=16, requests=25, n_repetitions=trials.n_repetitions, **kwargs)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "app_load_test.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"\nload test: {json.dumps(out)}")
    assert out["n_requests"] == 400
    assert out["errors"] == 0, out["error_examples"]
    # The server still answers, and answers right.
    from gradio_client import Client

    galleries = Client(url, verbose=False).predict("sub-02", 0, -1, 8, api_name="/retrieve")[:2]
    assert all(sum("✓ true" in item["caption"] for item in g) == 1 for g in galleries)


def test_run_load_test_counts_errors(decoding_app):
    from toolkit.bench.app_requests import run_load_test

    url, _ = decoding_app
    out = run_load_test(url, clients=2, requests=2, subjects=["sub-404"])  # an unknown subject fails every time
    assert out["errors"] == 4 and "Unknown subject 'sub-404'" in out["error_examples"][0]
