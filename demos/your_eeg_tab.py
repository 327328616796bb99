"""The "Your EEG" tab: upload a recording, import it onto a model's montage, inspect the import and the ERPs, and run
the decoding pipeline on it.

Upload one recording (CSV/TSV with a marker column, FIF, EDF, BDF, BrainVision ``.vhdr`` with its ``.eeg`` and
``.vmrk``, EEGLAB ``.set`` with its ``.fdt``), choose a target montage, event ids, window, band and rejection, and
press "Import": :func:`toolkit.data.import_recordings` does the work; the tab shows its report (channels copied /
interpolated / zero-filled / dropped, events per condition, epochs kept), the condition-average ERPs, topomaps at a
latency and, for two conditions, their difference.

Imported onto the encoders' montage (``things-eeg-63`` for the app's bundles), the trials go through the app's
decoding pipeline with "Decode" (:func:`toolkit.pipeline.decode_trialset`): top-k retrieval among the bundle's test
images for every condition average and a chosen trial, that trial's reconstruction with the shuffled-EEG and
prior-only controls, and its saliency map (channels x time and a scalp map, zero-filled channels left out), under a
note saying what such results can mean for a recording the encoders never saw.

The handlers are plain methods of :class:`YourEEGTab` (callable and testable without a server), each wired to a
named API endpoint: ``/your_eeg_import``, ``/your_eeg_view``, ``/your_eeg_example``, ``/your_eeg_target``,
``/your_eeg_decode`` and ``/your_eeg_decode_choices``. :meth:`YourEEGTab.decode` is the one place that turns an
imported :class:`~toolkit.data.TrialSet` into views (the ERP views, and the decoding views on request).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit import ToolkitError

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.data import ImportResult, TrialSet

logger = logging.getLogger(__name__)

MAX_FILE_MB = 200  # per uploaded file; launch() passes the same limit to Gradio (max_file_size)
MAX_FILES = 12  # files per import (several runs of one subject, or a BrainVision triplet)
MAX_WINDOW_S = 10.0  # longest epoch window accepted (ERP windows are usually under 2 s)
MAX_REJECT_UV = 10_000.0  # a larger peak-to-peak threshold means the value was not given in µV
DEFAULT_LATENCY = 0.17  # seconds: the N170 of the example; visual ERPs are strong around 0.1-0.3 s
MAX_ERP_CONDITIONS = 8  # conditions drawn in the ERP plot
MAX_TOPOMAP_CONDITIONS = 4  # condition maps in the topomap row (plus the difference)
MAX_DEFAULT_CHANNELS = 6  # channels in the ERP plot before the user picks others
MAX_ERP_CHANNELS = 12  # channels the ERP plot draws at most (one subplot each)
TTL_S = 3600  # an imported recording stays in the session for an hour
AVERAGE = -1  # the "repetition" meaning: the condition's average over its repetitions
DEFAULT_K = 5
# Reconstruction settings of the Reconstruct tab's defaults (the demo prior: 20 steps keep a request under a second).
RECONSTRUCTION = {"seed": 0, "num_inference_steps": 20, "guidance_scale": 5.0, "image_size": 256}

# Recordings are opened through these files; the companions are read through their header.
RECORDING_ENDINGS = (".fif.gz", ".fif", ".edf", ".bdf", ".vhdr", ".set", ".csv", ".tsv")
COMPANION_ENDINGS = {".eeg": ".vhdr", ".vmrk": ".vhdr", ".fdt": ".set"}
# What the upload widget offers (Gradio matches on the last suffix, so ".gz" stands for ".fif.gz").
UPLOAD_TYPES = [".csv", ".tsv", ".fif", ".gz", ".edf", ".bdf", ".vhdr", ".eeg", ".vmrk", ".set", ".fdt"]
FORMATS_TEXT = ".csv/.tsv, .fif, .edf, .bdf, .vhdr (+ .eeg, .vmrk) or .set (+ .fdt)"

TARGET_CHOICES = [
    ("native: the recording's own channels and rate", "native"),
    ("things-eeg-63: 63 channels, 250 Hz, 0-0.996 s (ATM models)", "things-eeg-63"),
    ("things-eeg-17: 17 posterior channels, 100 Hz, -0.2-0.79 s", "things-eeg-17"),
]
CSV_UNITS = ["uV", "mV", "V", "nV"]

# Posterior sites where visual ERPs are largest: the ERP plot starts with these when a cap has many channels.
_POSTERIOR = ("P7", "P8", "PO7", "PO8", "O1", "O2", "Oz", "Pz", "TP9", "TP10")

# The importer speaks to the command line; the tab names its own widgets instead (most specific pattern first).
_CLI_WORDS = (
    (re.compile(r"\(e\.g\. --event-id ([^)]*)\)"), r"(e.g. \1)"),
    (re.compile(r"--tmin/--tmax"), "the window start/end"),
    (re.compile(r"--target native"), "the 'native' target"),
    (re.compile(r"pass --resample to bring them to one rate"), "import them separately or choose a THINGS target"),
    (re.compile(r"--event-id"), "the event ids"),
    (re.compile(r"--reject"), "the rejection threshold"),
    (re.compile(r"--sfreq"), "the sampling rate (CSV options)"),
    (re.compile(r"--marker-column"), "the marker column (CSV options)"),
)

CSS = "#your-eeg-topomap img, #your-eeg-saliency-topomap img {object-fit: contain;}"

DECODE_INTRO = (
    "### Decode: retrieval, reconstruction and saliency\n\n"
    "Runs the app's encoders on the import: the bundle's test images closest to every condition average and to the "
    "chosen trial, that trial through the diffusion prior (with two controls), and which channels and moments drove "
    "its top match. The encoders take the **`things-eeg-63`** montage: choose it as the target montage and press "
    "Import first. **They were trained on other data and never saw you, your headset or your paradigm** — the "
    "output says what the results can and cannot mean."
)
DECODE_IDLE = "Import a recording onto the `things-eeg-63` target montage, then press Decode."

INTRO = (
    "Upload **your own recording** and see what the toolkit makes of it: events, epochs, channels on a model's "
    f"montage, ERPs and topomaps. Formats: {FORMATS_TEXT} — select all files of a BrainVision or EEGLAB "
    f"recording together; up to {MAX_FILE_MB} MB per file. Larger recordings: "
    "`python -m toolkit data import`. Uploads are read on the server running this app and removed from it within "
    "two hours; on a public Space they pass through Hugging Face's servers, so upload only data you may share."
)


def _gr() -> Any:
    from toolkit.utils import require

    return require("gradio", extra="demo", purpose="the Gradio app")


def _error(err: Exception) -> Exception:
    """A Gradio error carrying one sentence for the page (no traceback)."""
    return _gr().Error(str(err), print_exception=False)


def _warn(message: str) -> None:
    """A yellow toast in the page (a Python warning when called outside a server)."""
    _gr().Warning(message)


def _ui_message(text: str, workdir: Path | None = None) -> str:
    """The importer's message with upload folders removed and command-line options named as the tab's widgets."""
    if workdir is not None:
        for folder in {str(workdir), str(workdir.resolve())}:
            text = text.replace(folder + os.sep, "")
    for pattern, repl in _CLI_WORDS:
        text = pattern.sub(repl, text)
    return text


# -- inputs -----------------------------------------------------------------------------------------------------------
def parse_event_ids(text: str | None) -> dict[str, int] | None:
    """Read ``"house=1, face=2"`` (also ``house:1``, one per line, or bare codes ``"1, 2"``) into a mapping.

    Parameters
    ----------
    text : str | None
        The text of the event-ids box; empty means every code in the recording.

    Returns
    -------
    dict | None
        Condition name -> event code, in the order given, or ``None`` for every code.
    """
    if text is None or not str(text).strip():
        return None
    out: dict[str, int] = {}
    for item in re.split(r"[,;\n]+", str(text)):
        item = item.strip()
        if not item:
            continue
        pair = re.fullmatch(r"(.*?)\s*[=:]\s*(.*)", item)
        name, code = (pair.group(1), pair.group(2)) if pair else (item, item)  # a bare code names its condition
        try:
            value = int(code)
        except ValueError:
            raise ToolkitError(
                f"Event ids must look like 'house=1, face=2' (name=integer code); could not read {item!r}."
            ) from None
        if not name:
            raise ToolkitError(f"Event id {item!r} has no condition name; write it as name=code, e.g. face=2.")
        if name in out:
            raise ToolkitError(f"Condition {name!r} is given twice in the event ids; give each name once.")
        out[name] = value
    if not out:
        raise ToolkitError("The event ids hold no name=code pair; write e.g. 'house=1, face=2' or leave it empty.")
    return out


def _optional_number(value: Any, label: str, *, positive: bool = False) -> float | None:
    """``None`` for an empty box, else a finite float (``0`` counts as empty where ``positive``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{label} must be a number; got {value!r}.") from None
    if not math.isfinite(number):
        raise ToolkitError(f"{label} must be a finite number; got {value!r}.")
    if positive:
        if number < 0:
            raise ToolkitError(f"{label} must be positive (or empty for none); got {number:g}.")
        if number == 0:
            return None
    return number


@dataclass(frozen=True)
class ImportOptions:
    """The tab's import settings, checked and converted to :func:`toolkit.data.import_recordings` arguments.

    Attributes
    ----------
    target : str
        ``"native"``, ``"things-eeg-63"`` or ``"things-eeg-17"``.
    event_id : dict | None
        Condition name -> event code (``None``: every code).
    tmin, tmax : float | None
        Window in seconds (``None``: the target's).
    l_freq, h_freq : float | None
        Band-pass edges in Hz.
    reject : float | None
        Peak-to-peak rejection threshold in volts.
    sfreq : float | None
        Sampling rate of a CSV without timestamps.
    unit : str
        Unit of the CSV's EEG columns.
    marker_column : str | None
        CSV marker column (``None``: auto-detected).
    """

    target: str = "native"
    event_id: dict | None = None
    tmin: float | None = None
    tmax: float | None = None
    l_freq: float | None = 0.1
    h_freq: float | None = None
    reject: float | None = None
    sfreq: float | None = None
    unit: str = "uV"
    marker_column: str | None = None

    @classmethod
    def from_widgets(
        cls,
        target: Any,
        event_ids: Any,
        tmin: Any,
        tmax: Any,
        l_freq: Any,
        h_freq: Any,
        reject_uv: Any,
        sfreq: Any = None,
        unit: Any = "uV",
        marker_column: Any = None,
    ) -> ImportOptions:
        """Check the widget values; every problem is one :class:`~toolkit.ToolkitError` naming the widget."""
        from toolkit.data.importing import TARGETS

        target = str(target or "native")
        if target not in TARGETS:
            raise ToolkitError(f"Unknown target montage {target!r}; choose one of {', '.join(TARGETS)}.")
        start = _optional_number(tmin, "The window start")
        end = _optional_number(tmax, "The window end")
        spec = TARGETS[target]
        lo, hi = spec.tmin if start is None else start, spec.tmax if end is None else end
        if not lo < hi:
            raise ToolkitError(f"The window start ({lo:g} s) must lie before its end ({hi:g} s).")
        if hi - lo > MAX_WINDOW_S:
            raise ToolkitError(
                f"The window {lo:g} to {hi:g} s is longer than {MAX_WINDOW_S:g} s; ERP windows are usually under 2 s."
            )
        reject = _optional_number(reject_uv, "The rejection threshold", positive=True)
        if reject is not None and reject > MAX_REJECT_UV:
            raise ToolkitError(
                f"The rejection threshold {reject:g} µV is implausibly large; it is in microvolts peak-to-peak "
                "(100 is typical) — leave it empty for no rejection."
            )
        unit = str(unit or "uV")
        if unit not in CSV_UNITS:
            raise ToolkitError(f"The CSV unit must be one of {CSV_UNITS}; got {unit!r}.")
        marker = str(marker_column).strip() if marker_column is not None else ""
        return cls(
            target=target,
            event_id=parse_event_ids(event_ids),
            tmin=start,
            tmax=end,
            l_freq=_optional_number(l_freq, "The high-pass edge", positive=True),
            h_freq=_optional_number(h_freq, "The low-pass edge", positive=True),
            reject=None if reject is None else reject * 1e-6,
            sfreq=_optional_number(sfreq, "The sampling rate", positive=True),
            unit=unit,
            marker_column=marker or None,
        )


# -- uploads ----------------------------------------------------------------------------------------------------------
def _upload_paths(files: Any) -> list[Path]:
    """Paths from what Gradio hands over: ``None``, a path, or a list of paths (or of ``{"path": ...}`` dicts)."""
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike, dict)):
        files = [files]
    out = []
    for item in files:
        if isinstance(item, dict):
            item = item.get("path") or item.get("name")
        if item is None or not str(item).strip():
            continue
        out.append(Path(item))
    return out


