"""The "Reconstruct & caption" tab: handler on the tiny bundle, validated controls, ``/reconstruct`` through
gradio_client."""

from __future__ import annotations

import numpy as np
import pytest

from ._marks import DECODING

gr = pytest.importorskip("gradio")

pytestmark = DECODING


@pytest.fixture(scope="module")
def tab(tiny_pipeline):
    from demos.reconstruct_tab import ReconstructTab

    return ReconstructTab(tiny_pipeline)


def test_reconstruction_beside_stimulus_and_controls(tab, tiny_pipeline):
    stimulus, recon, shuffled, prior_only, captions, metrics, semantic = tab.reconstruct(
        "sub-01", 2, -1, "atm-s", 3, 4, 5.0
    )
    trials = tiny_pipeline.trials("sub-01", "test")
    assert stimulus == str(trials.images.image_path(2))
    assert all(img.size == (256, 256) for img in (recon, shuffled, prior_only, semantic))
    # The library's reconstruction with the same settings: the tab adds nothing to the pixels.
    eeg = trials.data[2].mean(axis=0)
    out = tiny_pipeline.reconstruct(eeg, "sub-01", encoder="atm-s", seed=3, num_inference_steps=4, size=256)
    assert np.array_equal(np.asarray(recon), np.asarray(out.images[0]))
    assert np.array_equal(np.asarray(prior_only), np.asarray(out.prior_only_images[0]))
    # The semantic path beside it: the reconstruction's caption drawn by the demo's renderer.
    assert np.array_equal(np.asarray(semantic), np.asarray(out.semantic_images[0]))
    drawn = tiny_pipeline.backend.render_captions(tiny_pipeline.backend.caption(out.image_embeds), size=256)[0]
    assert np.array_equal(np.asarray(semantic), np.asarray(drawn))
    assert trials.images.concept_of(2) in captions
    assert captions.count("- **") == 3  # one caption per image
    rows = [line for line in metrics.splitlines() if line.startswith("| ") and "PixCorr" not in line]
    assert len(rows) == 4 and rows[-1].startswith("| Semantic path (caption -> renderer) |")
    values = [float(v) for row in rows for v in row.strip("| ").split(" | ")[1:]]
    assert all(-1.0 <= v <= 1.0 for v in values)


def test_semantic_slot_stays_empty_without_a_renderer(tab, tiny_pipeline, monkeypatch):
    # The real bundle's backend renders no captions: the tab's last output is None and the table has three rows.
    monkeypatch.setattr(tiny_pipeline.backend, "render_captions", None)
    out = tab.reconstruct("sub-01", 0, -1, "atm-s", 0, 2, 5.0)
    assert len(out) == 7 and out[-1] is None and "Semantic path" not in out[5]


def test_seed_changes_the_images(tab):
    a = tab.reconstruct("sub-02", 0, 0, "nice", 0, 3, 5.0)[1]
    b = tab.reconstruct("sub-02", 0, 0, "nice", 1, 3, 5.0)[1]
    assert not np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sub-01", 0, -1, "clip", 0, 4, 5.0), "Unknown encoder 'clip'; this bundle has atm-s, nice"),
        (("sub-01", 0, -1, "", 0, 4, 5.0), "Choose an encoder"),
        (("sub-01", 0, -1, "atm-s", -1, 4, 5.0), "seed must be a whole number from 0"),
        (("sub-01", 0, -1, "atm-s", 0, 0, 5.0), "steps must be a whole number from 1 to 100"),
        (("sub-01", 0, -1, "atm-s", 0, 101, 5.0), "steps must be a whole number from 1 to 100"),
        (("sub-01", 0, -1, "atm-s", 0, 4, 25.0), "guidance must be a number from 0 to 20"),
        (("sub-01", 0, -1, "atm-s", 0, 4, float("nan")), "guidance must be a number"),
        (("sub-01", -3, -1, "atm-s", 0, 4, 5.0), "trial must be a whole number from 0 to 7"),
    ],
)
def test_bad_input_is_one_clear_error(tab, args, message):
    with pytest.raises(gr.Error, match=message):
        tab.reconstruct(*args)


def test_reconstruct_through_gradio_client(decoding_app):
    from gradio_client import Client

    url, _ = decoding_app
    client = Client(url, verbose=False)
    stimulus, recon, shuffled, prior_only, captions, metrics, semantic = client.predict(
        "sub-01", 1, -1, "nice", 0, 3, 5.0, api_name="/reconstruct"
    )
    for path in (stimulus, recon, shuffled, prior_only, semantic):
        assert path and str(path).endswith((".png", ".jpg", ".webp"))
    assert "Stimulus" in captions and "PixCorr" in metrics
    with pytest.raises(Exception, match="Unknown encoder 'nope'"):
        client.predict("sub-01", 1, -1, "nope", 0, 3, 5.0, api_name="/reconstruct")
    with pytest.raises(Exception, match=r"less than minimum value 0|seed must be a whole number"):
        client.predict("sub-01", 1, -1, "nice", -5, 3, 5.0, api_name="/reconstruct")
    # Still serving after the errors.
    assert "Stimulus" in client.predict("sub-01", 0, -1, "atm-s", 1, 2, 1.0, api_name="/reconstruct")[4]
