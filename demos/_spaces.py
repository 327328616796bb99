"""Hugging Face Spaces helpers: run GPU functions through ZeroGPU on a ZeroGPU Space, unchanged everywhere else.

On a ZeroGPU Space no GPU is attached to the process; a function decorated with ``spaces.GPU`` gets one for the
duration of each call. Only the functions that run a model on the GPU are decorated (STYLE.md §1.8), never the
app's plotting or import handlers. Elsewhere (a laptop, CI, a CPU or dedicated-GPU Space) the decoration is a no-op,
and the ``spaces`` package is not needed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Set by Hugging Face on Spaces running on ZeroGPU hardware.
ZERO_GPU_ENV = "SPACES_ZERO_GPU"


def zero_gpu_active() -> bool:
    """Whether this process runs on a ZeroGPU Space with the ``spaces`` package importable."""
    if os.environ.get(ZERO_GPU_ENV, "").strip().lower() in ("", "0", "false", "no"):
        return False
    try:
        importlib.import_module("spaces")
    except ImportError:
        return False
    return True


def gpu_function(fn: F | None = None, *, duration: float | None = None) -> Any:
    """Decorate a GPU-needing function with ``spaces.GPU`` on a ZeroGPU Space; return it unchanged elsewhere.

    Use it bare (``@gpu_function``) or with a time budget per call (``@gpu_function(duration=120)``, in seconds;
    ZeroGPU's default is 60). The check happens when the function is decorated, so decorate at definition time,
    before the app is launched.

    Parameters
    ----------
    fn : callable | None
        The function (when used bare).
    duration : float | None
        Longest expected GPU time per call, in seconds, passed to ``spaces.GPU``.

    Returns
    -------
    callable
        The decorated function, or a decorator when ``fn`` is ``None``.
    """

    def decorate(func: F) -> F:
        if not zero_gpu_active():
            return func
        spaces = importlib.import_module("spaces")
        if duration is None:
            return spaces.GPU(func)
        return spaces.GPU(duration=duration)(func)

    if fn is not None:
        return decorate(fn)
    return decorate


__all__ = ["ZERO_GPU_ENV", "gpu_function", "zero_gpu_active"]
