"""Benchmarks of the demo bundle's offline vision models (``python -m toolkit bench --only 'demo_models.*' --json``).

``demo_models.reconstruct_caption`` times the demo's per-trial path on the CPU: one EEG trial through an ATM-S
encoder with the demo embedding width, then the demo decoder (a 256 × 256 image) and the demo captioner, with the
default demo vision configuration and the ``demo`` preset's vocabulary. Weights are seeded and random: the cost of
these networks does not depend on their values, and the benchmark then needs no trained bundle. The diffusion prior
between encoder and decoder is not included (its cost is ``toolkit.bench.prior``'s); the decoder also takes the
encoder's embeddings directly, since it uses only their direction.

``demo_models.train_demo`` trains the demo vision models on the ``demo`` preset's training images (the demo
bundle's dataset when it is built, else a fresh simulation in a temporary folder, which is not timed) and reports
the time and the held-out figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from . import benchmark
from ._timing import load_average as _load_average
from ._timing import threads as _threads

_THREADS = 2
_REPEATS = 30
_CALL_TARGET_MS = 500.0
_TRAIN_TARGET_S = 40.0


def _demo_config():
    from ..data.simulate import PRESETS
    from ..embeddings.demo import DemoVisionConfig

    preset = PRESETS["demo"]
    return DemoVisionConfig(vocabulary={"colour": preset.colours, "texture": preset.textures, "shape": preset.shapes})


def _random_models(seed: int = 0):
    """Decoder and captioner of the default demo configuration with seeded random weights."""
    import numpy as np
    import torch

    from ..captions.demo import DemoCaptioner
    from ..generation.demo import DemoDecoder, build_decoder

    config = _demo_config()
    torch.manual_seed(seed)
    state = {k: v.numpy() for k, v in build_decoder(config).state_dict().items()}
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((len(config.words), config.embed_dim)).astype(np.float32)
    bias = np.zeros(len(config.words), np.float32)
    return config, DemoDecoder(config, state), DemoCaptioner(config, weight, bias)


@benchmark(
    "demo_models.reconstruct_caption",
    f"One EEG trial → ATM-S (demo width) → demo decoder (256 px image) + demo captioner on the CPU, {_THREADS} "
    f"threads, median of {_REPEATS}; target < {_CALL_TARGET_MS:.0f} ms (the diffusion prior is timed in prior.*).",
)
def reconstruct_caption() -> dict:
    """Median latency of the whole per-trial call and of its embedding → image + caption part."""
    import torch

    from ..encoders import create_encoder

    config, decoder, captioner = _random_models()
    torch.manual_seed(0)
    encoder = create_encoder("atm-s", embed_dim=config.embed_dim).eval()
    eeg = torch.randn(1, 63, 250, generator=torch.Generator().manual_seed(0))

    def once() -> tuple[list[float], object, str]:
        # Each step timed on its own, so the parts add up to the total of the same call.
        t0 = time.perf_counter()
        with torch.inference_mode():
            embeds = encoder(eeg)
        t1 = time.perf_counter()
        image = decoder(embeds).images[0]
        t2 = time.perf_counter()
        caption = captioner(embeds)[0]
        t3 = time.perf_counter()
        return [t1 - t0, t2 - t1, t3 - t2], image, caption

    with _threads(_THREADS):
        once()  # warm-up
        parts = []
        for _ in range(_REPEATS):
            steps, image, caption = once()
            parts.append(steps)
    ms = [[1000.0 * t for t in steps] for steps in parts]
    median = statistics.median(sum(steps) for steps in ms)
    return {
        "median_ms": round(median, 2),
        "encoder_median_ms": round(statistics.median(steps[0] for steps in ms), 2),
        "decoder_median_ms": round(statistics.median(steps[1] for steps in ms), 2),
        "captioner_median_ms": round(statistics.median(steps[2] for steps in ms), 3),
        "decode_caption_median_ms": round(statistics.median(steps[1] + steps[2] for steps in ms), 2),
        "target_ms": _CALL_TARGET_MS,
        "met_target": median < _CALL_TARGET_MS,
        "image_size": list(image.size),
        "caption_words": len(caption.split()),
        "embed_dim": config.embed_dim,
        "includes": ["atm-s encoder", "demo decoder (256 px PIL image)", "demo captioner"],
        "torch_threads": _THREADS,
        "load_average": _load_average(),
    }


def _demo_images_root(tmp: Path) -> tuple[Path, str]:
    from ..bundles import read_bundle_manifest
    from ..bundles._registry import bundle_dir

    manifest = read_bundle_manifest("demo")
    data = (manifest or {}).get("components", {}).get("dataset", {})
    if data.get("preset") == "demo" and data.get("root"):
        root = bundle_dir("demo") / data["root"]
        if (root / "training_images").is_dir():
            return root, "demo bundle dataset"
    from ..data.simulate import simulate

    simulate(tmp / "sim", "demo", seed=0, dtype="float32")
    return tmp / "sim", "fresh simulation (seed 0)"


@benchmark(
    "demo_models.train_demo",
    f"Train the demo vision models (encoder, decoder, heads, text) on the demo preset's 1,200 training images with "
    f"the defaults, torch's default threads; target < {_TRAIN_TARGET_S:.0f} s on 2 cores.",
)
def train_demo() -> dict:
    """Seconds to train with the defaults, and the unseen test concepts' attribute, caption and zero-shot figures."""
    import torch

    from ..bundles._demo_vision import train_demo_vision

    with tempfile.TemporaryDirectory(prefix="eeg-toolkit-bench-") as tmp:
        root, source = _demo_images_root(Path(tmp))
        start = time.perf_counter()
        summary = train_demo_vision(root, Path(tmp) / "vision", progress_bar=False)
        seconds = time.perf_counter() - start
    test = summary["training"]["metrics"].get("test", {})
    return {
        "seconds": round(seconds, 1),
        "target_s": _TRAIN_TARGET_S,
        "met_target": seconds < _TRAIN_TARGET_S,
        "data": source,
        "epochs": summary["training"]["epochs"],
        "decoder_epochs": summary["training"]["decoder_epochs"],
        "test_attribute_accuracy": test.get("attribute_accuracy"),
        "test_caption_accuracy": test.get("caption_accuracy"),
        "test_zero_shot_top1": test.get("zero_shot_top1"),
        "test_zero_shot_chance": test.get("zero_shot_chance"),
        "torch_threads": torch.get_num_threads(),
        "load_average": _load_average(),
    }
