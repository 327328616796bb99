"""``python -m toolkit data import RAW [RAW ...] --out DIR``: your own recordings -> trials on a model's montage."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ToolkitError

# Kept in step with toolkit.data.importing.TARGETS (a test checks it) so that building the parser imports nothing.
_TARGETS = ("things-eeg-63", "things-eeg-17", "native")


def register(data_sub: argparse._SubParsersAction) -> None:
    """Add the ``data import`` sub-command."""
    from ..cli import add_json_flag

    p = data_sub.add_parser(
        "import",
        help="import raw recordings (FIF/EDF/BDF/BrainVision/EEGLAB/CSV) as trials on a model's montage",
        description=(
            "Read raw EEG recordings of one subject, find the stimulus events, band-pass filter, resample, epoch "
            "with a baseline, map the channels onto the target montage (copy / interpolate / zero-fill) and write "
            "a memory-mapped store. Several files (sessions) are concatenated."
        ),
    )
    p.add_argument("raw", nargs="+", metavar="RAW", help="recording file(s): .fif .edf .bdf .vhdr .set .csv .tsv")
    p.add_argument("--out", required=True, metavar="DIR", help="store directory to write")
    p.add_argument(
        "--target", choices=_TARGETS, default="things-eeg-63",
        help="things-eeg-63: 63 ch, 250 Hz, 0-0.996 s; things-eeg-17: 17 posterior ch, 100 Hz, -0.2-0.79 s; "
        "native: the recording's channels and rate, -0.1-0.6 s (default: %(default)s)",
    )
    p.add_argument(
        "--event-id", nargs="+", metavar="NAME=CODE",
        help="condition names and event codes, e.g. --event-id house=1 face=2 (default: every code found)",
    )
    p.add_argument("--tmin", type=float, help="window start in seconds (default: the target's)")
    p.add_argument("--tmax", type=float, help="window end in seconds (default: the target's)")
    p.add_argument("--sfreq", type=float, help="the recording's sampling rate (required for a CSV without timestamps)")
    p.add_argument("--resample", type=float, help="output rate in Hz (default: the target's; native keeps the file's)")
    p.add_argument("--l-freq", default="0.1", metavar="HZ", help="high-pass edge in Hz, or 'none' (default: 0.1)")
    p.add_argument("--h-freq", default="none", metavar="HZ", help="low-pass edge in Hz, or 'none' (default: none)")
    p.add_argument("--reject", type=float, metavar="UV", help="drop epochs whose EEG peak-to-peak exceeds UV µV")
    p.add_argument("--baseline", nargs=2, metavar=("START", "END"), help="baseline in s ('none' = window start); "
                   "default: the target's")
    p.add_argument("--no-baseline", action="store_true", help="do not subtract a baseline")
    p.add_argument("--marker-column", help="CSV marker column / stim channel (default: auto-detected)")
    p.add_argument("--unit", default="uV", choices=("V", "mV", "uV", "nV"), help="unit of CSV EEG columns")
    p.add_argument("--subject", default="sub-01", help="subject label (default: %(default)s)")
    p.add_argument("--split", default="import", help="split label (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict:
    from ..data.importing import import_recordings

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ToolkitError(f"Output '{out}' already exists; choose another --out or pass --overwrite.")
    baseline: object = "auto"
    if args.no_baseline:
        baseline = None
    elif args.baseline:
        baseline = tuple(_optional_float(v, "--baseline") for v in args.baseline)
    result = import_recordings(
        args.raw,
        target=args.target,
        sfreq=args.sfreq,
        tmin=args.tmin,
        tmax=args.tmax,
        event_id=_parse_event_id(args.event_id),
        marker_column=args.marker_column,
        l_freq=_optional_float(args.l_freq, "--l-freq"),
        h_freq=_optional_float(args.h_freq, "--h-freq"),
        baseline=baseline,
        reject=args.reject * 1e-6 if args.reject is not None else None,
        resample=args.resample,
        subject=args.subject,
        split=args.split,
        unit=args.unit,
    )
    from ..data.store import write_store

    path = write_store(out, [result.trials], overwrite=args.overwrite)
    if not args.json:
        print(summary(result.report, path))
    return {"store": str(path), **result.report}


def _optional_float(text: str, flag: str) -> float | None:
    if text.strip().lower() in ("none", "null", ""):
        return None
    try:
        return float(text)
    except ValueError as err:
        raise ToolkitError(f"{flag} expects a number or 'none'; got {text!r}.") from err


def _parse_event_id(items: list[str] | None) -> dict[str, int] | None:
    if not items:
        return None
    out: dict[str, int] = {}
    for item in items:
        name, sep, code = item.partition("=")
        if not sep or not name.strip() or not code.strip().lstrip("-").isdigit():
            raise ToolkitError(f"--event-id expects NAME=CODE pairs such as house=1 face=2; got {item!r}.")
        if name.strip() in out:
            raise ToolkitError(f"--event-id names {name.strip()!r} twice.")
        out[name.strip()] = int(code)
    return out


def summary(report: dict, path: Path | str) -> str:
    """A few human-readable lines about an import report."""
    files = report["files"]
    found = sum(f["epochs_found"] for f in files)
    kept = sum(f["epochs_kept"] for f in files)
    dropped: dict[str, int] = {}
    for f in files:
        for reason, n in f["epochs_dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
    n_cond, n_rep, n_ch, n_t = report["shape"]
    ch = report["channels"]
    lines = [
        f"Imported {len(files)} recording(s) -> {path} (target {report['target']})",
        "  conditions: "
        + "; ".join(
            f"{name} (code {c['code']}): {c['epochs']} epochs, {c['kept']} kept"
            for name, c in report["conditions"].items()
        ),
        f"  epochs: {found} events, {kept} epochs kept"
        + (f", dropped: {', '.join(f'{k} {v}' for k, v in dropped.items())}" if dropped else ""),
        f"  trials: {n_cond} conditions x {n_rep} repetitions x {n_ch} channels x {n_t} samples at "
        f"{report['sfreq']:g} Hz ({report['window_s'][0]:.3f} to {report['window_s'][1]:.3f} s)",
        f"  channels: {len(ch['copied'])} copied, {len(ch['interpolated'])} interpolated, "
        f"{len(ch['zero_filled'])} zero-filled, {len(ch['dropped'])} dropped",
    ]
    flt = report["filter"]
    if not flt:
        steps = ["no filter"]
    elif flt["l_freq"] is not None and flt["h_freq"] is not None:
        steps = [f"band-pass {flt['l_freq']:g}-{flt['h_freq']:g} Hz"]
    elif flt["l_freq"] is not None:
        steps = [f"high-pass {flt['l_freq']:g} Hz"]
    else:
        steps = [f"low-pass {flt['h_freq']:g} Hz"]
    rs = report["resample"]
    rates = "/".join(f"{r:g}" for r in rs["from_hz"]) if rs else ""
    steps.append(f"resampled {rates} -> {rs['to_hz']:g} Hz" if rs else "no resampling")
    base = report["baseline_s"]
    if base:
        start = "window start" if base[0] is None else f"{base[0]:g} s"
        end = "window end" if base[1] is None else f"{base[1]:g} s"
        steps.append(f"baseline {start} to {end}")
    else:
        steps.append("no baseline")
    lines.append("  " + "; ".join(steps))
    return "\n".join(lines)
