"""Benchmarks of the diffusion prior (``python -m toolkit bench --only 'prior.*' --json``)."""

from __future__ import annotations

import statistics
import time

from . import benchmark

_N_SAMPLES = 200
_STEPS = 50
_GUIDANCE = 5.0
_TARGET_S = 5.0
_REPEATS = 3


@benchmark(
    "prior.sample_200",
    "Sample 200 CLIP image embeddings with the full-size ATM prior (random weights), 50 DDPM steps, guidance 5.0, "
    "CPU float32; target < 5 s.",
)
def sample_200() -> dict:
    """Median wall time of guided sampling of 200 embeddings on the CPU."""
    import torch

    from ..prior import DiffusionPriorUNet, PriorPipeline

    torch.manual_seed(0)
    pipe = PriorPipeline(DiffusionPriorUNet())
    eeg_embeds = torch.randn(_N_SAMPLES, pipe.prior.cond_dim, generator=torch.Generator().manual_seed(1))
    pipe(eeg_embeds, num_inference_steps=2, guidance_scale=_GUIDANCE, progress_bar=False)  # warm-up
    times = []
    for repeat in range(_REPEATS):
        generator = torch.Generator().manual_seed(repeat)
        start = time.perf_counter()
        pipe(
            eeg_embeds,
            num_inference_steps=_STEPS,
            guidance_scale=_GUIDANCE,
            generator=generator,
            progress_bar=False,
        )
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "median_s": round(median, 3),
        "min_s": round(min(times), 3),
        "target_s": _TARGET_S,
        "met_target": median < _TARGET_S,
        "n_samples": _N_SAMPLES,
        "num_inference_steps": _STEPS,
        "guidance_scale": _GUIDANCE,
        "torch_threads": torch.get_num_threads(),
    }
