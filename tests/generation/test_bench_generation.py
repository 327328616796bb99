"""The generation benchmarks are registered; the GPU one skips with a reason where it cannot run."""

from __future__ import annotations

import pytest
import torch

import toolkit.bench.generation  # noqa: F401 - registers the suite (other suites may be missing in a partial tree)
from toolkit.bench import _REGISTRY

pytestmark = pytest.mark.xdist_group("generation")


def test_generation_benchmarks_registered():
    names = set(_REGISTRY)
    assert {"generation.tiny_sdxl_ip", "generation.sdxl_turbo_gpu"} <= names


@pytest.mark.skipif(torch.cuda.is_available(), reason="runs the real benchmark on a GPU")
def test_gpu_benchmark_skips_without_cuda():
    from toolkit.bench.generation import sdxl_turbo_gpu

    result = sdxl_turbo_gpu()
    assert result["skipped"] is True and "no CUDA GPU" in result["reason"]
