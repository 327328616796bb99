"""EEG visual decoding toolkit.

Import is cheap: subpackages (``toolkit.data``, ``toolkit.viz``, ...) are loaded on first attribute access, so
``import toolkit`` pulls in neither torch nor MNE.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import ToolkitError

_SUBMODULES = (
    "bench",
    "bundles",
    "captions",
    "data",
    "embeddings",
    "encoders",
    "explain",
    "generation",
    "metrics",
    "pipeline",
    "prior",
    "retrieval",
    "training",
    "utils",
    "viz",
)

__all__ = ["ToolkitError", "__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    # PEP 562 lazy subpackages: keeps `import toolkit` free of heavy imports.
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
