"""Encoder benchmarks: ATM-S inference and training throughput on CPU.

``python -m toolkit bench --only 'encoders.*' --json``. Both benchmarks run with 2 intra-op threads at batch 256
on a seeded, randomly initialised ATM-S with the THINGS-EEG shape (63 x 250); BatchNorm statistics are
randomised so that the folded path is exercised in full. Besides the toolkit's paths they time the literal
op-by-op reference transcription (:func:`toolkit.encoders._parity.reference_forward`) for comparison.
"""

from __future__ import annotations

from . import benchmark
from ._timing import load_average as _load_average
from ._timing import median_seconds as _median_seconds
from ._timing import threads as _threads

_BATCH = 256
_THREADS = 2
_INFERENCE_TARGET = 750.0
_TRAINING_TARGET = 120.0


def _setup(seed: int = 0):
    import torch

    from ..encoders import create_encoder

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    encoder = create_encoder("atm-s")
    with torch.no_grad():  # non-trivial BatchNorm statistics so folding is really tested
        for bn in (encoder.tsconv.bn1, encoder.tsconv.bn2):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    eeg = torch.randn(_BATCH, 63, 250, generator=gen)
    subject_ids = torch.randint(1, 10, (_BATCH,), generator=gen)
    return encoder, eeg, subject_ids


@benchmark(
    "encoders.atm_s_inference",
    "ATM-S eval forward on CPU, batch 256, 2 threads, fused path: >= 750 trials/s, max |fused - reference| <= 1e-5",
)
def atm_s_inference() -> dict:
    import torch

    from ..encoders._parity import reference_forward

    encoder, eeg, subject_ids = _setup()
    encoder.eval()
    with _threads(_THREADS), torch.inference_mode():
        reference = reference_forward(encoder, eeg, subject_ids)
        encoder.fast_inference = True
        fused = encoder(eeg, subject_ids)
        encoder.fast_inference = False
        unfused = encoder(eeg, subject_ids)
        t_ref = _median_seconds(lambda: reference_forward(encoder, eeg, subject_ids), repeats=3)
        t_unfused = _median_seconds(lambda: encoder(eeg, subject_ids), repeats=5)
        encoder.fast_inference = True
        t_fused = _median_seconds(lambda: encoder(eeg, subject_ids), repeats=7)
    trials_per_s = _BATCH / t_fused
    err = float((fused - reference).abs().max())
    return {
        "batch": _BATCH,
        "threads": _THREADS,
        "trials_per_s": round(trials_per_s, 1),
        "target_trials_per_s": _INFERENCE_TARGET,
        "unfused_trials_per_s": round(_BATCH / t_unfused, 1),
        "reference_path_trials_per_s": round(_BATCH / t_ref, 1),
        "speedup_vs_reference_path": round(t_ref / t_fused, 2),
        "fused_max_abs_err": err,
        "unfused_max_abs_err": float((unfused - reference).abs().max()),
        "meets_target": bool(trials_per_s >= _INFERENCE_TARGET and err <= 1e-5),
        "load_avg_1min": _load_average(),
    }


def _train_step(encoder, forward, optimizer, logit_scale, eeg, subject_ids, image_embeds) -> float:
    import torch
    import torch.nn.functional as F

    optimizer.zero_grad(set_to_none=True)
    eeg_embeds = F.normalize(forward(eeg, subject_ids), dim=-1)
    logits = logit_scale() * eeg_embeds @ image_embeds.t()
    target = torch.arange(eeg.shape[0])
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@benchmark(
    "encoders.atm_s_training",
    "ATM-S train step (forward + backward + AdamW, CLIP loss) on CPU, batch 256, 2 threads: >= 120 trials/s",
)
def atm_s_training() -> dict:
    import torch
    import torch.nn.functional as F

    from ..encoders._parity import reference_forward

    encoder, eeg, subject_ids = _setup()
    encoder.train()
    logit_scale = encoder.make_logit_scale()
    image_embeds = F.normalize(torch.randn(_BATCH, encoder.config.embed_dim), dim=-1)
    params = [*encoder.parameters(), *logit_scale.parameters()]
    optimizer = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-4)

    def toolkit_step() -> float:
        return _train_step(encoder, encoder, optimizer, logit_scale, eeg, subject_ids, image_embeds)

    def reference_step() -> float:
        def forward(x, ids):
            return reference_forward(encoder, x, ids)

        return _train_step(encoder, forward, optimizer, logit_scale, eeg, subject_ids, image_embeds)

    with _threads(_THREADS):
        t_toolkit = _median_seconds(toolkit_step, repeats=3)
        t_ref = _median_seconds(reference_step, repeats=2)
    trials_per_s = _BATCH / t_toolkit
    return {
        "batch": _BATCH,
        "threads": _THREADS,
        "trials_per_s": round(trials_per_s, 1),
        "target_trials_per_s": _TRAINING_TARGET,
        "reference_path_trials_per_s": round(_BATCH / t_ref, 1),
        "speedup_vs_reference_path": round(t_ref / t_toolkit, 2),
        "meets_target": bool(trials_per_s >= _TRAINING_TARGET),
        "load_avg_1min": _load_average(),
    }
