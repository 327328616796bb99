"""The demo bundle's models: trained on the simulated data on first use, saved in the bundle, recorded in bundle.json.

:func:`build_demo_bundle` builds the dataset (:func:`toolkit.bundles.build_demo_data`) and then, when the bundle
holds no current models, trains every component the apps and notebooks call through :mod:`toolkit.pipeline`:

1. the demo vision models (:func:`toolkit.bundles._demo_vision.train_demo_vision`: image embedder, text embedder,
   decoder, captioner) on the TRAINING images;
2. the embeddings of the training and test images, L2-normalised (retrieval targets) and raw (what the prior
   regresses and the decoder decodes), and of the training concepts' texts (cached by :mod:`toolkit.embeddings`,
   exported into the bundle);
3. ATM-S (the paper's variant: no positional encoding, ATM-S Table 4) and the NICE baseline with the toolkit
   trainer, **jointly over the demo subjects** with subject ids (one model per architecture sees twice the data
   of an intra-subject model, which the CPU budget needs; ``setting="joint"``), with a validation split of 10 % of
   the TRAINING concepts and the checkpoint chosen on validation top-1 only; the test split is evaluated once;
4. a small diffusion prior (:class:`toolkit.prior.DiffusionPriorUNet` scaled to the demo embedding width) from
   the encoders' L2-normalised EEG embeddings of TRAINING trials (both encoders pooled, so either conditions it)
   to raw image embeddings, with the toolkit trainer (``task="prior"``: condition dropout, warm-up + cosine
   schedule, gradient clipping; the checkpoint chosen on the validation loss of held-out training concepts).

Layout inside the bundle directory (built in a temporary sibling and renamed into place, so an interruption leaves
no partial models; ``bundle.json`` is updated last)::

    models/vision/              demo vision models (config.json + model.safetensors)
    models/embeddings/*.safetensors
    models/encoders/<name>/     save_pretrained folders (atm-s, nice)
    models/runs/<name>/         the trainer's run directories (config, history, best/, results.json; prior too)
    models/prior/               PriorPipeline.save_pretrained folder
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

logger = logging.getLogger(__name__)

#: Bump when the way the models are built changes (invalidates the models of every cached demo bundle).
MODELS_RECIPE = 2
MODELS_DIR = "models"
#: The component of ``bundle.json`` whose presence (with the current recipe and settings) marks built models.
MODELS_COMPONENT = "models"
#: How the prior's condition is made from an encoder's output (the pipeline applies the same).
PRIOR_CONDITION = "l2-normalised EEG embedding times sqrt(embed_dim)"
_DEMO = "demo"


#: The demo encoders: the reference architectures with a narrower TSConv (16 filters, 13-sample kernel, 25-sample
#: pooling) and, for ATM-S, 96-wide tokens, which train about 4x faster on a CPU (one 64-trial step: ~120 ms instead
#: of ~500 ms for ATM-S on one loaded core). ATM-S is the paper's variant: no positional encoding.
_TSCONV_SMALL = {"n_filters": 16, "temporal_kernel": 13, "pool_kernel": 25, "pool_stride": 5}
_ENCODER_CONFIGS = {
    "atm-s": {"positional_encoding": "none", "subject_fallback": "trial", "d_model": 96, "d_ff": 128, **_TSCONV_SMALL},
    "nice": dict(_TSCONV_SMALL),
}


@dataclass(frozen=True)
class DemoModelSettings:
    """Training budgets of the demo bundle's models (the defaults fit the ``demo`` preset on two CPU cores).

    Parameters
    ----------
    seed : int
        Seed of every model's initialisation, shuffling and validation split.
    vision_epochs : int
        Epochs of the demo vision models.
    encoders : tuple of str
        Registered encoder names to train (the first is the pipeline's default).
    encoder_epochs : int
        Epochs of each EEG encoder.
    encoder_batch_size : int
        Training batch size of the encoders.
    encoder_lr : float
        AdamW learning rate of the encoders.
    encoder_configs : dict
        Per encoder name: configuration fields (``n_chans``, ``n_times``, ``embed_dim`` come from the data).
    objectives : dict
        Per encoder name: training objective (default ``"clip"``).
    val_fraction : float
        Fraction of the training concepts held out for checkpoint selection.
    prior_epochs : int
        Epochs of the diffusion prior over the pooled (EEG embedding, image embedding) training pairs.
    prior_hidden : tuple of int
        Widths of the prior's U-Net levels below the input level (the input level is ``2 * embed_dim``).
    prior_batch_size : int
        Batch size of the prior.
    prior_lr : float
        AdamW learning rate of the prior.
    threads : int | None
        Torch CPU threads during the build (``None``: torch's default). The default, one, avoids the 5-15x
        slow-down of OpenMP threads spinning when other processes share the cores (measured on a shared 2-core
        machine); the small demo models gain little from a second thread on an idle one.
    """

    seed: int = 0
    vision_epochs: int = 12
    encoders: tuple[str, ...] = ("atm-s", "nice")
    encoder_epochs: int = 5
    encoder_batch_size: int = 64
    encoder_lr: float = 1e-3
    encoder_configs: dict = field(default_factory=lambda: {name: dict(c) for name, c in _ENCODER_CONFIGS.items()})
    objectives: dict = field(default_factory=lambda: {"atm-s": "atm-mix", "nice": "clip"})
    val_fraction: float = 0.1
    prior_epochs: int = 15
    prior_hidden: tuple[int, ...] = (128, 64)
    prior_batch_size: int = 256
    prior_lr: float = 1e-3
    threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("seed", "vision_epochs", "encoder_epochs", "encoder_batch_size", "prior_epochs",
                     "prior_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ToolkitError(f"DemoModelSettings.{name} must be a positive integer; got {value!r}.")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ToolkitError(f"DemoModelSettings.threads must be a positive integer or None; got {self.threads!r}.")
        object.__setattr__(self, "encoders", tuple(self.encoders))
        object.__setattr__(self, "prior_hidden", tuple(self.prior_hidden))
        if not self.encoders or len(set(self.encoders)) != len(self.encoders):
            raise ToolkitError(f"DemoModelSettings.encoders must list distinct encoder names; got {self.encoders!r}.")
        from ..encoders import list_encoders

        unknown = [e for e in self.encoders if e not in list_encoders()]
        if unknown:
            raise ToolkitError(
                f"DemoModelSettings.encoders has unknown encoder(s) {', '.join(unknown)}; known encoders: "
                f"{', '.join(list_encoders())}."
            )
        if not 0.0 < float(self.val_fraction) <= 0.5:
            raise ToolkitError(f"DemoModelSettings.val_fraction must be in (0, 0.5]; got {self.val_fraction!r}.")

    @classmethod
    def tiny(cls, seed: int = 0) -> DemoModelSettings:
        """Budgets for tests on the ``tiny`` preset (seconds)."""
        return cls(
            seed=seed, vision_epochs=3, encoder_epochs=6, encoder_batch_size=16, val_fraction=0.2,
            prior_epochs=10, prior_hidden=(64, 32), prior_batch_size=64,
        )

    @classmethod
    def for_preset(cls, preset: str | None) -> DemoModelSettings:
        """The default budgets for a simulator preset: :meth:`tiny` for ``"tiny"``, the defaults otherwise."""
        return cls.tiny() if preset == "tiny" else cls()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description."""
        out = dataclasses.asdict(self)
        out["encoders"], out["prior_hidden"] = list(self.encoders), list(self.prior_hidden)
        return out

    def digest(self) -> str:
        """SHA-256 (16 hex digits) of the settings and the recipe: what the cached models depend on."""
        text = json.dumps({"recipe": MODELS_RECIPE, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- status ---------------------------------------------------------------------------------------------------------
def demo_models_current(settings: DemoModelSettings | None = None, *, manifest: dict | None = None) -> bool:
    """Whether the built demo bundle holds complete models of this recipe and these settings.

    Parameters
    ----------
    settings : DemoModelSettings | None
        Settings to check against (``None``: the defaults for the built dataset's preset).
    manifest : dict | None
        The manifest to check (``None``: read the demo bundle's).

    Returns
    -------
    bool
        ``True`` when every model folder recorded in ``bundle.json`` exists.
    """
    from ._demo import read_bundle_manifest
    from ._registry import bundle_dir

    manifest = read_bundle_manifest(_DEMO) if manifest is None else manifest
    if manifest is None:
        return False
    components = manifest.get("components", {})
    if settings is None:
        settings = DemoModelSettings.for_preset((components.get("dataset") or {}).get("preset"))
    models = components.get(MODELS_COMPONENT) or {}
    if (models.get("recipe"), models.get("settings_digest")) != (MODELS_RECIPE, settings.digest()):
        return False
    root = bundle_dir(_DEMO)
    paths = [components.get("vision", {}).get("path"), components.get("prior", {}).get("path")]
    paths += [entry.get("path") for entry in (components.get("encoders") or {}).values()]
    return all(isinstance(p, str) and (root / p).is_dir() for p in paths) and bool(components.get("encoders"))


# -- building -------------------------------------------------------------------------------------------------------
def build_demo_bundle(
    *,
    force: bool = False,
    preset: str | None = None,
    seed: int | None = None,
    settings: DemoModelSettings | None = None,
    progress_bar: bool = True,
) -> Path:
    """Build the whole demo bundle on first use: the simulated data, then every model; cached.

    Later calls return at once. Models built from other settings or an older recipe, or on data that were rebuilt,
    are trained again. Two processes never build at once (the second waits for the first).

    Parameters
    ----------
    force : bool
        Retrain the models even when current ones exist (the data are rebuilt only when stale).
    preset, seed
        The dataset's simulator preset and seed (see :func:`toolkit.bundles.build_demo_data`).
    settings : DemoModelSettings | None
        Training budgets (``None``: :meth:`DemoModelSettings.for_preset` of the dataset's preset).
    progress_bar : bool
        Show progress bars (also silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

    Returns
    -------
    Path
        The bundle directory.
    """
    from ._demo import _build_lock, build_demo_data, read_bundle_manifest

    if settings is not None and not isinstance(settings, DemoModelSettings):
        raise ToolkitError(f"settings must be a DemoModelSettings; got {type(settings).__name__}.")
    path = build_demo_data(preset=preset, seed=seed)
    if settings is None:
        settings = DemoModelSettings.for_preset(read_bundle_manifest(_DEMO)["components"]["dataset"]["preset"])
    if not force and demo_models_current(settings):
        return path
    with _build_lock(path):  # build_demo_data has released it; the same lock keeps two model builds apart
        if not force and demo_models_current(settings):
            return path
        _train_models(path, settings, progress_bar=progress_bar)
    return path


def _train_models(path: Path, settings: DemoModelSettings, *, progress_bar: bool) -> None:
    import torch

    from ..utils import atomic_path, atomic_write_json, progress
    from ._demo import MANIFEST, read_bundle_manifest

    start = time.perf_counter()
    manifest = read_bundle_manifest(_DEMO)
    data = manifest["components"]["dataset"]
    subjects = list(data["subjects"])
    seconds: dict[str, float] = {}
    n_steps = 3 + len(settings.encoders)
    bar = progress(desc="demo bundle models", total=n_steps, unit="model", disable=None if progress_bar else True)
    threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        with atomic_path(path / MODELS_DIR, is_dir=True) as tmp:
            # 1. vision models
            t = time.perf_counter()
            from ._demo_vision import load_demo_vision, train_demo_vision

            vision_info = train_demo_vision(
                path / data["root"], tmp / "vision", seed=settings.seed, epochs=settings.vision_epochs,
                progress_bar=progress_bar,
            )
            vision = load_demo_vision(tmp / "vision")
            seconds["vision"] = time.perf_counter() - t
            bar.update(1)
            # 2. embeddings
            t = time.perf_counter()
            files = _export_embeddings(
                path / data["store"], path / data["images_root"], vision.embedder, tmp / "embeddings", subjects[0]
            )
            seconds["embeddings"] = time.perf_counter() - t
            bar.update(1)
            # 3. encoders
            encoders: dict[str, dict] = {}
            trained: dict[str, Any] = {}
            for name in settings.encoders:
                t = time.perf_counter()
                entry, encoder = _train_encoder(path, data, name, subjects, files, tmp, settings, progress_bar)
                entry["seconds"] = round(time.perf_counter() - t, 2)
                encoders[name], trained[name] = entry, encoder
                seconds[f"encoder:{name}"] = entry["seconds"]
                bar.update(1)
            # 4. prior
            t = time.perf_counter()
            prior_entry = _train_prior(path, data, subjects, trained, tmp / "prior", settings, progress_bar)
            seconds["prior"] = time.perf_counter() - t
            bar.update(1)
    finally:
        bar.close()
        torch.set_num_threads(threads)

    rel = f"{MODELS_DIR}/"
    manifest = read_bundle_manifest(_DEMO)
    components = manifest.setdefault("components", {})
    for key in ("vision", "embeddings", "encoders", "prior", MODELS_COMPONENT):
        components.pop(key, None)
    components["vision"] = {
        "kind": "demo-vision",
        "path": rel + "vision",
        "weights_sha256": vision_info["weights"],
        "metrics": vision_info["training"]["metrics"],
        "epochs": settings.vision_epochs,
    }
    components["embeddings"] = {
        "kind": "demo-embeddings",
        "backbone": "demo autoencoder embedder",
        "embed_dim": int(vision.config.embed_dim),
        **{key: rel + f"embeddings/{Path(value).name}" for key, value in files.items()},
    }
    for entry in encoders.values():
        entry["path"] = rel + entry["path"]
        entry["run"] = rel + entry["run"]
    components["encoders"] = encoders
    prior_entry["path"] = rel + prior_entry["path"]
    components["prior"] = prior_entry
    components[MODELS_COMPONENT] = {
        "recipe": MODELS_RECIPE,
        "settings_digest": settings.digest(),
        "settings": settings.to_dict(),
        "default_encoder": settings.encoders[0],
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "build_seconds": round(time.perf_counter() - start, 2),
        "torch_threads": settings.threads or threads,
    }
    atomic_write_json(path / MANIFEST, manifest)
    logger.info("Trained the demo bundle's models in %.1f s.", time.perf_counter() - start)


def _export_embeddings(store_path: Path, images_root: Path, embedder: Any, out: Path, subject: str) -> dict[str, str]:
    """Embed the training and test images (normalised and raw) and the training concepts; write them to ``out``."""
    from ..data.store import open_store
    from ..embeddings import embed_concepts, embed_image_set, save_embeddings

    store = open_store(store_path)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    identity = embedder.identity
    for split in ("train", "test"):
        image_set = store.load(subject, split, images_root=images_root).images
        for normalize in (True, False):
            embeds = embed_image_set(embedder, image_set, normalize=normalize).embeds
            key = f"{split}_image_{'norm' if normalize else 'raw'}"
            arrays = {"image_embeds": embeds}
            if split == "train" and normalize:
                arrays["text_embeds"] = embed_concepts(embedder, image_set, normalize=True).embeds
            meta = {
                "normalize": normalize,
                "identity": identity,
                "image_files": list(image_set.image_files),
                "concepts": list(image_set.concepts),
                "split": split,
            }
            target = out / f"{key}.safetensors"
            save_embeddings(target, arrays, meta)
            files[key] = str(target)
    return files


def _train_encoder(
    path: Path,
    data: dict,
    name: str,
    subjects: list[str],
    files: dict[str, str],
    tmp: Path,
    settings: DemoModelSettings,
    progress_bar: bool,
) -> tuple[dict, Any]:
    """One encoder, jointly over ``subjects``, with the toolkit trainer; tested on the first subject."""
    from ..training import TrainConfig, train

    config = TrainConfig(
        encoder=name,
        encoder_config=dict(settings.encoder_configs.get(name, {})),
        data=str(path / data["store"]),
        subject=subjects[0],
        setting="joint" if len(subjects) > 1 else "intra",
        subjects=tuple(subjects) if len(subjects) > 1 else None,
        image_embeds=files["train_image_norm"],
        test_image_embeds=files["test_image_norm"],
        objective=settings.objectives.get(name, "clip"),
        epochs=settings.encoder_epochs,
        batch_size=settings.encoder_batch_size,
        lr=settings.encoder_lr,
        val_fraction=settings.val_fraction,
        selection="val_top1",
        seed=settings.seed,
        out=str(tmp / "runs" / name),
        progress=progress_bar,
    )
    result = train(config)
    result.encoder.save_pretrained(tmp / "encoders" / name)
    _relocate_run(tmp / "runs" / name, tmp, path / MODELS_DIR)
    test = result.test
    entry = {
        "kind": "eeg-encoder",
        "encoder": name,
        "path": f"encoders/{name}",
        "run": f"runs/{name}",
        "setting": config.setting,
        "subjects": subjects,
        "subject_ids": {s: int(i) for s, i in _subject_ids(subjects).items()},
        "objective": config.objective,
        "epochs": settings.encoder_epochs,
        "best_epoch": result.best_epoch,
        "best_val_top1": result.best_metric,
        "test_subject": subjects[0],
        "test_top1": None if test is None else round(float(test.full(1).value), 4),
    }
    return entry, result.encoder


def _relocate_run(run: Path, tmp: Path, final: Path) -> None:
    """Point the run's JSON files (its configuration names absolute paths) at where the models folder will be."""
    from ..utils import atomic_write_json

    def move(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(str(tmp)):
            return str(final) + value[len(str(tmp)) :]
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    for file in run.rglob("*.json"):
        data = json.loads(file.read_text(encoding="utf-8"))
        moved = move(data)
        if moved != data:
            atomic_write_json(file, moved)


def _subject_ids(subjects: list[str]) -> dict[str, int]:
    from ..training import subject_numbers

    return subject_numbers(subjects)


def _train_prior(
    path: Path,
    data: dict,
    subjects: list[str],
    encoders: dict[str, Any],
    out: Path,
    settings: DemoModelSettings,
    progress_bar: bool,
) -> dict:
    """The diffusion prior from pooled, normalised EEG embeddings of training trials to raw image embeddings, with the
    toolkit trainer (``task="prior"``): condition dropout 0.1, warm-up + cosine schedule, gradient clipping at 1.0
    (ATM's recipe), checkpoint chosen on the validation loss of held-out TRAINING concepts."""
    import numpy as np
    import torch

    from ..data.store import open_store
    from ..embeddings import load_embeddings
    from ..training import TrainConfig, train
    from ..training.tasks import build_task_data

    raw = load_embeddings(out.parent / "embeddings" / "train_image_raw.safetensors")[0]["image_embeds"]
    store = open_store(path / data["store"])
    ids = _subject_ids(subjects)
    conds, rows, concepts = [], [], []
    for subject in subjects:
        trials = store.load(subject, "train")
        eeg = np.array(trials.data, dtype=np.float32).reshape(-1, trials.n_chans, trials.n_times)
        condition = np.repeat(np.arange(trials.n_conditions), trials.n_repetitions)
        concept_of = np.asarray(trials.images.condition_concept, dtype=np.int64)
        for encoder in encoders.values():
            embeds = encoder.encode(eeg, torch.full((eeg.shape[0],), ids[subject]), normalize=True)
            conds.append(np.asarray(embeds, dtype=np.float32))
            rows.append(condition)
            concepts.append(concept_of[condition])
    dim = raw.shape[1]
    cond = np.concatenate(conds) * np.float32(math.sqrt(dim))
    n = cond.shape[0]
    steps_per_epoch = math.ceil(n * (1 - settings.val_fraction) / settings.prior_batch_size)
    run = out.parent / "runs" / "prior"
    config = TrainConfig(
        task="prior",
        model_config={"hidden_dims": [2 * dim, *settings.prior_hidden], "time_embed_dim": 64, "dropout": 0.1},
        epochs=settings.prior_epochs,
        batch_size=settings.prior_batch_size,
        drop_last=False,
        lr=settings.prior_lr,
        weight_decay=1e-4,
        schedule="cosine",
        warmup_steps=max(1, round(0.1 * settings.prior_epochs * steps_per_epoch)),
        grad_clip=1.0,
        cond_drop_prob=0.1,
        val_fraction=settings.val_fraction,
        seed=settings.seed,
        out=str(run),
        progress=progress_bar,
    )
    pairs = build_task_data(
        config, inputs=cond, targets=raw, conditions=np.concatenate(rows), concepts=np.concatenate(concepts),
        input_metadata={"normalize": False, "condition": PRIOR_CONDITION},
    )
    result = train(config, data=pairs)
    shutil.copytree(result.model_dir, out)  # the PriorPipeline folder of the selected epoch
    _relocate_run(run, out.parent, path / MODELS_DIR)
    return {
        "kind": "diffusion-prior",
        "path": "prior",
        "run": f"{MODELS_DIR}/runs/prior",  # from the bundle root (the caller prefixes only "path")
        "condition": PRIOR_CONDITION,
        "condition_encoders": list(encoders),
        "target": "raw demo image embeddings",
        "config": result.model.config.to_dict(),
        "n_pairs": int(n),
        "n_train_pairs": int(pairs.info["n_train_rows"]),
        "epochs": settings.prior_epochs,
        "best_epoch": result.best_epoch,
        "best_val_loss": None if result.best_metric is None else round(float(result.best_metric), 5),
        "final_loss": round(float(result.history[-1]["train_loss"]), 5),
    }


def remove_demo_models() -> None:
    """Delete the demo bundle's models and their ``bundle.json`` entries (the data stay)."""
    from ..utils import atomic_write_json
    from ._demo import MANIFEST, read_bundle_manifest
    from ._registry import bundle_dir

    manifest = read_bundle_manifest(_DEMO)
    if manifest is not None:
        for key in ("vision", "embeddings", "encoders", "prior", MODELS_COMPONENT):
            manifest.get("components", {}).pop(key, None)
        atomic_write_json(bundle_dir(_DEMO) / MANIFEST, manifest)
    shutil.rmtree(bundle_dir(_DEMO) / MODELS_DIR, ignore_errors=True)
