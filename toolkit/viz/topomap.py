"""Scalp topographies with :func:`mne.viz.plot_topomap` (matplotlib figures, MNE conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError
from ._utils import make_info, meg_positions, nearest_sample, resolve_axes, show_figure
from .erp import data_units

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..data.trials import TrialSet


def symmetric_vlim(values: np.ndarray) -> tuple[float, float]:
    """Colour limits ``(-m, m)`` with ``m`` the largest absolute finite value (1 when all values are 0)."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    vmax = float(finite.max()) if finite.size else 0.0
    if vmax == 0.0:
        vmax = 1.0
    return -vmax, vmax


def _resolve_vlim(vlim: Any, values: np.ndarray) -> tuple[float | None, float | None]:
    if isinstance(vlim, str):
        if vlim != "symmetric":
            raise ToolkitError(f"vlim must be 'symmetric', a (vmin, vmax) pair or None; got {vlim!r}.")
        return symmetric_vlim(values)
    if vlim is None:
        return None, None
    try:
        vmin, vmax = vlim
    except (TypeError, ValueError):
        raise ToolkitError(f"vlim must be 'symmetric', a (vmin, vmax) pair or None; got {vlim!r}.") from None
    if vmin is not None and vmax is not None and not float(vmin) < float(vmax):
        raise ToolkitError(f"vlim must have vmin < vmax; got {vlim!r}.")
    return vmin, vmax


