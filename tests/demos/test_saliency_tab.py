"""The "Saliency" tab: attribution maps and cached ablations on the tiny bundle, bad input, ``/saliency`` via
gradio_client."""

from __future__ import annotations

import numpy as np
import pytest

from ._marks import DECODING

gr = pytest.importorskip("gradio")

pytestmark = DECODING


@pytest.fixture(scope="module")
def tab(tiny_pipeline):
    from demos.saliency_tab import SaliencyTab

    return SaliencyTab(tiny_pipeline)


def test_maps_and_ablation_bars(tab, tiny_pipeline):
    topomap, heatmap, course, windows, regions, summary = tab.saliency(
        "sub-01", 4, -1, "atm-s", "saliency", "similarity", 0.2
    )
    for fig in (topomap, heatmap, course, windows, regions):
        assert type(fig).__module__.startswith("plotly") and fig.data
    trials = tiny_pipeline.trials("sub-01", "test")
    attr = tab.attribution("sub-01", 4, -1, "atm-s", "saliency", "similarity", None)  # cached: eeg unused
    assert attr.shape == (trials.n_chans, trials.n_times) and np.abs(attr).sum() > 0
    heat = next(t for t in heatmap.data if t.type == "heatmap")
    assert np.asarray(heat.z).shape == (trials.n_chans, trials.n_times)
    assert "200 ms" in topomap.layout.title.text
    window_result, region_result = tab.ablations("sub-01", "atm-s")
    assert len(windows.data[0].x) == len(window_result.select("sliding")) > 1
    assert set(regions.data[0].x) == {r["region"] for r in region_result.select("region_keep")}
    assert "Attribution peaks at" in summary and trials.images.concept_of(4) in summary


def test_latency_redraws_from_the_cache(tab):
    first = tab.saliency("sub-01", 4, -1, "atm-s", "saliency", "similarity", 0.1)
    again = tab.saliency("sub-01", 4, -1, "atm-s", "saliency", "similarity", 0.5)
    assert "100 ms" in first[0].layout.title.text and "500 ms" in again[0].layout.title.text
    assert tab.ablations("sub-01", "atm-s") is tab.ablations("sub-01", "atm-s")


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_other_methods_and_margin_target(tab, method):
    *_, summary = tab.saliency("sub-02", 1, 0, "nice", method, "margin", 0.3)
    assert "margin of the true image" in summary
    attr = tab.attribution("sub-02", 1, 0, "nice", method, "margin", None)
    assert np.isfinite(attr).all() and np.abs(attr).sum() > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sub-01", 0, -1, "atm-s", "lime", "similarity", 0.2), "Unknown attribution method 'lime'"),
        (("sub-01", 0, -1, "atm-s", "ig", "logit", 0.2), "Unknown attribution target 'logit'"),
        (("sub-01", 0, -1, "atm-s", ["ig"], "similarity", 0.2), r"Unknown attribution method \['ig'\]"),
        (("sub-01", 0, -1, "atm-s", "ig", {"t": 1}, 0.2), r"Unknown attribution target \{'t': 1\}"),
        (("sub-01", 0, -1, "eegnet", "ig", "similarity", 0.2), "Unknown encoder 'eegnet'"),
        (("sub-01", 0, -1, "atm-s", "ig", "similarity", 3.0), r"latency \(s\) must be a number from 0 to 0.996"),
        (("sub-01", "", -1, "atm-s", "ig", "similarity", 0.2), "Choose a trial"),
    ],
)
def test_bad_input_is_one_clear_error(tab, args, message):
    with pytest.raises(gr.Error, match=message):
        tab.saliency(*args)


def test_saliency_through_gradio_client(decoding_app):
    from gradio_client import Client

    url, _ = decoding_app
    client = Client(url, verbose=False)
    *plots, summary = client.predict("sub-01", 0, -1, "atm-s", "saliency", "similarity", 0.2, api_name="/saliency")
    assert len(plots) == 5 and all(plot for plot in plots)
    assert "Gradient saliency" in summary
    with pytest.raises(Exception, match=r"'gradcam'.*not in the list of choices"):  # Gradio checks the radio
        client.predict("sub-01", 0, -1, "atm-s", "gradcam", "similarity", 0.2, api_name="/saliency")
    with pytest.raises(Exception, match="Unknown encoder 'eegnet'"):
        client.predict("sub-01", 0, -1, "eegnet", "saliency", "similarity", 0.2, api_name="/saliency")
    *plots, summary = client.predict("sub-02", 1, -1, "nice", "saliency", "margin", 0.4, api_name="/saliency")
    assert "margin" in summary
