"""Butterfly ERP plots (plotly and matplotlib engines)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.viz import as_erp, data_units, plot_butterfly


def test_plotly_one_trace_per_channel_with_names_in_hover(trialset):
    fig = plot_butterfly(trialset.trial(0, 0), times=trialset.times, ch_names=trialset.ch_names, title="t")
    assert type(fig).__module__.startswith("plotly")
    assert len(fig.data) == trialset.n_chans
    for trace, name in zip(fig.data, trialset.ch_names):
        assert trace.name == name
        assert f"<b>{name}</b>" in trace.hovertemplate
        np.testing.assert_allclose(trace.x, trialset.times, atol=1e-6)
    np.testing.assert_allclose(fig.data[3].y, trialset.trial(0, 0)[3], rtol=1e-6)
    assert fig.layout.yaxis.title.text == "Amplitude (a.u.)"
    assert fig.layout.title.text == "t"


def test_gfp_trace_and_latency_line(trialset):
    erp = trialset.trial(1, 2)
    fig = plot_butterfly(erp, times=trialset.times, ch_names=trialset.ch_names, highlight=0.3, gfp=True)
    assert len(fig.data) == trialset.n_chans + 1
    gfp = fig.data[-1]
    assert gfp.name == "GFP"
    np.testing.assert_allclose(gfp.y, erp.std(axis=0), rtol=1e-5)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == pytest.approx(0.3) and lines[0].x1 == pytest.approx(0.3)


def test_spatial_colours_differ_between_front_and_back():
    from toolkit.data.channels import THINGS_EEG_63

    data = np.zeros((63, 10), dtype=np.float32)
    fig = plot_butterfly(data, times=np.arange(10) / 10, ch_names=THINGS_EEG_63)
    colours = {t.name: t.line.color for t in fig.data}
    assert colours["Fp1"] != colours["O2"] and colours["Fp1"].startswith("rgb(")
    fig = plot_butterfly(data, times=np.arange(10) / 10, ch_names=THINGS_EEG_63, spatial=False)
    assert fig.data[0].line.color is None


def test_trialset_is_averaged_and_units_follow_the_data(trialset):
    fig = plot_butterfly(trialset)
    np.testing.assert_allclose(fig.data[0].y, trialset.data.mean(axis=(0, 1))[0], rtol=1e-5, atol=1e-6)
    volts = dataclasses.replace(trialset, dataset="imported", data=trialset.data * 1e-6)
    assert data_units(volts) == ("µV", 1e6)
    fig = plot_butterfly(volts)
    assert fig.layout.yaxis.title.text == "Amplitude (µV)"
    np.testing.assert_allclose(fig.data[0].y, trialset.data.mean(axis=(0, 1))[0], rtol=1e-4, atol=1e-5)
    # Explicit units and scale win.
    fig = plot_butterfly(volts, units="mV", scale=1e3)
    assert fig.layout.yaxis.title.text == "Amplitude (mV)"


def test_three_d_array_is_averaged(trialset):
    erp, times, names = as_erp(trialset.data[0], times=trialset.times, ch_names=trialset.ch_names)
    np.testing.assert_allclose(erp, trialset.data[0].mean(axis=0), rtol=1e-6)
    assert names == trialset.ch_names and times.shape == (trialset.n_times,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"times": None}, "times= and ch_names="),
        ({"ch_names": ["Oz"]}, "must match"),
        ({"engine": "bokeh"}, "engine"),
        ({"highlight": "late"}, "highlight"),
    ],
)
def test_bad_input_is_one_clear_error(trialset, kwargs, match):
    base = {"times": trialset.times, "ch_names": trialset.ch_names}
    with pytest.raises(ToolkitError, match=match):
        plot_butterfly(trialset.trial(0, 0), **{**base, **kwargs})
    with pytest.raises(ToolkitError, match="shape"):
        plot_butterfly(np.zeros(5), times=trialset.times, ch_names=trialset.ch_names)


def test_matplotlib_engine_returns_a_bare_figure(trialset, no_pyplot_figures):
    from matplotlib.figure import Figure

    fig = plot_butterfly(
        trialset.trial(0, 0),
        times=trialset.times,
        ch_names=trialset.ch_names,
        engine="matplotlib",
        highlight=0.2,
        gfp=True,
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert any(len(line.get_xdata()) == 2 and np.allclose(line.get_xdata(), 0.2) for line in ax.get_lines())
    assert len(ax.get_lines()) >= trialset.n_chans


def test_matplotlib_engine_draws_into_given_axes(trialset):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = plot_butterfly(
        trialset.trial(0, 0), times=trialset.times, ch_names=trialset.ch_names, engine="matplotlib", axes=ax
    )
    assert out is fig