def _ending(name: str) -> str | None:
    low = name.lower()
    for ending in (*RECORDING_ENDINGS, *COMPANION_ENDINGS):
        if low.endswith(ending):
            return ending
    return None


def _brainvision_companions(header: Path) -> list[str]:
    """File names a BrainVision header points to (``DataFile=`` and ``MarkerFile=``).

    MNE reads these itself; they are looked up here only to name a missing companion before reading, as MNE's own
    error would name the server's upload folder instead.
    """
    try:
        with open(header, encoding="latin-1") as fh:
            text = fh.read(1 << 16)
    except OSError:
        return []
    return [m.strip() for m in re.findall(r"^\s*(?:DataFile|MarkerFile)\s*=\s*(.+?)\s*$", text, flags=re.M)]


def stage_uploads(files: Any, workdir: Path, *, max_bytes: int) -> list[Path]:
    """Check the uploaded files and place them side by side in ``workdir`` under their own names.

    Gradio stores each upload in a folder of its own, while a BrainVision header and an EEGLAB ``.set`` find their
    companions beside themselves; staging them in one folder lets MNE open them.

    Parameters
    ----------
    files : path | list of path | None
        The uploads.
    workdir : Path
        An empty folder to stage them in.
    max_bytes : int
        Largest accepted file.

    Returns
    -------
    list of Path
        The recordings to import (headers; companions are beside them), in upload order.
    """
    paths = _upload_paths(files)
    if not paths:
        raise ToolkitError(f"No file uploaded; choose a recording ({FORMATS_TEXT}) or load the example.")
    if len(paths) > MAX_FILES:
        raise ToolkitError(f"{len(paths)} files were uploaded; import at most {MAX_FILES} at once.")
    staged: dict[str, Path] = {}
    recordings: list[Path] = []
    for path in paths:
        name = path.name
        ending = _ending(name)
        if ending is None:
            raise ToolkitError(f"'{name}' is not a recording this app reads; upload {FORMATS_TEXT}.")
        if not path.is_file():
            raise ToolkitError(f"The upload '{name}' is no longer on the server; upload it again.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ToolkitError(
                f"'{name}' is {size / 1e6:.1f} MB; this app accepts files up to {max_bytes / 1e6:g} MB — import "
                "larger recordings with `python -m toolkit data import` on your own machine."
            )
        if size == 0:
            raise ToolkitError(f"'{name}' is empty (0 bytes); re-export or upload it again.")
        if name in staged:
            raise ToolkitError(f"Two uploaded files are named '{name}'; upload each file once.")
        dest = workdir / name
        try:  # a hard link costs nothing; another file system needs a copy
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
        staged[name] = dest
        if ending in RECORDING_ENDINGS:
            recordings.append(dest)
    if not recordings:
        needed = sorted({COMPANION_ENDINGS[_ending(n)] for n in staged})
        raise ToolkitError(
            f"Only companion files were uploaded ({', '.join(staged)}); add the {' / '.join(needed)} header file "
            "(select all files of the recording together)."
        )
    for rec in recordings:
        if rec.name.lower().endswith(".vhdr"):
            missing = [c for c in _brainvision_companions(rec) if c not in staged]
            if missing:
                raise ToolkitError(
                    f"The BrainVision header '{rec.name}' needs {' and '.join(repr(m) for m in missing)} uploaded "
                    "with it; select the .vhdr, .eeg and .vmrk files together."
                )
    return recordings


