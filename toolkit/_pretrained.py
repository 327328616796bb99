"""Saving and loading single-network components: a folder with ``config.json`` + ``model.safetensors``.

Shared by :class:`toolkit.prior.DiffusionPriorUNet`, :class:`toolkit.captions.PixelProjector` and
:class:`toolkit.generation.LowLevelEncoder` (and the Hub/folder resolution of :mod:`toolkit.generation`):

- :func:`check_source`, :func:`is_local`, :func:`hub_file` — a local folder or a Hugging Face Hub id ``owner/name``
  (files fetched one by one through ``huggingface_hub``, which honours ``HF_HUB_OFFLINE`` and the local cache);
- :func:`resolve_pretrained` — the folder holding a component's files, local or in the Hub cache;
- :func:`save_component` / :func:`read_component_config` — the folder format (written atomically, stamped with the
  class name and the toolkit version);
- :func:`read_state_dict` — safetensors or a weights-only PyTorch file (pickled code is refused);
- :func:`load_checked_state_dict` — names, shapes and dtypes checked before loading, one error naming the file.

Every failure is one :class:`~toolkit.ToolkitError` naming the file or argument. Nothing heavy is imported here at
module level.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ToolkitError
from .utils import atomic_path, require

if TYPE_CHECKING:
    import torch
    from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# owner/name as the Hugging Face Hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_LISTED = 5


# ---------------------------------------------------------------------------------------------------- locations
def is_local(source: str | os.PathLike) -> bool:
    """Whether ``source`` names an existing local folder (otherwise it must be a Hub id)."""
    return Path(source).expanduser().is_dir()


def check_source(source: Any, *, what: str, revision: str | None) -> str:
    """Check that ``source`` is an existing folder or a Hub id ``owner/name``; return it as a string.

    Parameters
    ----------
    source : str | os.PathLike
        Folder or Hub repository id.
    what : str
        What is loaded (named in messages), e.g. ``"the SDXL pipeline"``.
    revision : str | None
        Hub revision; refused for local folders (a folder has no revisions).

    Returns
    -------
    str
        ``source`` as a string (a folder with ``~`` expanded).
    """
    if not isinstance(source, (str, os.PathLike)):
        raise ToolkitError(f"{what} must be a folder or a Hub id 'owner/name', got {type(source).__name__}.")
    path = Path(source).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ToolkitError(
                f"revision={revision!r} only applies to Hub ids, but {path} ({what}) is a local folder."
            )
        return str(path)
    text = str(source)
    if path.exists() or not _HUB_ID.match(text) or ".." in text:
        raise ToolkitError(
            f"{text!r} ({what}) is neither an existing folder nor a Hugging Face Hub id ('owner/name'); check the "
            "path."
        )
    return text


def hub_file(
    repo_id: str,
    filename: str,
    *,
    subfolder: str | None,
    revision: str | None,
    local_files_only: bool,
    cache_dir: str | os.PathLike | None,
    what: str,
) -> Path:
    """Download (or find in the cache) one file of a Hub repository; a :class:`~toolkit.ToolkitError` on failure."""
    hub = require("huggingface_hub", extra="generate", purpose=f"loading {what} from the Hugging Face Hub")
    try:
        return Path(
            hub.hf_hub_download(
                repo_id,
                filename,
                subfolder=subfolder or None,
                revision=revision,
                cache_dir=None if cache_dir is None else str(cache_dir),
                local_files_only=local_files_only,
            )
        )
    except Exception as err:  # huggingface_hub raises many error types (HTTP, offline, missing entry, revision)
        where = f"{repo_id}/{subfolder}/{filename}" if subfolder else f"{repo_id}/{filename}"
        hint = (
            "it is not in the local Hugging Face cache and local_files_only=True; download it once with network "
            "access (or point at a local folder)"
            if local_files_only
            else "check the id, the revision and the network, or point at a local folder"
        )
        raise ToolkitError(f"Could not get {where} ({what}): {type(err).__name__}: {err}; {hint}.") from err


def resolve_pretrained(
    source: Any,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    filenames: Sequence[str] = (CONFIG_NAME, WEIGHTS_NAME),
    what: str = "the component",
    save_hint: str = "save_pretrained",
) -> Path:
    """The local folder holding ``filenames`` of a component: ``source`` itself, or its copy in the Hub cache.

    Parameters
    ----------
    source : str | os.PathLike
        A local folder, or a Hugging Face Hub repository id ``"owner/name"``.
    subfolder : str | None
        Folder inside ``source`` holding the files (e.g. ``"prior"`` inside a bundle).
    revision : str | None
        Hub branch, tag or commit; refused for local folders.
    cache_dir : str | os.PathLike | None
        Hub cache folder; ``None`` uses huggingface_hub's default.
    local_files_only : bool
        Never use the network (Hub ids must be in the local cache).
    filenames : sequence of str
        Files the folder must hold (each fetched from the Hub when ``source`` is an id).
    what : str
        What is loaded, e.g. ``"the prior"``, named in messages.
    save_hint : str
        What writes such a folder (e.g. ``"DiffusionPriorUNet.save_pretrained"``), named when a file is missing.

    Returns
    -------
    Path
        The folder; every name in ``filenames`` is a file in it.
    """
    checked = check_source(source, what=what, revision=revision)
    if is_local(checked):
        folder = Path(checked) / subfolder if subfolder else Path(checked)
        for name in filenames:
            if not (folder / name).is_file():
                raise ToolkitError(
                    f"{folder / name} is missing: the folder of {what} {folder} has no {name}; write it with "
                    f"{save_hint}."
                )
        return folder
    paths = [
        hub_file(
            checked,
            name,
            subfolder=subfolder,
            revision=revision,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
            what=what,
        )
        for name in filenames
    ]
    folders = {p.parent for p in paths}
    if len(folders) != 1:  # the files come from one snapshot; a revision moving between downloads splits them
        raise ToolkitError(
            f"The files of {what} {checked!r} came from different snapshots ({sorted(map(str, folders))}); pin "
            "revision to a commit and load again."
        )
    return folders.pop()


# ---------------------------------------------------------------------------------------------------- folder format
def write_component(
    folder: str | os.PathLike,
    *,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    class_name: str,
    what: str = "the component",
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` as they are (not atomically).

    For a folder that is itself being written atomically (a component inside a bundle); otherwise use
    :func:`save_component`. Parameters as for :func:`save_component`.

    Returns
    -------
    Path
        ``folder``.
    """
    safetensors_torch = require("safetensors.torch", extra="generate", purpose=f"saving {what}")
    folder = Path(folder)
    data = {"_class_name": class_name, "_toolkit_version": __version__, **config}
    text = json.dumps(data, indent=2) + "\n"  # serialise before anything is written
    state = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    folder.mkdir(parents=True, exist_ok=True)
    safetensors_torch.save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    return folder


