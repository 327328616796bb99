"""``python -m toolkit demo``: build the bundle if needed, then launch the Gradio app."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import ToolkitError


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``demo`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser("demo", help="launch the Gradio app (builds the demo bundle on first use)")
    parser.add_argument("--bundle", default="demo", help="bundle to browse: demo (default) or atm-things-eeg")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    parser.add_argument(
        "--share",
        choices=("yes", "no"),
        default="no",
        help="ask Gradio for a public gradio.live link (contacts Gradio's servers; default no)",
    )
    parser.add_argument("--build-only", action="store_true", help="build the bundle (data and models) and exit")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def load_app_module(name: str = "app") -> ModuleType:
    """Import ``demos.<name>`` from the source checkout this toolkit runs from.

    The apps live in the repository's ``demos/`` folder, beside the ``toolkit`` package (they are not part of the
    installed distribution). ``demos`` is importable when the working directory is the repository root; otherwise
    the folder beside the package is registered as the ``demos`` package.

    Parameters
    ----------
    name : str
        Module inside ``demos`` (``"app"``, ``"trials_tab"``).

    Returns
    -------
    ModuleType
        The module.
    """
    module = f"demos.{name}"
    if "demos" not in sys.modules:
        folder = Path(__file__).resolve().parents[2] / "demos"
        if (folder / "__init__.py").is_file():
            spec = importlib.util.spec_from_file_location(
                "demos", folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            package = importlib.util.module_from_spec(spec)
            sys.modules["demos"] = package
            spec.loader.exec_module(package)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name not in ("demos", module):
            raise
        raise ToolkitError(
            "The Gradio app lives in the repository's demos/ folder, which is not beside this installation; run "
            "it from a source checkout (pip install -e '.[demo]' in the repository)."
        ) from None


def run(args: argparse.Namespace) -> dict:
    """Build the bundle's data if needed and serve the app until interrupted."""
    from ..bundles import get_bundle

    get_bundle(args.bundle)
    result: dict = {"bundle": args.bundle}
    if args.bundle == "demo":
        from ..bundles import build_demo_bundle

        # Data and models (encoders, prior, decoder, captioner): minutes on the first run, cached afterwards.
        result["bundle_dir"] = str(build_demo_bundle())
    if args.build_only:
        return result
    app_module = load_app_module("app")
    app_module.check_port(args.host, args.port)
    app = app_module.build_app(args.bundle)
    if args.share == "yes":
        print("note: --share yes asks Gradio's servers for a public link; anyone with it can use the app.")
    result["url"] = app_module.launch(app, host=args.host, port=args.port, share=args.share == "yes", block=True)
    return result
