"""Attribution benchmarks: integrated gradients and test-time ablation of ATM-S on CPU.

``python -m toolkit bench --only 'explain.*' --json``. All three run with 2 intra-op threads on a seeded, randomly
initialised ATM-S with the THINGS-EEG shape (63 channels x 250 samples, 1024-d embeddings) and a random 200-image
gallery; the timing does not depend on what the weights learned.
"""

from __future__ import annotations

import statistics
import time

from . import benchmark
from ._timing import threads as _threads

_THREADS = 2
_N_TRIALS = 200
_N_STEPS = 32


def _setup(n_trials: int, seed: int = 0):
    import numpy as np
    import torch

    from ..encoders import create_encoder

    torch.manual_seed(seed)
    encoder = create_encoder("atm-s").eval()
    rng = np.random.default_rng(seed)
    eeg = rng.standard_normal((n_trials, 63, 250)).astype(np.float32)
    gallery = rng.standard_normal((_N_TRIALS, 1024)).astype(np.float32)
    return encoder, eeg, gallery


@benchmark(
    "explain.ig_one_trial",
    "integrated gradients (32 steps, similarity target) of one ATM-S trial (63 x 250) on CPU, 2 threads: < 1 s",
)
def ig_one_trial() -> dict:
    from ..explain import attribute

    encoder, eeg, gallery = _setup(1)
    times = []
    with _threads(_THREADS):
        kwargs = dict(method="ig", index=[0], image_embeds=gallery, normalize=True, n_steps=_N_STEPS)
        attribute(encoder, eeg, **kwargs)  # warm-up (imports captum, first-call allocations)
        for _ in range(5):
            start = time.perf_counter()
            attr = attribute(encoder, eeg, **kwargs)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "median_s": round(median, 3),
        "min_s": round(min(times), 3),
        "target_s": 1.0,
        "met": median < 1.0,
        "n_steps": _N_STEPS,
        "finite": bool(abs(attr).sum() > 0),
    }


@benchmark(
    "explain.ig_200",
    "integrated gradients (32 steps) of 200 ATM-S trials, batched (8 trials per call), CPU, 2 threads: < 60 s",
)
def ig_200() -> dict:
    import numpy as np

    from ..explain import attribute, attribute_batched

    encoder, eeg, gallery = _setup(_N_TRIALS)
    with _threads(_THREADS):
        attribute(encoder, eeg[:1], method="ig", index=[0], image_embeds=gallery, normalize=True, n_steps=2)
        start = time.perf_counter()
        attr = attribute_batched(
            encoder, eeg, method="ig", index=np.arange(_N_TRIALS), image_embeds=gallery, normalize=True,
            n_steps=_N_STEPS, batch_size=8, progress=False,
        )
        wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 2),
        "trials_per_s": round(_N_TRIALS / wall, 2),
        "target_s": 60.0,
        "met": wall < 60.0,
        "shape": list(attr.shape),
    }


@benchmark(
    "explain.ablation_200",
    "test-time ablation of 200 ATM-S trials: ATM's 15 growing + 10 sliding windows, keep/drop 5 regions, full "
    "(36 conditions, 200-way retrieval each), CPU, 2 threads: < 30 s",
)
def ablation_200() -> dict:
    import numpy as np

    from ..data.channels import THINGS_EEG_63
    from ..explain import ablate

    encoder, eeg, gallery = _setup(_N_TRIALS)
    times = np.arange(250) / 250.0
    with _threads(_THREADS):
        encoder.encode(eeg[:8])  # warm-up (builds the fused inference copy)
        start = time.perf_counter()
        result = ablate(
            encoder, eeg, gallery, normalize=True, times=times, ch_names=THINGS_EEG_63, batch_size=200,
            progress=False,
        )
        wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 2),
        "n_conditions": len(result.rows),
        "forward_trials_per_s": round(len(result.rows) * _N_TRIALS / wall, 1),
        "target_s": 30.0,
        "met": wall < 30.0,
    }
