"""Loading diffusers pipelines from Hub ids or local folders, with the device/dtype policy and checked weights.

Policy (shared by every generator in :mod:`toolkit.generation`):

- ``device=None`` picks the first CUDA GPU when there is one, else the CPU. Nothing is hard-coded to CUDA.
- ``dtype=None`` is float16 on CUDA and float32 elsewhere. float16 asked for on the CPU falls back to float32 with a
  ``UserWarning`` (PyTorch's float16 kernels on the CPU are slow and some are missing); bfloat16 is honoured.
- ``variant="auto"`` downloads the ``fp16`` weight variant of a Hub repository when loading in float16 (half the
  download); local folders are read as they are.

Every model component (the UNet, the VAE, the text encoders) is loaded one by one, so a missing weights file, a
missing tensor or a tensor of the wrong shape is reported as one :class:`~toolkit.ToolkitError` naming the component's
folder and the tensor's expected shape. diffusers and transformers would otherwise re-initialise missing tensors at
random with only a log message. Tokenizers, schedulers and other light parts are then filled in by the pipeline's
own ``from_pretrained`` (the same code path for Hub ids and local folders).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._pretrained import check_source, hub_file, is_local  # the shared folder / Hub id resolution, re-exported
from ..errors import ToolkitError
from ..utils import require

logger = logging.getLogger(__name__)

_MAX_LISTED = 5
# Loggers whose warnings concern what the toolkit does on purpose: no image encoder (the embeddings are precomputed)
# and ``.to(dtype)`` of modules that have no float32-only parts ("should be kept in float32: []").
DIFFUSERS_NOISE = ("diffusers.loaders.ip_adapter", "diffusers.models.modeling_utils")


def diffusers_module() -> Any:
    """diffusers, or a :class:`~toolkit.ToolkitError` naming the extra that installs it."""
    return require("diffusers", extra="generate", purpose="image generation")


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """diffusers' keyword for the weight type: ``dtype`` in recent releases (``torch_dtype`` is deprecated there)."""
    # Feature detection rather than a version number: the deprecation message exists exactly where `dtype` is read.
    deprecation = require("diffusers.utils.deprecation_utils", extra="generate", purpose="image generation")
    return {"dtype": dtype} if hasattr(deprecation, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else {"torch_dtype": dtype}


def _transformers_dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """transformers' keyword for the weight type: ``dtype`` from 4.56 on, ``torch_dtype`` before."""
    from importlib.metadata import version

    from packaging.version import Version

    return {"dtype": dtype} if Version(version("transformers")) >= Version("4.56.0") else {"torch_dtype": dtype}


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the named loggers to ERROR for the block (for library warnings about paths taken deliberately)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def progress_off(pipe: Any) -> Iterator[None]:
    """Silence diffusers' per-step bar during the block (the toolkit shows one bar over the batches)."""
    previous = dict(getattr(pipe, "_progress_bar_config", {}))
    pipe.set_progress_bar_config(**{**previous, "disable": True})
    try:
        yield
    finally:
        pipe._progress_bar_config = previous


def train_steps(pipe: Any) -> int:
    """The scheduler's number of training timesteps: the most denoising steps a call can ask for."""
    return int(getattr(pipe.scheduler.config, "num_train_timesteps", 1000))


def resolve_device(device: Any = None) -> Any:
    """The torch device to generate on.

    Parameters
    ----------
    device : str | torch.device | None
        ``None`` picks ``"cuda"`` when a CUDA GPU is available, else ``"cpu"``.

    Returns
    -------
    torch.device
        The device (checked to exist).
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ToolkitError(f"Unknown device {device!r}; pass 'cpu', 'cuda', 'cuda:N', 'mps' or None.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ToolkitError(f"device={device!r} was requested but no CUDA GPU is available; pass device='cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ToolkitError(
                f"device={device!r} does not exist (this machine has {torch.cuda.device_count()} CUDA GPU(s))."
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ToolkitError(f"device={device!r} was requested but MPS is not available; pass device='cpu'.")
    return dev


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """The floating-point type to load the weights in.

    Parameters
    ----------
    dtype : torch.dtype | str | None
        ``None`` is float16 on CUDA and float32 elsewhere. ``"float16"``, ``"fp16"``, ``"bfloat16"``, ``"bf16"``,
        ``"float32"``, ``"fp32"`` are accepted as strings. float16 on a CPU falls back to float32 with a warning.
    device : torch.device
        Where the model will run.

    Returns
    -------
    torch.dtype
        float32, float16 or bfloat16.
    """
    import torch

    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype.lower() not in names:
            raise ToolkitError(f"dtype={dtype!r} is not supported; pass 'float32', 'float16', 'bfloat16' or None.")
        dtype = names[dtype.lower()]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ToolkitError(f"dtype={dtype!r} is not supported; pass torch.float32, torch.float16, torch.bfloat16.")
    if dtype == torch.float16 and device.type == "cpu":
        warnings.warn(
            "float16 was requested on the CPU, where PyTorch's float16 kernels are slow or missing; loading in "
            "float32 instead (pass dtype=torch.bfloat16 for a 16-bit CPU run, or use a GPU for float16).",
            UserWarning,
            stacklevel=3,
        )
        return torch.float32
    return dtype


def resolve_variant(variant: str | None, source: str, dtype: Any) -> str | None:
    """The weight-file variant to read: ``"auto"`` is ``"fp16"`` for a Hub id loaded in float16, else ``None``."""
    import torch

    if variant == "auto":
        return "fp16" if dtype == torch.float16 and not is_local(source) else None
    if variant is not None and not isinstance(variant, str):
        raise ToolkitError(f"variant must be a string such as 'fp16', 'auto' or None, got {variant!r}.")
    return variant


def read_model_index(
    source: str, *, revision: str | None, local_files_only: bool, cache_dir: str | os.PathLike | None, what: str
) -> dict[str, Any]:
    """Read a pipeline's ``model_index.json`` from a folder or a Hub repository."""
    if is_local(source):
        path = Path(source) / "model_index.json"
        if not path.is_file():
            raise ToolkitError(
                f"{source} ({what}) has no model_index.json; point at a folder written by a diffusers pipeline's "
                "save_pretrained (or a snapshot of its Hub repository)."
            )
    else:
        path = hub_file(
            source,
            "model_index.json",
            subfolder=None,
            revision=revision,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
            what=what,
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitError(f"Could not read {path} ({what}): {err}.") from err
    if not isinstance(index, dict):
        raise ToolkitError(f"{path} ({what}) must hold a JSON object naming the pipeline's components.")
    return index


def _component_class(library: Any, class_name: Any) -> Any:
    """The model class of a ``model_index.json`` entry, only from the diffusers or transformers namespaces."""
    import torch

    if library not in ("diffusers", "transformers") or not isinstance(class_name, str):
        return None
    module = require(library, extra="generate", purpose="image generation")
    cls = getattr(module, class_name, None)
    if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
        return cls
    return None


def _where(source: str, name: str) -> str:
    """The folder of one component (local path or ``repo/subfolder``), for messages."""
    if is_local(source):
        folder = Path(source) / name
        files = sorted(p.name for p in folder.glob("*.safetensors")) + sorted(p.name for p in folder.glob("*.bin"))
        return str(folder / files[0]) if len(files) == 1 else str(folder)
    return f"{source}/{name}"


def _list(items: Iterable[Any]) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def load_model_component(
    cls: Any,
    source: str,
    name: str,
    *,
    dtype: Any,
    variant: str | None,
    revision: str | None,
    local_files_only: bool,
    cache_dir: str | os.PathLike | None,
) -> Any:
    """Load one model component (a diffusers ``ModelMixin`` or a transformers ``PreTrainedModel``), strictly.

    Missing tensors, tensors of the wrong shape and missing files raise a :class:`~toolkit.ToolkitError` naming the
    component's weights file and, for shapes, the expected and found shapes.
    """
    diffusers = diffusers_module()
    where = _where(source, name)
    common = {
        "subfolder": name,
        "variant": variant,
        "revision": revision,
        "local_files_only": local_files_only,
        "cache_dir": None if cache_dir is None else str(cache_dir),
    }
    is_diffusers = issubclass(cls, diffusers.ModelMixin)
    try:
        if is_diffusers:
            model, info = cls.from_pretrained(source, **_dtype_kwarg(dtype), output_loading_info=True, **common)
        else:
            model, info = cls.from_pretrained(
                source,
                **_transformers_dtype_kwarg(dtype),
                output_loading_info=True,
                ignore_mismatched_sizes=True,
                **common,
            )
    except ToolkitError:
        raise
    except Exception as err:  # diffusers/transformers/huggingface_hub raise OSError, ValueError, RuntimeError, ...
        message = str(err).replace("Cannot load  because", "Cannot load it because")
        hint = " (the fp16 weight variant may not exist there; pass variant=None)" if variant else ""
        raise ToolkitError(
            f"Could not load the {name} ({cls.__name__}) from {where}: {message.strip()}{hint}"
            + ("" if message.rstrip().endswith(".") else ".")
        ) from err
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda item: str(item[0]))
    if mismatched:
        shapes = [f"{key} expected {list(want)} found {list(got)}" for key, got, want in mismatched]
        raise ToolkitError(
            f"The {name} weights in {where} do not fit {cls.__name__} with this configuration: wrong shapes: "
            f"{_list(shapes)}; re-save the component or fix its config.json."
        )
    if missing:
        expected = dict(model.state_dict())
        shown = [f"{key} {list(expected[key].shape)}" if key in expected else key for key in missing]
        raise ToolkitError(
            f"The {name} weights in {where} lack {len(missing)} tensor(s) that {cls.__name__} needs: {_list(shown)}; "
            "the file is incomplete or belongs to another model."
        )
    unexpected = info.get("unexpected_keys") or []
    if unexpected:
        logger.info("Ignored %d unexpected tensor(s) in %s: %s", len(unexpected), where, _list(sorted(unexpected)))
    return model


def load_pipeline(
    pipeline_cls: Any,
    source: Any,
    *,
    what: str,
    accepted: tuple[str, ...],
    revision: str | None,
    dtype: Any,
    variant: str | None,
    local_files_only: bool,
    cache_dir: str | os.PathLike | None,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Load a diffusers pipeline, its model components one by one and checked, from a Hub id or a local folder.

    Parameters
    ----------
    pipeline_cls : type
        The diffusers pipeline class, e.g. ``diffusers.StableDiffusionXLPipeline``.
    source : str | os.PathLike
        Hub id ``owner/name`` or a folder written by ``save_pretrained``.
    what : str
        What is loaded, for messages (e.g. ``"the SDXL pipeline"``).
    accepted : tuple of str
        Pipeline class names accepted in ``model_index.json`` (``_class_name``).
    revision : str | None
        Hub branch, tag or commit (Hub ids only).
    dtype : torch.dtype
        Weight type.
    variant : str | None
        Weight-file variant (``"fp16"``) or ``None``.
    local_files_only : bool
        Never use the network; Hub ids must be in the local cache.
    cache_dir : str | os.PathLike | None
        Hub cache folder (``None``: huggingface_hub's default).
    overrides : Mapping | None
        Components passed as they are (e.g. ``{"safety_checker": None}``).

    Returns
    -------
    diffusers.DiffusionPipeline
        The pipeline on the CPU, in ``dtype``.
    """
    source = check_source(source, what=what, revision=revision)
    index = read_model_index(
        source, revision=revision, local_files_only=local_files_only, cache_dir=cache_dir, what=what
    )
    class_name = index.get("_class_name")
    if class_name not in accepted:
        raise ToolkitError(
            f"{source} holds a {class_name!r} but {what} needs one of {', '.join(accepted)}; point at a matching "
            "repository or folder."
        )
    overrides = dict(overrides or {})
    components: dict[str, Any] = {}
    for name, entry in index.items():
        if name.startswith("_") or name in overrides or not isinstance(entry, list) or len(entry) != 2:
            continue
        cls = _component_class(*entry)
        if cls is None:
            continue  # tokenizers, schedulers, feature extractors, safety checkers: loaded by the pipeline below
        components[name] = load_model_component(
            cls,
            source,
            name,
            dtype=dtype,
            variant=variant,
            revision=revision,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
        )
    try:
        pipe = pipeline_cls.from_pretrained(
            source,
            **_dtype_kwarg(dtype),
            variant=variant,
            revision=revision,
            local_files_only=local_files_only,
            cache_dir=None if cache_dir is None else str(cache_dir),
            **components,
            **overrides,
        )
    except ToolkitError:
        raise
    except Exception as err:  # diffusers raises OSError, ValueError, TypeError, ... for unusable folders
        raise ToolkitError(f"Could not load {what} from {source}: {type(err).__name__}: {err}") from err
    pipe.set_progress_bar_config(disable=True)
    return pipe


__all__ = [
    "DIFFUSERS_NOISE",
    "check_source",
    "diffusers_module",
    "hub_file",
    "is_local",
    "load_model_component",
    "load_pipeline",
    "progress_off",
    "quiet_loggers",
    "read_model_index",
    "resolve_device",
    "resolve_dtype",
    "resolve_variant",
    "train_steps",
]
