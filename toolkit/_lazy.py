"""PEP 562 lazy exports for subpackage ``__init__`` modules.

It lives outside :mod:`toolkit.utils` on purpose: importing that package loads tqdm (about 50 ms), and the point of
lazy exports is that ``import toolkit.<subpackage>`` costs next to nothing. Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module_name: str, mapping: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` that import each public name from its submodule on first use.

    Parameters
    ----------
    module_name : str
        The package's ``__name__`` (submodules are imported relative to it).
    mapping : Mapping of str to str
        Public name → submodule (relative to the package, without the leading dot) defining it.

    Returns
    -------
    tuple of callable
        ``(__getattr__, __dir__)``, to assign at the package's module level; ``__dir__`` lists the public names,
        sorted.

    Examples
    --------
    >>> _LAZY = {"PixelProjector": "projector"}  # in toolkit/captions/__init__.py
    >>> __getattr__, __dir__ = lazy_exports("toolkit.captions", _LAZY)
    """
    names = dict(mapping)
    public = sorted(names)

    def module_getattr(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", module_name), name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def module_dir() -> list[str]:
        return list(public)

    return module_getattr, module_dir


__all__ = ["lazy_exports"]
