"""Concurrency of the app: events' limits, models loaded once under concurrent requests, thread-limited torch,
and concurrent ``/retrieve`` calls answering as sequential ones do."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.pipeline._tiny import GROUP

gr = pytest.importorskip("gradio")

pytestmark = [
    pytest.mark.xdist_group(GROUP),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


class _SlowPipeline:
    """Loads its models lazily, slowly and without a lock, like the real pipeline, and counts the loads."""

    def __init__(self) -> None:
        self.encoders = ["a", "b"]
        self.loads: list[str] = []
        self._models: dict[str, object] = {}

    def _load(self, key: str) -> object:
        if key not in self._models:
            self.loads.append(key)
            time.sleep(0.05)  # long enough for every thread to arrive while loading
            self._models[key] = object()
        return self._models[key]

    def encoder(self, name: str) -> object:
        return self._load(f"encoder:{name}")

    @property
    def prior(self) -> object:
        return self._load("prior")


def test_models_load_once_under_concurrent_requests():
    from demos.retrieval_tab import shared_model

    pipeline = _SlowPipeline()
    with ThreadPoolExecutor(8) as pool:
        encoders = list(pool.map(lambda _: shared_model(pipeline, "encoder", "b"), range(8)))
        priors = list(pool.map(lambda _: shared_model(pipeline, "prior"), range(8)))
    assert pipeline.loads == ["encoder:b", "prior"]
    assert len({id(m) for m in encoders}) == 1 and len({id(m) for m in priors}) == 1
    assert shared_model(pipeline, "encoder") is pipeline.encoder("a")  # None: the default encoder
    with pytest.raises(Exception, match="Unknown model kind 'decoder'"):
        shared_model(pipeline, "decoder")


def test_pipeline_locks_are_shared_per_pipeline_and_name():
    from demos.retrieval_tab import pipeline_lock

    one, two = _SlowPipeline(), _SlowPipeline()
    assert pipeline_lock(one, "generation") is pipeline_lock(one, "generation")
    assert pipeline_lock(one, "generation") is not pipeline_lock(two, "generation")
    assert pipeline_lock(one, "generation") is not pipeline_lock(one, "prior")


def test_event_concurrency_limits(decoding_app):
    from demos.retrieval_tab import RETRIEVE_CONCURRENCY

    _, app = decoding_app
    limits = {fn.api_name: fn.concurrency_limit for fn in app.fns.values()}
    assert RETRIEVE_CONCURRENCY >= 8 and limits["retrieve"] == RETRIEVE_CONCURRENCY
    assert limits["reconstruct"] == 1  # one generation at a time: the prior's scheduler is stateful
    assert limits["saliency"] == 2


def test_concurrent_retrievals_match_sequential_ones(tiny_pipeline):
    from demos.retrieval_tab import RetrievalTab

    trials = tiny_pipeline.trials("sub-01", "test")
    calls = [
        (subject, condition, repetition, 3)
        for subject in tiny_pipeline.subjects
        for condition in range(trials.n_conditions)
        for repetition in (-1, 0)
    ]
    first = RetrievalTab(tiny_pipeline)
    sequential = [first.retrieve(*call)[: len(tiny_pipeline.encoders)] for call in calls]
    tab = RetrievalTab(tiny_pipeline)  # fresh caches, filled concurrently
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda call: tab.retrieve(*call)[: len(tiny_pipeline.encoders)], calls))
    assert concurrent == sequential


def test_limit_threads_sets_torch_and_checks_its_argument():
    torch = pytest.importorskip("torch")
    from demos.app import limit_threads
    from toolkit import ToolkitError

    threadpoolctl = pytest.importorskip("threadpoolctl")

    before = torch.get_num_threads()
    try:
        with threadpoolctl.threadpool_limits(limits=None):  # restores the BLAS pools' sizes on exit
            limit_threads(1)
            assert torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpoolctl.threadpool_info())
            # Threads started afterwards (Gradio's workers) get the limit too.
            with ThreadPoolExecutor(1) as pool:
                assert pool.submit(torch.get_num_threads).result() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ToolkitError, match="torch_threads must be a positive integer"):
        limit_threads(0)
