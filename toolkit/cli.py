"""The command line: ``python -m toolkit …`` / ``eeg-toolkit …``.

Each command family lives in ``toolkit/commands/<name>.py`` with a ``register(subparsers)`` function; command
modules import nothing heavy at module level. A handler returns a JSON-serialisable dict; with ``--json`` it is
printed as one JSON object on the last line of standard output. A :class:`~toolkit.ToolkitError` is printed as one
line on standard error (exit code 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import ToolkitError

# Command modules in the order they appear in `--help`.
_COMMANDS = (
    "info", "simulate", "data", "embed", "train", "evaluate", "reconstruct", "bench", "demo", "caption", "explain",
    "bundle",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="python -m toolkit",
        description="EEG visual decoding toolkit: data, encoders, retrieval, reconstruction, attribution, apps.",
    )
    parser.add_argument("--version", action="version", version=f"eeg-visual-toolkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add the standard ``--json`` flag to a command's parser."""
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    # OpenMP threads that spin while waiting cost up to 10x on small or shared machines (measured: one demo training
    # epoch 79.6 s spinning, 11.0 s passive, on 2 busy cores). Read once, when torch loads: set before any command
    # imports it; an explicit setting of the user's wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        result = args.func(args)
    except ToolkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(result if result is not None else {}, default=str))
    return 0
