"""Data layer: THINGS-EEG/MEG, EEG-ImageNet, your own recordings, the simulator, memory-mapped stores.

Every loader returns a :class:`TrialSet` ``(n_conditions, n_repetitions, n_chans, n_times)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .images import ImageSet, concept_from_folder
from .trials import SPLITS, TrialSet

# Public names provided by sub-modules, imported on first use (keeps `import toolkit.data` light).
_LAZY = {
    # filled in as sub-modules land: name -> module
}

__all__ = ["SPLITS", "ImageSet", "TrialSet", "concept_from_folder", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'toolkit.data' has no attribute {name!r}")
