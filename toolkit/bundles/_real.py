"""The ``atm-things-eeg`` bundle: a manifest naming where each real component comes from on this machine.

Nothing of the real bundle is built or downloaded by the toolkit. Its parts are supplied by the user and named in
``bundle.json`` in :func:`toolkit.bundles.bundle_dir` ``("atm-things-eeg")``, written by
:func:`write_real_bundle_manifest` (``python -m toolkit bundle init atm-things-eeg …``):

- ``dataset`` — the memory-mapped store converted from the THINGS-EEG files (``python -m toolkit data convert``) and
  the folder holding ``training_images/`` and ``test_images/``;
- ``encoders`` — EEG encoders, each a ``save_pretrained`` folder or a training run of ``python -m toolkit train``
  (``RUN_DIR`` with ``best/`` and ``results.json``, whose protocol card and subject numbers are then used);
- ``prior`` — a :class:`toolkit.prior.PriorPipeline` ``save_pretrained`` folder, with how its condition is made from
  an encoder's output (:data:`PRIOR_CONDITIONS`);
- ``embeddings`` — OpenCLIP ViT-H-14 embeddings of the test images (and optionally the training images), written by
  ``python -m toolkit embed … --out FILE``: the retrieval gallery;
- ``generator`` / ``ip_adapter`` / ``captioner`` / ``projector`` / ``clip`` — SDXL(-Turbo), the IP-Adapter, GIT, the
  optional GIT token projector and the OpenCLIP model, each a local path or a Hugging Face Hub id with a revision
  (loaded lazily, from the Hub cache when offline).

Paths inside the bundle directory are stored relative to it, other paths absolute (they name the user's files on this
machine). Without a ``bundle.json`` the conventional layout of the bundle directory is used (:data:`LAYOUT`), so a
bundle directory laid out by hand works too. Whatever is missing is reported in ONE
:class:`~toolkit.ToolkitError` listing every part and how to supply it (:func:`load_real_bundle_manifest`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

REAL = "atm-things-eeg"

#: How the prior's condition is made from an encoder's output. ATM trains its prior on the encoder's raw output.
PRIOR_CONDITIONS: dict[str, str] = {
    "raw": "the encoder's raw (unnormalised) EEG embedding",
    "normalized": "the L2-normalised EEG embedding",
    "normalized-scaled": "l2-normalised EEG embedding times sqrt(embed_dim)",
}
DEFAULT_PRIOR_CONDITION = "raw"

#: Where the parts are looked for in the bundle directory when no path is given (and without a ``bundle.json``).
LAYOUT: dict[str, str] = {
    "store": "store",
    "encoders": "encoders",
    "prior": "prior",
    "embeddings": "embeddings/test_images.safetensors",
    "train_embeddings": "embeddings/training_images.safetensors",
}

#: SDXL-Turbo's setting in ATM: 4 denoising steps, no classifier-free guidance.
DEFAULT_GENERATOR_STEPS = 4
DEFAULT_GENERATOR_GUIDANCE = 0.0

_SETTING_NAMES = {"intra": "intra-subject", "loso": "leave-one-subject-out", "joint": "joint"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOW = {
    "store": "python -m toolkit data convert ROOT STORE",
    "encoders": (
        "save_pretrained folders or training runs of python -m toolkit train; pass --encoder NAME=DIR to python -m "
        "toolkit bundle init atm-things-eeg, or put them in '{dir}/NAME'"
    ),
    "prior": "a PriorPipeline.save_pretrained folder; pass --prior DIR",
    "embeddings": (
        "python -m toolkit embed ROOT/test_images --no-normalize --concepts --out FILE, then --embeddings FILE"
    ),
}


# ---------------------------------------------------------------------------------------------------------- paths
def _bundle_path() -> Path:
    from ._registry import bundle_dir

    return bundle_dir(REAL)


def resolve_path(value: str | os.PathLike, base: Path) -> Path:
    """A manifest path: absolute as it is, relative to the bundle directory ``base`` otherwise (``~`` expanded)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _stored(value: str | os.PathLike, base: Path) -> str:
    """How a path is written in the manifest: relative inside the bundle directory, absolute elsewhere."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    path = Path(os.path.normpath(path))
    try:
        return path.relative_to(Path(os.path.normpath(base.absolute()))).as_posix()
    except ValueError:
        return str(path)


def source_of(entry: Mapping[str, Any], base: Path) -> tuple[str, str | None]:
    """``(local path or Hub id, revision)`` of a component entry (``{"path": ...}`` or ``{"repo_id", "revision"}``)."""
    if entry.get("path"):
        return str(resolve_path(entry["path"], base)), None
    return str(entry["repo_id"]), entry.get("revision")


def _source_entry(value: Any, revision: str | None, default: Mapping[str, Any], base: Path, what: str) -> dict:
    """A component entry from a user value: an existing path, a Hub id ``owner/name``, or ``None`` (the default)."""
    if value is None:
        entry = dict(default)
        if revision is not None:
            if "repo_id" not in entry:
                raise ToolkitError(f"A revision was given for {what}, but its default is a local path.")
            entry["revision"] = revision
        return entry
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ToolkitError(f"{what} must be a local path or a Hugging Face Hub id 'owner/name', got {value!r}.")
    text = str(value)
    path = Path(text).expanduser()
    if not path.exists() and _HUB_ID.match(text) and ".." not in text:
        return {"repo_id": text, "revision": revision or "main"}
    if revision is not None:
        raise ToolkitError(f"revision {revision!r} only applies to Hub ids, but {what} '{text}' is a local path.")
    return {"path": _stored(path, base)}


# ---------------------------------------------------------------------------------------------------------- building
def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ToolkitError(
            f"{what} {name!r} is not a valid name; use letters, digits, '.', '_' and '-' (e.g. 'atm-s')."
        )
    return name


def _encoder_entry(name: str, value: Any, base: Path, training_setting: str | None) -> dict:
    """One encoder: a training run (``RUN_DIR`` or ``RUN_DIR/best``) or a bare ``save_pretrained`` folder."""
    if isinstance(value, Mapping):
        raw = dict(value)
        folder = raw.pop("path", None)
        training_setting = raw.pop("training_setting", training_setting)
        if raw:
            raise ToolkitError(
                f"The entry of encoder {name!r} has unknown key(s) {', '.join(sorted(raw))}; use path and "
                "training_setting."
            )
    else:
        folder = value
    if not isinstance(folder, (str, os.PathLike)) or not str(folder):
        raise ToolkitError(f"Encoder {name!r} needs a folder (a save_pretrained folder or a training run).")
    path = Path(folder).expanduser()
    run = None
    if (path / "best").is_dir() and (path / "config.json").is_file() and not (path / "model.safetensors").exists():
        run, path = path, path / "best"
    elif path.name == "best" and (path.parent / "results.json").is_file():
        run = path.parent  # RUN_DIR/best: the checkpoint the run's test card describes (not last/)
    entry: dict[str, Any] = {"kind": "eeg-encoder", "path": _stored(path, base), "run": None}
    if run is not None:
        entry["run"] = _stored(run, base)
        entry.update(_run_info(run))
    if training_setting is not None:
        if training_setting not in _SETTING_NAMES.values():
            raise ToolkitError(
                f"training_setting {training_setting!r} is not one of {', '.join(_SETTING_NAMES.values())}."
            )
        entry["training_setting"] = training_setting
    return entry


def _run_info(run: Path) -> dict:
    """Subject numbers, tested subject and setting of a ``python -m toolkit train`` run (from its config.json)."""
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    subjects = config.get("subjects") if isinstance(config.get("subjects"), dict) else {}
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    ids = subjects.get("ids") if isinstance(subjects.get("ids"), dict) else {}
    out: dict[str, Any] = {
        # Negative numbers mark subjects the encoder never saw (leave-one-subject-out): they get the shared token.
        "subject_ids": {str(k): int(v) for k, v in ids.items() if isinstance(v, int) and v >= 0},
    }
    if isinstance(subjects.get("test"), str):
        out["test_subject"] = subjects["test"]
    if train.get("setting") in _SETTING_NAMES:
        out["training_setting"] = _SETTING_NAMES[train["setting"]]
    return out


def _adapter_entry(
    value: Any, subfolder: str | None, weight: str | None, revision: str | None, spec: Mapping[str, Any], base: Path
) -> dict:
    """The IP-Adapter entry: a Hub repository or a local folder (with subfolder and file name), or a weights file."""
    default = dict(spec["ip_adapter"])
    entry = _source_entry(value, revision, default, base, "the IP-Adapter")
    if "path" in entry and resolve_path(entry["path"], base).is_file():
        if subfolder is not None or weight is not None:
            raise ToolkitError(
                "The IP-Adapter is a weights file, so ip_adapter_subfolder / ip_adapter_weight do not apply."
            )
        return entry
    weight = weight or default["weight_name"]
    if subfolder is None and "path" in entry:
        # A local copy of the h94/IP-Adapter repository, or its sdxl_models/ folder itself.
        folder = resolve_path(entry["path"], base)
        subfolder = None if (folder / weight).is_file() else default.get("subfolder")
    elif subfolder is None:
        subfolder = default.get("subfolder") if entry.get("repo_id") == default.get("repo_id") else None
    entry.update(subfolder=subfolder or None, weight_name=weight)
    return entry


def real_images_root(dataset: Mapping[str, Any]) -> Path | None:
    """Folder of the stimulus images: the manifest's, else ``$EEG_TOOLKIT_DATA/things-eeg``, else ``None`` (the
    folder recorded in the store at conversion)."""
    from ..utils import data_dir

    if dataset.get("images_root"):
        return resolve_path(dataset["images_root"], _bundle_path())
    root = data_dir("things-eeg")
    return root if root is not None and root.is_dir() else None


def _model_folder(value: str | os.PathLike, marker: str) -> Path:
    """``value``, or its ``model/`` folder when it is a ``python -m toolkit train --task prior|projector`` run."""
    path = Path(value).expanduser()
    if not (path / marker).is_file() and (path / "model" / marker).is_file():
        return path / "model"
    return path


def _discover_encoders(folder: Path) -> dict[str, Path]:
    """The encoders of the conventional layout: every sub-folder of ``folder`` with a config.json."""
    if not folder.is_dir():
        return {}
    found = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and (p / "config.json").is_file()}
    # ATM-S first (the paper's encoder, and the pipeline's default), then the others by name.
    return dict(sorted(found.items(), key=lambda item: (item[0] != "atm-s", item[0])))


def real_bundle_manifest(
    *,
    store: str | os.PathLike | None = None,
    images_root: str | os.PathLike | None = None,
    encoders: Mapping[str, Any] | None = None,
    default_encoder: str | None = None,
    training_setting: str | None = None,
    prior: str | os.PathLike | None = None,
    prior_condition: str = DEFAULT_PRIOR_CONDITION,
    embeddings: str | os.PathLike | None = None,
    train_embeddings: str | os.PathLike | None = None,
    generator: str | os.PathLike | None = None,
    generator_revision: str | None = None,
    generator_steps: int = DEFAULT_GENERATOR_STEPS,
    generator_guidance: float = DEFAULT_GENERATOR_GUIDANCE,
    ip_adapter: str | os.PathLike | None = None,
    ip_adapter_subfolder: str | None = None,
    ip_adapter_weight: str | None = None,
    ip_adapter_revision: str | None = None,
    captioner: str | os.PathLike | None = None,
    captioner_revision: str | None = None,
    projector: str | os.PathLike | None = None,
    projector_revision: str | None = None,
    clip_model: str | None = None,
    clip_pretrained: str | os.PathLike | None = None,
) -> dict:
    """The manifest of the ``atm-things-eeg`` bundle, not written or checked (see :func:`write_real_bundle_manifest`).

    Parameters are those of :func:`write_real_bundle_manifest`.

    Returns
    -------
    dict
        ``{"format", "version", "bundle", "created", "versions", "components"}``.
    """
    from ._demo import BUNDLE_FORMAT, BUNDLE_VERSION
    from ._registry import get_bundle

    base = _bundle_path()
    spec = get_bundle(REAL).components
    if prior_condition not in PRIOR_CONDITIONS:
        raise ToolkitError(
            f"prior_condition {prior_condition!r} is not one of {', '.join(PRIOR_CONDITIONS)} (how the prior's "
            "condition is made from an encoder's output; ATM: raw)."
        )
    if isinstance(generator_steps, bool) or not isinstance(generator_steps, int) or generator_steps < 1:
        raise ToolkitError(f"generator_steps must be a positive integer, got {generator_steps!r}.")
    if isinstance(generator_guidance, bool) or not isinstance(generator_guidance, (int, float)) or not (
        0 <= generator_guidance < 100
    ):
        raise ToolkitError(f"generator_guidance must be a number from 0 to 100, got {generator_guidance!r}.")

    dataset = {
        "kind": "things-eeg",
        "store": _stored(store if store is not None else base / LAYOUT["store"], base),
        "images_root": None if images_root is None else _stored(images_root, base),
    }

    if encoders is None:
        encoders = _discover_encoders(base / LAYOUT["encoders"])
    if not isinstance(encoders, Mapping):
        raise ToolkitError("encoders must map encoder names to folders, e.g. {'atm-s': 'runs/atm-s-sub-08'}.")
    encoder_entries = {
        _check_name(name, "Encoder name"): _encoder_entry(name, value, base, training_setting)
        for name, value in encoders.items()
    }
    if default_encoder is not None and default_encoder not in encoder_entries:
        raise ToolkitError(
            f"default_encoder {default_encoder!r} is not one of the encoders given "
            f"({', '.join(encoder_entries) or 'none'})."
        )

    adapter = _adapter_entry(ip_adapter, ip_adapter_subfolder, ip_adapter_weight, ip_adapter_revision, spec, base)
    clip = dict(spec["clip"])
    if clip_model is not None:
        clip["open_clip"] = str(clip_model)
    if clip_pretrained is not None:
        text = str(clip_pretrained)
        clip["pretrained"] = _stored(text, base) if Path(text).expanduser().is_file() else text

    components: dict[str, Any] = {
        "dataset": dataset,
        "encoders": encoder_entries,
        "models": {"default_encoder": default_encoder or next(iter(encoder_entries), None)},
        "prior": {
            "kind": "diffusion-prior",
            "path": _stored(_model_folder(prior, "model_index.json") if prior is not None else base / LAYOUT["prior"],
                            base),
            "condition": prior_condition,
            "condition_description": PRIOR_CONDITIONS[prior_condition],
            "target": "unnormalised image embeddings of the embedding model (OpenCLIP ViT-H-14 for ATM)",
        },
        "embeddings": {
            "test_image": _stored(embeddings if embeddings is not None else base / LAYOUT["embeddings"], base),
            "train_image": None,
        },
        "clip": clip,
        "generator": {
            **_source_entry(generator, generator_revision, spec["generator"], base, "the SDXL pipeline"),
            "num_inference_steps": int(generator_steps),
            "guidance_scale": float(generator_guidance),
        },
        "ip_adapter": adapter,
        "captioner": _source_entry(captioner, captioner_revision, spec["captioner"], base, "the GIT captioner"),
        "projector": None if projector is None else _source_entry(
            projector if not Path(projector).expanduser().is_dir() else _model_folder(projector, "config.json"),
            projector_revision, {}, base, "the GIT token projector",
        ),
    }
    train_file = train_embeddings
    if train_file is None and (base / LAYOUT["train_embeddings"]).is_file():
        train_file = base / LAYOUT["train_embeddings"]
    if train_file is not None:
        components["embeddings"]["train_image"] = _stored(train_file, base)
    from .. import __version__

    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "bundle": REAL,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"toolkit": __version__, "python": platform.python_version()},
        "components": components,
    }


# ---------------------------------------------------------------------------------------------------------- checks
def missing_real_parts(manifest: Mapping[str, Any]) -> list[str]:
    """What the manifest names but this machine lacks, one phrase per part saying how to supply it (fast: no loading).

    Parameters
    ----------
    manifest : Mapping
        A real-bundle manifest.

    Returns
    -------
    list of str
        Empty when every local part exists (Hub ids are not checked: they load from the cache or the network).
    """
    from ..data.store import is_store
    from ..utils import data_dir

    base = _bundle_path()
    comps = manifest.get("components", {})
    missing = []
    data = comps.get("dataset") or {}
    store = resolve_path(data.get("store") or LAYOUT["store"], base)
    store_ok = is_store(store)
    if not store_ok:
        missing.append(f"the converted store '{store}' ({_HOW['store'].replace('STORE', repr(str(store)))})")
    images = real_images_root(data)
    if images is not None and not images.is_dir():
        missing.append(f"the THINGS-EEG image folder '{images}' (the folder holding test_images/)")
    elif images is None and not (store_ok and _store_images_exist(store)):
        root = data_dir("things-eeg")
        where = "" if root is None else f" ('{root}' does not exist)"
        missing.append(
            f"the THINGS-EEG files{where} (set EEG_TOOLKIT_DATA to the folder holding things-eeg/, or pass "
            "--images-root DIR to python -m toolkit bundle init)"
        )
    encoders = comps.get("encoders") or {}
    if not encoders:
        missing.append(
            f"encoder checkpoints ({_HOW['encoders'].format(dir=base / LAYOUT['encoders'])})"
        )
    for name, entry in encoders.items():
        folder = resolve_path(entry.get("path", ""), base)
        if not (folder / "config.json").is_file():
            missing.append(
                f"the encoder checkpoint {name!r} '{folder}' (a save_pretrained folder with config.json and "
                "model.safetensors)"
            )
    prior = resolve_path((comps.get("prior") or {}).get("path") or LAYOUT["prior"], base)
    if not (prior / "model_index.json").is_file():
        missing.append(f"the diffusion prior '{prior}' ({_HOW['prior']})")
    embeds = comps.get("embeddings") or {}
    test = resolve_path(embeds.get("test_image") or LAYOUT["embeddings"], base)
    if not test.is_file():
        missing.append(
            f"OpenCLIP ViT-H-14 embeddings of the test images '{test}' ({_HOW['embeddings']})"
        )
    if embeds.get("train_image") and not resolve_path(embeds["train_image"], base).is_file():
        missing.append(f"the training-image embeddings '{resolve_path(embeds['train_image'], base)}'")
    for key, what in (
        ("generator", "the SDXL pipeline folder (StableDiffusionXLPipeline.save_pretrained, or a Hub id)"),
        ("ip_adapter", "the IP-Adapter (a weights file, a folder laid out like h94/IP-Adapter, or a Hub id)"),
        ("captioner", "the GIT captioner folder (save_pretrained of GitForCausalLM and its processor, or a Hub id)"),
        ("projector", "the GIT token projector folder (PixelProjector.save_pretrained)"),
    ):
        entry = comps.get(key) or {}
        if entry.get("path"):
            path = resolve_path(entry["path"], base)
            if key == "ip_adapter" and not path.is_file():
                path = path / (entry.get("subfolder") or "") / (entry.get("weight_name") or "")
            if not path.exists():
                missing.append(f"{what} '{path}'")
    pretrained = (comps.get("clip") or {}).get("pretrained")
    if isinstance(pretrained, str) and ("/" in pretrained or os.sep in pretrained):
        path = resolve_path(pretrained, base)
        if not path.is_file():
            missing.append(f"the OpenCLIP checkpoint file '{path}'")
    return missing


def _store_images_exist(store: Path) -> bool:
    """Whether the image folder recorded in the store at conversion still holds the test images."""
    from ..data.store import open_store

    try:
        entries = [e for e in open_store(store).entries if e.split == "test"]
    except ToolkitError:
        return False
    for entry in entries[:1]:
        files = (entry.images or {}).get("image_files") or []
        return bool(entry.images_root and files and (Path(entry.images_root) / files[0]).is_file())
    return False


def check_real_bundle_parts(manifest: Mapping[str, Any]) -> list[str]:
    """Load the cheap parts (store metadata, encoders, prior, embeddings) and list what does not fit together.

    Run by :func:`write_real_bundle_manifest` so that a wrong file is reported when the bundle is set up rather than
    in the middle of a reconstruction. The generator and the captioner are not loaded (gigabytes).

    Parameters
    ----------
    manifest : Mapping
        A real-bundle manifest whose parts exist (see :func:`missing_real_parts`).

    Returns
    -------
    list of str
        One phrase per problem; empty when the parts fit.
    """
    import numpy as np

    from ..data.store import open_store
    from ..embeddings import load_embeddings
    from ..encoders import EEGEncoder
    from ..prior import PriorPipeline

    base = _bundle_path()
    comps = manifest["components"]
    problems: list[str] = []
    store = open_store(resolve_path(comps["dataset"]["store"], base))
    tests = {e.subject: e for e in store.entries if e.split == "test"}
    if not tests:
        problems.append(f"the store '{store.path}' has no test split (convert the THINGS-EEG test files too)")
    first = next(iter(tests.values()), None)
    test_file = resolve_path(comps["embeddings"]["test_image"], base)
    arrays, meta = load_embeddings(test_file)
    gallery = arrays.get("image_embeds")
    dim = None
    if gallery is None or gallery.ndim != 2 or not np.isfinite(gallery).all():
        problems.append(f"'{test_file}' holds no finite (n, embed_dim) image_embeds array")
    else:
        dim = int(gallery.shape[1])
        if first is not None and gallery.shape[0] != first.shape[0]:
            problems.append(
                f"'{test_file}' has {gallery.shape[0]} image embeddings but the store's test split has "
                f"{first.shape[0]} conditions (embed this dataset's test_images/)"
            )
        files = meta.get("image_files")
        stored = (first.images or {}).get("image_files") if first is not None else None
        if files and stored and len(files) == len(stored) and [Path(f).as_posix() for f in files] != [
            Path(f).as_posix() for f in stored
        ]:
            problems.append(f"the images of '{test_file}' are not the store's test images, in order")
    encoders = {}
    for name, entry in comps["encoders"].items():
        folder = resolve_path(entry["path"], base)
        try:
            encoders[name] = EEGEncoder.from_pretrained(folder)
        except ToolkitError as err:
            problems.append(f"encoder {name!r}: {str(err).rstrip('.')}")
            continue
        cfg = encoders[name].config
        if first is not None and (cfg.n_chans, cfg.n_times) != tuple(first.shape[2:]):
            problems.append(
                f"encoder {name!r} takes {cfg.n_chans} channels x {cfg.n_times} samples but the store's test data "
                f"have {first.shape[2]} x {first.shape[3]}"
            )
        if dim is not None and cfg.embed_dim != dim:
            problems.append(
                f"encoder {name!r} makes {cfg.embed_dim}-dimensional embeddings but the test-image embeddings are "
                f"{dim}-dimensional"
            )
    prior_dir = resolve_path(comps["prior"]["path"], base)
    try:
        prior = PriorPipeline.from_pretrained(prior_dir).prior
    except ToolkitError as err:
        problems.append(f"the prior: {str(err).rstrip('.')}")
    else:
        if dim is not None and prior.embed_dim != dim:
            problems.append(
                f"the prior in '{prior_dir}' samples {prior.embed_dim}-dimensional image embeddings but the "
                f"test-image embeddings are {dim}-dimensional"
            )
        for name, encoder in encoders.items():
            if encoder.config.embed_dim != prior.cond_dim:
                problems.append(
                    f"the prior is conditioned on {prior.cond_dim}-dimensional EEG embeddings but encoder {name!r} "
                    f"makes {encoder.config.embed_dim}-dimensional ones"
                )
    projector = comps.get("projector")
    if projector and projector.get("path") and dim is not None:
        from ..captions import PixelProjector

        try:
            width = PixelProjector.from_pretrained(resolve_path(projector["path"], base)).config.embed_dim
        except ToolkitError as err:
            problems.append(f"the projector: {str(err).rstrip('.')}")
        else:
            if width != dim:
                problems.append(f"the GIT token projector takes {width}-dimensional embeddings, not {dim}")
    return problems


# ---------------------------------------------------------------------------------------------------------- writing
def write_real_bundle_manifest(*, validate: bool = True, **parts: Any) -> Path:
    """Write ``bundle.json`` of the ``atm-things-eeg`` bundle after checking that its parts exist and fit together.

    Parameters
    ----------
    validate : bool
        Load the store metadata, the encoders, the prior and the embeddings and check that their shapes fit (one
        error lists every problem). The generator and the captioner are never loaded here.
    **parts
        store : str | os.PathLike | None
            Converted store (default: ``BUNDLE_DIR/store``).
        images_root : str | os.PathLike | None
            Folder holding ``training_images/`` and ``test_images/`` (default: ``$EEG_TOOLKIT_DATA/things-eeg``, else
            the folder recorded in the store at conversion).
        encoders : Mapping of str to path | None
            Encoder name → ``save_pretrained`` folder or ``python -m toolkit train`` run directory (default: every
            folder in ``BUNDLE_DIR/encoders``). A value may also be ``{"path": ..., "training_setting": ...}``.
        default_encoder : str | None
            The pipeline's default encoder (default: the first).
        training_setting : str | None
            ``"intra-subject"``, ``"leave-one-subject-out"`` or ``"joint"``: how bare checkpoints were trained (their
            protocol cards say so; runs record their own).
        prior : str | os.PathLike | None
            ``PriorPipeline.save_pretrained`` folder, or a ``python -m toolkit train --task prior`` run directory
            (its ``model/``) (default: ``BUNDLE_DIR/prior``).
        prior_condition : str
            One of :data:`PRIOR_CONDITIONS` (default ``"raw"``, as ATM).
        embeddings, train_embeddings : str | os.PathLike | None
            ``python -m toolkit embed --out`` files of the test images (default:
            ``BUNDLE_DIR/embeddings/test_images.safetensors``) and of the training images (optional).
        generator, generator_revision, generator_steps, generator_guidance
            SDXL pipeline (Hub id or ``save_pretrained`` folder; default ``stabilityai/sdxl-turbo``), its revision,
            denoising steps (4) and guidance (0, as SDXL-Turbo is used in ATM).
        ip_adapter, ip_adapter_subfolder, ip_adapter_weight, ip_adapter_revision
            IP-Adapter repository, folder or weights file (default ``h94/IP-Adapter``
            ``sdxl_models/ip-adapter_sdxl_vit-h.safetensors``).
        captioner, captioner_revision
            GIT model (default ``microsoft/git-large-coco``).
        projector, projector_revision
            Optional :class:`toolkit.captions.PixelProjector` (image embedding → GIT vision tokens): a folder, a
            ``--task projector`` run directory or a Hub id. Without one, the pipeline captions the image each
            embedding decodes to.
        clip_model, clip_pretrained
            OpenCLIP model and tag or checkpoint file (default ``ViT-H-14`` / ``laion2b_s32b_b79k``), used for text
            galleries missing from the embeddings file and for image features.

    Returns
    -------
    Path
        The ``bundle.json`` written (atomically).
    """
    from ..utils import atomic_write_json
    from ._demo import MANIFEST

    manifest = real_bundle_manifest(**parts)
    missing = missing_real_parts(manifest)
    if missing:
        raise ToolkitError(f"The atm-things-eeg bundle cannot be set up: missing {'; '.join(missing)}.")
    if not manifest["components"]["encoders"]:
        raise ToolkitError("The atm-things-eeg bundle needs at least one encoder; pass --encoder NAME=DIR.")
    if validate:
        problems = check_real_bundle_parts(manifest)
        if problems:
            raise ToolkitError(f"The atm-things-eeg bundle's parts do not fit together: {'; '.join(problems)}.")
    from ..data.store import open_store

    base = _bundle_path()
    store = open_store(resolve_path(manifest["components"]["dataset"]["store"], base))
    manifest["components"]["dataset"]["subjects"] = [s for s in store.subjects if "test" in store.splits(s)]
    return atomic_write_json(base / MANIFEST, manifest)


# ---------------------------------------------------------------------------------------------------------- loading
def load_real_bundle_manifest() -> dict:
    """The ``atm-things-eeg`` manifest (``bundle.json``, else the conventional layout), or ONE error listing what
    is missing on this machine and how to supply it.

    Returns
    -------
    dict
        The manifest; every local part it names exists.
    """
    from ._demo import MANIFEST, read_bundle_manifest

    base = _bundle_path()
    manifest = read_bundle_manifest(REAL)
    written = manifest is not None
    if manifest is None:
        manifest = real_bundle_manifest()
    comps = manifest.get("components")
    if not isinstance(comps, dict) or not isinstance(comps.get("encoders", {}), dict):
        raise ToolkitError(
            f"'{base / MANIFEST}' has no valid components; write it again with python -m toolkit bundle init "
            "atm-things-eeg."
        )
    missing = missing_real_parts(manifest)
    if missing:
        hint = (
            f" (named in '{base / MANIFEST}')"
            if written
            else "; name them with python -m toolkit bundle init atm-things-eeg --store STORE --encoder atm-s=DIR "
            "--prior DIR --embeddings FILE (see README)"
        )
        raise ToolkitError(f"The atm-things-eeg bundle cannot be opened as a pipeline: missing {'; '.join(missing)}"
                           f"{hint}.")
    return manifest


__all__ = [
    "DEFAULT_PRIOR_CONDITION",
    "LAYOUT",
    "PRIOR_CONDITIONS",
    "check_real_bundle_parts",
    "load_real_bundle_manifest",
    "missing_real_parts",
    "real_bundle_manifest",
    "real_images_root",
    "resolve_path",
    "source_of",
    "write_real_bundle_manifest",
]
