"""Figures of attribution maps over electrodes and time (from :mod:`toolkit.explain`).

- :func:`plot_attribution_topomaps` — a row of small scalp maps, one per time window or latency (MNE topomaps);
- :func:`plot_attribution_heatmap` — channels × time, channels ordered by region;
- :func:`plot_attribution_time_course` — attribution over time (all channels or per region), windows shaded;
- :func:`plot_region_bars` — one bar per region (attribution per region, or ablation accuracy per region).

Every function takes maps ``(n_chans, n_times)`` or ``(n_trials, n_chans, n_times)`` (averaged over trials: signed
values for ``signed=True``, magnitudes ``|attr|`` otherwise) and ``engine="matplotlib"`` (a
:class:`matplotlib.figure.Figure`; ``axes`` and ``show`` as in MNE) or ``engine="plotly"`` (a
:class:`plotly.graph_objects.Figure` for the app). Signed maps use ``RdBu_r`` with limits symmetric about zero (zero
is white); magnitudes use ``Reds`` from zero, MNE's convention for unsigned data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError
from ._utils import make_info, meg_positions, nearest_sample, new_figure, resolve_axes, show_figure
from .topomap import plot_topomap, symmetric_vlim

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

ENGINES = ("matplotlib", "plotly")
_SIGNED_CMAP, _UNSIGNED_CMAP = "RdBu_r", "Reds"
# Plotly's names for the same colour maps.
_PLOTLY_SCALES = {"RdBu_r": "RdBu_r", "Reds": "Reds", "viridis": "Viridis"}


# --------------------------------------------------------------------------------------------------- helpers
def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ToolkitError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")


def _mean_map(attr: Any, signed: bool) -> np.ndarray:
    from ..explain.aggregate import as_maps

    if not isinstance(signed, (bool, np.bool_)):
        raise ToolkitError(f"signed must be True or False; got {signed!r}.")
    maps = as_maps(attr)
    return (maps if signed else np.abs(maps)).mean(axis=0)


def _limits(values: np.ndarray, signed: bool, vlim: Any) -> tuple[float, float]:
    if vlim is None or (isinstance(vlim, str) and vlim == "symmetric"):
        if signed:
            return symmetric_vlim(values)
        top = float(np.nanmax(values)) if values.size else 0.0
        return 0.0, top if top > 0 else 1.0
    try:
        vmin, vmax = (float(v) for v in vlim)
    except (TypeError, ValueError):
        raise ToolkitError(f"vlim must be 'symmetric' or a (vmin, vmax) pair; got {vlim!r}.") from None
    if not vmin < vmax:
        raise ToolkitError(f"vlim must have vmin < vmax; got {vlim!r}.")
    return vmin, vmax


def _cmap(cmap: str | None, signed: bool) -> str:
    return cmap if cmap is not None else (_SIGNED_CMAP if signed else _UNSIGNED_CMAP)


def _plotly() -> Any:
    from ..utils import require

    return require("plotly.graph_objects", extra="viz", purpose="interactive attribution plots")


def _plotly_scale(cmap: str) -> str:
    return _PLOTLY_SCALES.get(cmap, cmap)


def _names(ch_names: Sequence[str], n_chans: int) -> list[str]:
    names = [str(c) for c in ch_names]
    if len(names) != n_chans:
        raise ToolkitError(f"ch_names has {len(names)} names but the maps have {n_chans} channels.")
    return names


def _panels(mean_map: np.ndarray, times: np.ndarray, windows: Any, latencies: Any) -> tuple[np.ndarray, list[str]]:
    """Values ``(n_panels, n_chans)`` and titles of the topomap row."""
    from ..explain.aggregate import sliding_windows, window_indices, window_label

    if windows is not None and latencies is not None:
        raise ToolkitError("Pass windows= or latencies=, not both.")
    if latencies is not None:
        lat = np.atleast_1d(np.asarray(latencies, dtype=np.float64))
        if lat.size == 0:
            raise ToolkitError("latencies is empty; pass at least one latency in seconds.")
        idx = [nearest_sample(times, t) for t in lat]
        return mean_map[:, idx].T, [f"{times[i] * 1000:.0f} ms" for i in idx]
    if windows is None:
        windows = sliding_windows(times, width=0.1)
    if len(windows) == 0:
        raise ToolkitError("windows is empty; pass at least one (tmin, tmax) window in seconds.")
    values = np.stack([mean_map[:, window_indices(times, w)].mean(axis=1) for w in windows])
    return values, [window_label(w) for w in windows]


def _sensor_xy(ch_names: Sequence[str], ch_type: str) -> np.ndarray:
    """2-D sensor positions on a unit head (radius 1 at the fitted sphere's equator) for the plotly topomaps.

    MNE's own projection helper is private, so its azimuthal equidistant projection is written out here: the
    sensors are centred on a sphere fitted to them (:func:`mne.bem.fit_sphere_to_headshape`), and the angle from
    the vertex becomes the distance from the centre (90° = the head outline).
    """
    if ch_type != "eeg":
        return meg_positions(ch_names) / 0.095
    import mne

    info = make_info(ch_names, None, "eeg")
    radius, origin, _ = mne.bem.fit_sphere_to_headshape(info, units="m", verbose="error")
    pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=np.float64) - origin
    r = np.linalg.norm(pos, axis=1)
    polar = np.arccos(np.clip(pos[:, 2] / np.where(r > 0, r, 1.0), -1.0, 1.0))
    azimuth = np.arctan2(pos[:, 1], pos[:, 0])
    rho = polar / (np.pi / 2) * r / radius
    return np.column_stack([rho * np.cos(azimuth), rho * np.sin(azimuth)])


def _interpolate(xy: np.ndarray, values: np.ndarray, radius: float, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Values on a ``res`` × ``res`` grid over the disc of ``radius`` (NaN outside it) by Clough-Tocher cubic
    interpolation, with a ring of border points taking their nearest sensor's value (MNE's "local"
    extrapolation in spirit)."""
    from scipy.interpolate import CloughTocher2DInterpolator

    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ring = np.column_stack([np.cos(angles), np.sin(angles)]) * radius * 1.05
    nearest = np.argmin(((ring[:, None, :] - xy[None]) ** 2).sum(-1), axis=1)
    points = np.vstack([xy, ring])
    interp = CloughTocher2DInterpolator(points, np.concatenate([values, values[nearest]]))
    axis = np.linspace(-radius, radius, res)
    gx, gy = np.meshgrid(axis, axis)
    grid = interp(gx, gy)
    grid[gx**2 + gy**2 > radius**2] = np.nan
    return axis, grid


def _head_shapes(radius: float, xref: str, yref: str) -> list[dict]:
    line = {"color": "black", "width": 1.2}
    nose = {
        "type": "path", "xref": xref, "yref": yref, "line": line,
        "path": f"M {-0.1 * radius} {radius * 0.995} L 0 {radius * 1.1} L {0.1 * radius} {radius * 0.995}",
    }
    head = {"type": "circle", "xref": xref, "yref": yref, "x0": -radius, "y0": -radius, "x1": radius,
            "y1": radius, "line": line}
    return [head, nose]


# ----------------------------------------------------------------------------------------------------- topomaps
def plot_attribution_topomaps(
    attr: Any,
    ch_names: Sequence[str],
    times: Any,
    *,
    windows: Sequence[Sequence[float]] | None = None,
    latencies: Sequence[float] | None = None,
    signed: bool = True,
    engine: str = "matplotlib",
    axes: Sequence[Axes] | None = None,
    show: bool = False,
    cmap: str | None = None,
    vlim: Any = "symmetric",
    ch_type: str = "eeg",
    title: str | None = None,
    units: str = "attribution",
    colorbar: bool = True,
    contours: int = 0,
    res: int = 48,
    size: float = 1.6,
    dpi: float = 100,
    height: int = 260,
) -> Any:
    """A row of scalp maps of the attribution, one per time window or latency, on one colour scale.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    ch_names : sequence of str
        Channel names.
    times : array, shape (n_times,)
        Sample times in seconds.
    windows : sequence of (float, float) | None
        One map per window: the mean over its samples (half-open, seconds). Default (and without
        ``latencies``): adjacent 100 ms windows over the epoch.
    latencies : sequence of float | None
        One map per latency instead: the sample nearest to it.
    signed : bool
        Signed attributions (``RdBu_r``, symmetric limits) or magnitudes (``Reds`` from 0).
    engine : "matplotlib" | "plotly"
        Figure library.
    axes : sequence of matplotlib Axes | None
        One axes per map (matplotlib); ``None`` creates a figure (with a colour bar).
    show : bool
        Show the figure.
    cmap : str | None
        Colour map (default as above).
    vlim : "symmetric" | (float, float)
        Colour limits shared by all maps; ``"symmetric"``: ``±max|value|`` for signed maps, ``(0, max)`` for
        magnitudes.
    ch_type : str
        ``"eeg"`` or ``"mag"``.
    title : str | None
        Figure title.
    units : str
        Colour-bar label.
    colorbar : bool
        Add a colour bar (new matplotlib figures and plotly).
    contours, res : int
        MNE topomap contour lines and resolution (matplotlib); ``res`` is also the plotly grid size.
    size : float
        Inches per map (new matplotlib figures).
    dpi : float
        Resolution of new matplotlib figures.
    height : int
        Height in pixels (plotly).

    Returns
    -------
    matplotlib.figure.Figure | plotly.graph_objects.Figure
        The figure.
    """
    from ..explain.aggregate import check_times

    _check_engine(engine)
    mean_map = _mean_map(attr, signed)
    names = _names(ch_names, mean_map.shape[0])
    times = check_times(times, mean_map.shape[1])
    values, labels = _panels(mean_map, times, windows, latencies)
    vmin, vmax = _limits(values, signed, vlim)
    cmap = _cmap(cmap, signed)
    if engine == "plotly":
        fig = _topomaps_plotly(values, labels, names, ch_type, vmin, vmax, cmap, title, units, colorbar, res, height)
        if show:
            fig.show()
        return fig
    n = len(labels)
    if axes is None:
        fig = new_figure(figsize=(size * n + (0.9 if colorbar else 0.2), size * 1.15), dpi=dpi, show=show)
        panel_axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
        fig.subplots_adjust(left=0.02, right=0.88 if colorbar else 0.98, top=0.78 if title else 0.86, wspace=0.08)
    else:
        panel_axes = list(np.atleast_1d(axes)) if not hasattr(axes, "plot") else [axes]
        if len(panel_axes) != n:
            raise ToolkitError(f"axes must hold one Axes per map ({n}); got {len(panel_axes)}.")
        fig = panel_axes[0].figure
    for ax, vals, label in zip(panel_axes, values, labels):
        plot_topomap(vals, names, ch_type=ch_type, axes=ax, cmap=cmap, vlim=(vmin, vmax), title=label,
                     colorbar=False, contours=contours, res=res)
    if colorbar and axes is None:
        cax = fig.add_axes((0.9, 0.2, 0.015, 0.55))
        cbar = fig.colorbar(panel_axes[-1].images[0], cax=cax)
        cbar.ax.tick_params(labelsize=7)
        cbar.set_label(units, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    show_figure(fig, show)
    return fig


def _topomaps_plotly(
    values: np.ndarray,
    labels: list[str],
    names: list[str],
    ch_type: str,
    vmin: float,
    vmax: float,
    cmap: str,
    title: str | None,
    units: str,
    colorbar: bool,
    res: int,
    height: int,
) -> Any:
    go = _plotly()
    from plotly.subplots import make_subplots

    xy = _sensor_xy(names, ch_type)
    radius = max(1.0, float(np.linalg.norm(xy, axis=1).max()) * 1.02)
    n = len(labels)
    fig = make_subplots(rows=1, cols=n, subplot_titles=labels, horizontal_spacing=0.01)
    for i, vals in enumerate(values):
        axis, grid = _interpolate(xy, vals, radius, res)
        fig.add_trace(
            go.Heatmap(
                x=axis, y=axis, z=grid.astype(np.float32), zmin=vmin, zmax=vmax, colorscale=_plotly_scale(cmap),
                showscale=colorbar and i == n - 1, colorbar={"title": {"text": units}, "thickness": 12},
                hoverinfo="skip",
            ),
            row=1, col=i + 1,
        )
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0], y=xy[:, 1], mode="markers", marker={"size": 3, "color": "black"},
                customdata=np.column_stack([names, vals]), showlegend=False,
                hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]:.3g}<extra>" + labels[i] + "</extra>",
            ),
            row=1, col=i + 1,
        )
        suffix = "" if i == 0 else str(i + 1)
        for shape in _head_shapes(radius, f"x{suffix}", f"y{suffix}"):
            fig.add_shape(shape)
        fig.update_xaxes(visible=False, range=[-radius * 1.15, radius * 1.15], row=1, col=i + 1)
        fig.update_yaxes(visible=False, range=[-radius * 1.15, radius * 1.2], scaleanchor=f"x{suffix}",
                         row=1, col=i + 1)
    fig.update_layout(
        template="plotly_white", height=int(height), margin={"l": 10, "r": 10, "t": 60 if title else 35, "b": 10},
        title={"text": title} if title else None,
    )
    return fig


