"""``python -m toolkit bench``: run the benchmark suite."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``bench`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser("bench", help="run the benchmark suite")
    parser.add_argument("--only", default="*", metavar="PATTERN", help="glob over benchmark names, e.g. 'data.*'")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    """Run (or list) the benchmarks."""
    from ..bench import list_benchmarks, run_benchmarks

    if args.list:
        names = [{"name": b.name, "description": b.description} for b in list_benchmarks()]
        if not args.json:
            for item in names:
                print(f"{item['name']:40s} {item['description']}")
        return {"benchmarks": names}
    report = run_benchmarks(args.only)
    if not args.json:
        for res in report["results"]:
            figures = {k: v for k, v in res.items() if k not in ("name", "description")}
            print(f"{res['name']}: {figures}")
    return report
