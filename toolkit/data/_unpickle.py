"""A restricted unpickler for data files that are pickles (the official THINGS-EEG ``.npy`` and THINGS-MEG ``.pkl``).

A plain ``pickle.load`` (or ``np.load(..., allow_pickle=True)``) runs whatever callable the file names, so a
downloaded data file could execute code. :func:`restricted_load` admits only the globals that numpy needs to rebuild
arrays, dtypes and scalars, plus a few inert builtins (``set``, ``frozenset``, ``complex``, ``bytes``,
``bytearray``); dicts, lists, tuples, strings and numbers need no global at all. Anything else is refused with a
:class:`~toolkit.ToolkitError` naming the file and the global, before it is called.

It reads both containers the THINGS releases use:

- a raw pickle (what ``pickle.dump`` writes; ATM's ``Preprocessed_data_250Hz`` files, protocol 4), and
- an ``.npy`` file holding a pickled object array (what ``np.save(path, obj, allow_pickle=True)`` writes); a 0-d
  object array is unwrapped to the object it holds, as ``.item()`` would.

Pickles written with protocols 2 to 5, by numpy 1.x (``numpy.core``) or numpy 2.x (``numpy._core``), are accepted.
"""

from __future__ import annotations

import builtins
import importlib
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ToolkitError

__all__ = ["RefusedGlobalError", "restricted_load", "restricted_loads"]

_NPY_MAGIC = b"\x93NUMPY"

# Inert builtins that protocol 2/3 pickles reference for containers and numbers (no code runs through them).
_SAFE_BUILTINS = frozenset({"set", "frozenset", "complex", "bytes", "bytearray"})
# numpy internals that rebuild arrays and scalars: name -> sub-module of numpy.core / numpy._core.
_NUMPY_CORE = {"_reconstruct": "multiarray", "scalar": "multiarray", "_frombuffer": "numeric"}
_NUMPY_CORE_PACKAGES = ("numpy.core", "numpy._core")
_NUMPY_TOP = frozenset({"ndarray", "dtype"})


class RefusedGlobalError(ToolkitError):
    """A data file referenced a global that the restricted unpickler does not admit."""


def _numpy_core_attr(submodule: str, name: str) -> Any:
    """Return ``numpy.<core>.<submodule>.<name>`` from whichever core package this numpy has.

    numpy 2 renamed ``numpy.core`` to ``numpy._core`` (keeping a deprecated alias); numpy 1.x has only the former.
    Resolving the name here, instead of importing the module the pickle names, loads both kinds of files without
    deprecation warnings.
    """
    package = "numpy._core" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "numpy.core"
    return getattr(importlib.import_module(f"{package}.{submodule}"), name)


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that protocol-2 pickles use to store ``bytes`` (always with latin-1)."""
    if not isinstance(obj, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise RefusedGlobalError(f"a call to _codecs.encode with encoding {encoding!r}")
    return obj.encode("latin-1", errors)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only numpy array reconstruction and inert builtins."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol-2 pickles use the Python 2 name
            module = "builtins"
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if module == "numpy" and name in _NUMPY_TOP:
            return getattr(np, name)
        for package in _NUMPY_CORE_PACKAGES:
            if name in _NUMPY_CORE and module == f"{package}.{_NUMPY_CORE[name]}":
                return _numpy_core_attr(_NUMPY_CORE[name], name)
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        raise RefusedGlobalError(f"the global '{module}.{name}'")

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobalError(f"a persistent id {pid!r}")


def _refused(path: str, err: RefusedGlobalError) -> ToolkitError:
    return ToolkitError(
        f"'{path}' references {err}, which a data file must not contain (only numpy arrays, dtypes, dicts, lists, "
        "strings and numbers are allowed); nothing was executed. The file may be malicious: do not open it with "
        "pickle.load or np.load(allow_pickle=True), and obtain it again from the official source."
    )


def _unreadable(path: str, err: BaseException) -> ToolkitError:
    detail = str(err).strip() or type(err).__name__
    return ToolkitError(
        f"'{path}' is not a readable pickle (it is truncated or not a pickle: {detail}); download or write the file "
        "again."
    )


def _load_stream(fh: BinaryIO, label: str) -> Any:
    try:
        return _RestrictedUnpickler(fh).load()
    except RefusedGlobalError as err:
        raise _refused(label, err) from None
    except ToolkitError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # any failure of a malformed pickle becomes one clear error
        raise _unreadable(label, err) from None


def _load_npy(fh: BinaryIO, label: str) -> Any:
    """Read an ``.npy`` container: plain arrays directly, object arrays through the restricted unpickler."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:
            # Version 3.0 (UTF-8 header) has no public reader; numpy's own loader handles non-object arrays.
            shape, _, dtype = fmt._read_array_header(fh, version)
    except Exception as err:
        raise ToolkitError(f"'{label}' has a damaged .npy header ({err}); download or write the file again.") from None
    if not dtype.hasobject:
        fh.seek(0)
        try:
            return fmt.read_array(fh, allow_pickle=False)
        except Exception as err:
            raise ToolkitError(f"'{label}' is a truncated .npy file ({err}); download or write it again.") from None
    array = _load_stream(fh, label)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ToolkitError(f"'{label}' holds an object array whose content does not match its .npy header.")
    return array.item() if array.shape == () else array


def restricted_load(path: str | os.PathLike) -> Any:
    """Load a pickled data file without executing code from it.

    Parameters
    ----------
    path : str | os.PathLike
        A raw pickle (any extension) or an ``.npy`` file holding a pickled object array.

    Returns
    -------
    object
        The unpickled object (for THINGS files, a dict of arrays, lists and strings). A 0-d object array from an
        ``.npy`` container is unwrapped; a plain numeric ``.npy`` file is returned as an array.

    Raises
    ------
    ToolkitError
        If the file is missing, empty, truncated or not a pickle, or if it references any global other than those
        numpy needs to rebuild arrays (for example ``os.system`` or ``builtins.eval``): the message names the file
        and the refused global, and nothing from the file is executed.
    """
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise ToolkitError(f"'{label}' does not exist or is not a file; check the path.")
    if path.stat().st_size == 0:
        raise ToolkitError(f"'{label}' is empty (0 bytes); download or write the file again.")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
            fh.seek(0)
            if head == _NPY_MAGIC:
                return _load_npy(fh, label)
            return _load_stream(fh, label)
    except OSError as err:
        raise ToolkitError(f"Could not read '{label}': {err.strerror or err}.") from None


def restricted_loads(data: bytes, *, label: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the same restrictions as :func:`restricted_load` (``label`` names it in errors)."""
    import io

    if not data:
        raise ToolkitError(f"'{label}' is empty (0 bytes).")
    return _load_stream(io.BytesIO(data), label)
