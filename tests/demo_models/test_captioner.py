"""DemoCaptioner: captions and attribute probabilities from demo embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.captions import DemoCaptioner
from toolkit.embeddings.demo import ATTRIBUTES

pytestmark = pytest.mark.xdist_group("demo-models")


@pytest.fixture(scope="module")
def train_embeds(tiny_models, train_images):
    paths = [train_images.image_path(i) for i in range(train_images.n_conditions)]
    return tiny_models.embedder.encode_images(paths, normalize=False)


def test_captions_name_the_attributes_of_training_images(tiny_models, train_images, train_embeds):
    captions = tiny_models.captioner(train_embeds)
    assert len(captions) == train_images.n_conditions
    truth = ["a " + train_images.concept_of(i).replace("_", " ") for i in range(train_images.n_conditions)]
    assert all(c.startswith("a ") and len(c.split()) == 4 for c in captions)
    assert np.mean([c == t for c, t in zip(captions, truth)]) >= 0.9


def test_captions_ignore_the_scale_of_embeddings(tiny_models, train_embeds):
    captioner = tiny_models.captioner
    raw = captioner(train_embeds)
    unit = train_embeds / np.linalg.norm(train_embeds, axis=1, keepdims=True)
    assert captioner(unit) == raw
    assert captioner(torch.from_numpy(5.0 * train_embeds).double()) == raw


def test_predict_gives_probabilities_and_alternatives(tiny_models, train_embeds):
    captioner = tiny_models.captioner
    probs = captioner.probabilities(train_embeds[:6])
    for attribute in ATTRIBUTES:
        n_values = len(tiny_models.config.vocabulary[attribute])
        assert probs[attribute].shape == (6, n_values)
        np.testing.assert_allclose(probs[attribute].sum(axis=1), 1.0, rtol=1e-5)
    predictions = captioner.predict(train_embeds[:6], top_k=3)
    assert [p.caption for p in predictions] == captioner(train_embeds[:6])
    for p in predictions:
        assert set(p.values) == set(ATTRIBUTES)
        for attribute in ATTRIBUTES:
            top = p.top[attribute]
            assert len(top) == 3 and top[0][0] == p.values[attribute]
            assert [q for _, q in top] == sorted((q for _, q in top), reverse=True)
    # More alternatives than values: all of them.
    n_textures = len(tiny_models.config.vocabulary["texture"])
    assert len(captioner.predict(train_embeds[:1], top_k=50)[0].top["texture"]) == n_textures


def test_text_embeddings_caption_to_their_words(tiny_models):
    vocab = tiny_models.config.vocabulary
    texts = [f"{c}_{t}_{s}" for c, t, s in zip(vocab["colour"], vocab["texture"], vocab["shape"])]
    captions = tiny_models.captioner(tiny_models.embedder.encode_texts(texts, normalize=True))
    # Every colour is recovered from the words alone (colour is the most reliable attribute).
    assert [c.split()[1] for c in captions] == [t.split("_")[0] for t in texts]


def test_bad_inputs_are_refused(tiny_models, train_embeds):
    captioner = tiny_models.captioner
    with pytest.raises(ToolkitError, match=r"\(batch, 32\)"):
        captioner(np.zeros((1, 8), np.float32))
    with pytest.raises(ToolkitError, match=r"\(batch, 32\)"):
        captioner(np.zeros((0, 32), np.float32))
    with pytest.raises(ToolkitError, match="NaN"):
        captioner(np.full((1, 32), np.inf, np.float32))
    with pytest.raises(ToolkitError, match="floating-point"):
        captioner([[0.0] * 32])
    with pytest.raises(ToolkitError, match="top_k"):
        captioner.predict(train_embeds[:1], top_k=0)


def test_from_pretrained(tiny_trained, tiny_models, train_embeds):
    captioner = DemoCaptioner.from_pretrained(tiny_trained[0])
    assert captioner.weights == tiny_models.captioner.weights
    assert captioner(train_embeds[:5]) == tiny_models.captioner(train_embeds[:5])
    assert captioner.settings["decoding"].startswith("argmax")
