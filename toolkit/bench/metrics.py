"""Benchmarks of the reconstruction metrics (``python -m toolkit bench --only 'metrics.*' --json``)."""

from __future__ import annotations

import time

from . import benchmark

_N_PAIRS = 200
_SIDE = 128
_TARGET_S = 60.0


def _image_pairs(n: int, side: int, seed: int = 0) -> tuple[list, list]:
    """``n`` smooth random RGB images (uint8 ``(side, side, 3)``) and noisy, partly shuffled "reconstructions"."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=gen)
    gts = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)
    noise = 0.15 * torch.randn(gts.shape, generator=gen)
    recs = (gts + noise).clamp(0, 1)
    swap = torch.randperm(n, generator=gen)[: n // 4]  # a quarter of the reconstructions belong to other images
    recs[swap] = recs[swap.roll(1)]
    to_uint8 = lambda t: [(x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for x in t]  # noqa: E731
    return to_uint8(recs), to_uint8(gts)


@benchmark(
    "metrics.suite_200",
    "Full image-metric suite (PixCorr, SSIM, AlexNet(2)/(5), Inception, CLIP, EffNet-B1, SwAV) over 200 pairs of "
    "128x128 images on the CPU with the tiny random stand-ins (AlexNet full size; Inception3 at 1/16 width; "
    "EfficientNet width/depth 0.25; ResNet-BasicBlock [1,1,1,1]; 2-layer CLIP), networks built once; target < 60 s.",
)
def suite_200() -> dict:
    """Wall time of one :func:`~toolkit.metrics.evaluate_reconstructions` call, after a small warm-up call."""
    import torch

    from ..metrics import evaluate_reconstructions, tiny_stand_in

    recs, gts = _image_pairs(_N_PAIRS, _SIDE)
    networks = {name: tiny_stand_in(name) for name in ("alexnet", "inception", "clip", "effnet", "swav")}
    # Warm-up on 4 pairs: imports, tracing of the feature extractors, allocator.
    evaluate_reconstructions(recs[:4], gts[:4], feature_weights=networks)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = evaluate_reconstructions(recs, gts, feature_weights=networks, batch_size=50)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "wall_s_suite": round(wall, 3),
        "target_s": _TARGET_S,
        "met_target": wall < _TARGET_S,
        "cpu_s_suite": round(cpu, 3),  # process CPU time (all threads): a check on a machine shared with others
        "n_pairs": _N_PAIRS,
        "input_side": _SIDE,
        "timings_s": result["timings_s"],
        "random_weights": result["random_weights"],
        "torch_threads": torch.get_num_threads(),
    }
