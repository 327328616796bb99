"""Bring your own EEG: raw recordings (FIF/EDF/BDF/BrainVision/EEGLAB/CSV) -> stimulus-locked trials on a model's
montage, as a :class:`~toolkit.data.TrialSet` plus a report of everything done to them.

Pipeline, all through MNE: read -> find events -> band-pass filter (``raw.filter``) -> resample the continuous
recording to the target rate (``raw.resample`` with the events, so epochs land on the target's exact time grid)
-> epoch with a pre-stimulus baseline (``mne.Epochs``), optional peak-to-peak rejection -> crop to the target window
-> map channels onto the target montage (copy / interpolate / zero-fill) -> one condition per event code with
equal repetition counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ToolkitError
from .channels import THINGS_EEG_17, THINGS_EEG_63

if TYPE_CHECKING:  # pragma: no cover
    from .trials import TrialSet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportTarget:
    """What a model expects: channels, sampling rate, window and baseline.

    Attributes
    ----------
    name : str
        Target name used on the command line.
    ch_names : tuple of str | None
        Output channels in order; ``None`` keeps the recording's own EEG channels.
    sfreq : float | None
        Output sampling rate; ``None`` keeps the recording's rate.
    tmin, tmax : float
        Output window in seconds (both samples included).
    baseline : tuple | None
        Baseline interval (``None`` start = epoch start) used when ``baseline="auto"``.
    description : str
        One line for help texts.
    """

    name: str
    ch_names: tuple[str, ...] | None
    sfreq: float | None
    tmin: float
    tmax: float
    baseline: tuple[float | None, float] | None
    description: str


TARGETS: dict[str, ImportTarget] = {
    # ATM/NICE preprocessing (ATM.md §1.3): epoch -0.2...1.0 s, 200 ms baseline, 250 Hz, keep 0...0.996 s (250).
    "things-eeg-63": ImportTarget(
        "things-eeg-63", tuple(THINGS_EEG_63), 250.0, 0.0, 0.996, (-0.2, 0.0),
        "63 THINGS-EEG channels, 250 Hz, 0-0.996 s (250 samples)",
    ),
    # OSF preprocessed release (LANDSCAPE.md): 17 posterior channels, 100 Hz, -0.2...0.79 s (100 samples).
    "things-eeg-17": ImportTarget(
        "things-eeg-17", tuple(THINGS_EEG_17), 100.0, -0.2, 0.79, (-0.2, 0.0),
        "17 posterior channels, 100 Hz, -0.2-0.79 s (100 samples)",
    ),
    # The recording's own channels and rate; a window suited to ERPs such as the N170.
    "native": ImportTarget(
        "native", None, None, -0.1, 0.6, (None, 0.0), "the recording's own EEG channels and rate, -0.1-0.6 s"
    ),
}


@dataclass
class ImportResult:
    """The outcome of an import.

    Attributes
    ----------
    trials : TrialSet
        ``(n_conditions, n_repetitions, n_chans, n_times)`` float32 in volts; ``extra["channel_mask"]`` (bool per
        channel, False = zero-filled; a list once read back from a store), ``extra["import_report"]`` (the report)
        and ``extra["event_id"]`` (condition name -> event code) are set.
    report : dict
        JSON-serialisable account of the import (see :func:`import_recordings`).
    """

    trials: TrialSet
    report: dict


def import_recording(
    path: str | os.PathLike,
    *,
    target: str = "things-eeg-63",
    sfreq: float | None = None,
    tmin: float | None = None,
    tmax: float | None = None,
    event_id: Mapping[str, int] | None = None,
    marker_column: str | None = None,
    l_freq: float | None = 0.1,
    h_freq: float | None = None,
    baseline: tuple[float | None, float | None] | str | None = "auto",
    reject: float | Mapping[str, float] | None = None,
    resample: float | None = None,
    subject: str = "sub-01",
    split: str = "import",
    unit: str = "uV",
    min_neighbors: int = 3,
    max_distance: float = 0.06,
) -> ImportResult:
    """Import one raw recording as stimulus-locked trials on a target montage.

    The parameters are those of :func:`import_recordings` (with one ``path``).

    Returns
    -------
    ImportResult
        Trials and report.
    """
    return import_recordings(
        [path], target=target, sfreq=sfreq, tmin=tmin, tmax=tmax, event_id=event_id, marker_column=marker_column,
        l_freq=l_freq, h_freq=h_freq, baseline=baseline, reject=reject, resample=resample, subject=subject,
        split=split, unit=unit, min_neighbors=min_neighbors, max_distance=max_distance,
    )


def import_recordings(
    paths: Sequence[str | os.PathLike],
    *,
    target: str = "things-eeg-63",
    sfreq: float | None = None,
    tmin: float | None = None,
    tmax: float | None = None,
    event_id: Mapping[str, int] | None = None,
    marker_column: str | None = None,
    l_freq: float | None = 0.1,
    h_freq: float | None = None,
    baseline: tuple[float | None, float | None] | str | None = "auto",
    reject: float | Mapping[str, float] | None = None,
    resample: float | None = None,
    subject: str = "sub-01",
    split: str = "import",
    unit: str = "uV",
    min_neighbors: int = 3,
    max_distance: float = 0.06,
) -> ImportResult:
    """Import raw recordings of one subject as stimulus-locked trials on a target montage.

    Parameters
    ----------
    paths : sequence of path
        Recordings (FIF, EDF, BDF, BrainVision ``.vhdr``, EEGLAB ``.set``, CSV/TSV with a marker column); several
        sessions of one subject are concatenated in the order given.
    target : str
        ``"things-eeg-63"`` (63 channels, 250 Hz, 0-0.996 s), ``"things-eeg-17"`` (17 posterior channels, 100 Hz,
        -0.2-0.79 s) or ``"native"`` (the recording's EEG channels and rate, -0.1-0.6 s).
    sfreq : float | None
        The recording's sampling rate: required for a CSV without timestamps, otherwise checked against the file.
    tmin, tmax : float | None
        Output window in seconds (default: the target's).
    event_id : mapping of str to int | None
        Condition names and their event codes, e.g. ``{"house": 1, "face": 2}``; conditions follow its order and
        other codes are ignored. Default: every code found, named by its annotation or its number, in code order.
    marker_column : str | None
        CSV marker column (default: auto-detected: Marker*, marker, trigger, stim, event); for other formats the
        stim channel to read.
    l_freq, h_freq : float | None
        Band-pass edges in Hz (``None`` = no high-pass / no low-pass).
    baseline : tuple | "auto" | None
        Baseline interval in seconds; ``"auto"`` is the target's (200 ms before onset for THINGS targets, the
        pre-stimulus part of the window for ``native``); the epoch is extended to cover it, then cropped.
    reject : float | mapping | None
        Peak-to-peak rejection: a threshold in volts for EEG (``100e-6``) or an MNE ``reject`` dict.
    resample : float | None
        Output rate in Hz, overriding the target's (``native`` keeps the recording's rate by default).
    subject, split : str
        Labels of the resulting trial set.
    unit : str
        Unit of the EEG columns of CSV files (``"uV"`` by default, as written by Muse/OpenBCI tools).
    min_neighbors : int
        A missing target channel is interpolated only when at least this many recorded channels lie within
        ``max_distance``; otherwise it is zero-filled and masked.
    max_distance : float
        Neighbourhood radius in metres on the standard head (default 6 cm).

    Returns
    -------
    ImportResult
        Trials (``dataset="imported"``) and the report: per file (format, rate, channels, events per code, epochs
        kept / rejected and why), filter, resampling, baseline, channel mapping (copied / interpolated /
        zero-filled / dropped), conditions (code, epochs found, kept) and the repetition count.

    Notes
    -----
    Conditions need equal repetition counts; each condition keeps its first ``n`` epochs (files in the order given,
    then time), ``n`` being the smallest count over conditions; the report says how many were left out.

    The continuous recording is resampled before epoching so that every epoch lies on the target's exact time grid
    (THINGS: 0, 4, ..., 996 ms); event onsets move by at most half a target sample (2 ms at 250 Hz). Electrode
    positions (for interpolation and neighbourhoods) come from the standard 10-05 montage by channel name;
    digitised positions stored in a file are not used.
    """
    import mne

    from ..utils import progress
    from ._montage import apply_channel_plan, plan_channels
    from ._readers import read_recording

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ToolkitError("No recordings given; pass at least one file to import.")
    spec = _target(target)
    out_sfreq = float(resample) if resample is not None else spec.sfreq
    if out_sfreq is not None and not out_sfreq > 0:
        raise ToolkitError(f"The resampling rate must be positive; got {resample}.")
    win_tmin = spec.tmin if tmin is None else float(tmin)
    win_tmax = spec.tmax if tmax is None else float(tmax)
    if not win_tmin < win_tmax:
        raise ToolkitError(f"The window start (tmin={win_tmin:g} s) must lie before its end (tmax={win_tmax:g} s).")
    base = _baseline(baseline, spec, win_tmin)
    epoch_tmin = min(win_tmin, base[0]) if base is not None and base[0] is not None else win_tmin
    if base is not None and base[1] is not None and base[1] > win_tmax:
        raise ToolkitError(f"The baseline {base} ends after the window ({win_tmin:g}-{win_tmax:g} s); move it.")
    reject_dict = _reject(reject)
    codes_wanted = _event_id(event_id)

    pieces: list[dict] = []
    bar = progress(paths, desc="import")
    try:
        for path in bar:
            rec = read_recording(path, sfreq=sfreq, marker_column=marker_column, unit=unit)
            raw, events, frep = rec.raw, rec.events, rec.report
            events, names = _select_events(events, rec.event_names, rec.named_codes, codes_wanted, path)
            nyquist = raw.info["sfreq"] / 2.0
            _check_filter(l_freq, h_freq, nyquist, path)
            if l_freq is not None or h_freq is not None:
                raw.filter(l_freq, h_freq, picks="eeg", verbose="error")
            if out_sfreq is not None and abs(raw.info["sfreq"] - out_sfreq) > 1e-6:
                raw, events = raw.resample(out_sfreq, events=events, method="polyphase", verbose="error")
            if win_tmax - epoch_tmin > raw.times[-1]:
                raise ToolkitError(
                    f"The epoch window {epoch_tmin:g}-{win_tmax:g} s is longer than the recording '{path}' "
                    f"({raw.times[-1]:.2f} s); shorten it with --tmin/--tmax."
                )
            try:
                epochs = mne.Epochs(
                    raw, events, event_id=names, tmin=epoch_tmin, tmax=win_tmax, baseline=base, picks="eeg",
                    reject=reject_dict, preload=True, event_repeated="drop", on_missing="ignore", verbose="error",
                )
            except ValueError as err:  # e.g. a reject key for a channel type the recording lacks
                raise ToolkitError(f"Could not epoch '{path}': {str(err).strip().splitlines()[0]}") from err
            reasons = _drop_reasons(epochs)
            if len(epochs) == 0:
                if reasons and set(reasons) == {"outside_recording"}:
                    raise ToolkitError(
                        f"The window {epoch_tmin:g}-{win_tmax:g} s falls outside the recording '{path}' for every "
                        "event; choose --tmin/--tmax within the recording."
                    )
                raise ToolkitError(
                    f"Every epoch of '{path}' was rejected ({reasons}); loosen --reject or check the signal units."
                )
            epochs.crop(win_tmin, win_tmax)
            eeg = list(epochs.ch_names)
            if spec.ch_names is None:
                plan, data = None, epochs.get_data(copy=False)
            else:
                plan = plan_channels(
                    eeg, spec.ch_names, min_neighbors=min_neighbors, max_distance=max_distance, what=f"'{path}'"
                )
                data = apply_channel_plan(epochs, plan)
            frep.update(
                {
                    "events_used": {name: int((events[:, 2] == code).sum()) for name, code in names.items()},
                    "epochs_found": len(events),
                    "epochs_kept": len(epochs),
                    "epochs_dropped": reasons,
                }
            )
            if plan is not None:
                frep["channels"] = plan.to_dict()
            pieces.append(
                {"data": data, "codes": epochs.events[:, 2].copy(), "names": names, "plan": plan, "eeg": eeg,
                 "sfreq": float(epochs.info["sfreq"]), "times": epochs.times.copy(), "report": frep}
            )
            logger.info("imported %s: %d epochs", path.name, len(epochs))
    finally:
        bar.close()  # clears the bar, so an error prints on a line of its own

    return _assemble(
        pieces, spec, subject=subject, split=split, l_freq=l_freq, h_freq=h_freq, base=base,
        reject=reject_dict, codes_wanted=codes_wanted, window=(win_tmin, win_tmax), epoch_tmin=epoch_tmin,
        min_neighbors=min_neighbors, max_distance=max_distance,
    )


# -- helpers --------------------------------------------------------------------------------------------------------
def _target(name: str) -> ImportTarget:
    if name not in TARGETS:
        raise ToolkitError(f"Unknown import target {name!r}; choose one of {', '.join(TARGETS)}.")
    return TARGETS[name]


def _baseline(baseline, spec: ImportTarget, win_tmin: float) -> tuple[float | None, float | None] | None:
    if baseline is None:
        return None
    if isinstance(baseline, str):
        if baseline != "auto":
            raise ToolkitError(f"baseline must be 'auto', None or a (start, end) pair in seconds; got {baseline!r}.")
        if spec.baseline is None:
            return None
        start, end = spec.baseline
        if start is None and win_tmin >= end:
            return None  # no pre-stimulus samples in the window: no baseline
        return (start, end)
    try:
        start, end = baseline
        start = None if start is None else float(start)
        end = None if end is None else float(end)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"baseline must be a (start, end) pair in seconds; got {baseline!r}.") from err
    if start is not None and end is not None and not start < end:
        raise ToolkitError(f"The baseline start ({start:g} s) must lie before its end ({end:g} s).")
    return (start, end)


def _reject(reject) -> dict | None:
    if reject is None:
        return None
    if isinstance(reject, Mapping):
        return {str(k): float(v) for k, v in reject.items()}
    value = float(reject)
    if not value > 0:
        raise ToolkitError(f"The rejection threshold must be positive (volts peak-to-peak); got {reject}.")
    if value > 1e-2:
        raise ToolkitError(
            f"The rejection threshold {value:g} V is implausibly large; it is in volts (100 µV = 100e-6)."
        )
    return {"eeg": value}


def _event_id(event_id: Mapping[str, int] | None) -> dict[str, int] | None:
    if event_id is None:
        return None
    out: dict[str, int] = {}
    for name, code in dict(event_id).items():
        try:
            code_int = int(code)
        except (TypeError, ValueError) as err:
            raise ToolkitError(f"Event code of {name!r} must be an integer; got {code!r}.") from err
        if code_int != code or code_int == 0:
            raise ToolkitError(f"Event code of {name!r} must be a non-zero integer; got {code!r}.")
        if code_int in out.values():
            raise ToolkitError(f"Event code {code_int} is given to two conditions in event_id {dict(event_id)}.")
        out[str(name)] = code_int
    if not out:
        raise ToolkitError("event_id is empty; give at least one name=code pair.")
    return out


def _select_events(
    events: np.ndarray, names: dict[int, str], named: set[int], wanted: dict[str, int] | None, path: Path
) -> tuple[np.ndarray, dict[str, int]]:
    """Keep the wanted events and return them with a name -> code mapping."""
    found = {int(c) for c in np.unique(events[:, 2])}
    if wanted is None:
        mapping = {names.get(code, str(code)): code for code in sorted(found)}
        return events, mapping
    by_name = {name: code for code, name in names.items()}
    # BrainVision writes named markers as "Type/description" ("Comment/face"): match on the description too.
    short = [name.rsplit("/", 1)[-1].strip() for name in names.values()]
    for code, name in names.items():
        tail = name.rsplit("/", 1)[-1].strip()
        if short.count(tail) == 1:
            by_name.setdefault(tail, code)
    if names and set(wanted) <= set(by_name):  # annotations named like the conditions: recode by name
        recoded = events.copy()
        keep = np.zeros(len(events), dtype=bool)
        for name, code in wanted.items():
            hit = events[:, 2] == by_name[name]
            recoded[hit, 2] = code
            keep |= hit
        return recoded[keep], dict(wanted)
    if named & set(wanted.values()):  # codes MNE numbered by name: matching them by number would mislabel
        raise ToolkitError(
            f"'{path}' marks its events by name ({', '.join(repr(names[c]) for c in sorted(named))}); use these "
            "names in --event-id (e.g. --event-id face=2 house=1)."
        )
    missing = {name: code for name, code in wanted.items() if code not in found}
    if missing:
        described = ", ".join(f"{names.get(c, c)}" for c in sorted(found)) or "none"
        raise ToolkitError(
            f"Event code(s) {missing} not found in '{path}'; the codes present are: {described}. Fix --event-id."
        )
    keep = np.isin(events[:, 2], list(wanted.values()))
    return events[keep], dict(wanted)


def _check_filter(l_freq: float | None, h_freq: float | None, nyquist: float, path: Path) -> None:
    if l_freq is not None and not 0 < l_freq < nyquist:
        raise ToolkitError(f"l_freq={l_freq:g} Hz must lie between 0 and the Nyquist frequency of '{path}' "
                           f"({nyquist:g} Hz).")
    if h_freq is not None and not 0 < h_freq < nyquist:
        raise ToolkitError(f"h_freq={h_freq:g} Hz must lie between 0 and the Nyquist frequency of '{path}' "
                           f"({nyquist:g} Hz); lower it.")
    if l_freq is not None and h_freq is not None and not l_freq < h_freq:
        raise ToolkitError(f"l_freq ({l_freq:g} Hz) must be below h_freq ({h_freq:g} Hz).")


def _drop_reasons(epochs) -> dict[str, int]:
    """Count dropped epochs by reason: outside the recording, amplitude (peak-to-peak), duplicate, other."""
    counts: dict[str, int] = {}
    for entry in epochs.drop_log:
        if not entry or entry == ("IGNORED",):
            continue
        if "NO_DATA" in entry:
            key = "outside_recording"
        elif "DROP DUPLICATE" in entry or any("DUPLICATE" in str(e) for e in entry):
            key = "duplicate_event"
        elif any(str(e).startswith("BAD") for e in entry):
            key = "bad_annotation"
        else:
            key = "amplitude"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _assemble(pieces: list[dict], spec: ImportTarget, **opts) -> ImportResult:
    from .images import ImageSet
    from .trials import TrialSet

    first = pieces[0]
    for piece in pieces[1:]:
        where = piece["report"]["file"]
        if spec.ch_names is None and piece["eeg"] != first["eeg"]:
            raise ToolkitError(
                f"'{where}' has EEG channels {piece['eeg']} but '{first['report']['file']}' has {first['eeg']}; "
                "the native target needs the same channels in every recording (or use a THINGS target)."
            )
        if abs(piece["sfreq"] - first["sfreq"]) > 1e-6 or piece["times"].shape != first["times"].shape:
            raise ToolkitError(
                f"'{where}' is sampled at {piece['sfreq']:g} Hz but '{first['report']['file']}' at "
                f"{first['sfreq']:g} Hz; pass --resample to bring them to one rate."
            )
    ch_names = list(spec.ch_names) if spec.ch_names is not None else list(first["eeg"])
    channels, mask = _merge_plans([p["plan"] for p in pieces], ch_names)
    data = np.concatenate([p["data"] for p in pieces])
    data[:, ~mask] = 0.0
    codes = np.concatenate([p["codes"] for p in pieces])

    wanted = opts["codes_wanted"]
    if wanted is not None:
        conditions = dict(wanted)
    else:
        conditions = {}
        for piece in pieces:
            for name, code in piece["names"].items():
                conditions.setdefault(name, code)
        conditions = dict(sorted(conditions.items(), key=lambda kv: kv[1]))
    counts = {name: int((codes == code).sum()) for name, code in conditions.items()}
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        files = ", ".join(p["report"]["file"] for p in pieces)
        raise ToolkitError(
            f"No epochs of condition(s) {empty} survived in {files} (kept per condition: {counts}); loosen --reject "
            "or check --event-id."
        )
    n_rep = min(counts.values())
    trials = np.stack([data[codes == code][:n_rep] for code in conditions.values()]).astype(np.float32)

    folders = tuple(f"{i + 1:05d}_{name}" for i, name in enumerate(conditions))
    images = ImageSet(
        root=None, concept_folders=folders, image_files=("",) * len(folders),
        condition_concept=np.arange(len(folders), dtype=np.int64),
    )
    report = {
        "target": spec.name,
        "files": [p["report"] for p in pieces],
        "sfreq": first["sfreq"],
        "window_s": [round(float(first["times"][0]), 6), round(float(first["times"][-1]), 6)],
        "n_times": int(first["times"].size),
        "epoch_tmin_s": opts["epoch_tmin"],
        "filter": {"l_freq": opts["l_freq"], "h_freq": opts["h_freq"], "method": "fir (MNE firwin, zero phase)"}
        if opts["l_freq"] is not None or opts["h_freq"] is not None
        else None,
        "resample": _resample_report(pieces, first["sfreq"]),
        "baseline_s": list(opts["base"]) if opts["base"] is not None else None,
        "reject": opts["reject"],
        "channels": channels,
        "conditions": {
            name: {"code": int(code), "epochs": counts[name], "kept": n_rep, "left_out": counts[name] - n_rep}
            for name, code in conditions.items()
        },
        "n_repetitions": n_rep,
        "shape": list(trials.shape),
        "unit": "V",
    }
    ts = TrialSet(
        data=trials,
        ch_names=ch_names,
        sfreq=first["sfreq"],
        times=first["times"],
        subject=opts["subject"],
        split=opts["split"],
        images=images,
        dataset="imported",
        ch_type="eeg",
        extra={
            "channel_mask": mask,
            "import_report": report,
            "target": spec.name,
            "event_id": {name: int(code) for name, code in conditions.items()},
            "source_files": [p["report"]["file"] for p in pieces],
        },
    )
    return ImportResult(trials=ts, report=report)


def _merge_plans(plans: list, ch_names: list[str]) -> tuple[dict, np.ndarray]:
    """Combine per-file channel plans: a channel carries signal only if it does in every file."""
    if plans[0] is None:
        return {"copied": list(ch_names), "interpolated": [], "zero_filled": [], "dropped": []}, np.ones(
            len(ch_names), dtype=bool
        )
    copied = [c for c in ch_names if all(c in p.copied for p in plans)]
    zero = [c for c in ch_names if any(c in p.zero_filled for p in plans)]
    interpolated = [c for c in ch_names if c not in copied and c not in zero]
    dropped = sorted({d for p in plans for d in p.dropped})
    mask = np.array([c not in zero for c in ch_names], dtype=bool)
    return {
        "copied": copied, "interpolated": interpolated, "zero_filled": zero, "dropped": dropped,
        "rule": plans[0].rule,
    }, mask


def _resample_report(pieces: list[dict], out: float) -> dict | None:
    rates = sorted({p["report"]["sfreq"] for p in pieces})
    if all(abs(r - out) < 1e-6 for r in rates):
        return None
    return {"from_hz": rates, "to_hz": out, "method": "MNE polyphase on the continuous recording"}


__all__ = ["TARGETS", "ImportResult", "ImportTarget", "import_recording", "import_recordings"]
