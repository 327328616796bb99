"""The decoding pipeline on the tiny demo bundle: types and shapes, retrieval above chance, controls, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError

from ._tiny import GROUP

pytestmark = pytest.mark.xdist_group(GROUP)


def test_lists_encoders_subjects_and_trials(tiny_pipe):
    assert tiny_pipe.encoders == ["atm-s", "nice"]
    assert tiny_pipe.subjects == ["sub-01", "sub-02"]
    trials = tiny_pipe.trials("sub-01", "test", average=True)
    assert trials.data.shape == (8, 1, 63, 250) and trials.images is not None
    embeds, concepts = tiny_pipe.gallery("image")
    assert embeds.shape[0] == 8 and len(concepts) == 8
    assert np.allclose(np.linalg.norm(embeds, axis=1), 1, atol=1e-4)
    assert concepts == [trials.images.concept_of(i) for i in range(8)]
    raw, _ = tiny_pipe.gallery("image", normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1, atol=1e-2)


def test_retrieve_returns_topk_and_beats_chance(tiny_pipe):
    trials = tiny_pipe.trials("sub-01", "test", average=True)
    out = tiny_pipe.retrieve(trials.data[:, 0], "sub-01", k=3)
    assert out.indices.shape == (8, 3) and out.indices.dtype == np.int64
    assert out.scores.shape == (8, 3) and np.all(np.diff(out.scores, axis=1) <= 1e-6)
    assert len(out.concepts) == 8 and all(len(c) == 3 for c in out.concepts)
    assert out.eeg_embeds.shape[0] == 8 and out.encoder == "atm-s"
    # One trial (2-D) works too; text gallery as well.
    single = tiny_pipe.retrieve(trials.data[0, 0], "sub-01", k=1, gallery="text", encoder="nice")
    assert single.indices.shape == (1, 1) and single.gallery == "text"
    # The tiny preset has a high SNR: both encoders rank the true image far above chance (mean rank 4.5 of 8).
    for encoder in tiny_pipe.encoders:
        full = tiny_pipe.retrieve(trials.data[:, 0], "sub-01", encoder=encoder, k=8)
        ranks = np.array([list(row).index(i) for i, row in enumerate(full.indices)])
        assert ranks.mean() < 2.5, (encoder, ranks)


def test_evaluate_has_card_and_intervals(tiny_pipe):
    result = tiny_pipe.evaluate("sub-02", encoder="nice", ks=[2, 4], n_draws=5)
    assert result.protocol.subjects == ("sub-02",) and not result.protocol.selected_on_test
    assert result.protocol.repetitions_averaged == 4
    two = result.score(2)
    assert two.exact_ci[0] <= two.exact <= two.exact_ci[1] and two.exact > 0.6
    card = tiny_pipe.protocol_card("sub-01", gallery="text")
    assert card.gallery_kind == "text"


def test_reconstruct_returns_images_controls_and_embeddings(tiny_pipe):
    trials = tiny_pipe.trials("sub-01", "test", average=True)
    rec = tiny_pipe.reconstruct(trials.data[:3, 0], "sub-01", seed=1, num_inference_steps=5, size=32)
    assert len(rec.images) == len(rec.shuffled_images) == len(rec.prior_only_images) == 3
    assert rec.images[0].size == (32, 32)
    from toolkit.pipeline import DemoBackend, GeneratorBackend

    assert isinstance(tiny_pipe.backend, DemoBackend) and isinstance(tiny_pipe.backend, GeneratorBackend)
    assert tiny_pipe.vision is tiny_pipe.backend.models and "generator" not in rec.settings
    dim = tiny_pipe.vision.config.embed_dim
    for embeds in (rec.image_embeds, rec.shuffled_embeds, rec.prior_only_embeds, rec.eeg_embeds):
        assert embeds.shape == (3, dim) and np.isfinite(embeds).all()
    assert np.all(rec.shuffled_from != np.arange(3))  # every row is conditioned on another trial
    again = tiny_pipe.reconstruct(trials.data[:3, 0], "sub-01", seed=1, num_inference_steps=5, size=32)
    np.testing.assert_allclose(again.image_embeds, rec.image_embeds, atol=1e-5)  # seeded
    one = tiny_pipe.reconstruct(trials.data[0, 0], "sub-01", num_inference_steps=2)
    assert one.shuffled_from.tolist() == [-1] and len(one.images) == 1
    captions = tiny_pipe.caption(trials.data[:2, 0], "sub-01", num_inference_steps=3)
    assert len(captions) == 2 and all(c.startswith("a ") for c in captions)
    assert len(tiny_pipe.caption(trials.data[:2, 0], via="eeg")) == 2


def test_bad_inputs_get_one_clear_error(tiny_pipe):
    trials = tiny_pipe.trials("sub-01", "test", average=True)
    eeg = trials.data[:2, 0]
    with pytest.raises(ToolkitError, match="available encoders: atm-s, nice"):
        tiny_pipe.retrieve(eeg, encoder="eegnet-x")
    with pytest.raises(ToolkitError, match=r"\(n_trials, 63, 250\)"):
        tiny_pipe.retrieve(eeg[:, :10])
    with pytest.raises(ToolkitError, match="NaN"):
        tiny_pipe.retrieve(np.full((1, 63, 250), np.nan, np.float32))
    with pytest.raises(ToolkitError, match="Unknown subject 'sub-09'"):
        tiny_pipe.retrieve(eeg, "sub-09")
    with pytest.raises(ToolkitError, match="k must be"):
        tiny_pipe.retrieve(eeg, k=99)
    with pytest.raises(ToolkitError, match="Unknown gallery"):
        tiny_pipe.retrieve(eeg, gallery="audio")
    with pytest.raises(ToolkitError, match="seed"):
        tiny_pipe.reconstruct(eeg, seed=-1)
    with pytest.raises(ToolkitError, match="Unknown subject"):
        tiny_pipe.evaluate("sub-07")


def test_real_bundle_lists_what_is_missing(monkeypatch, tmp_path):
    from toolkit.pipeline import load_pipeline

    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path))
    monkeypatch.delenv("EEG_TOOLKIT_DATA", raising=False)
    with pytest.raises(ToolkitError, match="EEG_TOOLKIT_DATA") as err:
        load_pipeline("atm-things-eeg")
    assert "encoder checkpoints" in str(err.value) and "diffusion prior" in str(err.value)
    with pytest.raises(ToolkitError, match="Unknown bundle"):
        load_pipeline("nope")


def test_unbuilt_bundle_without_build_says_how(monkeypatch, tmp_path):
    from toolkit.pipeline import load_pipeline

    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path))
    with pytest.raises(ToolkitError, match="not built"):
        load_pipeline("demo", build=False)
