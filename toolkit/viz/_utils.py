"""Shared plotting helpers: cached MNE Info objects, sample look-up, figure creation and rendering."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError

if TYPE_CHECKING:  # pragma: no cover
    import mne
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The CTF-275 layout shipped with MNE gives 2-D positions for THINGS-MEG's axial gradiometers.
_MEG_LAYOUT = "CTF-275"


def montage_name() -> str:
    """Name of MNE's template 10-05 montage in the installed MNE (``colin27_1005``, or ``standard_1005`` before 1.13).

    Returns
    -------
    str
        A name accepted by :func:`mne.channels.make_standard_montage` that raises no deprecation warning.
    """
    from ..data._montage import resolve_montage_name

    return resolve_montage_name("standard_1005")


@functools.lru_cache(maxsize=1)
def _montage() -> mne.channels.DigMontage:
    import mne

    return mne.channels.make_standard_montage(montage_name())


def make_info(ch_names: Sequence[str], sfreq: float | None = None, ch_type: str = "eeg") -> mne.Info:
    """Return an :class:`mne.Info` with sensor positions for ``ch_names`` (cached; treat it as read-only).

    EEG channels get positions from MNE's template 10-05 montage (see :func:`montage_name`). Other channel types
    (``"mag"``, for THINGS-MEG) have no montage; their 2-D positions come from :func:`meg_positions`.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names (10-05 names for EEG, matched case-insensitively).
    sfreq : float | None
        Sampling rate in Hz (``None``: 1 Hz, for figures that do not use it).
    ch_type : str
        MNE channel type of every channel.

    Returns
    -------
    mne.Info
        A shared, cached object: copy it before modifying it.
    """
    return _make_info(tuple(str(c) for c in ch_names), float(sfreq) if sfreq else 1.0, str(ch_type))


@functools.lru_cache(maxsize=32)
def _make_info(ch_names: tuple[str, ...], sfreq: float, ch_type: str) -> mne.Info:
    import mne

    if len(set(ch_names)) != len(ch_names):
        raise ToolkitError(f"Channel names must be unique; got duplicates in {list(ch_names)}.")
    info = mne.create_info(list(ch_names), sfreq, ch_type)
    if ch_type == "eeg":
        montage = _montage()
        known = {name.lower() for name in montage.ch_names}
        missing = [c for c in ch_names if c.lower() not in known]
        if missing:
            raise ToolkitError(
                f"Channels {missing} have no position in MNE's template 10-05 montage ('{montage_name()}'); "
                "rename them to 10-05 names or select only channels with standard names."
            )
        info.set_montage(montage, match_case=False, on_missing="raise")
    return info


def meg_positions(ch_names: Sequence[str]) -> np.ndarray:
    """2-D sensor positions of CTF MEG channels from MNE's ``CTF-275`` layout, scaled to a head of radius 0.095.

    Channel names are matched on the part before ``-`` (``"MLC11-4408"`` matches the layout's ``"MLC11-2622"``).

    Parameters
    ----------
    ch_names : sequence of str
        CTF channel names.

    Returns
    -------
    np.ndarray, shape (n_chans, 2)
        Positions in metres around the origin, as :func:`mne.viz.plot_topomap` expects with its default sphere.
    """
    return _meg_positions(tuple(str(c) for c in ch_names)).copy()


@functools.lru_cache(maxsize=8)
def _meg_positions(ch_names: tuple[str, ...]) -> np.ndarray:
    import mne

    layout = mne.channels.read_layout(_MEG_LAYOUT)
    centres = layout.pos[:, :2] + layout.pos[:, 2:4] / 2.0
    index = {name.split("-")[0].upper(): i for i, name in enumerate(layout.names)}
    missing = [c for c in ch_names if c.split("-")[0].upper() not in index]
    if missing:
        raise ToolkitError(
            f"MEG channels {missing[:5]}{' ...' if len(missing) > 5 else ''} are not in MNE's {_MEG_LAYOUT} layout; "
            "only CTF channel names (e.g. 'MLC11-4408') can be placed on a topomap."
        )
    pos = centres[[index[c.split("-")[0].upper()] for c in ch_names]]
    # The layout lives in a unit box; centre it and scale its extent to MNE's default head sphere (radius 0.095 m)
    # so that the head outline drawn by plot_topomap surrounds the sensors.
    all_centre = (centres.max(axis=0) + centres.min(axis=0)) / 2.0
    extent = np.abs(centres - all_centre).max()
    return (pos - all_centre) / extent * 0.085


def nearest_sample(times: np.ndarray, latency: float) -> int:
    """Index of the sample nearest to ``latency`` seconds.

    Parameters
    ----------
    times : np.ndarray, shape (n_times,)
        Sample times in seconds, increasing.
    latency : float
        Wanted time in seconds; it must lie within the epoch (half a sample of tolerance at each end).

    Returns
    -------
    int
        The sample index.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ToolkitError("times must be a non-empty 1-D array of seconds.")
    try:
        latency = float(latency)
    except (TypeError, ValueError):
        raise ToolkitError(f"latency must be a number of seconds; got {latency!r}.") from None
    half = (times[1] - times[0]) / 2.0 if times.size > 1 else 0.0
    if not np.isfinite(latency) or latency < times[0] - half - 1e-9 or latency > times[-1] + half + 1e-9:
        raise ToolkitError(
            f"latency {latency} s is outside the epoch ({times[0]:.3f} to {times[-1]:.3f} s); choose a time inside it."
        )
    return int(np.argmin(np.abs(times - latency)))


def new_figure(*, figsize: tuple[float, float], dpi: float, show: bool) -> Figure:
    """A new matplotlib Figure: through pyplot only when it is to be shown, else a bare Agg figure.

    A bare :class:`matplotlib.figure.Figure` is not registered with pyplot, so it opens no window, needs no
    ``plt.close`` and is safe in servers and threads.
    """
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=dpi)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def show_figure(fig: Figure, show: bool) -> None:
    """Show ``fig`` through pyplot if asked and if pyplot manages it (a bare Agg figure cannot be shown)."""
    if not show:
        return
    import matplotlib.pyplot as plt

    number = getattr(fig, "number", None)
    if number is not None and plt.fignum_exists(number):
        plt.show()


