"""Load test, light: concurrent gradio_client clients in separate processes send ``/retrieve`` to the live app.

Asserts that every request succeeds and that the server keeps serving; the latencies and the server's memory are
reported (printed and saved under ``tests/artifacts/``), not asserted: they depend on the machine. The full run
(16 clients x 25 requests on the demo bundle, server in its own process) is the benchmark ``python -m toolkit bench
--only app.load_test``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.pipeline._tiny import GROUP

pytestmark = [
    pytest.mark.xdist_group(GROUP),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def test_concurrent_clients_retrieve_without_errors(decoding_app, tiny_pipeline):
    pytest.importorskip("gradio_client")
    pytest.importorskip("psutil")
    from toolkit.bench.app_requests import run_load_test

    url, _ = decoding_app
    trials = tiny_pipeline.trials("sub-01", "test")
    out = run_load_test(
        url, clients=6, requests=5, processes=2, subjects=tiny_pipeline.subjects, n_conditions=trials.n_conditions,
        n_repetitions=trials.n_repetitions,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "app_load_test.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"\nload test: {json.dumps(out)}")
    assert out["n_requests"] == 30 and out["client_processes"] == 2
    assert out["errors"] == 0 and out["warm_up_errors"] == 0, out["error_examples"]
    # The memory measured is this process's (the server's), not the clients'.
    assert out["server_pid"] == os.getpid()
    assert out["rss_before_mb"] > 0 and out["rss_peak_mb"] >= out["rss_after_warm_up_mb"]
    assert out["p50_s"] <= out["p95_s"] <= out["max_s"]
    # The server still answers, and answers right.
    from gradio_client import Client

    galleries = Client(url, verbose=False).predict("sub-02", 0, -1, 8, api_name="/retrieve")[:2]
    assert all(sum("✓ true" in item["caption"] for item in g) == 1 for g in galleries)


def test_run_load_test_counts_errors(decoding_app):
    pytest.importorskip("gradio_client")
    pytest.importorskip("psutil")
    from toolkit.bench.app_requests import run_load_test

    url, _ = decoding_app
    # An unknown subject fails every time, the warm-up request included.
    out = run_load_test(url, clients=2, requests=2, processes=1, subjects=["sub-404"])
    assert out["errors"] == 4 and out["warm_up_errors"] == 1
    assert "Unknown subject 'sub-404'" in out["error_examples"][0]


def test_run_load_test_rejects_bad_arguments():
    from toolkit import ToolkitError
    from toolkit.bench.app_requests import run_load_test

    with pytest.raises(ToolkitError, match="clients must be an integer >= 1"):
        run_load_test("http://127.0.0.1:9/", clients=0)
    with pytest.raises(ToolkitError, match="processes must be an integer >= 1"):
        run_load_test("http://127.0.0.1:9/", processes=0)
