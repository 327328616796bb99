"""``python -m toolkit simulate OUT``: write a simulated THINGS-like dataset in the official layout + ground truth."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``simulate`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "simulate",
        help="write a simulated dataset in the official THINGS-EEG layout + ground truth",
        description=(
            "Write a simulated THINGS-like dataset (procedural object images, EEG from an MNE forward model on a "
            "spherical head) in the official THINGS-EEG layout, with ground truth. Presets: tiny (tests, seconds), "
            "demo (the demo bundle, under a minute), full (the real sizes, ~10 GB per subject in float64)."
        ),
    )
    parser.add_argument("out", metavar="OUT", help="dataset folder to create (must not exist or be empty)")
    parser.add_argument("--preset", default="tiny", help="tiny, demo or full (default: tiny)")
    # Numbers are parsed in `run`, so that a bad value gets the toolkit's one-line error instead of argparse's usage.
    parser.add_argument("--seed", default="0", help="non-negative seed; same seed, same bytes (default: 0)")
    parser.add_argument("--subjects", default=None, metavar="N", help="number of subjects (default: the preset's)")
    parser.add_argument(
        "--snr", default=None, metavar="X", help="single-trial signal/noise power ratio, > 0 (default: the preset's)"
    )
    parser.add_argument(
        "--dtype", default=None, help="float64 (official, default) or float32 (half the size) for the EEG arrays"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds a simulated dataset")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def _number(option: str, value: str | None, kind: type) -> int | float | None:
    from ..errors import ToolkitError

    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ToolkitError(f"{option} is {value!r}; it must be {what}.") from None


def run(args: argparse.Namespace) -> dict:
    """Simulate the dataset and return its summary (paths, shapes, SNR, timings)."""
    from ..data.simulate import simulate

    result = simulate(
        args.out,
        args.preset,
        seed=_number("--seed", args.seed, int),
        n_subjects=_number("--subjects", args.subjects, int),
        snr=_number("--snr", args.snr, float),
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    summary = result.to_dict()
    if not args.json:
        shapes = summary["shapes"]
        print(f"simulated preset '{summary['preset']}' (seed {summary['seed']}) into {summary['root']}")
        print(f"subjects: {', '.join(summary['subjects'])}; EEG {summary['dtype']}")
        print(f"training data {tuple(shapes['train'])}, test data {tuple(shapes['test'])}")
        print(f"times ({shapes['times'][0]},) from -0.2 s; the data hold the 250 samples from 0 s")
        print(f"images: {summary['n_images']['train']} training, {summary['n_images']['test']} test")
        print(f"time: {sum(summary['timings_s'].values()):.1f} s")
    return summary