def plot_topomap(
    values: np.ndarray,
    ch_names: Sequence[str],
    *,
    sfreq: float | None = None,
    ch_type: str = "eeg",
    axes: Axes | None = None,
    show: bool = False,
    cmap: str = "RdBu_r",
    vlim: str | tuple[float | None, float | None] | None = "symmetric",
    title: str | None = None,
    units: str | None = None,
    colorbar: bool = True,
    sensors: bool = True,
    contours: int = 6,
    res: int = 64,
    image_interp: str = "cubic",
    size: float = 3.0,
    dpi: float = 100,
) -> Figure:
    """Plot one value per channel as a scalp map with :func:`mne.viz.plot_topomap`.

    EEG positions come from MNE's template 10-05 montage (``colin27_1005``; ``standard_1005`` before MNE 1.13);
    the :class:`mne.Info` is built once per channel list and cached. CTF MEG channels (``ch_type="mag"``) are
    placed with MNE's ``CTF-275`` layout.

    Parameters
    ----------
    values : np.ndarray, shape (n_chans,)
        One value per channel.
    ch_names : sequence of str
        Channel names, in the order of ``values``.
    sfreq : float | None
        Sampling rate stored in the Info (not used for drawing).
    ch_type : str
        ``"eeg"`` or ``"mag"``.
    axes : matplotlib.axes.Axes | None
        Axes to draw into; ``None`` creates a figure of ``size`` inches at ``dpi``.
    show : bool
        Show the figure through pyplot. Without ``axes`` and with ``show=False`` the figure is a bare Agg
        figure that pyplot does not track (no window, nothing to close).
    cmap : str
        Colour map; ``RdBu_r`` suits signed data.
    vlim : "symmetric" | tuple | None
        Colour limits: ``"symmetric"`` uses ``(-m, m)`` with ``m`` the largest absolute value, so zero is white;
        a ``(vmin, vmax)`` pair is used as given; ``None`` lets MNE choose.
    title : str | None
        Axes title.
    units : str | None
        Colour-bar label.
    colorbar : bool
        Add a colour bar.
    sensors : bool
        Mark the sensor positions.
    contours : int
        Number of contour lines (0 for none; fewer is faster).
    res : int
        Resolution of the interpolated image in pixels per side (lower is faster).
    image_interp : "cubic" | "linear" | "nearest"
        Interpolation between sensors (MNE's ``image_interp``). ``"cubic"`` (Clough-Tocher) is smoothest but its
        cost depends on the data (from milliseconds to seconds with SciPy 1.17); ``"linear"`` takes a steady few
        milliseconds, which is what interactive views need.
    size : float
        Figure width and height in inches (new figures only).
    dpi : float
        Figure resolution (new figures only).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the map.
    """
    import mne

    values = np.asarray(values, dtype=np.float64)
    ch_names = [str(c) for c in ch_names]
    if values.ndim != 1 or values.size != len(ch_names):
        raise ToolkitError(
            f"values must hold one number per channel ({len(ch_names)} channel names); got shape {values.shape}."
        )
    if values.size < 3:
        raise ToolkitError(f"A topomap needs at least 3 channels; got {values.size}.")
    if ch_type == "eeg":
        pos: Any = make_info(ch_names, sfreq, ch_type)
    elif ch_type in ("mag", "grad"):
        pos = meg_positions(ch_names)
    else:
        raise ToolkitError(f"ch_type must be 'eeg' or 'mag'; got {ch_type!r}.")
    vmin, vmax = _resolve_vlim(vlim, values)
    fig, ax = resolve_axes(axes, figsize=(size, size * (0.85 if colorbar else 1.0)), dpi=dpi, show=show)
    image, _ = mne.viz.plot_topomap(
        values,
        pos,
        ch_type=ch_type if ch_type == "eeg" else "mag",
        axes=ax,
        show=False,
        cmap=cmap,
        vlim=(vmin, vmax),
        sensors=sensors,
        contours=int(contours),
        res=int(res),
        image_interp=image_interp,
    )
    if colorbar:
        cbar = fig.colorbar(image, ax=ax, shrink=0.75, pad=0.02)
        cbar.ax.tick_params(labelsize=7)
        if units:
            cbar.set_label(units, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    show_figure(fig, show)
    return fig


def topomap_values(
    trials: TrialSet | np.ndarray,
    latency_s: float,
    *,
    times: np.ndarray | None = None,
    condition: int | None = None,
    repetition: int = 0,
    average: bool = True,
) -> tuple[np.ndarray, float]:
    """Channel values at the sample nearest to a latency.

    Parameters
    ----------
    trials : TrialSet | np.ndarray
        A TrialSet, an array ``(n_chans, n_times)`` or ``(n_trials, n_chans, n_times)``.
    latency_s : float
        Latency in seconds.
    times : np.ndarray | None
        Sample times (required for arrays).
    condition : int | None
        TrialSet condition; ``None`` uses every condition (only with ``average=True``).
    repetition : int
        Repetition (TrialSet) or trial (3-D array) shown when ``average`` is false.
    average : bool
        Average the repetitions (TrialSet) or trials (3-D array) instead of showing one.

    Returns
    -------
    tuple of (np.ndarray, float)
        Values ``(n_chans,)`` float64 and the time of the chosen sample in seconds.
    """
    if hasattr(trials, "data") and hasattr(trials, "ch_names"):
        ts = trials
        idx = nearest_sample(ts.times if times is None else times, latency_s)
        if condition is None:
            if not average:
                raise ToolkitError("Choose a condition to show a single trial (or set average=True).")
            # Read only the chosen sample of every trial (cheap on a memory map).
            values = np.asarray(ts.data[..., idx], dtype=np.float64).mean(axis=(0, 1))
        else:
            if not 0 <= int(condition) < ts.n_conditions:
                raise ToolkitError(f"condition {condition} is out of range; this set has {ts.n_conditions}.")
            if average:
                values = np.asarray(ts.data[int(condition), :, :, idx], dtype=np.float64).mean(axis=0)
            else:
                if not 0 <= int(repetition) < ts.n_repetitions:
                    raise ToolkitError(f"repetition {repetition} is out of range; this set has {ts.n_repetitions}.")
                values = np.asarray(ts.data[int(condition), int(repetition), :, idx], dtype=np.float64)
        return values, float(ts.times[idx] if times is None else np.asarray(times)[idx])
    data = np.asarray(trials)
    if times is None:
        raise ToolkitError("Pass times= when taking a topomap from a plain array (a TrialSet carries them).")
    times = np.asarray(times, dtype=np.float64)
    if data.ndim not in (2, 3) or data.shape[-1] != times.size:
        raise ToolkitError(
            f"trials must be (n_chans, n_times) or (n_trials, n_chans, n_times) with n_times = {times.size}; got "
            f"shape {data.shape}."
        )
    idx = nearest_sample(times, latency_s)
    if data.ndim == 2:
        values = data[:, idx]
    elif average:
        values = data[:, :, idx].mean(axis=0)
    else:
        if not 0 <= int(repetition) < data.shape[0]:
            raise ToolkitError(f"repetition {repetition} is out of range; the array holds {data.shape[0]} trials.")
        values = data[int(repetition), :, idx]
    return np.asarray(values, dtype=np.float64), float(times[idx])


def topomap_at(
    trials: TrialSet | np.ndarray,
    latency_s: float,
    *,
    average: bool = True,
    condition: int | None = None,
    repetition: int = 0,
    times: np.ndarray | None = None,
    ch_names: Sequence[str] | None = None,
    ch_type: str | None = None,
    units: str | None = None,
    scale: float | None = None,
    axes: Axes | None = None,
    show: bool = False,
    cmap: str = "RdBu_r",
    vlim: str | tuple[float | None, float | None] | None = "symmetric",
    title: str | None = None,
    colorbar: bool = True,
    contours: int = 6,
    res: int = 64,
    size: float = 3.0,
    dpi: float = 100,
) -> Figure:
    """Topomap of trials at the sample nearest to ``latency_s``.

    Parameters
    ----------
    trials : TrialSet | np.ndarray
        See :func:`topomap_values`.
    latency_s : float
        Latency in seconds; the nearest sample is shown and its time is the default title.
    average : bool
        Average the repetitions (or trials) instead of showing one.
    condition : int | None
        TrialSet condition; ``None`` averages every condition.
    repetition : int
        Repetition shown when ``average`` is false.
    times : np.ndarray | None
        Sample times (required for arrays).
    ch_names : sequence of str | None
        Channel names (required for arrays).
    ch_type : str | None
        Channel type; ``None``: from the TrialSet, else ``"eeg"``.
    units : str | None
        Colour-bar label; ``None``: from the TrialSet (see :func:`~toolkit.viz.erp.data_units`).
    scale : float | None
        Factor applied before plotting (``1e6`` for volts in µV); ``None``: from the TrialSet, else 1.
    axes, show, cmap, vlim, title, colorbar, contours, res, size, dpi
        See :func:`plot_topomap`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    is_trialset = hasattr(trials, "data") and hasattr(trials, "ch_names")
    values, at = topomap_values(
        trials, latency_s, times=times, condition=condition, repetition=repetition, average=average
    )
    if is_trialset:
        ch_names = trials.ch_names if ch_names is None else ch_names
        ch_type = trials.ch_type if ch_type is None else ch_type
        auto_units, auto_scale = data_units(trials)
        sfreq = trials.sfreq
    else:
        if ch_names is None:
            raise ToolkitError("Pass ch_names= when taking a topomap from a plain array (a TrialSet carries them).")
        ch_type = "eeg" if ch_type is None else ch_type
        auto_units, auto_scale = "a.u.", 1.0
        sfreq = None
    units = auto_units if units is None else units
    scale = auto_scale if scale is None else float(scale)
    return plot_topomap(
        values * scale,
        ch_names,
        sfreq=sfreq,
        ch_type=ch_type,
        axes=axes,
        show=show,
        cmap=cmap,
        vlim=vlim,
        title=f"{at:.3f} s" if title is None else title,
        units=units,
        colorbar=colorbar,
        contours=contours,
        res=res,
        size=size,
        dpi=dpi,
    )
