"""The demo bundle's data: a simulated THINGS-like dataset built locally on first use, then cached.

Layout of the bundle directory (:func:`toolkit.bundles.bundle_dir` ``("demo")``)::

    bundle.json     what was built (written last, atomically): format, versions, and one entry per component
                    with paths relative to the bundle directory. Its absence means "not built".
    dataset/        the simulator's official THINGS layout without the preprocessed arrays (they live in the
                    store): training_images/, test_images/ and the simulator's ground truth
    store/          the memory-mapped store converted from the simulated files

``bundle.json`` has a ``components`` mapping so later stages (encoders, prior, ...) can add their own entries with
:func:`add_bundle_component`. Rebuilding the dataset writes a fresh ``bundle.json`` holding only the dataset, which
drops every component built on the previous data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "eeg-visual-toolkit-bundle"
BUNDLE_VERSION = 1
MANIFEST = "bundle.json"
# Bump when the way the demo data are built changes (invalidates every cached demo bundle).
DATA_RECIPE = 1

_DATASET_DIR = "dataset"
_STORE_DIR = "store"
_DEMO = "demo"


# -- manifest -----------------------------------------------------------------------------------------------------
def read_bundle_manifest(name: str = _DEMO) -> dict | None:
    """The parsed ``bundle.json`` of bundle ``name``, or ``None`` when the bundle is not built.

    Parameters
    ----------
    name : str
        Bundle name.

    Returns
    -------
    dict | None
        The manifest.
    """
    from ._registry import bundle_dir

    path = bundle_dir(name) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s cannot be read; the bundle will be rebuilt.", path)
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        logger.warning("%s is not a bundle manifest; the bundle will be rebuilt.", path)
        return None
    if not isinstance(manifest.get("version"), int) or manifest["version"] > BUNDLE_VERSION:
        raise ToolkitError(
            f"'{path}' was written by a newer toolkit (bundle format {manifest.get('version')}); upgrade "
            "eeg-visual-toolkit or delete the folder to rebuild it."
        )
    return manifest


def add_bundle_component(name: str, component: str, entry: dict) -> Path:
    """Record a built component (e.g. a trained encoder) in a built bundle's ``bundle.json``, atomically.

    Parameters
    ----------
    name : str
        Bundle name (it must be built).
    component : str
        Component name (``"encoder"``, ``"prior"``, ...); ``"dataset"`` is reserved for the data.
    entry : dict
        JSON-serialisable description; paths in it should be relative to the bundle directory.

    Returns
    -------
    Path
        The manifest path.
    """
    from ..utils import atomic_write_json
    from ._registry import bundle_dir

    if not isinstance(component, str) or not component or component == "dataset":
        raise ToolkitError(f"component must be a non-empty name other than 'dataset'; got {component!r}.")
    manifest = read_bundle_manifest(name)
    if manifest is None:
        raise ToolkitError(f"Bundle '{name}' is not built; build its data first (build_demo_data()).")
    try:
        json.dumps(entry)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"The entry for component '{component}' is not JSON-serialisable ({err}).") from None
    manifest.setdefault("components", {})[component] = entry
    return atomic_write_json(bundle_dir(name) / MANIFEST, manifest)


def _dataset_spec(preset: str | None, seed: int | None) -> tuple[str, int]:
    from ._registry import get_bundle

    spec = get_bundle(_DEMO).components["dataset"]
    preset = spec["preset"] if preset is None else preset
    seed = spec["seed"] if seed is None else seed
    if not isinstance(preset, str) or not preset:
        raise ToolkitError(f"preset must be a simulator preset name; got {preset!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ToolkitError(f"seed must be a non-negative integer; got {seed!r}.")
    return preset, seed


def _is_current(manifest: dict | None, path: Path, preset: str, seed: int) -> bool:
    """Whether the manifest describes complete demo data built from ``preset`` and ``seed`` with this recipe."""
    if manifest is None:
        return False
    data = manifest.get("components", {}).get("dataset", {})
    if (data.get("preset"), data.get("seed"), data.get("recipe")) != (preset, seed, DATA_RECIPE):
        return False
    if (data.get("simulation") or {}).get("simulator_version") != _simulator_version():
        return False  # the simulator's model changed: same seed, different data
    from ..data.store import is_store

    return is_store(path / str(data.get("store", ""))) and (path / str(data.get("root", ""))).is_dir()


def _simulator_version() -> str | None:
    from ..data.simulate import _writer

    return getattr(_writer, "SIMULATOR_VERSION", None)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path/.lock`` so that two processes never build the same bundle at once."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, builds are not expected to race there
        yield
        return
    with open(path / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            logger.warning("Another process is building the bundle in '%s'; waiting for it.", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _versions() -> dict:
    import mne
    import numpy as np

    from .. import __version__

    return {
        "toolkit": __version__,
        "numpy": np.__version__,
        "mne": mne.__version__,
        "python": platform.python_version(),
    }


# -- building -----------------------------------------------------------------------------------------------------
def build_demo_data(*, force: bool = False, preset: str | None = None, seed: int | None = None) -> Path:
    """Build the demo bundle's dataset on first use (simulate, convert to a store, keep the images); cached.

    The first call simulates the ``demo`` preset with the seed of the bundle spec
    (:data:`toolkit.bundles.BUNDLES` ``["demo"]``), converts it into a memory-mapped store and writes
    ``bundle.json`` last. Later calls return at once. A bundle without ``bundle.json`` (an interrupted build),
    or one built from another preset, seed, recipe or simulator version, is rebuilt.

    Parameters
    ----------
    force : bool
        Rebuild even if a current build exists.
    preset : str | None
        Simulator preset instead of the spec's (``"tiny"`` for tests).
    seed : int | None
        Simulation seed instead of the spec's.

    Returns
    -------
    Path
        The bundle directory.
    """
    from ..utils import atomic_write_json, progress
    from ._registry import bundle_dir

    preset, seed = _dataset_spec(preset, seed)
    path = bundle_dir(_DEMO)
    if not force and _is_current(read_bundle_manifest(_DEMO), path, preset, seed):
        return path
    with _build_lock(path):
        if not force and _is_current(read_bundle_manifest(_DEMO), path, preset, seed):
            return path  # built by another process while this one waited
        start = time.perf_counter()
        # Unbuilt first: an interruption from here on leaves no manifest, so the next call rebuilds.
        (path / MANIFEST).unlink(missing_ok=True)
        bar = progress(desc=f"demo bundle ({preset}, seed {seed})", total=3, unit="step")
        try:
            simulation = _simulate(path / _DATASET_DIR, preset, seed)
            bar.update(1)
            conversion = _convert(path / _DATASET_DIR, path / _STORE_DIR)
            bar.update(1)
            manifest = {
                "format": BUNDLE_FORMAT,
                "version": BUNDLE_VERSION,
                "bundle": _DEMO,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": _versions(),
                "components": {
                    "dataset": {
                        "kind": "simulated-things-eeg",
                        "preset": preset,
                        "seed": seed,
                        "recipe": DATA_RECIPE,
                        "root": _DATASET_DIR,
                        "store": _STORE_DIR,
                        "images_root": _DATASET_DIR,
                        "subjects": sorted({e["subject"] for e in conversion["entries"]}),
                        "entries": conversion["entries"],
                        "store_bytes": conversion["size_bytes"],
                        "simulation": simulation,
                        "build_seconds": round(time.perf_counter() - start, 2),
                    }
                },
            }
            atomic_write_json(path / MANIFEST, manifest)
            bar.update(1)
        finally:
            bar.close()
    logger.info("Built the demo bundle in %s (%.1f s).", path, time.perf_counter() - start)
    return path


def _simulate(root: Path, preset: str, seed: int) -> dict:
    """Simulate into ``root`` (replacing an old one) and return a JSON summary without absolute paths.

    The simulator writes into a temporary sibling and renames it into place, so an interruption leaves no partial
    dataset at ``root``.
    """
    from ..data.simulate import simulate

    if root.exists():
        shutil.rmtree(root)  # the bundle owns this folder and is rebuilding it
    # float32 halves the temporary arrays; the store is float32 anyway.
    result = simulate(root, preset, seed=seed, dtype="float32")
    summary = json.loads((root / "simulation.json").read_text(encoding="utf-8"))
    return {
        "simulator_version": summary.get("simulator_version"),
        "format": summary.get("format"),
        "units": summary.get("units"),
        "snr_target": summary.get("snr_target"),
        "snr_realised": summary.get("snr_realised"),
        "ground_truth": "ground_truth.json",
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }


def _convert(root: Path, store: Path) -> dict:
    """Convert the simulated files into ``store`` (replacing an old one), then drop the now redundant arrays."""
    from ..data.store import convert
    from ..data.things import PREPROCESSED_FOLDERS

    if store.exists():
        # The bundle owns this folder and is rebuilding it; a damaged leftover would make convert refuse it.
        shutil.rmtree(store)
    result = convert(root, store)
    for folder in PREPROCESSED_FOLDERS:
        arrays = root / folder
        if arrays.is_dir():
            shutil.rmtree(arrays)
    return result


# -- loading ------------------------------------------------------------------------------------------------------
def demo_paths(*, build: bool = True, preset: str | None = None, seed: int | None = None) -> dict[str, Path]:
    """Absolute paths of the demo bundle's parts, building it first if needed (and allowed).

    Parameters
    ----------
    build : bool
        Build the bundle when it is not built; otherwise fail with a message saying how to build it.
    preset, seed
        See :func:`build_demo_data`.

    Returns
    -------
    dict
        ``bundle`` (directory), ``store``, ``root`` (simulated layout) and ``images_root`` (the folder holding
        ``training_images/`` and ``test_images/``).
    """
    from ._registry import bundle_dir

    if build:
        path = build_demo_data(preset=preset, seed=seed)
    else:
        path = bundle_dir(_DEMO)
        preset, seed = _dataset_spec(preset, seed)
        if not _is_current(read_bundle_manifest(_DEMO), path, preset, seed):
            raise ToolkitError(
                "The demo bundle is not built; build it with 'python -m toolkit demo --build-only' or "
                "toolkit.bundles.build_demo_data()."
            )
    data = read_bundle_manifest(_DEMO)["components"]["dataset"]
    return {
        "bundle": path,
        "store": path / data["store"],
        "root": path / data["root"],
        "images_root": path / data["images_root"],
    }


def load_demo_store(*, build: bool = True, preset: str | None = None, seed: int | None = None) -> Any:
    """Open the demo bundle's store (building the bundle on first use).

    Load trials with ``store.load(subject, split, images_root=demo_paths()["images_root"])`` to attach the stimulus
    images wherever the cache lives.

    Parameters
    ----------
    build : bool
        Build the bundle when needed (see :func:`demo_paths`).
    preset, seed
        See :func:`build_demo_data`.

    Returns
    -------
    toolkit.data.store.Store
        The opened store.
    """
    from ..data.store import open_store

    return open_store(demo_paths(build=build, preset=preset, seed=seed)["store"])
