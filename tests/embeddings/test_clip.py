"""ClipEmbedder: the open_clip wrapper, on a tiny registered config with seeded random weights (no downloads)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from contextlib import contextmanager

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.embeddings import (
    DEFAULT_PROMPT,
    ClipEmbedder,
    Embedder,
    encode_images_sharded,
    format_prompts,
    l2_normalize,
)


def test_from_open_clip_identity_and_protocol(tiny_embedder, tiny_checkpoint, tiny_model_name):
    assert isinstance(tiny_embedder, Embedder)
    ident = tiny_embedder.identity
    assert ident["model"] == tiny_model_name
    assert ident["weights"] == "sha256:" + hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert ident["precision"] == "fp32"
    assert ident["preprocess"]["size"] == [32, 32]
    assert ident["preprocess"]["interpolation"] == "bicubic"
    assert tiny_embedder.embed_dim == 16
    json.dumps(ident)  # serialisable: it is the cache key
    ident["model"] = "tampered"  # identity returns a copy
    assert tiny_embedder.identity["model"] == tiny_model_name


def test_image_shapes_and_normalize_flag(tiny_embedder, image_paths):
    raw = tiny_embedder.encode_images(image_paths, normalize=False)
    norm = tiny_embedder.encode_images(image_paths, normalize=True)
    assert raw.shape == norm.shape == (6, 16)
    assert raw.dtype == norm.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(norm, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)
    np.testing.assert_allclose(norm, l2_normalize(raw), atol=1e-6)
    # Different images give different embeddings.
    assert np.abs(raw[0] - raw[1]).max() > 1e-4


def test_deterministic_and_reloadable(tiny_embedder, tiny_model_name, tiny_checkpoint, image_paths):
    first = tiny_embedder.encode_images(image_paths, normalize=False)
    again = tiny_embedder.encode_images(image_paths, normalize=False)
    np.testing.assert_array_equal(first, again)
    other = ClipEmbedder.from_open_clip(tiny_model_name, tiny_checkpoint)
    assert other.identity == tiny_embedder.identity
    np.testing.assert_allclose(other.encode_images(image_paths, normalize=False), first, atol=1e-6)


def test_batch_size_invariance(tiny_embedder, image_paths):
    small = tiny_embedder.encode_images(image_paths, normalize=False, batch_size=2)
    large = tiny_embedder.encode_images(image_paths, normalize=False, batch_size=5)
    np.testing.assert_allclose(small, large, atol=1e-5)


def test_pil_and_path_inputs_agree(tiny_embedder, image_paths):
    from PIL import Image

    pil = [Image.open(p) for p in image_paths[:3]]
    np.testing.assert_allclose(
        tiny_embedder.encode_images(pil, normalize=True),
        tiny_embedder.encode_images(image_paths[:3], normalize=True),
        atol=1e-6,
    )
    assert tiny_embedder.encode_images([], normalize=True).shape == (0, 16)


def test_texts_and_concept_prompt(tiny_embedder):
    raw = tiny_embedder.encode_texts(["a cat", "a dog", "a ball"], normalize=False)
    norm = tiny_embedder.encode_texts(["a cat", "a dog", "a ball"], normalize=True)
    assert raw.shape == norm.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(norm, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(norm, l2_normalize(raw), atol=1e-6)
    concepts = tiny_embedder.encode_concepts(["aircraft_carrier", "cat"], normalize=True)
    assert format_prompts(["aircraft_carrier"]) == ["This picture is aircraft_carrier"]
    prompts = format_prompts(["aircraft_carrier", "cat"], DEFAULT_PROMPT)
    np.testing.assert_allclose(concepts, tiny_embedder.encode_texts(prompts, normalize=True))
    other = tiny_embedder.encode_concepts(["aircraft_carrier", "cat"], normalize=True, prompt="a photo of {concept}")
    assert np.abs(other - concepts).max() > 1e-4
    # Batching does not change text embeddings either.
    np.testing.assert_allclose(
        tiny_embedder.encode_texts(["a cat", "a dog", "a ball"], normalize=False, batch_size=2), raw, atol=1e-5
    )


def test_prompt_without_placeholder_is_rejected(tiny_embedder):
    with pytest.raises(ToolkitError, match="placeholder"):
        tiny_embedder.encode_concepts(["cat"], normalize=True, prompt="This picture is {}")
    with pytest.raises(ToolkitError, match="list of strings"):
        tiny_embedder.encode_texts("a cat", normalize=True)


def test_bad_batch_size(tiny_embedder, image_paths):
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ToolkitError, match="batch_size"):
            tiny_embedder.encode_images(image_paths, normalize=True, batch_size=bad)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_unreadable_image_names_the_file(tiny_embedder, image_paths, damage):
    bad = image_paths[3]
    if damage == "garbage":
        bad.write_bytes(b"this is not a jpeg")
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:200])
    else:
        bad.unlink()
    with pytest.raises(ToolkitError, match=bad.name) as info:
        tiny_embedder.encode_images(image_paths, normalize=True, batch_size=2)
    assert "\n" not in str(info.value)


def test_worker_processes_give_the_same_result_and_errors(tiny_embedder, image_paths):
    workers = ClipEmbedder(
        tiny_embedder.model,
        tiny_embedder.preprocess,
        tiny_embedder.tokenizer,
        identity=tiny_embedder.identity,
        num_workers=1,
    )
    np.testing.assert_allclose(
        workers.encode_images(image_paths, normalize=True, batch_size=4),
        tiny_embedder.encode_images(image_paths, normalize=True, batch_size=4),
        atol=1e-6,
    )
    image_paths[5].write_bytes(b"broken")
    with pytest.raises(ToolkitError, match=image_paths[5].name) as info:
        workers.encode_images(image_paths, normalize=True, batch_size=4)
    assert "Traceback" not in str(info.value)


def test_injected_model_identity_comes_from_the_weights(tiny_embedder, image_paths):
    injected = ClipEmbedder(tiny_embedder.model, tiny_embedder.preprocess, tiny_embedder.tokenizer)
    ident = injected.identity
    assert ident["weights"].startswith("state-dict-sha256:")
    assert " at 0x" not in ident["preprocess"]  # stable across processes
    assert ClipEmbedder(tiny_embedder.model, tiny_embedder.preprocess, tiny_embedder.tokenizer).identity == ident
    perturbed = copy.deepcopy(tiny_embedder.model)
    with __import__("torch").no_grad():
        perturbed.visual.proj[0, 0] += 1.0
    changed = ClipEmbedder(perturbed, tiny_embedder.preprocess, tiny_embedder.tokenizer).identity
    assert changed["weights"] != ident["weights"]
    np.testing.assert_allclose(
        injected.encode_images(image_paths, normalize=False),
        tiny_embedder.encode_images(image_paths, normalize=False),
        atol=1e-6,
    )
    with pytest.raises(ToolkitError, match="encode_image"):
        ClipEmbedder(object(), None, None)
    with pytest.raises(ToolkitError, match="JSON"):
        ClipEmbedder(tiny_embedder.model, tiny_embedder.preprocess, tiny_embedder.tokenizer, identity={"x": object()})


def test_unknown_model_name_says_how_to_list_models():
    with pytest.raises(ToolkitError, match=r"list_models") as info:
        ClipEmbedder.from_open_clip("ViT-H-15", "laion2b_s32b_b79k")
    assert "did you mean" in str(info.value) and "ViT-H-14" in str(info.value)
    with pytest.raises(ToolkitError, match="hub and local-dir"):
        ClipEmbedder.from_open_clip("hf-hub:laion/CLIP-ViT-H-14-laion2B-s32B-b79K")


def test_unknown_tag_missing_file_and_no_weights(tiny_model_name, tmp_path):
    with pytest.raises(ToolkitError, match="neither a tag"):
        ClipEmbedder.from_open_clip(tiny_model_name, "no_such_tag")
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ToolkitError, match="does not exist") as info:
        ClipEmbedder.from_open_clip(tiny_model_name, missing)
    assert str(missing) in str(info.value)
    with pytest.raises(ToolkitError, match="No pretrained weights"):
        ClipEmbedder.from_open_clip(tiny_model_name, None)
    with pytest.raises(ToolkitError, match="precision"):
        ClipEmbedder.from_open_clip(tiny_model_name, missing, precision="fp8")


def test_bad_device(tiny_model_name, tiny_checkpoint):
    import torch

    with pytest.raises(ToolkitError, match="Unknown device"):
        ClipEmbedder.from_open_clip(tiny_model_name, tiny_checkpoint, device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ToolkitError, match="no CUDA GPU"):
            ClipEmbedder.from_open_clip(tiny_model_name, tiny_checkpoint, device="cuda")


def test_offline_tag_fails_at_once_with_what_to_do(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(ToolkitError, match="not available offline") as info:
        ClipEmbedder.from_open_clip("ViT-H-14", "laion2b_s32b_b79k", weights_cache_dir=tmp_path)
    assert time.perf_counter() - start < 5.0  # no model built, no network retries
    message = str(info.value)
    assert "\n" not in message
    assert "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" in message and "--pretrained PATH" in message


def test_failed_download_is_one_sentence(monkeypatch):
    import open_clip
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_network(*args, **kwargs):
        raise RuntimeError("Failed to download weights for tag 'laion2b_s34b_b79k': Name or service not known")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", no_network)
    with pytest.raises(ToolkitError, match=r"not available offline.*--pretrained PATH"):
        ClipEmbedder.from_open_clip("ViT-B-32", "laion2b_s34b_b79k")


def _register_config(tmp_path, name, width):
    import open_clip

    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": width, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": width, "heads": 2, "layers": 1},
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return name


def test_checkpoint_of_another_architecture_or_damaged(tiny_checkpoint, tmp_path, tiny_model_name):
    wide = _register_config(tmp_path, "toolkit-tiny-clip-wide", 64)
    with pytest.raises(ToolkitError, match="does not fit"):
        ClipEmbedder.from_open_clip(wide, tiny_checkpoint)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ToolkitError, match="could not be loaded") as info:
        ClipEmbedder.from_open_clip(tiny_model_name, damaged)
    assert str(damaged) in str(info.value)


def test_accelerate_single_cpu_process_matches_plain(tiny_embedder, image_paths, cpu_accelerator):
    assert cpu_accelerator.num_processes == 1
    plain = tiny_embedder.encode_images(image_paths, normalize=True, batch_size=4)
    sharded = encode_images_sharded(
        tiny_embedder, image_paths, normalize=True, batch_size=4, accelerator=cpu_accelerator
    )
    np.testing.assert_allclose(sharded, plain, atol=1e-6)


class _SimulatedRanks:
    """Stands in for an Accelerator of ``world`` processes inside one process, to check shard bookkeeping.

    ``split_between_processes`` is accelerate's own (a PartialState method called on this object), and ``gather``
    concatenates what every simulated rank would compute on its own shard.
    """

    def __init__(self, world, rank, embed_fn):
        self.num_processes, self.process_index, self.device = world, rank, "cpu"
        self._embed_fn = embed_fn

    def split_between_processes(self, inputs, apply_padding=False):
        from accelerate.state import PartialState

        split = contextmanager(PartialState.split_between_processes.__wrapped__)
        return split(self, inputs, apply_padding=apply_padding)

    def gather(self, tensor):
        import torch

        blocks = []
        for rank in range(self.num_processes):
            peer = _SimulatedRanks(self.num_processes, rank, self._embed_fn)
            with peer.split_between_processes(self._embed_fn.items, apply_padding=True) as shard:
                blocks.append(torch.from_numpy(self._embed_fn(shard)))
        assert torch.equal(blocks[self.process_index], tensor)
        return torch.cat(blocks)


@pytest.mark.parametrize(("n", "world"), [(7, 3), (6, 2), (2, 3), (1, 4)])
def test_sharding_keeps_order_and_drops_padding(tiny_embedder, image_root, n, world):
    pytest.importorskip("accelerate")
    from PIL import Image

    images = [Image.new("RGB", (16, 16), (20 * i, 255 - 30 * i, 7 * i)) for i in range(n)]
    reference = tiny_embedder.encode_images(images, normalize=True)

    def embed(shard):
        return tiny_embedder.encode_images(list(shard), normalize=True)

    embed.items = images
    for rank in range(world):
        out = encode_images_sharded(
            tiny_embedder, images, normalize=True, accelerator=_SimulatedRanks(world, rank, embed)
        )
        np.testing.assert_allclose(out, reference, atol=1e-6)


def test_reduced_precision_returns_float32_and_changes_the_identity(
    tiny_embedder, tiny_model_name, tiny_checkpoint, image_paths
):
    half = ClipEmbedder.from_open_clip(tiny_model_name, tiny_checkpoint, precision="bf16")
    assert half.identity["precision"] == "bf16" and half.identity != tiny_embedder.identity
    out = half.encode_images(image_paths, normalize=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, tiny_embedder.encode_images(image_paths, normalize=True), atol=0.05)
    assert half.encode_texts(["a cat"], normalize=True).dtype == np.float32
