"""Event-related potentials as butterfly plots: one trace per channel (plotly, or matplotlib through MNE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError
from ._utils import make_info, new_figure, show_figure, spatial_colors

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ..data.trials import TrialSet

ENGINES = ("plotly", "matplotlib")


def data_units(trials: TrialSet) -> tuple[str, float]:
    """The unit label and display scale of a trial set's values.

    Volts (imported recordings, or sets whose ``extra["units"]`` is ``"V"``) are shown in µV; everything else
    (whitened THINGS-EEG data, the simulator's output) is unitless and shown as "a.u.".

    Parameters
    ----------
    trials : TrialSet
        The trial set.

    Returns
    -------
    tuple of (str, float)
        ``(units, scale)``: multiply the data by ``scale`` to get ``units``.
    """
    declared = str(trials.extra.get("units", "")).strip()
    if declared in ("V", "volt", "volts") or (not declared and trials.dataset == "imported"):
        return ("µV", 1e6) if trials.ch_type == "eeg" else ("fT", 1e15)
    if declared in ("uV", "µV", "microvolts"):
        return "µV", 1.0
    return "a.u.", 1.0


def as_erp(
    trials_or_array: TrialSet | np.ndarray,
    *,
    times: np.ndarray | None = None,
    ch_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reduce trials to one ``(n_chans, n_times)`` ERP and check it against ``times`` and ``ch_names``.

    Parameters
    ----------
    trials_or_array : TrialSet | np.ndarray
        A :class:`~toolkit.data.TrialSet` (averaged over all its trials, which reads the whole set), an array
        ``(n_chans, n_times)`` (used as is) or ``(n_trials, n_chans, n_times)`` (averaged over trials).
    times : np.ndarray | None, shape (n_times,)
        Sample times in seconds; required for arrays, taken from a TrialSet otherwise.
    ch_names : sequence of str | None
        Channel names; required for arrays, taken from a TrialSet otherwise.

    Returns
    -------
    tuple
        ``(erp, times, ch_names)`` with ``erp`` float32 ``(n_chans, n_times)``.
    """
    if hasattr(trials_or_array, "data") and hasattr(trials_or_array, "ch_names"):
        ts = trials_or_array
        times = ts.times if times is None else times
        ch_names = ts.ch_names if ch_names is None else ch_names
        data = np.asarray(ts.data, dtype=np.float32).mean(axis=(0, 1))
    else:
        data = np.asarray(trials_or_array, dtype=np.float32)
        if data.ndim == 3:
            data = data.mean(axis=0)
        elif data.ndim != 2:
            raise ToolkitError(
                f"trials_or_array must be (n_chans, n_times), (n_trials, n_chans, n_times) or a TrialSet; got an "
                f"array of shape {data.shape}."
            )
        if times is None or ch_names is None:
            raise ToolkitError("Pass times= and ch_names= when plotting a plain array (a TrialSet carries both).")
    times = np.asarray(times, dtype=np.float64)
    ch_names = [str(c) for c in ch_names]
    if data.shape != (len(ch_names), times.size):
        raise ToolkitError(
            f"The data have shape {data.shape} but {len(ch_names)} channel names and {times.size} times were "
            "given; they must match (n_chans, n_times)."
        )
    return data, times, ch_names


def _check_number(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{name} must be a number of seconds; got {value!r}.") from None
    if not np.isfinite(out):
        raise ToolkitError(f"{name} must be finite; got {value!r}.")
    return out


def plot_butterfly(
    trials_or_array: TrialSet | np.ndarray,
    *,
    times: np.ndarray | None = None,
    ch_names: Sequence[str] | None = None,
    highlight: float | None = None,
    title: str | None = None,
    engine: str = "plotly",
    units: str | None = None,
    scale: float | None = None,
    gfp: bool = False,
    ch_type: str | None = None,
    spatial: bool = True,
    height: int = 360,
    axes: Axes | None = None,
    show: bool = False,
) -> Any:
    """Butterfly plot of an ERP: one trace per channel, optional global field power, a line at one latency.

    Parameters
    ----------
    trials_or_array : TrialSet | np.ndarray
        What to plot; see :func:`as_erp` (a TrialSet is averaged over all its trials, an
        ``(n_trials, n_chans, n_times)`` array over its first axis).
    times : np.ndarray | None, shape (n_times,)
        Sample times in seconds (required for arrays).
    ch_names : sequence of str | None
        Channel names (required for arrays); shown when hovering over a trace.
    highlight : float | None
        Latency in seconds marked with a vertical dashed line.
    title : str | None
        Figure title.
    engine : "plotly" | "matplotlib"
        ``"plotly"`` returns an interactive :class:`plotly.graph_objects.Figure`; ``"matplotlib"`` draws with
        :meth:`mne.Evoked.plot` and returns a :class:`matplotlib.figure.Figure`.
    units : str | None
        Unit label of the y axis. ``None``: from the TrialSet (see :func:`data_units`), else ``"a.u."``.
    scale : float | None
        Factor applied to the data before plotting (``1e6`` for volts shown in µV). ``None``: from the TrialSet,
        else 1.
    gfp : bool
        Add the global field power (standard deviation over channels at each sample) as a thick black trace.
    ch_type : str | None
        Channel type (``"eeg"``, ``"mag"``). ``None``: from the TrialSet, else ``"eeg"``.
    spatial : bool
        Colour each trace by its sensor position (MNE's spatial colours) when positions are known.
    height : int
        Height in pixels (plotly engine).
    axes : matplotlib.axes.Axes | None
        Axes to draw into (matplotlib engine).
    show : bool
        Show the figure (``fig.show()`` for plotly, pyplot for matplotlib).

    Returns
    -------
    plotly.graph_objects.Figure | matplotlib.figure.Figure
        The figure.
    """
    if engine not in ENGINES:
        raise ToolkitError(f"engine must be one of {ENGINES}; got {engine!r}.")
    data, times, ch_names = as_erp(trials_or_array, times=times, ch_names=ch_names)
    is_trialset = hasattr(trials_or_array, "ch_names")
    auto_units, auto_scale = data_units(trials_or_array) if is_trialset else ("a.u.", 1.0)
    units = auto_units if units is None else str(units)
    scale = auto_scale if scale is None else _check_number(scale, "scale")
    ch_type = (trials_or_array.ch_type if is_trialset else "eeg") if ch_type is None else str(ch_type)
    if highlight is not None:
        highlight = _check_number(highlight, "highlight")
    if engine == "matplotlib":
        return _butterfly_matplotlib(
            data,
            times,
            ch_names,
            ch_type=ch_type,
            highlight=highlight,
            title=title,
            units=units,
            scale=scale,
            gfp=gfp,
            spatial=spatial,
            axes=axes,
            show=show,
        )
    fig = _butterfly_plotly(
        data,
        times,
        ch_names,
        ch_type=ch_type,
        highlight=highlight,
        title=title,
        units=units,
        scale=scale,
        gfp=gfp,
        spatial=spatial,
        height=height,
    )
    if show:
        fig.show()
    return fig


def _butterfly_plotly(
    data: np.ndarray,
    times: np.ndarray,
    ch_names: list[str],
    *,
    ch_type: str,
    highlight: float | None,
    title: str | None,
    units: str,
    scale: float,
    gfp: bool,
    spatial: bool,
    height: int,
) -> Any:
    from ..utils import require

    go = require("plotly.graph_objects", extra="viz", purpose="interactive ERP plots")
    # float32 halves what the browser receives (plotly serialises arrays as base64 typed arrays).
    values = (data * np.float32(scale)).astype(np.float32)
    x = times.astype(np.float32)
    colors = spatial_colors(ch_names, ch_type) if spatial else None
    traces = []
    for idx, name in enumerate(ch_names):
        line = {"width": 1}
        if colors is not None:
            line["color"] = colors[idx]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": values[idx],
                "name": name,
                "line": line,
                "hovertemplate": f"<b>{name}</b><br>%{{x:.3f}} s<br>%{{y:.3g}} {units}<extra></extra>",
            }
        )
    if gfp:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": values.std(axis=0).astype(np.float32),
                "name": "GFP",
                "line": {"width": 3, "color": "black"},
                "hovertemplate": f"<b>GFP</b><br>%{{x:.3f}} s<br>%{{y:.3g}} {units}<extra></extra>",
            }
        )
    layout = {
        "title": {"text": title} if title else None,
        "template": "plotly_white",
        "height": int(height),
        "margin": {"l": 60, "r": 20, "t": 50 if title else 20, "b": 45},
        "showlegend": False,
        "hovermode": "closest",
        "xaxis": {"title": {"text": "Time (s)"}, "range": [float(times[0]), float(times[-1])]},
        "yaxis": {"title": {"text": f"Amplitude ({units})"}, "zeroline": True},
    }
    fig = go.Figure(data=traces, layout=layout)
    if highlight is not None:
        fig.add_vline(
            x=highlight,
            line={"color": "black", "width": 1.5, "dash": "dash"},
            annotation_text=f"{highlight:.3f} s",
            annotation_position="top right",
        )
    return fig


