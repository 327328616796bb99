"""The cached trial browser behind the app's "Trials" tab."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.viz import TrialBrowser, TrialView

from .helpers import FakeStore, make_trialset


@pytest.fixture
def store(tmp_path):
    return FakeStore(
        {
            ("sub-01", "test"): make_trialset(images_root=tmp_path / "test_images"),
            ("sub-01", "train"): make_trialset(n_cond=6, n_rep=2, split="train", seed=1),
        }
    )


def test_render_returns_the_view(store, tmp_path):
    browser = TrialBrowser(store)
    view = browser.render("sub-01", "test", 3, repetition=2, average=False, latency=0.4)
    assert isinstance(view, TrialView)
    assert view.image_path == tmp_path / "test_images" / "00002_testconcept1" / "img_1.jpg"
    assert view.erp.layout.title.text == "testconcept1 — repetition 2"
    ts = store.sets[("sub-01", "test")]
    assert len(view.erp.data) == ts.n_chans + 2  # channels, GFP, GFP of the average
    np.testing.assert_allclose(view.erp.data[0].y, ts.data[3, 2, 0], rtol=1e-6)
    assert view.topomap.dtype == np.uint8 and view.topomap.ndim == 3
    meta = view.metadata
    assert (meta["condition"], meta["repetition"], meta["sample"], meta["latency_s"]) == (3, 2, 20, 0.4)
    assert meta["image"] == "00002_testconcept1/img_1.jpg" and meta["units"] == "a.u."
    assert "repetition 2" in view.metadata_markdown()


def test_average_and_single_trial_differ(store):
    browser = TrialBrowser(store)
    single = browser.render("sub-01", "test", 1, repetition=0, average=False, latency=0.2)
    average = browser.render("sub-01", "test", 1, average=True, latency=0.2)
    ts = store.sets[("sub-01", "test")]
    np.testing.assert_allclose(average.erp.data[0].y, ts.data[1, :, 0].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(single.erp.data[0].y, average.erp.data[0].y)
    assert not np.array_equal(single.topomap, average.topomap)
    assert len(average.erp.data) == ts.n_chans + 1  # no comparison trace when the average is shown
    assert "average of 3 repetitions" in average.metadata_markdown()


def test_trial_sets_are_loaded_once(store):
    browser = TrialBrowser(store)
    for cond in range(4):
        browser.render("sub-01", "test", cond, latency=0.1)
    browser.render("sub-01", "train", 0, latency=0.1)
    assert store.loads == [("sub-01", "test"), ("sub-01", "train")]


def test_choices(store):
    browser = TrialBrowser(store)
    assert browser.subjects == ["sub-01"]
    assert browser.splits("sub-01") == ["test", "train"]
    assert browser.concepts("sub-01", "train") == ["trainconcept0", "trainconcept1", "trainconcept2"]
    assert browser.conditions("sub-01", "train", "trainconcept1") == [("img_0.jpg", 2), ("img_1.jpg", 3)]
    assert browser.render("sub-01", "train", 0).image_path is None  # no image folder for this set


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("sub-09", "test", 0), {}, "Subject 'sub-09'"),
        (("sub-01", "val", 0), {}, "Split 'val'"),
        (("sub-01", "test", 4), {}, "condition 4 is out of range"),
        (("sub-01", "test", 1.5), {}, "condition 1.5"),
        (("sub-01", "test", "x"), {}, "condition must be an integer"),
        (("sub-01", "test", 0), {"repetition": 3}, "repetition 3"),
        (("sub-01", "test", 0), {"latency": 2.0}, "latency 2.0 s is outside"),
    ],
)
def test_bad_selection_is_one_clear_error(store, args, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        TrialBrowser(store).render(*args, **kwargs)


def test_store_must_look_like_a_store():
    with pytest.raises(ToolkitError, match="opened store"):
        TrialBrowser(object())


def test_channels_without_positions_get_a_note_instead_of_a_map():
    import dataclasses

    ts = make_trialset()
    unnamed = dataclasses.replace(ts, ch_names=[f"E{i + 1}" for i in range(ts.n_chans)])
    view = TrialBrowser(FakeStore({("sub-01", "test"): unnamed})).render("sub-01", "test", 0, latency=0.2)
    assert view.topomap.ndim == 3
    assert "no position" in view.metadata["topomap_note"]
    assert "topomap unavailable" in view.metadata_markdown()
    assert len(view.erp.data) == ts.n_chans + 2 and view.erp.data[0].line.color is None
