"""Soft imports of optional dependencies with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ToolkitError


def require(module: str, *, extra: str, purpose: str | None = None) -> ModuleType:
    """Import an optional dependency or fail with an error naming the extra that provides it.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``"gradio"``.
    extra : str
        The ``eeg-visual-toolkit`` extra that installs it, e.g. ``"demo"``.
    purpose : str | None
        What it is needed for, used in the error message.

    Returns
    -------
    ModuleType
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        why = f" for {purpose}" if purpose else ""
        raise ToolkitError(
            f"The optional dependency '{module}' is needed{why} but is not installed; "
            f"install it with: pip install 'eeg-visual-toolkit[{extra}]'."
        ) from err