def _butterfly_matplotlib(
    data: np.ndarray,
    times: np.ndarray,
    ch_names: list[str],
    *,
    ch_type: str,
    highlight: float | None,
    title: str | None,
    units: str,
    scale: float,
    gfp: bool,
    spatial: bool,
    axes: Axes | None,
    show: bool,
) -> Any:
    import mne

    if times.size < 2:
        raise ToolkitError("A butterfly plot needs at least two samples.")
    sfreq = 1.0 / float(np.median(np.diff(times)))
    try:
        info = make_info(ch_names, sfreq, ch_type).copy()
    except ToolkitError:  # names without template positions: plot without spatial colours
        info = mne.create_info(list(ch_names), sfreq, ch_type)
        spatial = False
    evoked = mne.EvokedArray(data.astype(np.float64), info, tmin=float(times[0]), verbose="error")
    if axes is None:
        fig = new_figure(figsize=(7.0, 3.5), dpi=100, show=show)
        axes = fig.add_subplot()
        fig.subplots_adjust(bottom=0.16)  # room for the time axis label
    evoked.plot(
        axes=axes,
        show=False,
        spatial_colors=bool(spatial) and ch_type == "eeg",
        gfp=bool(gfp),
        scalings={ch_type: scale},
        units={ch_type: units},
        titles={ch_type: title or ""},
        time_unit="s",
        verbose="error",
    )
    if highlight is not None:
        axes.axvline(highlight, color="black", linestyle="--", linewidth=1)
    show_figure(axes.figure, show)
    return axes.figure
