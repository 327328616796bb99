"""Embedding caches: keys, hits, self-description, collision refusal, atomic writes, the accelerate path."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from tests.embeddings._helpers import ToyEmbedder, write_image_folder
from toolkit import ToolkitError
from toolkit.data import ImageSet
from toolkit.embeddings import (
    concept_cache_path,
    embed_concepts,
    embed_image_set,
    image_cache_path,
    image_set_fingerprint,
    load_embeddings,
    save_embeddings,
)


@pytest.fixture
def image_set(image_root):
    return ImageSet.from_folder(image_root)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_miss_then_hit_without_recomputing(image_set, cache):
    toy = ToyEmbedder()
    first = embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    assert not first.hit and toy.calls["images"] == 1
    assert first.embeds.shape == (6, 8) and first.embeds.dtype == np.float32
    second = embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    assert second.hit and toy.calls["images"] == 1
    assert second.path == first.path and second.path.parent == cache
    np.testing.assert_array_equal(second.embeds, first.embeds)
    assert second.metadata["image_files"] == list(image_set.image_files)
    assert second.metadata["identity"]["model"] == "toy" and second.normalize is True
    assert _files(cache) == [first.path.name]  # no temporary files left behind


def test_default_location_is_the_toolkit_cache(image_set, monkeypatch, tmp_path):
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path / "home"))
    result = embed_image_set(ToyEmbedder(), image_set, normalize=False)
    assert result.path.parent == tmp_path / "home" / "embeddings"


def test_normalised_and_raw_live_side_by_side(image_set, cache):
    toy = ToyEmbedder()
    norm = embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    raw = embed_image_set(toy, image_set, normalize=False, cache_dir=cache)
    assert norm.path != raw.path
    assert "-norm-" in norm.path.name and "-raw-" in raw.path.name
    np.testing.assert_allclose(np.linalg.norm(norm.embeds, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(np.linalg.norm(raw.embeds, axis=1), 1.0, atol=1e-2)
    assert embed_image_set(toy, image_set, normalize=False, cache_dir=cache).hit
    assert embed_image_set(toy, image_set, normalize=True, cache_dir=cache).hit
    assert toy.calls["images"] == 2


def test_key_changes_with_model_and_image_set(image_set, image_root, cache):
    toy = ToyEmbedder()
    base = image_cache_path(toy, image_set, normalize=True, cache_dir=cache)
    assert image_cache_path(ToyEmbedder("toy-v2"), image_set, normalize=True, cache_dir=cache) != base
    assert image_cache_path(toy, image_set, normalize=False, cache_dir=cache) != base
    # Renaming the root folder keeps the key (relative paths); editing, touching or adding a file changes it.
    moved = image_root.parent / "moved"
    shutil.copytree(image_root, moved, copy_function=shutil.copy2)
    assert image_cache_path(toy, ImageSet.from_folder(moved), normalize=True, cache_dir=cache) == base
    victim = next(moved.glob("*/*.jpg"))
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert image_cache_path(toy, ImageSet.from_folder(moved), normalize=True, cache_dir=cache) != base
    write_image_folder(image_root, concepts=("zebra",), per_concept=1, seed=5)
    assert image_cache_path(toy, ImageSet.from_folder(image_root), normalize=True, cache_dir=cache) != base


def test_content_fingerprint_ignores_times_but_not_bytes(image_set, image_root):
    content = image_set_fingerprint(image_set, mode="content")
    stat = image_set_fingerprint(image_set, mode="stat")
    victim = image_set.image_path(2)
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert image_set_fingerprint(image_set, mode="content") == content
    assert image_set_fingerprint(image_set, mode="stat") != stat
    victim.write_bytes(image_set.image_path(3).read_bytes())
    assert image_set_fingerprint(image_set, mode="content") != content
    with pytest.raises(ToolkitError, match="fingerprint"):
        image_set_fingerprint(image_set, mode="mtime")


@pytest.mark.parametrize("what", ["normalisation", "model"])
def test_collision_is_refused_then_refreshed(image_set, cache, what):
    toy = ToyEmbedder()
    if what == "normalisation":
        # A file of raw embeddings sitting under the normalised request's name (ATM's one-file-name pitfall).
        foreign = embed_image_set(toy, image_set, normalize=False, cache_dir=cache).path
    else:
        foreign = embed_image_set(ToyEmbedder("other-model"), image_set, normalize=True, cache_dir=cache).path
    target = image_cache_path(toy, image_set, normalize=True, cache_dir=cache)
    shutil.copyfile(foreign, target)
    calls = toy.calls["images"]
    with pytest.raises(ToolkitError, match="not reused") as info:
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    message = str(info.value)
    assert str(target) in message and "--refresh" in message
    assert ("raw" in message) if what == "normalisation" else ("other-model" in message)
    assert toy.calls["images"] == calls  # refused, not recomputed behind the user's back
    fresh = embed_image_set(toy, image_set, normalize=True, cache_dir=cache, refresh=True)
    assert not fresh.hit and fresh.metadata["normalize"] is True
    assert embed_image_set(toy, image_set, normalize=True, cache_dir=cache).hit


def test_crafted_file_with_lying_metadata_is_refused(image_set, cache):
    toy = ToyEmbedder()
    path = image_cache_path(toy, image_set, normalize=True, cache_dir=cache)
    genuine = embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    raw = toy.encode_images([image_set.image_path(i) for i in range(6)], normalize=False)
    save_embeddings(path, {"image_embeds": raw}, genuine.metadata)  # claims normalised, holds raw rows
    with pytest.raises(ToolkitError, match="not unit length"):
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    save_embeddings(path, {"image_embeds": genuine.embeds[:4]}, genuine.metadata)
    with pytest.raises(ToolkitError, match=r"shape \(6, 8\)"):
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)


def test_damaged_or_foreign_cache_file(image_set, cache):
    toy = ToyEmbedder()
    path = image_cache_path(toy, image_set, normalize=True, cache_dir=cache)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    with pytest.raises(ToolkitError, match="damaged") as info:
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    assert str(path) in str(info.value)
    from safetensors.numpy import save_file

    save_file({"image_embeds": np.zeros((6, 8), np.float32)}, str(path))  # no toolkit metadata
    with pytest.raises(ToolkitError, match="no toolkit metadata"):
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    assert not embed_image_set(toy, image_set, normalize=True, cache_dir=cache, refresh=True).hit


def test_crash_mid_extraction_leaves_no_file(image_set, cache):
    with pytest.raises(RuntimeError, match="simulated crash"):
        embed_image_set(ToyEmbedder(fail_after=3), image_set, normalize=True, cache_dir=cache)
    assert _files(cache) == []


def test_crash_mid_write_leaves_no_file(image_set, cache, monkeypatch):
    import safetensors.numpy

    def half_write(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", half_write)
    with pytest.raises(OSError, match="disk full"):
        embed_image_set(ToyEmbedder(), image_set, normalize=True, cache_dir=cache)
    assert _files(cache) == []


def test_embedder_that_ignores_normalize_is_not_cached(image_set, cache):
    with pytest.raises(ToolkitError, match="not unit length"):
        embed_image_set(ToyEmbedder(ignore_normalize=True), image_set, normalize=True, cache_dir=cache)
    assert _files(cache) == []


def test_bad_requests(image_set, image_root, cache):
    toy = ToyEmbedder()
    with pytest.raises(ToolkitError, match="normalize must be True"):
        embed_image_set(toy, image_set, normalize=None, cache_dir=cache)
    with pytest.raises(ToolkitError, match="not an Embedder"):
        embed_image_set(object(), image_set, normalize=True, cache_dir=cache)
    with pytest.raises(ToolkitError, match="ImageSet"):
        embed_image_set(toy, [image_root], normalize=True, cache_dir=cache)
    missing = image_set.image_path(4)
    missing.unlink()
    with pytest.raises(ToolkitError, match=missing.name):
        embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    detached = ImageSet.from_dict(image_set.to_dict())
    with pytest.raises(ToolkitError, match="no image folder"):
        embed_image_set(toy, detached, normalize=True, cache_dir=cache)
    assert toy.calls["images"] == 0


def test_corrupt_image_names_the_file(image_set, cache):
    bad = image_set.image_path(1)
    bad.write_bytes(b"not an image")
    with pytest.raises(ToolkitError, match=bad.name):
        embed_image_set(ToyEmbedder(), image_set, normalize=True, cache_dir=cache)
    assert _files(cache) == []


def test_concepts_cache_and_keys(image_set, cache):
    toy = ToyEmbedder()
    first = embed_concepts(toy, image_set, normalize=True, cache_dir=cache)
    assert first.embeds.shape == (3, 8) and not first.hit
    assert first.metadata["concepts"] == ["aardvark", "ball", "cat_toy"]
    assert first.metadata["texts"]["prompt"] == "This picture is {concept}"
    again = embed_concepts(toy, ["aardvark", "ball", "cat_toy"], normalize=True, cache_dir=cache)
    assert again.hit and toy.calls["texts"] == 1
    base = first.path
    assert concept_cache_path(toy, image_set, normalize=False, cache_dir=cache) != base
    assert concept_cache_path(toy, image_set, normalize=True, prompt="a {concept}", cache_dir=cache) != base
    assert concept_cache_path(toy, ["ball", "aardvark", "cat_toy"], normalize=True, cache_dir=cache) != base
    assert concept_cache_path(ToyEmbedder("toy-v2"), image_set, normalize=True, cache_dir=cache) != base
    # An image cache never answers a text request, even under the text request's name.
    images = embed_image_set(toy, image_set, normalize=True, cache_dir=cache)
    shutil.copyfile(images.path, base)
    with pytest.raises(ToolkitError, match="not reused"):
        embed_concepts(toy, image_set, normalize=True, cache_dir=cache)
    with pytest.raises(ToolkitError, match="placeholder"):
        embed_concepts(toy, image_set, normalize=True, prompt="no placeholder", cache_dir=cache)
    with pytest.raises(ToolkitError, match="empty"):
        embed_concepts(toy, [], normalize=True, cache_dir=cache)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_save_load_roundtrip(tmp_path, suffix):
    arrays = {"image_embeds": np.arange(12, dtype=np.float32).reshape(3, 4), "text_embeds": np.ones((2, 4))}
    path = save_embeddings(tmp_path / f"out{suffix}", arrays, {"normalize": False, "note": "é"})
    loaded, meta = load_embeddings(path)
    assert meta == {"normalize": False, "note": "é"}
    np.testing.assert_array_equal(loaded["image_embeds"], arrays["image_embeds"])
    assert loaded["text_embeds"].dtype == np.float32
    assert _files(tmp_path) == [path.name]


def test_save_and_load_errors(tmp_path):
    with pytest.raises(ToolkitError, match=r"\.safetensors or \.npz"):
        save_embeddings(tmp_path / "out.pt", {"x": np.zeros((1, 2))}, {})
    with pytest.raises(ToolkitError, match="does not exist"):
        load_embeddings(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ToolkitError, match="damaged"):
        load_embeddings(bad)


def test_clip_end_to_end_with_cache(tiny_embedder, image_set, cache):
    first = embed_image_set(tiny_embedder, image_set, normalize=False, cache_dir=cache, batch_size=4)
    assert first.embeds.shape == (6, 16) and not first.hit
    assert first.path.name.startswith("images-toolkit-tiny-clip-raw-")
    second = embed_image_set(tiny_embedder, image_set, normalize=False, cache_dir=cache)
    assert second.hit
    np.testing.assert_array_equal(second.embeds, first.embeds)
    texts = embed_concepts(tiny_embedder, image_set, normalize=True, cache_dir=cache)
    np.testing.assert_allclose(
        texts.embeds, tiny_embedder.encode_concepts(image_set.concepts, normalize=True), atol=1e-6
    )


def test_accelerate_cpu_path_matches_plain(tiny_embedder, image_set, cache, cpu_accelerator):
    plain = embed_image_set(tiny_embedder, image_set, normalize=True, cache_dir=cache / "plain")
    accel = embed_image_set(
        tiny_embedder, image_set, normalize=True, cache_dir=cache / "accel", accelerator=cpu_accelerator
    )
    assert not accel.hit and accel.path.is_file()
    np.testing.assert_allclose(accel.embeds, plain.embeds, atol=1e-6)
    texts = embed_concepts(
        tiny_embedder, image_set, normalize=True, cache_dir=cache / "accel", accelerator=cpu_accelerator
    )
    assert texts.path.is_file()
