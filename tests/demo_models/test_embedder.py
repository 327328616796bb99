"""DemoEmbedder: the Embedder protocol, image and compositional text embeddings, caching, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from toolkit import ToolkitError
from toolkit.embeddings import (
    DEFAULT_PROMPT,
    DemoEmbedder,
    Embedder,
    embed_concepts,
    embed_image_set,
    format_prompts,
)

pytestmark = pytest.mark.xdist_group("demo-models")


def test_embedder_conforms_to_the_protocol(tiny_models):
    embedder = tiny_models.embedder
    assert isinstance(embedder, Embedder)
    assert embedder.embed_dim == 32
    identity = embedder.identity
    assert identity["model"] == "demo-vision-autoencoder"
    assert identity["weights"].startswith("sha256:") and len(identity["weights"]) == 71
    json.dumps(identity)  # the cache key must be JSON
    identity["weights"] = "changed"
    assert embedder.identity["weights"] != "changed"  # a copy, not the internal dict


def test_image_embeddings_raw_and_normalised(tiny_models, train_images):
    embedder = tiny_models.embedder
    paths = [train_images.image_path(i) for i in range(7)]
    raw = embedder.encode_images(paths, normalize=False)
    unit = embedder.encode_images(paths, normalize=True)
    assert raw.shape == unit.shape == (7, 32) and raw.dtype == unit.dtype == np.float32
    # Raw rows all have the configured norm (inside the prior's clipping range), normalised rows unit length.
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), tiny_models.config.raw_norm, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, raw / tiny_models.config.raw_norm, atol=1e-6)
    # Batches do not change the result (GroupNorm), and opened images equal their files.
    np.testing.assert_allclose(embedder.encode_images(paths, normalize=False, batch_size=1), raw, atol=1e-5)
    opened = [Image.open(p) for p in paths[:2]]
    np.testing.assert_allclose(embedder.encode_images(opened, normalize=False), raw[:2], atol=1e-6)
    assert embedder.encode_images([], normalize=True).shape == (0, 32)


def test_images_of_one_concept_are_closer_than_images_of_others(tiny_models, train_images):
    embeds = tiny_models.embedder.encode_images(
        [train_images.image_path(i) for i in range(train_images.n_conditions)], normalize=True
    )
    sims = embeds @ embeds.T
    same = train_images.condition_concept[:, None] == train_images.condition_concept[None, :]
    np.fill_diagonal(same, False)
    other = ~same
    np.fill_diagonal(other, False)
    assert sims[same].mean() > sims[other].mean() + 0.2


def test_embed_image_set_caches_demo_embeddings(tiny_models, test_images, tmp_path):
    first = embed_image_set(tiny_models.embedder, test_images, normalize=True, cache_dir=tmp_path)
    again = embed_image_set(tiny_models.embedder, test_images, normalize=True, cache_dir=tmp_path)
    assert not first.hit and again.hit and first.path == again.path
    np.testing.assert_array_equal(first.embeds, again.embeds)
    assert first.metadata["identity"] == tiny_models.embedder.identity
    raw = embed_image_set(tiny_models.embedder, test_images, normalize=False, cache_dir=tmp_path)
    assert raw.path != first.path and not raw.hit


def test_text_embeddings_are_compositional(tiny_models):
    embedder = tiny_models.embedder
    vocab = tiny_models.config.vocabulary
    c0, c1 = vocab["colour"][:2]
    t0, t1 = vocab["texture"][:2]
    s0, s1 = vocab["shape"][:2]
    texts = [f"{c0}_{t0}_{s0}", f"{c1}_{t0}_{s0}", f"{c0}_{t1}_{s1}", f"{c1}_{t1}_{s1}"]
    raw = embedder.encode_texts(texts, normalize=False)
    assert raw.shape == (4, 32) and raw.dtype == np.float32
    # Swapping the colour moves every text by the same vector, whatever the other words are.
    np.testing.assert_allclose(raw[1] - raw[0], raw[3] - raw[2], atol=1e-5)
    # The ATM prompt, spaces, case and function words give the same embedding as the bare concept name.
    prompts = format_prompts(texts[:1], DEFAULT_PROMPT)
    np.testing.assert_allclose(embedder.encode_texts(prompts, normalize=False), raw[:1], atol=1e-6)
    spoken = embedder.encode_texts([f"A {c0.upper()} {t0} {s0}."], normalize=False)
    np.testing.assert_allclose(spoken, raw[:1], atol=1e-6)
    unit = embedder.encode_texts(texts, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)


def test_text_of_a_training_concept_lands_on_its_images(tiny_models, train_images):
    embedder = tiny_models.embedder
    images = embedder.encode_images(
        [train_images.image_path(i) for i in range(train_images.n_conditions)], normalize=True
    )
    texts = embedder.encode_texts(train_images.concepts, normalize=True)
    predicted = (images @ texts.T).argmax(axis=1)
    assert (predicted == train_images.condition_concept).mean() >= 0.9


def test_unseen_combinations_get_text_embeddings(tiny_models, test_images, tmp_path):
    # Test concepts are combinations no training image showed; their words are known.
    cached = embed_concepts(tiny_models.embedder, test_images, normalize=True, cache_dir=tmp_path)
    assert cached.embeds.shape == (test_images.n_concepts, 32)
    assert len({row.tobytes() for row in cached.embeds}) == test_images.n_concepts


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        (["a red striped unicorn"], "unicorn"),
        (["This picture is"], "names no colour"),
        ([""], "names no colour"),
        ("red striped circle", "list of strings"),
        ([3], "must be strings"),
    ],
)
def test_bad_texts_are_refused(tiny_models, texts, match):
    with pytest.raises(ToolkitError, match=match):
        tiny_models.embedder.encode_texts(texts, normalize=True)


def test_bad_image_arguments_are_refused(tiny_models, train_images, tmp_path):
    embedder = tiny_models.embedder
    path = train_images.image_path(0)
    with pytest.raises(ToolkitError, match="normalize must be"):
        embedder.encode_images([path], normalize="yes")
    with pytest.raises(ToolkitError, match="batch_size"):
        embedder.encode_images([path], normalize=True, batch_size=0)
    with pytest.raises(ToolkitError, match="wrap a single one"):
        embedder.encode_images(str(path), normalize=True)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ToolkitError, match=r"broken\.jpg"):
        embedder.encode_images([broken], normalize=True)


def test_from_pretrained_matches_the_loaded_bundle(tiny_trained, tiny_models, train_images):
    embedder = DemoEmbedder.from_pretrained(tiny_trained[0])
    assert embedder.identity == tiny_models.embedder.identity
    path = [train_images.image_path(3)]
    np.testing.assert_array_equal(
        embedder.encode_images(path, normalize=False), tiny_models.embedder.encode_images(path, normalize=False)
    )