# -- views ------------------------------------------------------------------------------------------------------------
@dataclass
class YourEEGViews:
    """What the tab shows for an imported recording (returned by :meth:`YourEEGTab.decode`).

    Attributes
    ----------
    erp : plotly.graph_objects.Figure | None
        Condition averages (± standard error over repetitions) at the chosen channels, a line at the latency
        (``None`` when only the decoding views were asked for).
    difference : plotly.graph_objects.Figure | None
        Butterfly of the second condition's average minus the first's (exactly two conditions), else ``None``.
    topomap : np.ndarray, shape (height, width, 3) | None
        One MNE topomap per condition at the latency (and the difference), rendered to RGB.
    latency_s : float
        Time of the sample shown.
    channels : list of str
        Channels drawn in ``erp``.
    notes : list of str
        Caveats to show beside the views (few channels, conditions not drawn, ...).
    extra : dict
        The decoding views when asked for (see :meth:`YourEEGTab.decode`): ``"decoding"`` (the
        :class:`~toolkit.pipeline.TrialSetDecoding`), ``"retrieval"`` (gallery items and Markdown),
        ``"reconstruction"`` (images and captions), ``"saliency"`` (figures); empty otherwise.
    """

    erp: Any | None
    difference: Any | None
    topomap: np.ndarray | None
    latency_s: float
    channels: list[str]
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def signal_channels(trials: TrialSet) -> list[str]:
    """Channels carrying signal: all but the zero-filled ones (``extra["channel_mask"]`` False)."""
    mask = trials.extra.get("channel_mask")
    if mask is None:
        return list(trials.ch_names)
    mask = np.asarray(mask, dtype=bool)
    return [c for c, keep in zip(trials.ch_names, mask) if keep]


def default_channels(available: Sequence[str]) -> list[str]:
    """All channels of a small montage; posterior sites (then the first channels) of a large one."""
    available = list(available)
    if len(available) <= MAX_DEFAULT_CHANNELS:
        return available
    posterior = [c for c in _POSTERIOR if c in available]
    if len(posterior) >= 2:
        return posterior[:MAX_DEFAULT_CHANNELS]
    return available[:MAX_DEFAULT_CHANNELS]


@lru_cache(maxsize=1)
def _positioned_names() -> frozenset[str]:
    import mne

    from toolkit.viz import montage_name

    return frozenset(n.lower() for n in mne.channels.make_standard_montage(montage_name()).ch_names)


def _palette() -> list[str]:
    from plotly.colors import qualitative

    return list(qualitative.D3)


def condition_erp_figure(
    trials: TrialSet, channels: Sequence[str], latency: float, *, units: str, scale: float
) -> Any:
    """Plotly subplots, one per channel: each condition's average with a ± SEM band and a line at the latency."""
    from toolkit.utils import require

    go = require("plotly.graph_objects", extra="demo", purpose="the ERP plot")
    from plotly.subplots import make_subplots

    names = trials.concept_names()[:MAX_ERP_CONDITIONS]
    idx = [trials.ch_names.index(c) for c in channels]
    n_cols = 1 if len(channels) <= 2 else 2
    n_rows = math.ceil(len(channels) / n_cols)
    fig = make_subplots(
        rows=n_rows, cols=n_cols, shared_xaxes=True, subplot_titles=list(channels), vertical_spacing=0.12 / n_rows
    )
    t = trials.times.astype(np.float32)
    colors = _palette()
    n_rep = trials.n_repetitions
    for c, name in enumerate(names):
        x = np.asarray(trials.data[c][:, idx], dtype=np.float64) * scale  # (repetitions, channels, times)
        mean = x.mean(axis=0)
        sem = x.std(axis=0, ddof=1) / math.sqrt(n_rep) if n_rep > 1 else None
        color = colors[c % len(colors)]
        for k, ch in enumerate(channels):
            row, col = k // n_cols + 1, k % n_cols + 1
            if sem is not None:
                upper, lower = mean[k] + sem[k], mean[k] - sem[k]
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([t, t[::-1]]),
                        y=np.concatenate([upper, lower[::-1]]).astype(np.float32),
                        fill="toself",
                        fillcolor=color,
                        opacity=0.18,
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                    ),
                    row=row,
                    col=col,
                )
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=mean[k].astype(np.float32),
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=k == 0,
                    line={"color": color, "width": 2},
                    hovertemplate=f"<b>{name}</b> · {ch}<br>%{{x:.3f}} s<br>%{{y:.3g}} {units}<extra></extra>",
                ),
                row=row,
                col=col,
            )
    fig.add_vline(x=float(latency), line={"color": "black", "width": 1, "dash": "dash"})
    fig.update_xaxes(range=[float(t[0]), float(t[-1])], zeroline=False)
    fig.update_xaxes(title_text="Time (s)", row=n_rows)
    fig.update_yaxes(title_text=units, col=1)
    fig.update_layout(
        template="plotly_white",
        height=170 + 190 * n_rows,
        # No figure title: the Gradio label sits in the top-left corner; the legend goes to the right.
        margin={"l": 60, "r": 20, "t": 70, "b": 45},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.06, "xanchor": "right", "x": 1},
        hovermode="closest",
    )
    return fig


def _message_image(text: str) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from toolkit.viz import figure_to_array

    fig = Figure(figsize=(5.0, 1.2), dpi=80)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return figure_to_array(fig)