def save_component(
    directory: str | os.PathLike,
    *,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    class_name: str,
    what: str = "the component",
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` to ``directory``, atomically (the folder is replaced whole).

    Parameters
    ----------
    directory : str | os.PathLike
        Destination folder; an existing file there is refused, an existing folder is replaced.
    config : Mapping
        JSON-serialisable configuration; ``_class_name`` and ``_toolkit_version`` are added in front.
    state_dict : Mapping of str to torch.Tensor
        The tensors (moved to the CPU and made contiguous before writing).
    class_name : str
        Class that reads the folder back, checked by :func:`read_component_config`.
    what : str
        What is saved, named in messages.

    Returns
    -------
    Path
        The folder written.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ToolkitError(f"save_pretrained needs a directory but {target} is a file; pick another path.")
    with atomic_path(target, is_dir=True) as tmp:
        write_component(tmp, config=config, state_dict=state_dict, class_name=class_name, what=what)
    return target


def read_component_config(path: str | os.PathLike, *, class_name: str, what: str) -> Any:
    """Read a component's ``config.json`` and check the class it was written for.

    Parameters
    ----------
    path : str | os.PathLike
        The ``config.json`` file.
    class_name : str
        The class expected in its ``_class_name`` entry (a file without one is accepted).
    what : str
        What is loaded, e.g. ``"prior"``, named in messages.

    Returns
    -------
    Any
        The parsed JSON (the configuration class validates it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitError(f"Could not read the {what} configuration {path}: {err}.") from err
    if isinstance(data, dict) and data.get("_class_name", class_name) != class_name:
        raise ToolkitError(
            f"{path} describes a {data['_class_name']!r}, not a {class_name}; point at a {what} folder."
        )
    return data


def read_pretrained_component(
    source: Any,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    class_name: str,
    what: str,
    save_hint: str,
) -> tuple[Any, Path, Path]:
    """Locate a component folder (local or Hub) and read its checked ``config.json``: the shared start of loading.

    Parameters
    ----------
    source : str | os.PathLike
        A local folder, or a Hugging Face Hub repository id ``"owner/name"``.
    subfolder, revision, cache_dir, local_files_only
        As for :func:`resolve_pretrained`.
    class_name : str
        The class expected in the configuration's ``_class_name`` entry.
    what : str
        What is loaded, e.g. ``"prior"``, named in messages.
    save_hint : str
        The method that writes such a folder, named when files are missing.

    Returns
    -------
    tuple of (Any, Path, Path)
        The parsed configuration, the ``config.json`` path and the weights path (not read yet).
    """
    folder = resolve_pretrained(
        source,
        subfolder=subfolder,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        what=f"the {what}",
        save_hint=save_hint,
    )
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    return read_component_config(config_path, class_name=class_name, what=what), config_path, weights_path


# ---------------------------------------------------------------------------------------------------- weights
def read_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file or a PyTorch file, without executing code from it.

    Parameters
    ----------
    path : str | os.PathLike
        ``.safetensors`` (preferred) or ``.pt`` / ``.pth`` / ``.bin`` holding a plain dict of tensors; PyTorch files
        are read with ``weights_only=True``, which refuses pickled code.
    what : str
        Whose weights these are, e.g. ``"prior"``, named in messages.

    Returns
    -------
    dict of str to torch.Tensor
        The tensors, on the CPU.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"The {what} weights file {path} does not exist.")
    if path.suffix == ".safetensors":
        safetensors_torch = require("safetensors.torch", extra="generate", purpose=f"loading the {what}")
        try:
            return safetensors_torch.load_file(str(path), device="cpu")
        except Exception as err:  # safetensors raises its own error types for damaged headers
            raise ToolkitError(f"Could not read the safetensors file {path}: {err}.") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors of many kinds; weights_only refuses anything but tensors and containers
        raise ToolkitError(
            f"Could not read {path} as a weights-only PyTorch state dict ({err}); save the {what}'s state_dict(), "
            "preferably as .safetensors (save_pretrained)."
        ) from err
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ToolkitError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    return dict(state)


def _listed(items: list[str]) -> str:
    more = len(items) - _MAX_LISTED
    return ", ".join(items[:_MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def load_checked_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, what: str) -> None:
    """Load ``state`` into ``module`` after checking names, shapes and dtypes; one error names ``source``.

    Parameters
    ----------
    module : nn.Module
        The module to load into (strictly: every tensor must be present and fit).
    state : Mapping of str to torch.Tensor
        Tensors keyed by name.
    source : str
        Where ``state`` came from (a file), named in messages.
    what : str
        What ``module`` is, e.g. ``"DiffusionPriorUNet (embed_dim=1024, ...)"``, named in messages.
    """
    expected = module.state_dict()
    problems = []
    wrong = [
        f"{n} expected {list(expected[n].shape)} found {list(state[n].shape)}"
        for n in expected
        if n in state and tuple(state[n].shape) != tuple(expected[n].shape)
    ]
    if wrong:
        problems.append(f"shape mismatches: {_listed(wrong)}")
    missing = [f"{n} {list(t.shape)}" for n, t in expected.items() if n not in state]
    if missing:
        problems.append(f"missing: {_listed(missing)}")
    unexpected = [f"{n} {list(t.shape)}" for n, t in state.items() if n not in expected]
    if unexpected:
        problems.append(f"unexpected: {_listed(unexpected)}")
    if problems:
        raise ToolkitError(
            f"The weights file {source} does not fit the {what}: {'; '.join(problems)}. It was saved from another "
            "configuration; build the model with the configuration the weights were saved with."
        )
    # A floating-point parameter must not come from an integer tensor (integer buffers such as BatchNorm's
    # num_batches_tracked stay integer).
    not_float = [n for n, t in expected.items() if t.is_floating_point() and not state[n].is_floating_point()]
    if not_float:
        raise ToolkitError(
            f"The weights file {source} holds non-floating-point tensors where the {what} has floating-point ones: "
            f"{_listed(not_float)}."
        )
    module.load_state_dict(dict(state), strict=True)


__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "check_source",
    "hub_file",
    "is_local",
    "load_checked_state_dict",
    "read_component_config",
    "read_state_dict",
    "resolve_pretrained",
    "save_component",
    "write_component",
]
