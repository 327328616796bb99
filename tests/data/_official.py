"""Test helper: small files in the official THINGS-EEG / THINGS-MEG / EEG-ImageNet layouts.

Files are written here with plain ``pickle`` / ``np.save`` / ``torch.save`` (not with the toolkit's writers), so the
loaders are tested against independently written files. Shapes are small; the layouts and keys are the official ones.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np

from toolkit.data.channels import THINGS_EEG_17, THINGS_EEG_63

# ATM's 250 Hz files: 300 times from -0.2 s, data keep times[50:]; the OSF 100 Hz files: 100 times, all kept.
TIMES_250 = -0.2 + np.arange(300) / 250.0
TIMES_100 = -0.2 + np.arange(100) / 100.0
VARIANTS = {
    "250": {"ch_names": list(THINGS_EEG_63), "times": TIMES_250, "n_times": 250, "folder": "Preprocessed_data_250Hz"},
    "100": {"ch_names": list(THINGS_EEG_17), "times": TIMES_100, "n_times": 100, "folder": "Preprocessed_data_100Hz"},
}
MEG_TIMES = np.arange(201) / 200.0
EEG_FILES = {"train": "preprocessed_eeg_training.npy", "test": "preprocessed_eeg_test.npy"}
# A 1x1 JPEG is not needed: the image mapping only scans file names.
_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def write_pickle(path: Path, obj: object, *, protocol: int = 4) -> Path:
    """Write ``obj`` as a raw pickle (ATM's container)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


def write_npy_object(path: Path, obj: object) -> Path:
    """Write ``obj`` as a 0-d object array with ``np.save`` (the OSF container); keeps the exact path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.save(fh, np.array(obj, dtype=object), allow_pickle=True)
    return path


def eeg_dict(data: np.ndarray, ch_names: list[str], times: np.ndarray) -> dict:
    return {"preprocessed_eeg_data": data, "ch_names": list(ch_names), "times": np.asarray(times)}


def random_eeg(n_cond: int, n_rep: int, variant: str = "250", *, seed: int = 0, dtype: str = "float64") -> np.ndarray:
    v = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_cond, n_rep, len(v["ch_names"]), v["n_times"])).astype(dtype)


def write_images(folder: Path, n_concepts: int, per_concept: int, *, start: int = 1) -> list[str]:
    """Write ``NNNNN_concept/<image>.jpg`` folders; return the relative image paths in sorted order."""
    files = []
    for c in range(n_concepts):
        concept = folder / f"{start + c:05d}_concept_{start + c}"
        concept.mkdir(parents=True, exist_ok=True)
        for i in range(per_concept):
            name = f"concept_{start + c}_{i + 1:02d}s.jpg"
            (concept / name).write_bytes(_JPEG)
            files.append(f"{concept.name}/{name}")
    return files


def make_things_root(
    root: Path,
    *,
    variant: str = "250",
    subjects: tuple[int, ...] = (1,),
    n_train_concepts: int = 2,
    train_images_per_concept: int = 10,
    n_train_reps: int = 2,
    n_test_concepts: int = 3,
    n_test_reps: int = 4,
    images: bool = True,
    container: str = "pickle",
    folder: str | None = None,
) -> Path:
    """An official THINGS-EEG root with small shapes; returns ``root``."""
    v = VARIANTS[variant]
    base = root / (folder or v["folder"])
    counts = {
        "train": (n_train_concepts * train_images_per_concept, n_train_reps),
        "test": (n_test_concepts, n_test_reps),
    }
    for s in subjects:
        for split, (n_cond, n_rep) in counts.items():
            obj = eeg_dict(random_eeg(n_cond, n_rep, variant, seed=10 * s + len(split)), v["ch_names"], v["times"])
            path = base / f"sub-{s:02d}" / EEG_FILES[split]
            (write_pickle if container == "pickle" else write_npy_object)(path, obj)
    if images:
        write_images(root / "training_images", n_train_concepts, train_images_per_concept)
        write_images(root / "test_images", n_test_concepts, 1, start=n_train_concepts + 1)
    return root


def make_meg_root(
    root: Path,
    *,
    subjects: tuple[int, ...] = (1,),
    n_concepts: int = 3,
    n_images: int = 4,
    n_test: int = 5,
    n_reps: int = 3,
    n_chans: int = 6,
) -> Path:
    """An official THINGS-MEG root: ``preprocessed_MEG/sub-0N/*.pkl`` with the official axis orders."""
    rng = np.random.default_rng(7)
    names = [f"MLC{i + 11}-4408" for i in range(n_chans)]
    for s in subjects:
        sub = root / "preprocessed_MEG" / f"sub-{s:02d}"
        train = rng.standard_normal((n_concepts, n_images, 1, n_chans, 201))
        test = rng.standard_normal((n_test, 1, n_reps, n_chans, 201))
        write_pickle(sub / "preprocessed_meg_training.pkl", {"meg_data": train, "ch_names": names, "times": MEG_TIMES})
        write_pickle(sub / "preprocessed_meg_zs_test.pkl", {"meg_data": test, "ch_names": names, "times": MEG_TIMES})
    return root


# -- EEG-ImageNet ------------------------------------------------------------------------------------------------
WNIDS = ["n02389026", "n03888257", "n03584829"]


def make_eeg_imagenet(folder: Path, lengths: list[int], *, subjects: list[int] | None = None) -> tuple[Path, dict]:
    """Write an ``eeg_5_95_std.pth``-like file; trial i has label i % 3, image i, and eeg[c, t] = 1000 c + t."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    subjects = subjects or [1 + i % 2 for i in range(len(lengths))]
    trials, images = [], []
    for i, length in enumerate(lengths):
        eeg = torch.arange(128, dtype=torch.float32)[:, None] * 1000 + torch.arange(length, dtype=torch.float32)
        label = i % len(WNIDS)
        images.append(f"{WNIDS[label]}_{100 + i}")
        trials.append({"eeg": eeg + i * 1e5, "label": label, "image": i, "subject": subjects[i]})
    obj = {"dataset": trials, "labels": list(WNIDS), "images": images}
    path = folder / "eeg_5_95_std.pth"
    torch.save(obj, path)
    return path, obj


def write_splits(path: Path, train: list[int], val: list[int], test: list[int]) -> Path:
    import torch

    torch.save({"splits": [{"train": train, "val": val, "test": test}]}, path)
    return path


# -- pickles written the way numpy 1.x writes them ---------------------------------------------------------------
def dumps_numpy1_style(obj: object, protocol: int) -> bytes:
    """Pickle ``obj`` so that arrays and scalars reference ``numpy.core.*`` as numpy 1.x does.

    numpy 2 writes ``numpy._core.*``. To produce numpy 1.x files without numpy 1.x, arrays are reduced to stand-in
    functions registered under the old module names for the duration of the dump (they are never called here).
    """

    def _stand_in(module: str, name: str) -> types.FunctionType:
        def func(*args: object) -> None:  # pragma: no cover - only pickled by reference
            raise AssertionError("stand-in called")

        func.__module__, func.__name__, func.__qualname__ = module, name, name
        return func

    multiarray = types.ModuleType("numpy.core.multiarray")
    numeric = types.ModuleType("numpy.core.numeric")
    multiarray._reconstruct = _stand_in("numpy.core.multiarray", "_reconstruct")
    multiarray.scalar = _stand_in("numpy.core.multiarray", "scalar")
    numeric._frombuffer = _stand_in("numpy.core.numeric", "_frombuffer")

    class Pickler(pickle.Pickler):
        def reducer_override(self, o: object) -> object:
            if type(o) is np.ndarray:
                if protocol >= 5 and o.flags.c_contiguous and not o.dtype.hasobject:
                    return numeric._frombuffer, (pickle.PickleBuffer(o), o.dtype, o.shape, "C")
                return multiarray._reconstruct, (np.ndarray, (0,), b"b"), o.__reduce__()[2]
            if isinstance(o, np.generic):
                return multiarray.scalar, o.__reduce__()[1]
            return NotImplemented

    saved = {name: sys.modules.get(name) for name in ("numpy.core.multiarray", "numpy.core.numeric")}
    sys.modules["numpy.core.multiarray"], sys.modules["numpy.core.numeric"] = multiarray, numeric
    try:
        buf = io.BytesIO()
        Pickler(buf, protocol=protocol).dump(obj)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return buf.getvalue()


# -- malicious pickles ---------------------------------------------------------------------------------------------
class SystemCall:
    """Unpickling this calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


class EvalCall:
    """Unpickling this calls ``builtins.eval(expression)``."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self) -> tuple:
        return builtins.eval, (self.expression,)


def touch_command(marker: Path) -> str:
    """A shell command that creates ``marker`` (proof that code ran)."""
    return f"touch '{marker}'"


def touch_expression(marker: Path) -> str:
    """A Python expression that creates ``marker``."""
    return f"open({str(marker)!r}, 'w').close()"
