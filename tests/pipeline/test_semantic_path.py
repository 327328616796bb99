"""The demo bundle's semantic path: captions of the predicted embeddings drawn by the simulator's renderer."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError

from ._tiny import GROUP

pytestmark = pytest.mark.xdist_group(GROUP)


def _px(images) -> list[np.ndarray]:
    return [np.asarray(img) for img in images]


def test_render_captions_draws_the_caption_at_the_canonical_pose(tiny_pipe):
    from toolkit.data.simulate import COLOURS

    backend = tiny_pipe.backend
    red, blue = backend.render_captions(["a red plain circle", "a blue plain square"], size=64)
    assert red.mode == "RGB" and red.size == (64, 64)
    a, b = np.asarray(red).astype(int), np.asarray(blue).astype(int)
    # Centred shape in the caption's colour (no jitter) on a flat neutral grey (no blobs, no grain).
    np.testing.assert_allclose(a[32, 32], COLOURS["red"], atol=2)
    np.testing.assert_allclose(b[32, 32], COLOURS["blue"], atol=2)
    assert (a[:4, :4] == 130).all() and (b[:4, :4] == 130).all()
    # Bounding circle of radius 0.29 * 64 ≈ 18.6 px: a point 16 px left of the centre lies inside the circle but
    # outside the square inscribed in it (half side ≈ 13.1 px).
    np.testing.assert_allclose(a[32, 32 - 16], COLOURS["red"], atol=2)
    assert (b[32, 32 - 16] == 130).all() and np.abs(b[32, 32 - 10] - COLOURS["blue"]).max() <= 2
    # Deterministic (the speckled texture uses the renderer's seeded random stream), and "an" / case tolerated.
    again = backend.render_captions(["A red speckled star", "a red speckled star"], size=48)
    assert np.array_equal(*_px(again))
    plain = backend.render_captions(["a red plain star"], size=48)[0]
    assert not np.array_equal(np.asarray(again[0]), np.asarray(plain))


@pytest.mark.parametrize(
    ("captions", "message"),
    [
        (["a red striped blob"], r"'blob' is not a shape the renderer knows; use one of circle, square"),
        (["a mauve striped circle"], r"'mauve' is not a colour the renderer knows"),
        (["a red circle striped"], r"'circle' is not a texture the renderer knows"),
        (["red circle"], r"is not of the form 'a <colour> <texture> <shape>'"),
        ([3], "A caption must be a string"),
        ("a red plain circle", "captions must be a list of strings"),
    ],
)
def test_bad_captions_name_the_word(tiny_pipe, captions, message):
    with pytest.raises(ToolkitError, match=message):
        tiny_pipe.backend.render_captions(captions, size=32)


def test_bad_size_is_refused(tiny_pipe):
    with pytest.raises(ToolkitError, match="size must be a whole number of pixels"):
        tiny_pipe.backend.render_captions(["a red plain circle"], size=2.5)


def test_reconstruct_adds_the_semantic_path_of_reconstruction_and_controls(tiny_pipe, monkeypatch):
    trials = tiny_pipe.trials("sub-01", "test", average=True)
    eeg = trials.data[:, 0]
    kwargs = {"seed": 2, "num_inference_steps": 3}
    rec = tiny_pipe.reconstruct(eeg, "sub-01", size=40, **kwargs)
    n = eeg.shape[0]
    assert tiny_pipe.has_semantic_path
    fields = (rec.semantic_images, rec.shuffled_semantic_images, rec.prior_only_semantic_images)
    assert all(len(images) == n and all(img.size == (40, 40) for img in images) for images in fields)
    # The captions are those DecodingPipeline.caption gives; the images are their direct renders.
    captions = [tiny_pipe.backend.caption(e) for e in (rec.image_embeds, rec.shuffled_embeds, rec.prior_only_embeds)]
    assert captions[0] == tiny_pipe.caption(eeg, "sub-01", **kwargs)
    for images, texts in zip(fields, captions, strict=True):
        assert all(
            np.array_equal(a, b) for a, b in zip(_px(images), _px(tiny_pipe.backend.render_captions(texts, size=40)))
        )
    # Reconstruction and controls: the same image exactly when the caption is the same.
    differing = 0
    for control, texts in ((fields[1], captions[1]), (fields[2], captions[2])):
        for i in range(n):
            same = np.array_equal(np.asarray(fields[0][i]), np.asarray(control[i]))
            assert same == (captions[0][i] == texts[i])
            differing += not same
    assert differing > 0
    # Without a renderer (the real bundle's backend) the fields stay None and every other output is unchanged.
    monkeypatch.setattr(tiny_pipe.backend, "render_captions", None)
    plain = tiny_pipe.reconstruct(eeg, "sub-01", size=40, **kwargs)
    assert not tiny_pipe.has_semantic_path
    assert plain.semantic_images is plain.shuffled_semantic_images is plain.prior_only_semantic_images is None
    for a, b in ((plain.images, rec.images), (plain.shuffled_images, rec.shuffled_images),
                 (plain.prior_only_images, rec.prior_only_images)):
        assert all(np.array_equal(x, y) for x, y in zip(_px(a), _px(b), strict=True))
    np.testing.assert_array_equal(plain.image_embeds, rec.image_embeds)
    assert plain.settings == rec.settings


def test_semantic_images_default_to_the_decoder_size(tiny_pipe):
    trials = tiny_pipe.trials("sub-02", "test", average=True)
    rec = tiny_pipe.reconstruct(trials.data[0, 0], "sub-02", num_inference_steps=2)
    assert len(rec.semantic_images) == 1 and rec.semantic_images[0].size == rec.images[0].size