# ------------------------------------------------------------------------------------------------------ heat map
def plot_attribution_heatmap(
    attr: Any,
    ch_names: Sequence[str],
    times: Any,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    signed: bool = True,
    engine: str = "matplotlib",
    axes: Axes | None = None,
    show: bool = False,
    cmap: str | None = None,
    vlim: Any = "symmetric",
    title: str | None = None,
    units: str = "attribution",
    figsize: tuple[float, float] = (7.0, 7.5),
    dpi: float = 100,
    height: int = 620,
) -> Any:
    """Channels × time image of the attribution, channels ordered by region (ATM's five by default).

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    ch_names : sequence of str
        Channel names.
    times : array, shape (n_times,)
        Sample times in seconds.
    groups : Mapping of str to sequence of str | None
        Channel groups giving the row order (``None``: ATM's regions; channels in none come last as "other").
    signed, engine, show, cmap, vlim, title, units, dpi, height
        See :func:`plot_attribution_topomaps`.
    axes : matplotlib Axes | None
        Axes to draw into (matplotlib).
    figsize : (float, float)
        Size of a new matplotlib figure in inches.

    Returns
    -------
    matplotlib.figure.Figure | plotly.graph_objects.Figure
        The figure.
    """
    from ..explain.aggregate import channel_order, check_times

    _check_engine(engine)
    mean_map = _mean_map(attr, signed)
    names = _names(ch_names, mean_map.shape[0])
    times = check_times(times, mean_map.shape[1])
    order, spans = channel_order(names, groups)
    image = mean_map[order]
    rows = [names[i] for i in order]
    vmin, vmax = _limits(image, signed, vlim)
    cmap = _cmap(cmap, signed)
    if engine == "plotly":
        fig = _heatmap_plotly(image, rows, times, spans, vmin, vmax, cmap, title, units, height)
        if show:
            fig.show()
        return fig
    fig, ax = resolve_axes(axes, figsize=figsize, dpi=dpi, show=show)
    dt = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    extent = (times[0] - dt / 2, times[-1] + dt / 2, len(rows) - 0.5, -0.5)
    im = ax.imshow(image, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows, fontsize=max(4.5, min(8.0, 380.0 / max(len(rows), 1))))
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Channel")
    for _group, start, _stop in spans[1:]:
        ax.axhline(start - 0.5, color="black", linewidth=0.8)
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for group, start, stop in spans:
        ax.text(1.01, (start + stop - 1) / 2, group, transform=trans, fontsize=8, va="center", ha="left",
                rotation=90 if stop - start > 3 else 0)
    cbar = fig.colorbar(im, ax=ax, pad=0.08, shrink=0.8)
    cbar.set_label(units, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    show_figure(fig, show)
    return fig


def _heatmap_plotly(
    image: np.ndarray,
    rows: list[str],
    times: np.ndarray,
    spans: list,
    vmin: float,
    vmax: float,
    cmap: str,
    title: str | None,
    units: str,
    height: int,
) -> Any:
    go = _plotly()
    fig = go.Figure(
        go.Heatmap(
            z=image.astype(np.float32), x=times.astype(np.float32), y=rows, zmin=vmin, zmax=vmax,
            colorscale=_plotly_scale(cmap), colorbar={"title": {"text": units}},
            hovertemplate="<b>%{y}</b><br>%{x:.3f} s<br>%{z:.3g}<extra></extra>",
        )
    )
    for _group, start, _stop in spans[1:]:
        fig.add_hline(y=start - 0.5, line={"color": "black", "width": 1})
    for group, start, stop in spans:
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=(start + stop - 1) / 2, text=group,
                           showarrow=False, font={"size": 11})
    fig.update_layout(
        template="plotly_white", height=int(height), title={"text": title} if title else None,
        margin={"l": 60, "r": 110, "t": 50 if title else 20, "b": 45},
        xaxis={"title": {"text": "Time (s)"}},
        yaxis={"title": {"text": "Channel"}, "autorange": "reversed", "tickfont": {"size": 8}},
    )
    return fig


