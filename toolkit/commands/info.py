"""``python -m toolkit info``: version, bundles and device."""

from __future__ import annotations

import argparse
import platform
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``info`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser("info", help="version, bundles available/built, device")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    """Describe the installation; print a short summary unless ``--json``."""
    from .. import __version__
    from ..bench import machine_info
    from ..bundles import bundle_status

    info = {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": machine_info(),
        "bundles": bundle_status(),
    }
    if not args.json:
        print(f"eeg-visual-toolkit {info['version']} (Python {info['python']})")
        print(f"device: {info['machine']['device']}")
        for name, status in info["bundles"].items():
            print(f"bundle {name}: {'built' if status['built'] else 'not built'} — {status['description']}")
    return info
