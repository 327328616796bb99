"""Readers for raw EEG recordings (FIF, EDF, BDF, BrainVision, EEGLAB, CSV) and event finding, all through MNE.

Every failure becomes one :class:`~toolkit.ToolkitError` naming the file.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ToolkitError
from ._montage import canonical_name

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd

logger = logging.getLogger(__name__)

# File ending -> format name. BrainVision recordings are opened through their .vhdr header.
FORMATS = {
    ".fif": "fif",
    ".fif.gz": "fif",
    ".edf": "edf",
    ".bdf": "bdf",
    ".vhdr": "brainvision",
    ".set": "eeglab",
    ".csv": "csv",
    ".tsv": "csv",
}

# Column names taken as the marker column of a CSV (case-insensitive): Marker0, marker, markers, trigger, stim...
_MARKER_NAME = re.compile(r"^(markers?|triggers?|trig|stim|stimulus|events?|status)[\s_]*\d*$", re.IGNORECASE)
_TIME_NAMES = ("timestamps", "timestamp", "time", "times", "time_s", "time (s)", "seconds")
# Channels that are not EEG though a reader typed them so (auxiliary inputs, motion sensors, physiology).
_AUX_TYPES = (
    (re.compile(r"eog", re.IGNORECASE), "eog"),
    (re.compile(r"ecg|ekg", re.IGNORECASE), "ecg"),
    (re.compile(r"emg", re.IGNORECASE), "emg"),
    (re.compile(r"aux|acc|gyro|ppg|batt|counter|sample|index|resp|gsr|temp|light|hr\b", re.IGNORECASE), "misc"),
)
_UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6, "nV": 1e-9}
# MNE warnings that mean the data end before the header or the markers say they should.
_TRUNCATION = re.compile(r"does not match the file size|outside (the )?data range", re.IGNORECASE)
# Annotation descriptions that mark recording structure rather than stimuli (bad spans, edges, BrainVision segments).
_ANNOT_REGEXP = r"^(?![Bb][Aa][Dd]|[Ee][Dd][Gg][Ee]|New Segment).*$"


@dataclass
class Recording:
    """A raw recording read into MNE, with its events.

    Attributes
    ----------
    raw : mne.io.BaseRaw
        The preloaded recording (EEG in volts).
    path : Path
        Source file.
    fmt : str
        Format name (``"fif"``, ``"edf"``, ``"bdf"``, ``"brainvision"``, ``"eeglab"``, ``"csv"``).
    events : np.ndarray, shape (n_events, 3)
        MNE events (sample index including ``raw.first_samp``, previous value, code).
    event_names : dict
        Code -> name where the file names its events (annotations); empty for numeric markers.
    named_codes : set of int
        Codes that MNE numbered by name (annotations such as "face"), which mean nothing in themselves.
    report : dict
        What was found: sampling rate, channels, event source and counts.
    """

    raw: mne.io.BaseRaw
    path: Path
    fmt: str
    events: np.ndarray
    event_names: dict[int, str] = field(default_factory=dict)
    named_codes: set[int] = field(default_factory=set)
    report: dict = field(default_factory=dict)


def detect_format(path: str | os.PathLike) -> str:
    """Return the format name of a recording from its file ending, or raise a ToolkitError naming the file."""
    name = Path(path).name.lower()
    for ending in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FORMATS[ending]
    hint = " (open a BrainVision recording through its .vhdr header)" if name.endswith((".eeg", ".vmrk")) else ""
    raise ToolkitError(
        f"Unsupported recording format for '{path}'{hint}; supported endings: {', '.join(FORMATS)}."
    )


def read_recording(
    path: str | os.PathLike,
    *,
    sfreq: float | None = None,
    marker_column: str | None = None,
    unit: str = "uV",
    events_required: bool = True,
) -> Recording:
    """Read one raw recording and find its events.

    Parameters
    ----------
    path : str | os.PathLike
        The recording (see :data:`FORMATS` for the supported endings).
    sfreq : float | None
        Expected sampling rate in Hz. For a CSV without a timestamps column it is required; otherwise it is checked
        against the file (header or timestamps) and a mismatch of more than 1 % is an error.
    marker_column : str | None
        CSV: the column holding event codes (default: auto-detected by name). Other formats: the stim channel to
        read events from (default: any stim channel, else the annotations).
    unit : str
        CSV only: unit of the EEG columns (``"uV"``, ``"mV"``, ``"V"``, ``"nV"``).
    events_required : bool
        Raise when no events are found.

    Returns
    -------
    Recording
        The recording and its events.
    """
    path = Path(path)
    fmt = detect_format(path)
    if not path.is_file():
        raise ToolkitError(f"Recording '{path}' does not exist; check the path.")
    if path.stat().st_size == 0:
        raise ToolkitError(f"Recording '{path}' is empty (0 bytes); re-export or copy it again.")
    if fmt == "csv":
        raw, report = _read_csv(path, sfreq=sfreq, marker_column=marker_column, unit=unit)
    else:
        raw = _read_mne(path, fmt)
        report = {"sfreq_file": float(raw.info["sfreq"])}
        if sfreq is not None and abs(raw.info["sfreq"] - sfreq) > 0.01 * sfreq:
            raise ToolkitError(
                f"The sampling rate given ({sfreq:g} Hz) does not match the {raw.info['sfreq']:g} Hz stored in "
                f"'{path}'; leave --sfreq out or fix it."
            )
    _retype_auxiliary(raw)
    _check_finite(raw, path)
    report.update(
        {
            "file": path.name,
            "format": fmt,
            "sfreq": float(raw.info["sfreq"]),
            "n_samples": int(raw.n_times),
            "duration_s": round(float(raw.n_times / raw.info["sfreq"]), 3),
            "eeg_channels": [raw.ch_names[i] for i in _eeg_picks(raw)],
            "other_channels": {
                name: kind
                for name, kind in zip(raw.ch_names, raw.get_channel_types())
                if kind not in ("eeg", "stim")
            },
        }
    )
    if not report["eeg_channels"]:
        raise ToolkitError(f"Recording '{path}' holds no EEG channels (channels: {raw.ch_names}).")
    events, names, named, source = _find_events(raw, path, fmt, marker_column)
    report["events_source"] = source
    report["events_per_code"] = {str(int(c)): int(n) for c, n in zip(*np.unique(events[:, 2], return_counts=True))}
    if events_required and len(events) == 0:
        raise ToolkitError(
            f"No events found in '{path}' ({source}); a stimulus-locked import needs event markers "
            "(a marker column, a stim channel or annotations)."
        )
    return Recording(
        raw=raw, path=path, fmt=fmt, events=events, event_names=names, named_codes=named, report=report
    )


# -- format readers -----------------------------------------------------------------------------------------------
def _read_mne(path: Path, fmt: str) -> mne.io.BaseRaw:
    import mne

    readers = {
        "fif": mne.io.read_raw_fif,
        "edf": mne.io.read_raw_edf,
        "bdf": mne.io.read_raw_bdf,
        "brainvision": mne.io.read_raw_brainvision,
        "eeglab": mne.io.read_raw_eeglab,
    }
    label = "BrainVision" if fmt == "brainvision" else fmt.upper()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = readers[fmt](path, preload=True, verbose="warning")
    except Exception as err:  # any reader failure (truncated, corrupt, missing companion file) -> one message
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToolkitError(
            f"Could not read '{path}' as {label}: {detail}. "
            "The file may be truncated or corrupt (or a companion file is missing); re-export it."
        ) from err
    # MNE reads a truncated EDF/BDF or BrainVision file without error, only warning; here that is an error.
    for w in caught:
        message = str(w.message)
        if _TRUNCATION.search(message):
            raise ToolkitError(
                f"'{path}' holds less data than its header or markers say ({message.split('. ')[0].rstrip('.')}); "
                f"the {label} file looks truncated: re-export or copy it again."
            )
        logger.info("%s: %s", path.name, message)
    return raw


def _read_csv(
    path: Path, *, sfreq: float | None, marker_column: str | None, unit: str
) -> tuple[mne.io.RawArray, dict]:
    import mne
    import pandas as pd

    if unit not in _UNITS:
        raise ToolkitError(f"Unknown unit {unit!r} for the EEG columns of '{path}'; use one of {list(_UNITS)}.")
    try:
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", skipinitialspace=True)
    except pd.errors.EmptyDataError as err:
        raise ToolkitError(f"Recording '{path}' holds no data (empty CSV); re-export it.") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        detail = str(err).strip().splitlines()[0]
        raise ToolkitError(
            f"Could not parse '{path}' as CSV: {detail}; the file may be corrupt or truncated."
        ) from err
    columns = [str(c).strip() for c in df.columns]
    df.columns = columns
    if all(_is_number(c) for c in columns):
        raise ToolkitError(f"CSV '{path}' has no header row; the first line must name the columns (TP9, AF7, ...).")
    if len(df) < 2:
        raise ToolkitError(f"CSV '{path}' holds {len(df)} data rows; a recording needs samples.")

    time_col = next((c for c in columns if c.lower() in _TIME_NAMES), None)
    marker = _marker_column(columns, marker_column, path)
    channels = [c for c in columns if c not in (time_col, marker)]
    if not channels:
        raise ToolkitError(f"CSV '{path}' holds no signal columns besides {columns}.")
    numeric = {c: _numeric_column(df, c, path) for c in [*channels, *([time_col] if time_col else [])]}
    for c in channels:
        bad = ~np.isfinite(numeric[c])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ToolkitError(
                f"CSV '{path}' has a missing, NaN or infinite value in column {c!r} at data row {row + 1}"
                f"{' (the last row: the file looks truncated)' if row == len(df) - 1 else ''}; fix or trim the file."
            )
    report: dict = {"unit": unit, "marker_column": marker}
    rate = _csv_rate(numeric.get(time_col), sfreq, path, report)

    markers = np.zeros(len(df))
    if marker is not None:
        codes = pd.to_numeric(df[marker], errors="coerce")
        non_numeric = codes.isna() & df[marker].notna()
        if non_numeric.any():
            row = int(np.flatnonzero(non_numeric.to_numpy())[0])
            raise ToolkitError(
                f"Marker column {marker!r} of '{path}' holds a non-numeric value {df[marker].iloc[row]!r} at data "
                f"row {row + 1}; markers must be integer event codes (0 = none)."
            )
        markers = codes.fillna(0).to_numpy(dtype=np.float64)  # empty cells are "no marker"
        if not np.all(np.isfinite(markers)) or np.any(markers != np.round(markers)):
            raise ToolkitError(f"Marker column {marker!r} of '{path}' holds non-integer codes; use integers.")

    kinds = []
    for c in channels:
        kind = "eeg"
        if canonical_name(c) is None:
            kind = next((k for pattern, k in _AUX_TYPES if pattern.search(c)), "eeg")
        kinds.append(kind)
    scale = np.array([_UNITS[unit] if k == "eeg" else 1.0 for k in kinds])[:, None]
    data = np.stack([numeric[c] for c in channels]) * scale
    names, types = list(channels), list(kinds)
    if marker is not None:
        data = np.vstack([data, markers[None]])
        names.append(marker)
        types.append("stim")
    info = mne.create_info(names, rate, types)
    return mne.io.RawArray(data, info, verbose="error"), report


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric_column(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    import pandas as pd

    values = df[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    coerced = pd.to_numeric(values, errors="coerce")
    bad = coerced.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ToolkitError(
            f"CSV '{path}' has a non-numeric value {values.iloc[row]!r} in column {column!r} at data row {row + 1}; "
            "signal columns must be numbers."
        )
    return coerced.to_numpy(dtype=np.float64)


def _marker_column(columns: list[str], requested: str | None, path: Path) -> str | None:
    if requested is not None:
        if requested not in columns:
            raise ToolkitError(
                f"Marker column {requested!r} is not in '{path}'; its columns are {columns}."
            )
        return requested
    found = [c for c in columns if _MARKER_NAME.match(c)]
    if len(found) > 1:
        raise ToolkitError(
            f"CSV '{path}' has several marker-like columns {found}; choose one with --marker-column."
        )
    return found[0] if found else None


def _csv_rate(times: np.ndarray | None, sfreq: float | None, path: Path, report: dict) -> float:
    """Sampling rate of a CSV from its timestamps, checked against ``sfreq``.

    The rate is the slope of a least-squares line through (sample index, timestamp), not the median step:
    consumer headsets such as the Muse write millisecond-rounded, jittered timestamps (steps of 3 or 4 ms at
    256 Hz, some negative), whose median step gives 250 Hz instead of 256 Hz. Timestamps in milliseconds are
    recognised when the rate in seconds would be below 1 Hz.
    """
    if times is None:
        if sfreq is None:
            raise ToolkitError(
                f"CSV '{path}' has no timestamps column ({', '.join(_TIME_NAMES)}); pass the sampling rate "
                "with --sfreq."
            )
        report["sfreq_source"] = "given"
        return float(sfreq)
    slope = float(np.polyfit(np.arange(times.size, dtype=np.float64), times - times[0], 1)[0])
    if not slope > 0:
        raise ToolkitError(f"The timestamps of '{path}' do not increase; check the timestamps column.")
    unit = 1.0
    if 1.0 / slope < 1.0 <= 1000.0 / slope:  # milliseconds
        unit = 1e-3
    estimate = 1.0 / (slope * unit)
    steps = np.diff(times) * unit
    report["timestamps"] = {
        "unit": "s" if unit == 1.0 else "ms",
        "sfreq_estimate": round(estimate, 3),
        "median_step_s": float(np.median(steps)),
        "max_gap_s": round(float(steps.max()), 6),
        "gaps_over_100ms": int((steps > 0.1).sum()),
        "jitter_s": round(float(np.std(times - times[0] - slope * np.arange(times.size)) * unit), 6),
    }
    if report["timestamps"]["gaps_over_100ms"]:
        logger.warning(
            "%s: %d gaps over 100 ms in the timestamps (lost samples?); samples are taken as evenly spaced",
            path.name, report["timestamps"]["gaps_over_100ms"],
        )
    if sfreq is not None:
        if abs(estimate - sfreq) > 0.01 * sfreq:
            raise ToolkitError(
                f"The sampling rate given ({sfreq:g} Hz) does not match the timestamps of '{path}' "
                f"({estimate:.2f} Hz); fix --sfreq or leave it out."
            )
        report["sfreq_source"] = "given, checked against timestamps"
        return float(sfreq)
    if not 1.0 <= estimate <= 100_000.0:
        raise ToolkitError(
            f"The timestamps of '{path}' give an implausible sampling rate of {estimate:.4g} Hz (timestamps must be "
            "in seconds); pass the rate with --sfreq."
        )
    nominal = round(estimate)
    report["sfreq_source"] = "timestamps"
    return float(nominal) if abs(estimate - nominal) <= 0.002 * estimate else estimate


# -- channels and events ------------------------------------------------------------------------------------------
def _eeg_picks(raw: mne.io.BaseRaw) -> list[int]:
    return [i for i, kind in enumerate(raw.get_channel_types()) if kind == "eeg"]


def _retype_auxiliary(raw: mne.io.BaseRaw) -> None:
    """Type channels that readers call EEG but whose names say auxiliary/physiology (``Right AUX``, ``EOG``)."""
    changes = {}
    for name, kind in zip(raw.ch_names, raw.get_channel_types()):
        if kind != "eeg" or canonical_name(name) is not None:
            continue
        new = next((k for pattern, k in _AUX_TYPES if pattern.search(name)), None)
        if new is not None:
            changes[name] = new
    if changes:
        raw.set_channel_types(changes, on_unit_change="ignore", verbose="error")


def _check_finite(raw: mne.io.BaseRaw, path: Path) -> None:
    data = raw.get_data()
    bad = ~np.isfinite(data)
    if bad.any():
        ch, sample = (int(v[0]) for v in np.nonzero(bad))
        raise ToolkitError(
            f"Recording '{path}' holds NaN or infinite values (channel {raw.ch_names[ch]!r}, sample {sample}); "
            "interpolate or cut the bad segment before importing."
        )


def _find_events(
    raw: mne.io.BaseRaw, path: Path, fmt: str, marker_column: str | None
) -> tuple[np.ndarray, dict[int, str], set[int], str]:
    import mne

    stim = [raw.ch_names[i] for i, k in enumerate(raw.get_channel_types()) if k == "stim"]
    if marker_column is not None and fmt != "csv":
        if marker_column not in raw.ch_names:
            raise ToolkitError(
                f"Event channel {marker_column!r} is not in '{path}'; its channels are {raw.ch_names}."
            )
        stim = [marker_column]
    empty = np.zeros((0, 3), dtype=np.int64)
    if stim:
        # Markers are often one-sample pulses (Muse/LSL): shortest_event=1, and every change to a non-zero code
        # is an onset (consecutive=True) so that back-to-back codes are not lost.
        events = mne.find_events(
            raw, stim_channel=stim, shortest_event=1, consecutive=True, initial_event=True, verbose="error"
        )
        source = f"marker column {stim[0]!r}" if fmt == "csv" else f"stim channel(s) {stim}"
        if len(events) or marker_column is not None or fmt == "csv":
            return events.astype(np.int64), {}, set(), source
    if fmt == "csv":
        raise ToolkitError(
            f"CSV '{path}' has no marker column (looked for a column named Marker*, marker, trigger, stim or "
            f"event among {raw.ch_names}); name it with --marker-column."
        )
    if len(raw.annotations) == 0:
        return empty, {}, set(), "no stim channel and no annotations"
    descriptions = {d for d in raw.annotations.description if re.match(_ANNOT_REGEXP, d)}
    # Integer descriptions ("1", "12") keep their value as the code; MNE's "auto" would number them by sort order.
    numeric = bool(descriptions) and all(re.fullmatch(r"\s*\d+\s*", d) for d in descriptions)
    try:
        events, mapping = mne.events_from_annotations(
            raw,
            event_id={d: int(d) for d in descriptions} if numeric and fmt != "brainvision" else "auto",
            regexp=_ANNOT_REGEXP,
            verbose="error",
        )
    except ValueError:  # only structural annotations (MNE raises when nothing matches)
        return empty, {}, set(), "annotations (none are stimulus events)"
    names = {int(code): name for name, code in mapping.items()}
    if numeric:
        named: set[int] = set()
    elif fmt == "brainvision":  # MNE codes Stimulus/S n as n, Response/R n as 1000+n; other markers from 10001
        named = {code for code in names if code >= 10000}
    else:
        named = set(names)
    return events.astype(np.int64), names, named, "annotations"


__all__ = ["FORMATS", "Recording", "detect_format", "read_recording"]
