"""Pipelines: wire the components of a bundle together; one call per task.

::

    from toolkit.pipeline import load_pipeline

    pipe = load_pipeline("demo")                       # builds the demo bundle (data + models) on first use
    trials = pipe.trials("sub-01", "test", average=True)
    out = pipe.retrieve(trials.data[:, 0], "sub-01", k=5)
    rec = pipe.reconstruct(trials.data[:4, 0], "sub-01", seed=0)
    pipe.evaluate("sub-01", encoder="nice").full(1).value
    decode_trialset(pipe, imported, condition="face")  # your own EEG, imported onto model_target(pipe)

    real = load_pipeline("atm-things-eeg")             # your parts, named by `python -m toolkit bundle init`

The image and text side of a bundle is a :class:`GeneratorBackend`: :class:`DemoBackend` (the demo's autoencoder) or
:class:`DiffusersBackend` (SDXL(-Turbo) + IP-Adapter, GIT, OpenCLIP for ``atm-things-eeg``).

Names are imported on first use, so ``import toolkit.pipeline`` pulls in neither torch nor diffusers.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "DecodingPipeline": "decoding",
    "ReconstructionOutput": "decoding",
    "RetrievalOutput": "decoding",
    "load_pipeline": "decoding",
    "GeneratorBackend": "backends",
    "DemoBackend": "backends",
    "DiffusersBackend": "backends",
    "TrialSetDecoding": "your_eeg",
    "check_model_montage": "your_eeg",
    "decode_trialset": "your_eeg",
    "model_target": "your_eeg",
}

__all__ = list(_LAZY)

# PEP 562 lazy attributes: keeps `import toolkit.pipeline` cheap.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
