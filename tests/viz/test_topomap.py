"""MNE topomaps: figure type, symmetric colour limits, positions, the latency helper, no pyplot windows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.viz import (
    figure_to_array,
    make_info,
    montage_name,
    nearest_sample,
    plot_topomap,
    symmetric_vlim,
    topomap_at,
    topomap_values,
)


def _clim(fig):
    return fig.axes[0].images[0].get_clim()


def test_montage_name_exists_and_is_not_deprecated():
    import mne

    assert montage_name() in mne.channels.get_builtin_montages()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        info = make_info(["Fp1", "Cz", "Oz", "fcz"], 250.0)
    assert info["chs"][1]["loc"][:3].any()  # Cz got a position
    assert make_info(["Fp1", "Cz", "Oz", "fcz"], 250.0) is info  # cached


def test_topomap_is_a_bare_figure_with_symmetric_limits(trialset, no_pyplot_figures):
    from matplotlib.figure import Figure

    values = np.linspace(-1.0, 3.0, trialset.n_chans)
    fig = plot_topomap(values, trialset.ch_names, title="x", units="a.u.")
    assert isinstance(fig, Figure)
    assert _clim(fig) == pytest.approx((-3.0, 3.0))
    assert fig.axes[0].get_title() == "x"
    assert len(fig.axes) == 2  # map + colour bar
    fig = plot_topomap(values, trialset.ch_names, vlim=(-1, 1), colorbar=False)
    assert _clim(fig) == pytest.approx((-1.0, 1.0)) and len(fig.axes) == 1
    assert symmetric_vlim(np.zeros(3)) == (-1.0, 1.0)


def test_topomap_into_given_axes_uses_rdbu(trialset):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = plot_topomap(np.arange(trialset.n_chans, dtype=float), trialset.ch_names, axes=ax, colorbar=False)
    assert out is fig
    assert ax.images[0].get_cmap().name == "RdBu_r"


def test_topomap_renders_to_pixels(trialset):
    fig = plot_topomap(np.ones(trialset.n_chans), trialset.ch_names, size=2.0, dpi=50)
    pixels = figure_to_array(fig)
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3 and pixels.shape[1] == 100
    assert (pixels < 250).any()  # something was drawn
    again = figure_to_array(fig, dpi=25)
    assert again.shape[1] == 50


@pytest.mark.parametrize(
    ("values", "names", "kwargs", "match"),
    [
        (np.zeros(3), ["Cz", "Pz", "XYZ1"], {}, "XYZ1"),
        (np.zeros(4), ["Cz", "Pz", "Oz"], {}, "one number per channel"),
        (np.zeros(3), ["Cz", "Pz", "Oz"], {"vlim": "auto"}, "vlim"),
        (np.zeros(3), ["Cz", "Pz", "Oz"], {"vlim": (1, -1)}, "vmin < vmax"),
        (np.zeros(3), ["Cz", "Pz", "Oz"], {"ch_type": "ecog"}, "ch_type"),
        (np.zeros(3), ["Cz", "Cz", "Oz"], {}, "unique"),
    ],
)
def test_bad_topomap_input(values, names, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        plot_topomap(values, names, **kwargs)


def test_meg_channels_use_the_ctf_layout():
    names = ["MLC11-4408", "MRC11-4408", "MLO11-4408", "MRO11-4408", "MZC01-4408"]
    fig = plot_topomap(np.array([1.0, -1.0, 0.5, -0.5, 0.0]), names, ch_type="mag")
    assert _clim(fig) == pytest.approx((-1.0, 1.0))
    with pytest.raises(ToolkitError, match="CTF"):
        plot_topomap(np.zeros(3), ["A", "B", "C"], ch_type="mag")


def test_nearest_sample():
    times = np.arange(50) / 50.0
    assert nearest_sample(times, 0.2) == 10
    assert nearest_sample(times, 0.205) == 10
    assert nearest_sample(times, 0.215) == 11
    assert nearest_sample(times, 0.99) == 49  # within half a sample of the end
    for bad in (1.2, -0.1, float("nan"), "soon"):
        with pytest.raises(ToolkitError, match="latency"):
            nearest_sample(times, bad)


def test_topomap_at_picks_the_sample_and_respects_average(trialset):
    values, at = topomap_values(trialset, 0.3, condition=2, average=True)
    np.testing.assert_allclose(values, trialset.data[2, :, :, 15].mean(axis=0), rtol=1e-6)
    assert at == pytest.approx(0.3)
    single, _ = topomap_values(trialset, 0.3, condition=2, repetition=1, average=False)
    np.testing.assert_allclose(single, trialset.data[2, 1, :, 15], rtol=1e-6)
    assert not np.allclose(single, values)
    grand, _ = topomap_values(trialset, 0.3)
    np.testing.assert_allclose(grand, trialset.data[..., 15].mean(axis=(0, 1)), rtol=1e-5)
    fig = topomap_at(trialset, 0.301, condition=2, average=False, repetition=1)
    assert fig.axes[0].get_title() == "0.300 s"
    assert _clim(fig)[1] == pytest.approx(np.abs(single).max(), rel=1e-5)
    with pytest.raises(ToolkitError, match="single trial"):
        topomap_values(trialset, 0.3, average=False)
    with pytest.raises(ToolkitError, match="repetition"):
        topomap_values(trialset, 0.3, condition=0, repetition=7, average=False)


def test_topomap_at_on_arrays(trialset):
    trials = trialset.data[0]
    fig = topomap_at(trials, 0.5, times=trialset.times, ch_names=trialset.ch_names, average=True)
    assert _clim(fig)[1] == pytest.approx(np.abs(trials[:, :, 25].mean(axis=0)).max(), rel=1e-5)
    with pytest.raises(ToolkitError, match="ch_names"):
        topomap_at(trials, 0.5, times=trialset.times)
    with pytest.raises(ToolkitError, match="times"):
        topomap_at(trials, 0.5, ch_names=trialset.ch_names)
