"""Attribution figures: topomap rows, channel x time heat map, time course, region bars (matplotlib and plotly)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data.channels import REGIONS_63, THINGS_EEG_63
from toolkit.viz import (
    figure_to_array,
    plot_attribution_heatmap,
    plot_attribution_time_course,
    plot_attribution_topomaps,
    plot_region_bars,
)

TIMES = np.arange(100) / 100.0
WINDOWS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6)]


@pytest.fixture
def attr() -> np.ndarray:
    """Three trials; occipital channels positive between 200 and 400 ms, one frontal channel negative late."""
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((3, 63, 100)) * 0.01
    occ = [THINGS_EEG_63.index(c) for c in REGIONS_63["occipital"]]
    maps[:, occ, 20:40] += 1.0
    maps[:, THINGS_EEG_63.index("Fp1"), 60:80] -= 3.0
    return maps


def test_topomap_row_shares_symmetric_limits(attr, no_pyplot_figures):
    from matplotlib.figure import Figure

    fig = plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, windows=WINDOWS, title="IG")
    assert isinstance(fig, Figure)
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps[:3]] == ["0–200 ms", "200–400 ms", "400–600 ms"]
    clims = {ax.images[0].get_clim() for ax in maps[:3]}
    assert len(clims) == 1  # one colour scale
    vmin, vmax = clims.pop()
    # the largest window mean: +1 on the occipital channels (200-400 ms); Fp1 is negative only after 600 ms
    assert vmin == -vmax and vmax == pytest.approx(1.0, abs=0.02)
    assert maps[0].images[0].get_cmap().name == "RdBu_r"
    assert figure_to_array(fig).shape[2] == 3


def test_topomaps_at_latencies_unsigned_use_reds(attr):
    fig = plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, latencies=[0.1, 0.3], signed=False, colorbar=False)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2 and maps[1].get_title() == "300 ms"
    assert maps[0].images[0].get_cmap().name == "Reds" and maps[0].images[0].get_clim()[0] == 0.0


def test_topomaps_into_given_axes(attr):
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 3)
    assert plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, windows=WINDOWS, axes=axes) is fig
    with pytest.raises(ToolkitError, match="one Axes per map"):
        plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, windows=WINDOWS[:2], axes=axes)


def test_heatmap_orders_channels_by_region(attr):
    fig = plot_attribution_heatmap(attr, THINGS_EEG_63, TIMES)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # regions in ATM's order, channels within a region in the data's order
    expected = [c for region in REGIONS_63.values() for c in THINGS_EEG_63 if c in region]
    assert labels == expected
    image = ax.images[0]
    vmin, vmax = image.get_clim()
    assert vmin == -vmax and image.get_cmap().name == "RdBu_r"
    assert [t.get_text() for t in ax.texts] == list(REGIONS_63)
    data = np.asarray(image.get_array())
    assert data[labels.index("Oz"), 30] == pytest.approx(1.0, abs=0.05)  # the right row and column
    assert data[labels.index("Fp1"), 70] == pytest.approx(-3.0, abs=0.05)
    assert ax.get_xlim()[0] < 0.0 < 0.99 < ax.get_xlim()[1]  # time in seconds


def test_time_course_with_regions_and_shading(attr):
    fig = plot_attribution_time_course(attr, TIMES, ch_names=THINGS_EEG_63, by_group=True, windows=[(0.2, 0.4)])
    ax = fig.axes[0]
    assert len(ax.lines) == 6  # all channels + five regions
    occipital = ax.lines[[ln.get_label() for ln in ax.lines].index("occipital")]
    assert occipital.get_ydata()[30] == pytest.approx(1.0, abs=0.05)
    assert len(ax.patches) == 1  # the shaded window
    with pytest.raises(ToolkitError, match="needs ch_names"):
        plot_attribution_time_course(attr, TIMES, by_group=True)
    with pytest.raises(ToolkitError, match="outside the epoch"):
        plot_attribution_time_course(attr, TIMES, windows=[(0.5, 2.0)])


def test_region_bars(attr):
    from toolkit.explain import region_scores

    scores = region_scores(attr, THINGS_EEG_63)
    fig = plot_region_bars(scores, chance=0.1, sort=True)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == sorted(heights, reverse=True) and len(heights) == 5
    assert ax.get_xticklabels()[0].get_text() == "occipital"
    with pytest.raises(ToolkitError, match="errors lacks"):
        plot_region_bars(scores, errors={"frontal": 0.1})
    with pytest.raises(ToolkitError, match="non-empty mapping"):
        plot_region_bars({})


def test_plotly_variants(attr):
    import plotly.graph_objects as go

    topo = plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, windows=WINDOWS, engine="plotly")
    assert isinstance(topo, go.Figure)
    heat = [t for t in topo.data if t.type == "heatmap"]
    assert len(heat) == 3 and heat[0].zmin == -heat[0].zmax
    assert sum(t.showscale for t in heat) == 1
    assert [a.text for a in topo.layout.annotations] == ["0–200 ms", "200–400 ms", "400–600 ms"]
    scatter = next(t for t in topo.data if t.type == "scatter")
    assert len(scatter.x) == 63
    hm = plot_attribution_heatmap(attr, THINGS_EEG_63, TIMES, engine="plotly")
    assert hm.data[0].zmin == -hm.data[0].zmax and list(hm.data[0].y[:2]) == ["Fp1", "Fp2"]
    tc = plot_attribution_time_course(attr, TIMES, windows=[(0.2, 0.4)], engine="plotly")
    assert len(tc.data) == 1 and len(tc.layout.shapes) == 1
    bars = plot_region_bars({"a": 1.0, "b": 2.0}, engine="plotly")
    assert list(bars.data[0].y) == [1.0, 2.0]


def test_bad_figure_inputs(attr):
    with pytest.raises(ToolkitError, match="engine must be one of"):
        plot_attribution_heatmap(attr, THINGS_EEG_63, TIMES, engine="bokeh")
    with pytest.raises(ToolkitError, match="not both"):
        plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, windows=WINDOWS, latencies=[0.1])
    with pytest.raises(ToolkitError, match="62 names but the maps have 63 channels"):
        plot_attribution_heatmap(attr, THINGS_EEG_63[:62], TIMES)
    with pytest.raises(ToolkitError, match="outside the epoch"):
        plot_attribution_topomaps(attr, THINGS_EEG_63, TIMES, latencies=[1.5])
