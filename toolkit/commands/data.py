"""``python -m toolkit data …``: inspect, convert and import EEG data."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``data`` command group (``inspect``, ``convert``, ``import``)."""
    from . import _data_import, _data_store

    parser = sub.add_parser("data", help="inspect, convert and import EEG data")
    data_sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    _data_store.register(data_sub)
    _data_import.register(data_sub)