def topomap_row(trials: TrialSet, channels: Sequence[str], sample: int, *, units: str, scale: float) -> np.ndarray:
    """One MNE topomap per condition (shared colour scale) and the difference of two, rendered to RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from toolkit.viz import figure_to_array, plot_topomap, symmetric_vlim

    idx = [trials.ch_names.index(c) for c in channels]
    names = trials.concept_names()
    shown = list(range(min(trials.n_conditions, MAX_TOPOMAP_CONDITIONS)))
    maps = [
        (names[c], np.asarray(trials.data[c][:, idx, sample], dtype=np.float64).mean(axis=0) * scale) for c in shown
    ]
    vlim = symmetric_vlim(np.concatenate([m for _, m in maps]))
    panels = [(title, values, vlim) for title, values in maps]
    if trials.n_conditions == 2:
        diff = maps[1][1] - maps[0][1]
        panels.append((f"{names[1]} − {names[0]}", diff, symmetric_vlim(diff)))
    at = float(trials.times[sample])
    fig = Figure(figsize=(2.6 * len(panels), 2.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, values, lim) in zip(axes, panels):
        plot_topomap(
            values,
            list(channels),
            axes=ax,
            vlim=lim,
            title=f"{title} · {at:.3f} s",
            units=units,
            contours=4,
            res=48,
            image_interp="linear",  # steady few-ms redraws (see TrialBrowser)
        )
    return figure_to_array(fig)


# -- report -----------------------------------------------------------------------------------------------------------
def channel_rows(report: dict) -> list[list]:
    """Rows ``[status, count, channels]`` of the channel mapping (copied / interpolated / zero-filled / dropped)."""
    mapping = report.get("channels") or {}
    rows = []
    for key, label in (
        ("copied", "copied"),
        ("interpolated", "interpolated"),
        ("zero_filled", "zero-filled (no signal)"),
        ("dropped", "dropped (not in target)"),
    ):
        names = list(mapping.get(key) or [])
        rows.append([label, len(names), ", ".join(names) if names else "—"])
    return rows


def event_rows(report: dict) -> list[list]:
    """Rows ``[condition, code, events found, epochs after rejection, used, left out for equal counts]``."""
    rows = []
    for name, cond in report["conditions"].items():
        events = sum(int(f.get("events_used", {}).get(name, 0)) for f in report["files"])
        rows.append([name, cond["code"], events, cond["epochs"], cond["kept"], cond["left_out"]])
    return rows


CHANNEL_HEADERS = ["status", "count", "channels"]
EVENT_HEADERS = ["condition", "code", "events", "after rejection", "used", "left out"]


def report_markdown(report: dict, options: ImportOptions) -> str:
    """A short account of the import: files, events, filter, baseline, rejection, resampling, result."""
    lines = []
    for f in report["files"]:
        other = ", ".join(f"{n} ({k})" for n, k in f.get("other_channels", {}).items())
        codes = ", ".join(f"{c} ×{n}" for c, n in f.get("events_per_code", {}).items()) or "none"
        dropped = f.get("epochs_dropped") or {}
        rejected = f"; rejected: {', '.join(f'{n} ({why})' for why, n in dropped.items())}" if dropped else ""
        lines.append(
            f"- `{f['file']}` — {f['format'].upper()}, {f['sfreq']:g} Hz, {f['duration_s']:.1f} s, "
            f"{len(f['eeg_channels'])} EEG channels{f' (other: {other})' if other else ''}; events from "
            f"{f['events_source']}: {codes}; epochs {f['epochs_found']} found, {f['epochs_kept']} kept{rejected}."
        )
    n_cond, n_rep, n_chans, n_times = report["shape"]
    processing = []
    filt = report.get("filter")
    if filt:
        lo = f"{filt['l_freq']:g}" if filt["l_freq"] is not None else "0"
        hi = f"{filt['h_freq']:g}" if filt["h_freq"] is not None else "—"
        processing.append(f"band-pass {lo}–{hi} Hz, {filt['method']}")
    else:
        processing.append("no filter")
    if report.get("resample"):
        rates = ", ".join(f"{r:g}" for r in report["resample"]["from_hz"])
        processing.append(f"resampled from {rates} to {report['resample']['to_hz']:g} Hz")
    base = report.get("baseline_s")
    processing.append(f"baseline {_fmt(base[0])} to {_fmt(base[1])} s" if base else "no baseline")
    reject = report.get("reject")
    processing.append(f"rejection above {reject['eeg'] * 1e6:g} µV peak-to-peak" if reject else "no rejection")
    window = report["window_s"]
    head = (
        f"**Imported → target `{report['target']}`**: {n_cond} conditions × {n_rep} repetitions × {n_chans} "
        f"channels × {n_times} samples at {report['sfreq']:g} Hz, {window[0]:.3f} to {window[1]:.3f} s "
        f"({'; '.join(processing)})."
    )
    left = {n: c["left_out"] for n, c in report["conditions"].items() if c["left_out"]}
    if left:
        lines.append(
            f"- Equal repetitions: every condition keeps its first {n_rep} epochs; left out: "
            + ", ".join(f"{n} {k}" for n, k in left.items())
            + "."
        )
    if options.event_id is None:
        lines.append("- Event ids empty: every event code became a condition (name them in the event ids box).")
    return "\n".join([head, *lines])


def _fmt(value: float | None) -> str:
    return "epoch start" if value is None else f"{value:g}"


# -- decoding views ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecodeRequest:
    """What "Decode" runs: the encoder, the chosen trial and k (checked by :meth:`from_widgets`).

    Attributes
    ----------
    encoder : str | None
        One of the pipeline's encoders (``None``: its first).
    condition : int | str
        The chosen trial's condition: a name of the import's conditions or its index.
    repetition : int | None
        A repetition (0-based) of that condition, or ``None`` for its average over repetitions.
    k : int
        Test images retrieved per query.
    """

    encoder: str | None = None
    condition: int | str = 0
    repetition: int | None = None
    k: int = DEFAULT_K

    @classmethod
    def from_widgets(cls, pipeline: Any, condition: Any, repetition: Any, encoder: Any, k: Any) -> DecodeRequest:
        """Check the widget values (the condition and repetition ranges are checked against the trials later)."""
        if encoder in (None, ""):
            raise ToolkitError(f"Choose an encoder: {', '.join(pipeline.encoders)}.")
        if encoder not in pipeline.encoders:
            raise ToolkitError(f"Unknown encoder {encoder!r}; this app's bundle has {', '.join(pipeline.encoders)}.")
        if condition is None or (isinstance(condition, str) and not condition.strip()):
            raise ToolkitError("Choose a condition to decode (the list fills in after an import).")
        if repetition in (None, "", AVERAGE, str(AVERAGE)):
            rep = None
        else:
            rep = _whole(repetition, "The repetition")
            if rep == AVERAGE:
                rep = None
        return cls(encoder=str(encoder), condition=condition, repetition=rep, k=_whole(k, "k"))


def _whole(value: Any, label: str) -> int:
    """``value`` as an int (``3.0`` from a slider counts), else a ToolkitError naming ``label``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{label} must be a whole number; got {value!r}.") from None
    if isinstance(value, bool) or not number.is_integer():
        raise ToolkitError(f"{label} must be a whole number; got {value!r}.")
    return int(number)


def retrieval_items(decoding: Any) -> list[tuple[str, str]]:
    """Gallery items ``(image path, "rank. concept · cosine")`` of the chosen trial's top-k."""
    row = decoding.chosen
    out = []
    for rank, (path, concept, score) in enumerate(
        zip(decoding.image_paths[row], decoding.retrieval.concepts[row], decoding.retrieval.scores[row]), start=1
    ):
        out.append((path, f"{rank}. {concept} · {score:.3f}"))
    return out


def retrieval_markdown(decoding: Any) -> str:
    """The decoding summary: what was decoded, the caveats, then every query's top-k concepts with their scores."""
    settings = decoding.settings
    lines = [
        f"**Decoded with `{settings['encoder']}`** — chosen trial: *{decoding.queries[decoding.chosen]}*; top "
        f"{settings['k']} of the bundle's test images per query (cosine similarity of the embeddings).",
        "",
        "**Read this first**",
        "",
        *(f"- ⚠ {note}" for note in decoding.notes),
        "",
        "| Query | Top-k test images (cosine) |",
        "|---|---|",
    ]
    for i, query in enumerate(decoding.queries):
        items = ", ".join(
            f"{c} ({s:.3f})" for c, s in zip(decoding.retrieval.concepts[i], decoding.retrieval.scores[i])
        )
        mark = " ← chosen" if i == decoding.chosen else ""
        lines.append(f"| {query}{mark} | {items} |")
    return "\n".join(lines)


def reconstruction_markdown(decoding: Any) -> str:
    """Captions of the reconstruction and its two controls, and how to read them."""
    if decoding.reconstruction is None:
        return ""
    names = ["EEG reconstruction", "shuffled EEG (control)", "prior only (control)"]
    settings = decoding.reconstruction.settings
    return "\n".join(
        [
            f"**{decoding.queries[decoding.chosen]}** through the diffusion prior (seed {settings['seed']}, "
            f"{settings['num_inference_steps']} steps, guidance {settings['guidance_scale']:g}). Controls with the "
            "same seed: the prior conditioned on a random test trial of the bundle (shuffled) and on nothing "
            "(prior only). A reconstruction says something only where it differs from both.",
            "",
            *(f"- **{name}:** {text}" for name, text in zip(names, decoding.captions, strict=True)),
        ]
    )


