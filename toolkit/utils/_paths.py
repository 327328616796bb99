"""Where the toolkit keeps caches and data: environment variables first, never hard-coded absolute paths."""

from __future__ import annotations

import os
from pathlib import Path

_HOME_ENV = "EEG_TOOLKIT_HOME"
_DATA_ENV = "EEG_TOOLKIT_DATA"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Return the toolkit's cache directory (or a sub-directory of it).

    The root is ``$EEG_TOOLKIT_HOME`` if set, else ``$XDG_CACHE_HOME/eeg-visual-toolkit``, else
    ``~/.cache/eeg-visual-toolkit``.

    Parameters
    ----------
    *parts : str
        Sub-directory names below the root.
    create : bool
        Create the directory if it does not exist.

    Returns
    -------
    Path
        The directory.
    """
    root = os.environ.get(_HOME_ENV)
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "eeg-visual-toolkit"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(name: str | None = None) -> Path | None:
    """Return the user's data root for real datasets (``$EEG_TOOLKIT_DATA``), or ``None`` if unset.

    Parameters
    ----------
    name : str | None
        A dataset folder below the root (for example ``"things-eeg"``).

    Returns
    -------
    Path | None
        The path, or ``None`` when the environment variable is not set.
    """
    root = os.environ.get(_DATA_ENV)
    if not root:
        return None
    base = Path(root).expanduser()
    return base / name if name else base