# --------------------------------------------------------------------------------------------------- time course
def plot_attribution_time_course(
    attr: Any,
    times: Any,
    *,
    ch_names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    by_group: bool = False,
    signed: bool = False,
    windows: Sequence[Sequence[float]] | None = None,
    engine: str = "matplotlib",
    axes: Axes | None = None,
    show: bool = False,
    title: str | None = None,
    units: str = "attribution",
    figsize: tuple[float, float] = (7.0, 3.2),
    dpi: float = 100,
    height: int = 320,
) -> Any:
    """Attribution over time: the mean over channels (and trials), optionally one line per region.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    times : array, shape (n_times,)
        Sample times in seconds.
    ch_names : sequence of str | None
        Channel names (needed with ``by_group``).
    groups : Mapping | None
        Groups for ``by_group`` (``None``: ATM's regions).
    by_group : bool
        Add one line per group besides the mean over all channels.
    signed : bool
        Signed values (default: magnitudes).
    windows : sequence of (float, float) | None
        Windows to shade (e.g. the simulator's informative windows or the analysis windows).
    engine, axes, show, title, units, figsize, dpi, height
        As for :func:`plot_attribution_heatmap`.

    Returns
    -------
    matplotlib.figure.Figure | plotly.graph_objects.Figure
        The figure.
    """
    from ..explain.aggregate import as_maps, check_times, resolve_groups, time_course, window_indices, window_label

    _check_engine(engine)
    maps = as_maps(attr)
    times = check_times(times, maps.shape[2])
    lines = {"all channels": time_course(maps, signed=signed)}
    if by_group:
        if ch_names is None:
            raise ToolkitError("by_group=True needs ch_names= to find each group's channels.")
        names = _names(ch_names, maps.shape[1])
        for group, idx in resolve_groups(names, groups).items():
            lines[group] = time_course(maps, signed=signed, channels=idx)
    shaded = []
    for w in windows or []:
        window_indices(times, w)  # validates against the epoch
        shaded.append((float(w[0]), float(w[1]), window_label(w)))
    if engine == "plotly":
        go = _plotly()
        fig = go.Figure()
        for t0, t1, label in shaded:
            fig.add_vrect(x0=t0, x1=t1, fillcolor="gold", opacity=0.25, line_width=0, annotation_text=label,
                          annotation_position="top left", annotation_font_size=9)
        for i, (name, values) in enumerate(lines.items()):
            fig.add_trace(go.Scatter(x=times.astype(np.float32), y=values.astype(np.float32), mode="lines",
                                     name=name, line={"width": 3 if i == 0 else 1.5,
                                                      **({"color": "black"} if i == 0 else {})},
                                     hovertemplate=f"<b>{name}</b><br>%{{x:.3f}} s<br>%{{y:.3g}}<extra></extra>"))
        fig.update_layout(
            template="plotly_white", height=int(height), title={"text": title} if title else None,
            margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 45}, hovermode="x unified",
            xaxis={"title": {"text": "Time (s)"}, "range": [float(times[0]), float(times[-1])]},
            yaxis={"title": {"text": units if signed else f"|{units}|"}, "zeroline": True},
            showlegend=len(lines) > 1,
        )
        if show:
            fig.show()
        return fig
    fig, ax = resolve_axes(axes, figsize=figsize, dpi=dpi, show=show)
    for t0, t1, _label in shaded:
        ax.axvspan(t0, t1, color="gold", alpha=0.25, linewidth=0)
    for i, (name, values) in enumerate(lines.items()):
        if i == 0:
            ax.plot(times, values, color="black", linewidth=2, label=name)
        else:
            ax.plot(times, values, linewidth=1.2, label=name)
    if signed:
        ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_xlim(times[0], times[-1])
    ax.set_xlabel("Time (s)")
    ax.set_ylabel(units if signed else f"|{units}|")
    if len(lines) > 1:
        ax.legend(fontsize=7, frameon=False, ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    if axes is None:
        fig.tight_layout()
    show_figure(fig, show)
    return fig


# ------------------------------------------------------------------------------------------------------ bar chart
def plot_region_bars(
    values: Mapping[str, float],
    *,
    errors: Mapping[str, float] | None = None,
    chance: float | None = None,
    sort: bool = False,
    engine: str = "matplotlib",
    axes: Axes | None = None,
    show: bool = False,
    title: str | None = None,
    ylabel: str = "mean |attribution| per channel",
    figsize: tuple[float, float] = (4.5, 3.2),
    dpi: float = 100,
    height: int = 320,
) -> Any:
    """One bar per region: attribution per region (:func:`toolkit.explain.region_scores`) or accuracy per region.

    Parameters
    ----------
    values : Mapping of str to float
        Region → value, e.g. ``region_scores(attr, ch_names)`` or ``{row["region"]: row["top1"] for row in
        ablation.select("region_keep")}``.
    errors : Mapping of str to float | None
        Error bar half-widths per region.
    chance : float | None
        Draw a dashed line at chance level (for accuracies).
    sort : bool
        Sort the bars by value (largest first) instead of keeping the given order.
    engine, axes, show, title, figsize, dpi, height
        As for :func:`plot_attribution_heatmap`.
    ylabel : str
        Value axis label.

    Returns
    -------
    matplotlib.figure.Figure | plotly.graph_objects.Figure
        The figure.
    """
    _check_engine(engine)
    if not isinstance(values, Mapping) or not values:
        raise ToolkitError("values must be a non-empty mapping of region name -> number.")
    names = list(values)
    try:
        heights = np.array([float(values[n]) for n in names])
    except (TypeError, ValueError):
        raise ToolkitError("values must map region names to numbers.") from None
    if not np.isfinite(heights).all():
        raise ToolkitError("values must be finite numbers.")
    errs = None
    if errors is not None:
        missing = [n for n in names if n not in errors]
        if missing:
            raise ToolkitError(f"errors lacks the region(s) {', '.join(missing)}; give one error per bar.")
        errs = np.array([float(errors[n]) for n in names])
    if sort:
        order = np.argsort(-heights, kind="stable")
        names, heights = [names[i] for i in order], heights[order]
        errs = None if errs is None else errs[order]
    if engine == "plotly":
        go = _plotly()
        fig = go.Figure(go.Bar(x=names, y=heights, error_y=None if errs is None else {"type": "data", "array": errs},
                               marker_color="#4c72b0", hovertemplate="<b>%{x}</b><br>%{y:.3g}<extra></extra>"))
        if chance is not None:
            fig.add_hline(y=float(chance), line={"dash": "dash", "color": "grey"}, annotation_text="chance")
        fig.update_layout(template="plotly_white", height=int(height), title={"text": title} if title else None,
                          yaxis={"title": {"text": ylabel}}, margin={"l": 60, "r": 20, "t": 50 if title else 20,
                                                                      "b": 45})
        if show:
            fig.show()
        return fig
    fig, ax = resolve_axes(axes, figsize=figsize, dpi=dpi, show=show)
    ax.bar(np.arange(len(names)), heights, yerr=errs, color="#4c72b0", capsize=3)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if chance is not None:
        ax.axhline(float(chance), color="grey", linestyle="--", linewidth=1)
        ax.text(len(names) - 0.5, float(chance), "chance", fontsize=7, va="bottom", ha="right", color="grey")
    if title:
        ax.set_title(title, fontsize=10)
    if axes is None:
        fig.tight_layout()
    show_figure(fig, show)
    return fig


__all__ = [
    "plot_attribution_heatmap",
    "plot_attribution_time_course",
    "plot_attribution_topomaps",
    "plot_region_bars",
]