def saliency_views(decoding: Any, latency: float, *, lock: Any = None) -> dict:
    """The chosen trial's attribution over the channels with signal: scalp map, heatmap and their summary.

    Parameters
    ----------
    decoding : toolkit.pipeline.TrialSetDecoding
        With an attribution.
    latency : float
        Seconds; the scalp map shows the nearest sample of the encoders' window (clamped into it).
    lock : threading.Lock | None
        Held while matplotlib draws the scalp map.

    Returns
    -------
    dict
        ``topomap`` (RGB array: MNE's scalp map at the latency, or a one-line message with fewer than three
        positioned channels), ``heatmap`` (plotly, channels x time), ``markdown``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from toolkit.explain.aggregate import channel_scores, peak, time_course
    from toolkit.viz import figure_to_array
    from toolkit.viz.attribution import plot_attribution_heatmap, plot_attribution_topomaps

    attr, names, times = decoding.attribution, decoding.attribution_ch_names, decoding.times
    if attr is None:
        return {"topomap": None, "heatmap": None, "markdown": ""}
    at = float(min(max(float(latency), times[0]), times[-1]))
    method = {"ig": "Integrated gradients", "saliency": "Gradient saliency", "occlusion": "Occlusion"}.get(
        decoding.settings["saliency_method"], decoding.settings["saliency_method"]
    )
    concept = decoding.retrieval.concepts[decoding.chosen][0]
    heatmap = plot_attribution_heatmap(
        attr, names, times, engine="plotly", height=int(min(560, 220 + 12 * len(names))),
        title=f"Channels with signal × time ({len(names)} channels)",
    )
    mapped = [c for c in names if c.lower() in _positioned_names()]
    where = ""
    if len(mapped) >= 3:
        idx = [names.index(c) for c in mapped]
        # MNE's topomap (standard 10-05 positions): the plotly map fits a sphere to the sensors, which a handful of
        # electrodes (a Muse's four) cannot constrain.
        with lock if lock is not None else contextlib.nullcontext():
            # Relative to the largest magnitude over the whole epoch (one scale for every latency): attributions
            # carry no unit worth reading here.
            peak_abs = float(np.abs(attr[idx]).max()) or 1.0
            fig = Figure(figsize=(3.6, 2.9), dpi=100, layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            plot_attribution_topomaps(
                attr[idx] / peak_abs, mapped, times, latencies=[at], engine="matplotlib", axes=[ax], vlim=(-1, 1),
                colorbar=False, contours=4,
            )
            cbar = fig.colorbar(ax.images[0], ax=ax, shrink=0.75)
            cbar.ax.tick_params(labelsize=7)
            cbar.set_label("attribution / its largest |value|", fontsize=7)
            topomap = figure_to_array(fig)
        if len(mapped) < 8:
            where = f" The scalp map interpolates {len(mapped)} electrodes: read it as {len(mapped)} values on a head."
    else:
        topomap = _message_image(
            f"No scalp map: it needs 3 channels with standard 10-05 names; {len(mapped)} carry signal."
        )
    peak_time, _ = peak(time_course(attr), times)
    order = np.argsort(-channel_scores(attr), kind="stable")[:5]
    markdown = (
        f"**{method}** of the cosine similarity of *{decoding.queries[decoding.chosen]}* to its top-1 image "
        f"*{concept}* (there is no true image for an uploaded recording: this is what drove the model's choice), "
        f"from the recording's mean trial. Zero-filled channels are left out ({len(decoding.zero_filled)}). "
        f"Attribution peaks at **{peak_time * 1000:.0f} ms**; strongest channels: "
        f"{', '.join(names[i] for i in order)}.{where}"
    )
    return {"topomap": topomap, "heatmap": heatmap, "markdown": markdown}


# -- the tab ----------------------------------------------------------------------------------------------------------
def example_recordings(repo_root: str | os.PathLike | None = None) -> list[Path]:
    """Real N170 recordings the example button can load, best first.

    The bundled ``demos/examples/eegexpy-visual-n170/*.csv`` (one run, BSD-3-Clause, shipped so that a Space has an
    example), then the project's ``../shared/data/eegexpy-visual-n170/recordings/*.csv`` beside the repository.

    Parameters
    ----------
    repo_root : str | os.PathLike | None
        Repository root (default: the folder holding ``demos/``).

    Returns
    -------
    list of Path
        Existing CSV files (possibly empty).
    """
    root = Path(repo_root) if repo_root is not None else Path(__file__).resolve().parents[1]
    bundled = sorted((root / "demos" / "examples" / "eegexpy-visual-n170").glob("*.csv"))
    shared = sorted((root.parent / "shared" / "data" / "eegexpy-visual-n170" / "recordings").glob("*.csv"))
    return [*bundled, *shared]


EXAMPLE_SETTINGS = {
    # The dataset's documented analysis (data_cards/eegexpy-n170.md): 1-30 Hz, -0.1-0.6 s, ±100 µV rejection.
    "target": "native",
    "event_ids": "house=1, face=2",
    "tmin": -0.1,
    "tmax": 0.6,
    "l_freq": 1.0,
    "h_freq": 30.0,
    "reject_uv": 100.0,
}


class YourEEGTab:
    """Handlers and layout of the "Your EEG" tab.

    Parameters
    ----------
    max_file_mb : float
        Largest accepted upload per file, in MB (also passed to Gradio's ``max_file_size`` by :func:`launch`).
    example : str | os.PathLike | None
        Recording loaded by the example button; default: the first of :func:`example_recordings` (the button is
        hidden when there is none). Pass ``False`` for no example.
    pipeline : toolkit.pipeline.DecodingPipeline | None
        The app's decoding pipeline (shared with the decoding tabs); ``None``: "Decode" says it is off.
    """

    def __init__(
        self,
        *,
        max_file_mb: float = MAX_FILE_MB,
        example: str | os.PathLike | bool | None = None,
        pipeline: Any | None = None,
    ) -> None:
        if not max_file_mb > 0:
            raise ToolkitError(f"max_file_mb must be positive; got {max_file_mb}.")
        self.max_file_bytes = int(max_file_mb * 1_000_000)
        if example is None:
            found = example_recordings()
            self.example = found[0] if found else None
        elif example is False:
            self.example = None
        else:
            self.example = Path(example)
        self._render_lock = threading.Lock()  # matplotlib figures are not drawn from several threads at once
        self.pipeline = pipeline

    @property
    def allowed_paths(self) -> list[Path]:
        """Folders Gradio may serve files from (the example's), for ``launch(allowed_paths=...)``."""
        return [self.example.parent.resolve()] if self.example is not None else []

    # -- the one entry point for imported trials ------------------------------------------------------------------
    def decode(
        self,
        trials: TrialSet,
        *,
        latency: float = DEFAULT_LATENCY,
        channels: Sequence[str] | None = None,
        request: DecodeRequest | None = None,
        erp: bool = True,
    ) -> YourEEGViews:
        """Turn an imported trial set into the tab's views: the ERP views, and the decoding views on request.

        This is the one place where anything runs on the user's EEG. The ERP views (condition ERPs, difference,
        topomaps) come with ``erp``. With a ``request``, the trials go through the app's pipeline
        (:func:`toolkit.pipeline.decode_trialset`: retrieval of every condition average and of the chosen trial,
        the chosen trial's reconstruction and saliency) and ``views.extra`` holds ``"decoding"`` (the library's
        result), ``"retrieval"`` (``items``: the chosen trial's gallery, ``markdown``: the summary with its
        caveats), ``"reconstruction"`` (``images``: reconstruction, shuffled and prior-only controls;
        ``markdown``) and ``"saliency"`` (``topomap``, ``heatmap``, ``markdown``). Trials imported onto another
        montage than the encoders' are refused with a ToolkitError naming the target to choose.

        Parameters
        ----------
        trials : TrialSet
            From :func:`toolkit.data.import_recordings` (volts; ``extra["channel_mask"]`` marks zero-filled
            channels, which are left out of every view).
        latency : float
            Seconds; the nearest sample is shown in the topomaps and marked in the ERPs (checked against the
            epoch), and the saliency scalp map is drawn there (clamped into the encoders' window).
        channels : sequence of str | None
            Channels drawn in the ERP plot (default: :func:`default_channels` of the channels carrying signal).
        request : DecodeRequest | None
            Run the decoding pipeline (needs the tab's ``pipeline``).
        erp : bool
            Draw the ERP views (``False``: ``erp``, ``difference`` and ``topomap`` are ``None``).

        Returns
        -------
        YourEEGViews
            The views.
        """
        available = signal_channels(trials)
        if not available:
            raise ToolkitError("The imported trials carry no signal on any channel; choose another target montage.")
        views = (
            self._erp_views(trials, available, latency, channels)
            if erp
            else YourEEGViews(erp=None, difference=None, topomap=None, latency_s=float(latency), channels=[])
        )
        if request is not None:
            views.extra.update(self._decoding_views(trials, request, latency))
        return views

    def _decoding_views(self, trials: TrialSet, request: DecodeRequest, latency: float) -> dict:
        """The decoding views of ``trials`` (see :meth:`decode`)."""
        if self.pipeline is None:
            raise ToolkitError(
                "This app runs without a decoding pipeline, so Decode is off; start it with the demo bundle built "
                "(python -m toolkit demo)."
            )
        from toolkit.pipeline import decode_trialset

        from .retrieval_tab import pipeline_lock, shared_model

        # The app-wide locks of the decoding tabs: models load once; one generation at a time (the prior's scheduler
        # holds the running call's timesteps); one attribution per encoder at a time (it toggles requires_grad).
        # Always taken in this order, and no other tab holds both, so they cannot deadlock.
        encoder = request.encoder or self.pipeline.encoders[0]
        for kind in ("encoder", "prior", "vision"):
            shared_model(self.pipeline, kind, encoder if kind == "encoder" else None)
        with pipeline_lock(self.pipeline, "generation"), pipeline_lock(self.pipeline, f"attribution:{encoder}"):
            decoding = decode_trialset(
                self.pipeline, trials, encoder=encoder, condition=request.condition,
                repetition=request.repetition, k=request.k, seed=RECONSTRUCTION["seed"],
                num_inference_steps=RECONSTRUCTION["num_inference_steps"],
                guidance_scale=RECONSTRUCTION["guidance_scale"], image_size=RECONSTRUCTION["image_size"],
            )
        recon = decoding.reconstruction
        return {
            "decoding": decoding,
            "retrieval": {"items": retrieval_items(decoding), "markdown": retrieval_markdown(decoding)},
            "reconstruction": {
                "images": [recon.images[0], recon.shuffled_images[0], recon.prior_only_images[0]],
                "markdown": reconstruction_markdown(decoding),
            },
            "saliency": saliency_views(decoding, latency, lock=self._render_lock),
        }

    def _erp_views(
        self, trials: TrialSet, available: list[str], latency: float, channels: Sequence[str] | None
    ) -> YourEEGViews:
        """The ERP, difference and topomap views (see :meth:`decode`)."""
        from toolkit.viz import data_units, nearest_sample, plot_butterfly

        if channels is None or len(channels) == 0:
            channels = default_channels(available)
        unknown = [c for c in channels if c not in available]
        if unknown:
            raise ToolkitError(
                f"Channels {unknown} are not among the imported channels with signal; choose from {available}."
            )
        sample = nearest_sample(trials.times, latency)
        at = float(trials.times[sample])
        units, scale = data_units(trials)
        notes = []
        if len(channels) > MAX_ERP_CHANNELS:
            notes.append(f"The ERP plot draws the first {MAX_ERP_CHANNELS} of the {len(channels)} channels chosen.")
            channels = list(channels)[:MAX_ERP_CHANNELS]
        if trials.n_conditions > MAX_ERP_CONDITIONS:
            notes.append(f"The ERP plot draws the first {MAX_ERP_CONDITIONS} of {trials.n_conditions} conditions.")
        erp = condition_erp_figure(trials, list(channels), at, units=units, scale=scale)

        difference = None
        if trials.n_conditions == 2:
            names = trials.concept_names()
            idx = [trials.ch_names.index(c) for c in available]
            diff = trials.condition_average(1)[idx] - trials.condition_average(0)[idx]
            difference = plot_butterfly(
                diff,
                times=trials.times,
                ch_names=available,
                highlight=at,
                title=f"{names[1]} − {names[0]} (difference of condition averages, all channels with signal)",
                units=units,
                scale=scale,
                gfp=len(available) > 2,
                height=320,
            )

        mapped = [c for c in available if c.lower() in _positioned_names()]
        if len(mapped) < 3:
            topomap = _message_image(
                f"No topomap: it needs 3 channels with standard 10-05 names; this recording has {len(mapped)}."
            )
        else:
            if len(mapped) < len(available):
                notes.append(f"Topomaps leave out channels without a standard position: "
                             f"{', '.join(c for c in available if c not in mapped)}.")
            if len(mapped) < 8:
                notes.append(f"Topomaps from {len(mapped)} electrodes are coarse interpolations, not brain maps.")
            if trials.n_conditions > MAX_TOPOMAP_CONDITIONS:
                notes.append(f"Topomaps show the first {MAX_TOPOMAP_CONDITIONS} of {trials.n_conditions} conditions.")
            with self._render_lock:
                topomap = topomap_row(trials, mapped, sample, units=units, scale=scale)
        return YourEEGViews(
            erp=erp, difference=difference, topomap=topomap, latency_s=at, channels=list(channels), notes=notes
        )

    # -- handlers (named API endpoints) -----------------------------------------------------------------------
    def run_import(self, files: Any, options: ImportOptions) -> ImportResult:
        """Stage the uploads and import them (no Gradio involved); errors are ToolkitErrors naming the files."""
        from toolkit.data import import_recordings

        with tempfile.TemporaryDirectory(prefix="your-eeg-") as tmp:
            workdir = Path(tmp)
            try:
                recordings = stage_uploads(files, workdir, max_bytes=self.max_file_bytes)
                return import_recordings(
                    recordings,
                    target=options.target,
                    sfreq=options.sfreq,
                    tmin=options.tmin,
                    tmax=options.tmax,
                    event_id=options.event_id,
                    marker_column=options.marker_column,
                    l_freq=options.l_freq,
                    h_freq=options.h_freq,
                    reject=options.reject,
                    unit=options.unit,
                    subject="you",
                    split="import",
                )
            except ToolkitError as err:
                raise ToolkitError(_ui_message(str(err), workdir)) from None
            except MemoryError:
                raise ToolkitError(
                    "The recording does not fit in this server's memory; import it with `python -m toolkit data "
                    "import` on your own machine."
                ) from None

    def import_files(
        self,
        files: Any,
        target: str,
        event_ids: str,
        tmin: float | None,
        tmax: float | None,
        l_freq: float | None,
        h_freq: float | None,
        reject_uv: float | None,
        sfreq: float | None = None,
        csv_unit: str = "uV",
        marker_column: str | None = None,
        latency: float = DEFAULT_LATENCY,
    ) -> tuple:
        """Import the uploaded recording and show it (API ``your_eeg_import``).

        Parameters
        ----------
        files : path | list of path
            The uploaded files (a BrainVision or EEGLAB recording with its companions, or several runs).
        target : str
            ``"native"``, ``"things-eeg-63"`` or ``"things-eeg-17"``.
        event_ids : str
            ``"house=1, face=2"``; empty for every event code.
        tmin, tmax : float | None
            Window in seconds (empty: the target's).
        l_freq, h_freq : float | None
            Band-pass edges in Hz (empty or 0: none).
        reject_uv : float | None
            Peak-to-peak rejection threshold in µV (empty or 0: none).
        sfreq : float | None
            Sampling rate of a CSV without timestamps.
        csv_unit : str
            Unit of a CSV's EEG columns.
        marker_column : str | None
            CSV marker column (empty: auto-detected).
        latency : float
            Latency in seconds for the topomaps (clamped into the imported window).

        Returns
        -------
        tuple
            ``(trials, report Markdown, channels table, events table, ERP figure, difference update, topomap,
            latency slider update, channel dropdown update)``.
        """
        gr = _gr()
        try:
            options = ImportOptions.from_widgets(
                target, event_ids, tmin, tmax, l_freq, h_freq, reject_uv, sfreq, csv_unit, marker_column
            )
            result = self.run_import(files, options)
            trials = result.trials
            try:
                wanted = float(latency)
            except (TypeError, ValueError):
                wanted = DEFAULT_LATENCY
            if not math.isfinite(wanted):
                wanted = DEFAULT_LATENCY
            at = float(min(max(wanted, trials.times[0]), trials.times[-1]))
            views = self.decode(trials, latency=at)
        except ToolkitError as err:
            raise _error(err) from None
        except Exception as err:  # a reader failing in a way nobody foresaw: one message, the server keeps serving
            logger.exception("import failed")
            raise _error(
                ToolkitError(
                    f"The import failed unexpectedly ({type(err).__name__}: {str(err).strip()[:200]}); check that the "
                    "file is a continuous recording with event markers, or report it with the file's format."
                )
            ) from None
        import pandas as pd

        report = result.report
        summary = report_markdown(report, options)
        notes = list(views.notes)
        zero = (report.get("channels") or {}).get("zero_filled") or []
        if zero:
            message = (
                f"{len(zero)} of {trials.n_chans} target channels are zero-filled (no recorded electrode near them); "
                "a model trained on the full montage will see zeros there."
            )
            notes.insert(0, message)
            _warn(message)
        if trials.n_repetitions < 10:
            message = f"Only {trials.n_repetitions} repetitions per condition: the averages will be noisy."
            notes.insert(0, message)
            _warn(message)
        if notes:
            summary += "\n\n**Notes**\n\n" + "\n".join(f"- ⚠ {n}" for n in notes)
        available = signal_channels(trials)
        times = trials.times
        return (
            trials,
            summary,
            pd.DataFrame(channel_rows(report), columns=CHANNEL_HEADERS),
            pd.DataFrame(event_rows(report), columns=EVENT_HEADERS),
            views.erp,
            gr.update(value=views.difference, visible=views.difference is not None),
            views.topomap,
            gr.update(
                minimum=float(times[0]), maximum=float(times[-1]), step=1.0 / trials.sfreq, value=views.latency_s
            ),
            gr.update(choices=available, value=views.channels),
        )

    def show(self, trials: TrialSet | None, channels: Sequence[str] | None, latency: float) -> tuple:
        """Redraw the views for other channels or another latency (API ``your_eeg_view``).

        Returns
        -------
        tuple
            ``(ERP figure, difference update, topomap)``.
        """
        gr = _gr()
        if trials is None:
            raise _error(ToolkitError("Nothing imported yet; upload a recording and press Import first."))
        channels = list(channels or [])
        if len(channels) > MAX_ERP_CHANNELS:
            _warn(f"The ERP plot draws the first {MAX_ERP_CHANNELS} of the {len(channels)} channels chosen.")
        try:
            views = self.decode(trials, latency=latency, channels=channels)
        except ToolkitError as err:
            raise _error(err) from None
        return (
            views.erp,
            gr.update(value=views.difference, visible=views.difference is not None),
            views.topomap,
        )

    def target_defaults(self, target: str) -> tuple:
        """The target's window, filled into the window boxes when the target changes (API ``your_eeg_target``)."""
        from toolkit.data.importing import TARGETS

        if target not in TARGETS:
            raise _error(ToolkitError(f"Unknown target montage {target!r}; choose one of {', '.join(TARGETS)}."))
        spec = TARGETS[target]
        return spec.tmin, spec.tmax

    def load_example(self, latency: float = DEFAULT_LATENCY) -> tuple:
        """Fill the form with the real N170 example and import it (API ``your_eeg_example``).

        Returns
        -------
        tuple
            ``(files, target, event ids, tmin, tmax, l_freq, h_freq, reject, *import_files outputs)``.
        """
        if self.example is None or not self.example.is_file():
            raise _error(ToolkitError("No example recording is available in this installation."))
        s = EXAMPLE_SETTINGS
        files = [str(self.example)]
        outputs = self.import_files(
            files, s["target"], s["event_ids"], s["tmin"], s["tmax"], s["l_freq"], s["h_freq"], s["reject_uv"],
            None, "uV", None, latency,
        )
        form = (files, s["target"], s["event_ids"], s["tmin"], s["tmax"], s["l_freq"], s["h_freq"], s["reject_uv"])
        return (*form, *outputs)

    def decode_upload(
        self,
        trials: TrialSet | None,
        condition: int | str | None,
        repetition: int | None,
        encoder: str | None,
        k: int,
        latency: float = DEFAULT_LATENCY,
    ) -> tuple:
        """Retrieval, reconstruction and saliency of the imported trials (API ``your_eeg_decode``).

        Parameters
        ----------
        trials : TrialSet | None
            The session's import (imported onto the encoders' montage, ``things-eeg-63`` for the app's bundles).
        condition : int | str
            The chosen trial's condition (name or index).
        repetition : int | None
            Its repetition, 0-based, or ``-1`` (or empty) for the condition's average.
        encoder : str
            One of the pipeline's encoders.
        k : int
            Test images retrieved per query.
        latency : float
            Seconds: the saliency scalp map shows the nearest sample of the encoders' window.

        Returns
        -------
        tuple
            ``(summary Markdown, gallery items, reconstruction, shuffled control, prior-only control, reconstruction
            Markdown, saliency Markdown, saliency scalp map, saliency heatmap)``; images are PIL images, the scalp
            map an RGB array, the heatmap a plotly figure.
        """
        try:
            if self.pipeline is None:
                raise ToolkitError(
                    "This app runs without a decoding pipeline, so Decode is off; start it with the demo bundle built "
                    "(python -m toolkit demo)."
                )
            if trials is None:
                raise ToolkitError(
                    f"Nothing imported yet; upload a recording, choose the target montage "
                    f"'{self._model_target() or 'of the encoders'}' and press Import first."
                )
            request = DecodeRequest.from_widgets(self.pipeline, condition, repetition, encoder, k)
            views = self.decode(trials, latency=latency, request=request, erp=False)
        except ToolkitError as err:
            raise _error(err) from None
        except Exception as err:  # a model failing in a way nobody foresaw: one message, the server keeps serving
            logger.exception("decoding failed")
            raise _error(
                ToolkitError(f"Decoding failed unexpectedly ({type(err).__name__}: {str(err).strip()[:200]}).")
            ) from None
        extra = views.extra
        recon, saliency = extra["reconstruction"], extra["saliency"]
        return (
            extra["retrieval"]["markdown"],
            extra["retrieval"]["items"],
            *recon["images"],
            recon["markdown"],
            saliency["markdown"],
            saliency["topomap"],
            saliency["heatmap"],
        )

    def _model_target(self) -> str | None:
        from toolkit.pipeline import model_target

        return model_target(self.pipeline) if self.pipeline is not None else None

    def decode_choices(self, trials: TrialSet | None) -> tuple:
        """Fill the decode controls after an import (API ``your_eeg_decode_choices``).

        Returns
        -------
        tuple
            ``(condition dropdown update, repetition dropdown update, status Markdown)``; the status says whether
            the import can be decoded, and if not, which target to import onto.
        """
        gr = _gr()
        if trials is None:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=AVERAGE), DECODE_IDLE
        names = trials.concept_names()
        reps = [(f"Average of {trials.n_repetitions} repetitions", AVERAGE)]
        reps += [(f"Repetition {r + 1}", r) for r in range(trials.n_repetitions)]
        if self.pipeline is None:
            status = "Decode is off: this app runs without a decoding pipeline."
        else:
            from toolkit.pipeline import check_model_montage

            try:
                _, notes = check_model_montage(self.pipeline, trials)
                n_signal = len(signal_channels(trials))
                status = (
                    f"Ready to decode: {trials.n_conditions} conditions × {trials.n_repetitions} repetitions on the "
                    f"encoders' montage, {n_signal} of {trials.n_chans} channels with signal. {' '.join(notes)}"
                ).strip()
            except ToolkitError as err:
                status = f"⚠ Not decodable as imported: {err}"
        return (
            gr.update(choices=names, value=names[0]),
            gr.update(choices=reps, value=AVERAGE),
            status,
        )

    # -- layout -----------------------------------------------------------------------------------------------
    def build(self) -> dict:
        """Create the tab's components inside the current Blocks/Tab context and wire the events.

        Returns
        -------
        dict
            The components by name (for tests and for later steps that add views of :meth:`decode`).
        """
        gr = _gr()
        from toolkit.data.importing import TARGETS

        native = TARGETS["native"]  # the form starts on the native target's window
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                files = gr.File(
                    label="Recording (select companion files together)",
                    file_count="multiple",
                    file_types=UPLOAD_TYPES,
                    type="filepath",
                    height=150,
                )
                with gr.Row():
                    import_button = gr.Button("Import", variant="primary")
                    example_button = gr.Button(
                        "Load the example (real N170 recording)", visible=self.example is not None
                    )
            with gr.Column(scale=3):
                with gr.Row():
                    target = gr.Dropdown(TARGET_CHOICES, value="native", label="Target montage")
                    event_ids = gr.Textbox(
                        label="Event ids (name=code, comma-separated; empty = every code)",
                        placeholder="house=1, face=2",
                    )
                with gr.Row():
                    tmin = gr.Number(native.tmin, label="Window start (s)")
                    tmax = gr.Number(native.tmax, label="Window end (s)")
                    l_freq = gr.Number(0.1, label="High-pass (Hz; 0 = none)", minimum=0)
                    h_freq = gr.Number(40.0, label="Low-pass (Hz; 0 = none)", minimum=0)
                    reject = gr.Number(0, label="Rejection (µV peak-to-peak; 0 = none)", minimum=0)
                with gr.Accordion("CSV options", open=False), gr.Row():
                    sfreq = gr.Number(0, label="Sampling rate (Hz; only for a CSV without timestamps)", minimum=0)
                    csv_unit = gr.Dropdown(CSV_UNITS, value="uV", label="Unit of the EEG columns")
                    marker_column = gr.Textbox(label="Marker column (empty = auto-detect)")
        summary = gr.Markdown("Nothing imported yet.")
        with gr.Row(equal_height=False):
            channels_table = gr.Dataframe(
                headers=CHANNEL_HEADERS, label="Channels on the target montage", interactive=False, wrap=True,
                column_widths=["22%", "10%", "68%"],
            )
            events_table = gr.Dataframe(
                headers=EVENT_HEADERS, label="Events and epochs per condition", interactive=False, wrap=True
            )
        with gr.Row():
            latency = gr.Slider(-1.0, 2.0, value=DEFAULT_LATENCY, step=0.004, label="Latency (s)")
            # Custom values let API calls reach the handler, which names the channels to choose from.
            channels = gr.Dropdown(
                [], value=[], multiselect=True, allow_custom_value=True, label="Channels in the ERP plot"
            )
        erp = gr.Plot(label="ERP per condition: mean ± standard error over repetitions")
        topomap = gr.Image(
            type="numpy", label="Topomaps at the latency", interactive=False, format="png", elem_id="your-eeg-topomap"
        )
        difference = gr.Plot(label="Condition difference", visible=False)
        trials = gr.State(None, time_to_live=TTL_S)
        decoding = self._build_decoding()

        outputs = [trials, summary, channels_table, events_table, erp, difference, topomap, latency, channels]
        target.input(
            self.target_defaults, inputs=[target], outputs=[tmin, tmax], api_name="your_eeg_target"
        )
        form = [target, event_ids, tmin, tmax, l_freq, h_freq, reject, sfreq, csv_unit, marker_column, latency]
        imported = import_button.click(
            self.import_files, inputs=[files, *form], outputs=outputs, api_name="your_eeg_import",
            concurrency_limit=2,
        )
        example = example_button.click(
            self.load_example,
            inputs=[latency],
            outputs=[files, target, event_ids, tmin, tmax, l_freq, h_freq, reject, *outputs],
            api_name="your_eeg_example",
            concurrency_limit=2,
        )
        # After an import, the decode controls offer its conditions and repetitions and say whether it is decodable.
        choices = [decoding["condition"], decoding["repetition"], decoding["status"]]
        imported.success(self.decode_choices, inputs=[trials], outputs=choices, api_name="your_eeg_decode_choices")
        example.success(
            self.decode_choices, inputs=[trials], outputs=choices, api_name="your_eeg_example_choices",
            api_visibility="undocumented",
        )
        decoding["decode"].click(
            self.decode_upload,
            inputs=[trials, *(decoding[n] for n in ("condition", "repetition", "encoder", "k")), latency],
            outputs=[
                decoding[name] for name in (
                    "summary", "gallery", "reconstruction", "shuffled", "prior_only", "reconstruction_text",
                    "saliency_text", "saliency_topomap", "saliency_heatmap",
                )
            ],
            api_name="your_eeg_decode",
            concurrency_limit=1,  # it generates: one at a time anyway (the app-wide "generation" lock)
        )
        gr.on(
            [latency.release, channels.input],
            self.show,
            inputs=[trials, channels, latency],
            outputs=[erp, difference, topomap],
            api_name="your_eeg_view",
            trigger_mode="always_last",
            show_progress="minimal",
        )
        return {
            "files": files,
            "import": import_button,
            "example": example_button,
            "target": target,
            "event_ids": event_ids,
            "tmin": tmin,
            "tmax": tmax,
            "l_freq": l_freq,
            "h_freq": h_freq,
            "reject": reject,
            "sfreq": sfreq,
            "csv_unit": csv_unit,
            "marker_column": marker_column,
            "summary": summary,
            "channels_table": channels_table,
            "events_table": events_table,
            "latency": latency,
            "channels": channels,
            "erp": erp,
            "topomap": topomap,
            "difference": difference,
            "trials": trials,
            **{f"decode_{name}": component for name, component in decoding.items()},
        }

    def _build_decoding(self) -> dict:
        """The decode controls and outputs (in the current Blocks context); wired by :meth:`build`."""
        gr = _gr()
        encoders = list(self.pipeline.encoders) if self.pipeline is not None else []
        n_gallery = len(self.pipeline.gallery("image")[1]) if self.pipeline is not None else DEFAULT_K
        gr.Markdown(DECODE_INTRO)
        with gr.Row():
            # Custom values let API calls reach the handler, which names the valid choices.
            condition = gr.Dropdown([], value=None, label="Condition", allow_custom_value=True)
            repetition = gr.Dropdown(
                [("Average of the repetitions", AVERAGE)], value=AVERAGE, label="Trial", allow_custom_value=True
            )
            encoder = gr.Dropdown(
                encoders, value=encoders[0] if encoders else None, label="Encoder", allow_custom_value=True
            )
            k = gr.Slider(1, n_gallery, value=min(DEFAULT_K, n_gallery), step=1, label="Top k")
        decode = gr.Button("Decode", variant="primary", interactive=self.pipeline is not None)
        status = gr.Markdown(
            DECODE_IDLE if self.pipeline is not None else "Decode is off: this app runs without a decoding pipeline."
        )
        summary = gr.Markdown()
        gallery = gr.Gallery(
            label="Chosen trial: top k test images", columns=5, height=240, object_fit="contain", allow_preview=True,
        )
        with gr.Row(equal_height=True):
            kwargs = {"type": "pil", "interactive": False, "height": 240}
            reconstruction = gr.Image(label="EEG reconstruction", **kwargs)
            shuffled = gr.Image(label="Shuffled EEG (control)", **kwargs)
            prior_only = gr.Image(label="Prior only (control)", **kwargs)
        reconstruction_text = gr.Markdown()
        saliency_text = gr.Markdown()
        with gr.Row(equal_height=False):
            saliency_topomap = gr.Image(
                type="numpy", label="Saliency scalp map (at the latency)", interactive=False, format="png",
                elem_id="your-eeg-saliency-topomap",
            )
            saliency_heatmap = gr.Plot(label="Saliency: channels with signal × time")
        return {
            "condition": condition, "repetition": repetition, "encoder": encoder, "k": k, "decode": decode,
            "status": status, "summary": summary, "gallery": gallery, "reconstruction": reconstruction,
            "shuffled": shuffled, "prior_only": prior_only, "reconstruction_text": reconstruction_text,
            "saliency_text": saliency_text, "saliency_topomap": saliency_topomap,
            "saliency_heatmap": saliency_heatmap,
        }