def resolve_axes(axes: Axes | None, *, figsize: tuple[float, float], dpi: float, show: bool) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes and their figure, or a new figure with one axes."""
    if axes is not None:
        if not hasattr(axes, "figure") or not hasattr(axes, "plot"):
            raise ToolkitError(f"axes must be a matplotlib Axes; got {type(axes).__name__}.")
        return axes.figure, axes
    fig = new_figure(figsize=figsize, dpi=dpi, show=show)
    return fig, fig.add_subplot()


def figure_to_array(fig: Any, *, dpi: float | None = None) -> np.ndarray:
    """Render a matplotlib figure to an RGB ``uint8`` array (for image widgets and tests).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : float | None
        Resolution; ``None`` keeps the figure's own.

    Returns
    -------
    np.ndarray, shape (height, width, 3)
        The rendered pixels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if isinstance(fig.canvas, FigureCanvasAgg) and dpi in (None, fig.dpi):
        fig.canvas.draw()
        return np.array(fig.canvas.buffer_rgba())[..., :3]
    # Other canvases (or another resolution): go through an in-memory PNG.
    from PIL import Image

    return np.array(Image.open(io.BytesIO(figure_to_png(fig, dpi=dpi))).convert("RGB"))


def figure_to_png(fig: Any, *, dpi: float | None = None) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi if dpi is not None else fig.dpi, facecolor="white")
    return buf.getvalue()


def spatial_colors(ch_names: Sequence[str], ch_type: str = "eeg") -> list[str] | None:
    """One CSS colour per channel from its scalp position (MNE's "spatial colours"), or ``None`` without positions.

    MNE maps each sensor's x, y, z position to red, green, blue for its butterfly plots; the helper that does it is
    private, and plotly needs colour strings, so the same idea is written out here.
    """
    try:
        if ch_type == "eeg":
            info = make_info(ch_names, None, ch_type)
            pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=np.float64)
        else:
            pos = meg_positions(ch_names)
            pos = np.column_stack([pos, np.zeros(len(pos))])
    except ToolkitError:
        return None
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    rgb = (pos - lo) / span
    rgb = 0.15 + 0.7 * rgb  # keep away from white and black so every trace stays visible
    return [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b in rgb]
