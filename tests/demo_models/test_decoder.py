"""DemoDecoder: embeddings → images (sizes, determinism, direction only, reconstruction quality, bad input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit import ToolkitError
from toolkit.generation import DemoDecoder

pytestmark = pytest.mark.xdist_group("demo-models")


@pytest.fixture(scope="module")
def train_embeds(tiny_models, train_images):
    paths = [train_images.image_path(i) for i in range(train_images.n_conditions)]
    return tiny_models.embedder.encode_images(paths, normalize=False)


def test_decoder_returns_images_of_the_requested_size(tiny_models, train_embeds):
    decoder = tiny_models.decoder
    out = decoder(train_embeds[:3])
    assert len(out.images) == 3 and out.num_images_per_embed == 1
    assert all(isinstance(img, Image.Image) and img.size == (256, 256) and img.mode == "RGB" for img in out.images)
    assert out.prompts == ["", "", ""] and out.seeds is None
    small = decoder(torch.from_numpy(train_embeds[:2]), height=48, width=64, prompt=["a", "b"], seed=5)
    assert [img.size for img in small.images] == [(64, 48), (64, 48)]
    assert small.prompts == ["a", "b"] and small.seeds == [5, 6]
    pixels = decoder.decode(train_embeds[:4], batch_size=3)
    assert pixels.shape == (4, 32, 32, 3) and pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_decoding_is_deterministic_and_uses_only_the_direction(tiny_models, train_embeds):
    decoder = tiny_models.decoder
    raw = decoder.decode(train_embeds[:5])
    np.testing.assert_array_equal(decoder.decode(train_embeds[:5]), raw)
    unit = train_embeds[:5] / np.linalg.norm(train_embeds[:5], axis=1, keepdims=True)
    np.testing.assert_allclose(decoder.decode(unit), raw, atol=1e-5)
    np.testing.assert_allclose(decoder.decode(3.0 * unit.astype(np.float64)), raw, atol=1e-5)
    # A batch decodes every row as it would alone.
    np.testing.assert_allclose(decoder.decode(train_embeds[2:3]), raw[2:3], atol=1e-5)
    first = np.asarray(decoder(train_embeds[:1], seed=1).images[0])
    np.testing.assert_array_equal(np.asarray(decoder(train_embeds[:1], seed=99).images[0]), first)


def test_reconstructions_resemble_their_own_images(tiny_models, train_images, train_embeds):
    import torch.nn.functional as F

    from toolkit.embeddings.demo import images_to_tensor

    paths = [train_images.image_path(i) for i in range(train_images.n_conditions)]
    targets = F.adaptive_avg_pool2d(images_to_tensor(paths, 64), 32).permute(0, 2, 3, 1).numpy()
    recon = tiny_models.decoder.decode(train_embeds)
    own = ((recon - targets) ** 2).mean()
    shuffled = ((recon[np.roll(np.arange(len(recon)), 7)] - targets) ** 2).mean()
    assert own < 0.5 * shuffled

    # The object comes back in its colour: the 10 % most saturated pixels are nearest to the concept's palette colour.
    colours = [train_images.concept_of(i).split("_")[0] for i in range(train_images.n_conditions)]
    assert np.mean([_object_colour(img, tiny_models.config) == c for img, c in zip(recon, colours)]) >= 0.9


def _object_colour(pixels: np.ndarray, config) -> str:
    """The palette colour nearest to the mean of the most saturated pixels of an (h, w, 3) image in [0, 1]."""
    from toolkit.data.simulate import COLOURS

    sat = pixels.max(axis=-1) - pixels.min(axis=-1)
    mean = pixels[sat >= np.quantile(sat, 0.9)].mean(axis=0)
    palette = {name: np.asarray(COLOURS[name]) / 255.0 for name in config.vocabulary["colour"]}
    return min(palette, key=lambda name: np.linalg.norm(palette[name] - mean))


def test_text_embeddings_decode_to_their_colour(tiny_models):
    vocab = tiny_models.config.vocabulary
    texts = [f"{c} plain {vocab['shape'][0]}" for c in vocab["colour"]]
    pixels = tiny_models.decoder.decode(tiny_models.embedder.encode_texts(texts, normalize=False))
    assert [_object_colour(img, tiny_models.config) for img in pixels] == list(vocab["colour"])


def test_bad_embeddings_are_refused(tiny_models, train_embeds):
    decoder = tiny_models.decoder
    with pytest.raises(ToolkitError, match=r"\(batch, 32\)"):
        decoder(np.zeros((2, 31), np.float32))
    with pytest.raises(ToolkitError, match="add a batch dimension"):
        decoder(train_embeds[0])
    with pytest.raises(ToolkitError, match="NaN"):
        decoder(np.full((1, 32), np.nan, np.float32))
    with pytest.raises(ToolkitError, match="all-zero rows"):
        decoder(np.zeros((2, 32), np.float32))
    with pytest.raises(ToolkitError, match="floating point"):
        decoder(torch.ones(1, 32, dtype=torch.int64))
    with pytest.raises(ToolkitError, match="NumPy array"):
        decoder([[0.1] * 32])
    with pytest.raises(ToolkitError, match="height"):
        decoder(train_embeds[:1], height=0)
    with pytest.raises(ToolkitError, match="prompt"):
        decoder(train_embeds[:2], prompt=["only one"])


def test_from_pretrained_and_caption_loop(tiny_trained, tiny_models, train_embeds):
    from toolkit.captions import CaptionLoop

    decoder = DemoDecoder.from_pretrained(tiny_trained[0])
    assert decoder.weights == tiny_models.decoder.weights and decoder.image_embed_dim == 32
    out = CaptionLoop(tiny_models.captioner)(train_embeds[:2], generate=decoder, seed=0)
    assert out.prompts == out.captions == tiny_models.captioner(train_embeds[:2])
    assert out.images.prompts == out.captions and len(out.images.images) == 2
