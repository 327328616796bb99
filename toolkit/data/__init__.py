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
    # (the simulator function is `simulate_dataset` here: `toolkit.data.simulate` is its sub-package)
    "simulate_dataset": "simulate",
    "SimulationConfig": "simulate",
    "SimulationResult": "simulate",
    "SIMULATION_PRESETS": "simulate",
    "load_ground_truth": "simulate",
    "to_epochs": "mne_bridge",
    "from_epochs": "mne_bridge",
    "import_recording": "importing",
    "import_recordings": "importing",
    "ImportResult": "importing",
    "restricted_load": "_unpickle",
    "load_things_eeg": "things",
    "things_eeg_file": "things",
    "list_subjects": "things",
    "normalize_subject": "things",
    "write_things_eeg_file": "things",
    "load_things_meg": "meg",
    "things_meg_file": "meg",
    "list_meg_subjects": "meg",
    "load_eeg_imagenet": "eeg_imagenet",
    "load_eeg_imagenet_splits": "eeg_imagenet",
    "Store": "store",
    "StoreEntry": "store",
    "write_store": "store",
    "open_store": "store",
    "is_store": "store",
    "convert": "store",
    "inspect_path": "store",
}

__all__ = ["SPLITS", "ImageSet", "TrialSet", "concept_from_folder", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'toolkit.data' has no attribute {name!r}")
