"""Benchmarks of the image generators (``python -m toolkit bench --only 'generation.*' --json``)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from ..errors import ToolkitError
from . import benchmark

_TINY_IMAGES = 8
_TINY_BATCH = 4
_TINY_SIDE = 64
_TINY_STEPS = 2
_TINY_REPEATS = 3
_TINY_TARGET_S = 0.5

_GPU_IMAGES = 200  # the THINGS-EEG2 test set: one image per test concept
_GPU_BATCH = 8
_GPU_SIDE = 512
_GPU_STEPS = 4
_GPU_TARGET_S = 0.3


@benchmark(
    "generation.tiny_sdxl_ip",
    f"Tiny random SDXL + IP-Adapter stack (real diffusers classes) on the CPU: seconds per {_TINY_SIDE} x "
    f"{_TINY_SIDE} image, {_TINY_STEPS} steps, {_TINY_IMAGES} embeddings in batches of {_TINY_BATCH}; for "
    f"regression tracking (target < {_TINY_TARGET_S} s/image).",
)
def tiny_sdxl_ip() -> dict:
    """Median time per image of :class:`~toolkit.generation.EmbedsToImagePipeline` on the tiny stack (CPU, float32).

    Runs on one CPU thread. The stack is built in a temporary folder (tokenizer files written there) and loaded through
    ``EmbedsToImagePipeline.from_pretrained`` with ``local_files_only=True``, the code path used for Hub ids.
    """
    import torch

    from ..generation import EmbedsToImagePipeline
    from ..generation import _tiny as tiny

    with tempfile.TemporaryDirectory(prefix="toolkit-bench-generation-") as tmp:
        root = Path(tmp)
        pipe = tiny.tiny_sdxl_pipeline(tiny.write_tiny_clip_tokenizer(root / "tokenizer"), sample_size=_TINY_SIDE // 2)
        pipe.save_pretrained(root / "sdxl")
        tiny.save_ip_adapter(tiny.tiny_ip_adapter_state_dict(pipe.unet, 16), root / "ip" / "tiny.safetensors")
        load_start = time.perf_counter()
        gen = EmbedsToImagePipeline.from_pretrained(
            root / "sdxl", ip_adapter=root / "ip" / "tiny.safetensors", device="cpu", local_files_only=True
        )
        load_s = time.perf_counter() - load_start
    embeds = torch.randn(_TINY_IMAGES, gen.image_embed_dim, generator=torch.Generator().manual_seed(0))
    kwargs = {"num_inference_steps": _TINY_STEPS, "batch_size": _TINY_BATCH, "progress_bar": False}
    # One thread: the tiny tensors gain nothing from more, and on a shared machine extra threads make the timing
    # mostly a measure of contention (the figure is for regression tracking, so it must be stable).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen(embeds[:1], seed=0, **kwargs)  # warm-up
        times = []
        for repeat in range(_TINY_REPEATS):
            start = time.perf_counter()
            out = gen(embeds, seed=repeat, **kwargs)
            times.append((time.perf_counter() - start) / len(out.images))
    finally:
        torch.set_num_threads(threads)
    median = statistics.median(times)
    return {
        "median_s_per_image": round(median, 4),
        "min_s_per_image": round(min(times), 4),
        "target_s_per_image": _TINY_TARGET_S,
        "met_target": median < _TINY_TARGET_S,
        "load_s": round(load_s, 3),
        "n_images": _TINY_IMAGES,
        "image_side": _TINY_SIDE,
        "num_inference_steps": _TINY_STEPS,
        "torch_threads": 1,
    }


@benchmark(
    "generation.sdxl_turbo_gpu",
    f"SDXL-Turbo + ip-adapter_sdxl_vit-h on CUDA in float16: seconds per {_GPU_SIDE} x {_GPU_SIDE} image, "
    f"{_GPU_STEPS} steps, guidance 0, {_GPU_IMAGES} embeddings in batches of {_GPU_BATCH} (target <= {_GPU_TARGET_S} "
    "s/image on an H100); skipped without a GPU or without the weights in the Hugging Face cache.",
)
def sdxl_turbo_gpu() -> dict:
    """Time ATM's stage-II setting over a whole test set on a GPU, with the real weights from the local cache.

    Nothing is downloaded: the weights must already be in the Hugging Face cache (see the README's GPU section).
    """
    import torch

    if not torch.cuda.is_available():
        return {"skipped": True, "reason": "no CUDA GPU on this machine", "target_s_per_image": _GPU_TARGET_S}
    from ..generation import EmbedsToImagePipeline

    load_start = time.perf_counter()
    try:
        gen = EmbedsToImagePipeline.from_pretrained(device="cuda", local_files_only=True)
    except ToolkitError as err:
        return {
            "skipped": True,
            "reason": f"the SDXL-Turbo or IP-Adapter weights are not in the local Hugging Face cache ({err})",
            "target_s_per_image": _GPU_TARGET_S,
        }
    load_s = time.perf_counter() - load_start
    # Random embeddings with the scale of unnormalised ViT-H-14 image embeddings; the cost does not depend on them.
    embeds = torch.randn(_GPU_IMAGES, gen.image_embed_dim, generator=torch.Generator().manual_seed(0)) * 0.6
    kwargs = {
        "num_inference_steps": _GPU_STEPS,
        "guidance_scale": 0.0,
        "height": _GPU_SIDE,
        "width": _GPU_SIDE,
        "batch_size": _GPU_BATCH,
        "progress_bar": False,
    }
    gen(embeds[:_GPU_BATCH], seed=0, **kwargs)  # warm-up: kernels, cuDNN autotuning, allocator
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = gen(embeds, seed=0, **kwargs)
    torch.cuda.synchronize()
    total = time.perf_counter() - start
    per_image = total / len(out.images)
    return {
        "s_per_image": round(per_image, 4),
        "total_s": round(total, 2),
        "target_s_per_image": _GPU_TARGET_S,
        "met_target": per_image <= _GPU_TARGET_S,
        "load_s": round(load_s, 1),
        "n_images": len(out.images),
        "batch_size": _GPU_BATCH,
        "image_side": _GPU_SIDE,
        "num_inference_steps": _GPU_STEPS,
        "gpu": torch.cuda.get_device_name(),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }
