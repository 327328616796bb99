"""Plots of EEG trials: butterfly ERPs (plotly or matplotlib), MNE topomaps, and the trial browser behind the app.

Every function returns its figure and shows it only when ``show=True``; matplotlib, plotly and MNE are imported
inside the functions, so importing this module is cheap and safe on a headless machine.
"""

from ._utils import figure_to_array, figure_to_png, make_info, montage_name, nearest_sample
from .attribution import (
    plot_attribution_heatmap,
    plot_attribution_time_course,
    plot_attribution_topomaps,
    plot_region_bars,
)
from .browser import TrialBrowser, TrialView
from .erp import as_erp, data_units, plot_butterfly
from .topomap import plot_topomap, symmetric_vlim, topomap_at, topomap_values

__all__ = [
    "TrialBrowser",
    "TrialView",
    "as_erp",
    "data_units",
    "figure_to_array",
    "figure_to_png",
    "make_info",
    "montage_name",
    "nearest_sample",
    "plot_attribution_heatmap",
    "plot_attribution_time_course",
    "plot_attribution_topomaps",
    "plot_butterfly",
    "plot_region_bars",
    "plot_topomap",
    "symmetric_vlim",
    "topomap_at",
    "topomap_values",
]
