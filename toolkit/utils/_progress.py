"""Progress bars for long work (tqdm on standard error, silenced with ``EEG_TOOLKIT_NO_PROGRESS=1``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

# Plain tqdm (not tqdm.auto): the notebook widget bar needs ipywidgets, which the toolkit does not require.
from tqdm import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` in a tqdm progress bar written to standard error.

    Parameters
    ----------
    iterable : Iterable | None
        What to iterate over; ``None`` for a manually updated bar.
    desc : str
        Short description shown before the bar.
    total : int | None
        Number of steps, if ``iterable`` has no length.
    **kwargs
        Passed to :class:`tqdm.tqdm`.

    Returns
    -------
    tqdm
        The bar (iterate over it, or call ``update``).
    """
    disable = kwargs.pop("disable", None)
    if disable is None:
        disable = os.environ.get("EEG_TOOLKIT_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=disable, leave=False, **kwargs)
