"""``python -m toolkit data inspect PATH`` and ``data convert ROOT STORE``: official files and memory-mapped stores."""

from __future__ import annotations

import argparse


def register(data_sub: argparse._SubParsersAction) -> None:
    """Add the ``data inspect`` and ``data convert`` sub-commands."""
    from ..cli import add_json_flag

    p = data_sub.add_parser(
        "inspect",
        help="shape, dtype, channels, rate and times of an official file, a dataset root or a store",
        description=(
            "Describe a THINGS-EEG .npy / THINGS-MEG .pkl file (read with a restricted unpickler), an official "
            "dataset root, a memory-mapped store, or an EEG-ImageNet .pth file; NaN/Inf values are counted."
        ),
    )
    p.add_argument("path", metavar="PATH", help="official file, dataset root, store directory or .pth file")
    add_json_flag(p)
    p.set_defaults(func=run_inspect)

    p = data_sub.add_parser(
        "convert",
        help="official THINGS-EEG/MEG files -> memory-mapped store",
        description=(
            "Convert the official THINGS-EEG (250 Hz or 100 Hz) or THINGS-MEG files under ROOT into a memory-mapped "
            "store at STORE, written atomically (nothing is left at STORE on error)."
        ),
    )
    p.add_argument("root", metavar="ROOT", help="dataset root (e.g. holding Preprocessed_data_250Hz/)")
    p.add_argument("store", metavar="STORE", help="store directory to create")
    p.add_argument("--subjects", nargs="+", metavar="SUB", help="subjects, e.g. sub-01 sub-02 (default: all found)")
    p.add_argument(
        "--splits", nargs="+", default=["train", "test"], choices=("train", "test"), help="splits (default: both)"
    )
    p.add_argument(
        "--dataset", default="auto", choices=("auto", "things-eeg", "things-meg"),
        help="which dataset ROOT holds (default: detected)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at STORE")
    add_json_flag(p)
    p.set_defaults(func=run_convert)


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _times(t: dict | None) -> str:
    if not t or not t.get("n"):
        return "?"
    return f"{t['first']:.3f} … {t['last']:.3f} s ({t['n']})"


def _channels(names: list[str] | None) -> str:
    if not names:
        return "?"
    shown = ", ".join(names[:6]) + (f", … {names[-1]}" if len(names) > 6 else "")
    return f"{len(names)}: {shown}"


def _print_summary(info: dict) -> None:
    kind = info["kind"]
    print(f"{kind}  {info['path']}  ({_gib(info.get('size_bytes'))})" if "size_bytes" in info else
          f"{kind}  {info['path']}")
    if kind == "store":
        print(f"  subjects {', '.join(info['subjects'])}; datasets {', '.join(info['datasets'])}")
        for e in info["entries"]:
            bad = e["nan_count"] + e["inf_count"]
            print(f"  {e['subject']} {e['split']:5s} {tuple(e['shape'])} {e['dtype']}  {e['sfreq']:g} Hz  "
                  f"times {_times(e['times'])}  channels {len(e['channels'])}  NaN/Inf {bad}")
        return
    if kind.endswith("-root"):
        for sub, files in info["files"].items():
            parts = ", ".join(f"{split} {_gib(f['size_bytes'])}" for split, f in files.items())
            print(f"  {sub}: {parts}")
        for name, n in (info.get("images") or {}).items():
            print(f"  {name}: {'missing' if n is None else f'{n} concept folders'}")
        return
    if kind == "eeg-imagenet-splits":
        for i, split in enumerate(info["splits"]):
            print(f"  split {i}: " + ", ".join(f"{k} {v}" for k, v in split.items()))
        return
    if kind == "eeg-imagenet":
        lengths = info["lengths"]
        low, high = info["length_window"]
        print(f"  trials {info['n_trials']} ({info['n_kept']} kept with {low} <= T <= {high}); subjects "
              f"{info['subjects']}; classes {info['n_classes']}; block design")
        print(f"  lengths {lengths['min']} … {lengths['max']} (median {lengths['median']:g}); {info['dtype']}; "
              f"{info['sfreq']:g} Hz; loaded as {tuple(info['shape'])}")
        print(f"  NaN/Inf {info['nan_count'] + info['inf_count']}")
        return
    print(f"  data     {tuple(info['shape']) if info.get('shape') else '?'} {info.get('dtype')}")
    if info.get("dataset"):
        print(f"  dataset  {info['dataset']}  ({info.get('sfreq', 0):g} Hz)")
    print(f"  channels {_channels(info.get('channels'))}")
    if info.get("file_times"):
        print(f"  times    file {_times(info['file_times'])}; data {_times(info.get('times'))}")
    print(f"  NaN/Inf  {info.get('nan_count', 0)} / {info.get('inf_count', 0)}")
    if "valid" in info:
        print("  valid" if info["valid"] else f"  problem: {info['problem']}")


def run_inspect(args: argparse.Namespace) -> dict:
    """Describe ``args.path`` (see :func:`toolkit.data.store.inspect_path`)."""
    from ..data.store import inspect_path

    info = inspect_path(args.path)
    if not args.json:
        _print_summary(info)
    return info


def run_convert(args: argparse.Namespace) -> dict:
    """Convert an official root into a store (see :func:`toolkit.data.store.convert`)."""
    from ..data.store import convert

    result = convert(
        args.root, args.store, subjects=args.subjects, splits=tuple(args.splits), dataset=args.dataset,
        overwrite=args.overwrite,
    )
    if not args.json:
        size = _gib(result["size_bytes"])
        print(f"wrote {result['store']} ({result['dataset']}, {size}, {result['seconds']:.1f} s)")
        for e in result["entries"]:
            print(f"  {e['subject']} {e['split']:5s} {tuple(e['shape'])}  {e['dataset']}  {e['sfreq']:g} Hz")
    return result
