"""The training configuration: one frozen dataclass, serialised to ``config.json``, mapped 1:1 onto the CLI flags.

Every field carries its help text (and its choices) in the dataclass field metadata; ``python -m toolkit train``
builds one flag per field from it (``batch_size`` → ``--batch-size``), so the file format, the Python API and the
command line cannot drift apart. A few fields default to ``None`` meaning "the objective's reference convention";
:meth:`TrainConfig.resolved` turns them into explicit values, and the resolved values are what a run records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

#: What a run trains: an EEG encoder, the diffusion prior, the low-level (EEG → VAE latent) encoder or the caption
#: projector (embedding → GIT vision tokens); see :mod:`toolkit.training.tasks` for the last three.
TASKS: tuple[str, ...] = ("encoder", "prior", "low-level", "projector")
#: Training objectives (see :mod:`toolkit.training.losses` and :mod:`toolkit.training.tasks`).
OBJECTIVES: tuple[str, ...] = ("clip", "atm-mix", "recon-mix", "mse", "classification", "model", "l1", "diffusion")
#: The objectives each task accepts; the first is its default (``objective=None``).
TASK_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "encoder": ("clip", "atm-mix", "recon-mix", "mse", "classification", "model"),
    "prior": ("diffusion",),
    "low-level": ("l1", "mse"),  # ATM trains the low-level encoder with L1
    "projector": ("mse", "l1"),  # ATM trains the pixel projector with MSE
}
#: Subject settings: intra-subject, leave-one-subject-out, joint multi-subject.
SETTINGS: tuple[str, ...] = ("intra", "loso", "joint")
#: The protocol-card name of each setting.
SETTING_NAMES: dict[str, str] = {"intra": "intra-subject", "loso": "leave-one-subject-out", "joint": "joint"}
#: What the validation split holds out of the training data.
VAL_UNITS: tuple[str, ...] = ("concepts", "images")
#: Checkpoint selection metrics (validation only; the test set is never looked at before the end).
SELECTIONS: tuple[str, ...] = ("val_loss", "val_top1")
#: Logit-scale parametrisations (see :class:`toolkit.encoders.LogitScale`).
LOGIT_SCALES: tuple[str, ...] = ("raw", "exp")
SCHEDULES: tuple[str, ...] = ("none", "cosine")
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
IN_MEMORY: tuple[str, ...] = ("auto", "yes", "no")

#: Fields that may differ between a run and its resumption (they do not change the numbers).
RESUME_FREE_FIELDS: frozenset[str] = frozenset(
    {"out", "resume", "device", "accelerate", "num_workers", "progress", "epochs"}
)
#: Objectives whose loss compares EEG embeddings with image embeddings.
EMBEDDING_OBJECTIVES: frozenset[str] = frozenset({"clip", "atm-mix", "recon-mix", "mse"})


def _f(default: Any, help: str, *, choices: tuple[str, ...] | None = None, metavar: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar})


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that defines a training run (see the module notes).

    Parameters
    ----------
    task : str
        What is trained: ``"encoder"`` (an EEG encoder, the default), ``"prior"`` (the diffusion prior from EEG
        embeddings, ``inputs``, to raw image embeddings, ``image_embeds``), ``"low-level"`` (EEG trials of ``data``
        → VAE latents, ``targets``) or ``"projector"`` (embeddings, ``inputs`` → GIT vision tokens, ``targets``).
        The last three train the model of ``model_config`` (see :mod:`toolkit.training.tasks`) and write the
        selected model to ``RUN_DIR/model`` (a ``PriorPipeline`` folder for the prior).
    encoder : str
        Registered encoder name (:func:`toolkit.encoders.list_encoders`), e.g. ``"atm-s"``.
    encoder_config : dict
        Fields of the encoder's configuration dataclass. ``n_chans``, ``n_times``, ``sfreq`` and ``embed_dim`` are
        taken from the data and the embeddings when absent (an explicit value that disagrees is an error);
        ``logit_scale`` / ``logit_scale_init`` are mirrored from this configuration.
    init_from : str | None
        Start from the weights of an encoder saved with ``save_pretrained`` (a folder) instead of a fresh one.
    data : str | None
        A memory-mapped store (``python -m toolkit data convert``) or an official THINGS-EEG root.
    subject : str
        intra: the subject; loso: the held-out (test) subject; joint: the tested subject.
    setting : str
        ``"intra"`` (one subject's training data), ``"loso"`` (all other subjects' training data; the encoder is
        built fresh for each fold and never sees the held-out subject) or ``"joint"`` (all subjects' training
        data, subject ids passed to the encoder).
    subjects : tuple of str | None
        The subject pool of loso/joint (default: every subject in ``data``).
    image_embeds : str | None
        File of the training images' embeddings, one row per training condition (``.safetensors`` / ``.npz``
        written by ``python -m toolkit embed --out``, or a plain ``.npy``); it may also hold ``text_embeds``.
    test_image_embeds : str | None
        The same for the test images (needed for the final test evaluation).
    text_embeds : str | None
        File holding ``text_embeds`` of the training concepts (one row per concept), if not in ``image_embeds``.
    inputs : str | None
        Input rows of the prior (the EEG embeddings conditioning it: one row per training trial) or of the projector
        (image or EEG embeddings). A ``.safetensors`` / ``.npz`` file may also hold an integer ``conditions`` array
        (the target row of each input row: many trials share one image) and a ``concepts`` array (per row, for
        whole-concept validation); without ``conditions`` inputs and targets pair row by row. CLI alias
        ``--eeg-embeds``.
    targets : str | None
        Regression targets of the low-level encoder (VAE latents, one per training condition of ``data``) or of the
        projector (GIT vision tokens, one per target row): ``.npy`` (read through a memory map, for large targets),
        ``.safetensors`` or ``.npz``.
    model_config : dict
        Configuration fields of the prior (:class:`~toolkit.prior.PriorUNetConfig`), the low-level encoder or the
        projector; the input and output sizes are taken from the data when absent.
    cond_drop_prob : float
        Probability of dropping the condition for a whole batch when training the prior (classifier-free guidance;
        ATM: 0.1).
    clip_model, clip_pretrained : str | None, str
        Compute the embeddings with this open_clip model instead of reading files (cached by
        :mod:`toolkit.embeddings`; needs the stimulus images).
    target_normalize : bool | None
        L2-normalise the image/text embeddings used as targets. ``None``: the reference convention of the
        objective — normalised for clip / atm-mix / classification (ATM ``Retrieval/``), raw for recon-mix / mse
        (ATM ``Generation/``: IP-Adapter needs raw embeddings). Raw targets cannot be made from a file of
        normalised embeddings.
    average_test : bool
        Average the test repetitions (one query per test image, the THINGS convention).
    val_fraction : float
        Fraction of the training concepts (or images) held out for validation, in [0, 0.9]; 0 disables
        validation (the last epoch is then kept).
    val_unit : str | None
        ``"concepts"`` (all images and repetitions of the held-out concepts: mirrors the zero-shot test) or
        ``"images"``. ``None``: concepts, or images for the classification objective.
    in_memory : str
        ``"auto"`` loads the selected trials into RAM when they fit in 1 GiB and reads them trial by trial from
        the memory map otherwise; ``"yes"`` / ``"no"`` force either.
    objective : str | None
        Encoder task: ``"clip"`` (symmetric InfoNCE EEG ↔ image; the default), ``"atm-mix"`` (``(1 -
        text_weight)·CLIP(eeg, image) + text_weight·CLIP(eeg, text)``, ATM retrieval), ``"recon-mix"``
        (``mse_weight·MSE + clip_weight·CLIP`` on raw image embeddings, ATM reconstruction), ``"mse"``,
        ``"classification"`` (cross-entropy of a linear head over the embeddings) or ``"model"`` (the encoder's own
        ``training_loss(batch)``, e.g. masked modelling). Prior: ``"diffusion"`` (ε-prediction MSE with
        whole-batch condition dropout). Low-level encoder: ``"l1"`` (ATM, the default) or ``"mse"``; projector:
        ``"mse"`` (ATM, the default) or ``"l1"``. ``None``: the task's default.
    loss_normalize : bool
        L2-normalise EEG and target embeddings inside the contrastive loss. ``False`` is the ATM reference (no
        normalisation in the loss); ``True`` is open_clip's.
    logit_scale : str
        ``"raw"``: the learnable scalar is the logit multiplier itself, unclamped (ATM); ``"exp"``: the multiplier
        is its exponential, clamped at 100 (open_clip).
    logit_scale_init : float
        Initial value of the scalar (``log(1/0.07)``: a multiplier of 2.659 with raw, 14.29 with exp).
    text_weight : float
        Weight of the EEG ↔ text term of atm-mix (0.01).
    mse_weight, clip_weight : float
        Weights of recon-mix (9 and 1: ATM's 0.9·10 and 0.1·10).
    label_smoothing : float
        Label smoothing of the classification cross-entropy.
    epochs, batch_size, lr, weight_decay : int, int, float, float
        AdamW training length and settings (ATM: 40 epochs, lr 3e-4, weight decay 0.01; batch 64 as in
        ``ATMS_retrieval.py``, the paper's table uses 1024).
    schedule : str
        ``"none"`` (ATM) or ``"cosine"`` decay to ``min_lr`` after ``warmup_steps`` of linear warm-up.
    warmup_steps : int
        Optimiser steps of linear warm-up (cosine schedule only).
    min_lr : float
        Final learning rate of the cosine schedule.
    grad_clip : float | None
        Clip the gradient norm at this value (``None``: no clipping, as ATM).
    drop_last : bool
        Drop the last incomplete training batch (ATM: yes).
    seed : int
        Seeds model initialisation, dropout, shuffling and the validation split.
    selection : str
        ``"val_loss"`` (lowest) or ``"val_top1"`` (highest validation retrieval top-1; encoder task only) picks the
        ``best`` checkpoint; the test set is evaluated once, at the end, with it.
    out : str | None
        Run directory (``config.json``, ``history.json``, ``best/``, ``last/``, ``results.json``); ``None``
        trains without writing anything.
    resume : bool
        Continue the run in ``out`` from its ``last`` checkpoint (the result is identical to an uninterrupted run).
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    accelerate : bool
        Let :class:`accelerate.Accelerator` wrap the model, optimiser and data loader (one or many GPUs with
        ``accelerate launch``; on CPU a single process).
    num_workers : int
        DataLoader worker processes.
    progress : bool
        Show a progress bar per epoch.
    """

    # -- model -----------------------------------------------------------------------------------------------
    task: str = _f("encoder", "what to train: an EEG encoder, the diffusion prior, the low-level encoder (EEG -> VAE "
                   "latents) or the caption projector (embeddings -> GIT vision tokens)", choices=TASKS)
    encoder: str = _f("atm-s", "registered encoder name (see toolkit.encoders.list_encoders())")
    encoder_config: dict = field(
        default_factory=dict,
        metadata={"help": "encoder configuration fields as JSON text or a .json file", "choices": None,
                  "metavar": "JSON"},
    )
    init_from: str | None = _f(None, "start from an encoder saved with save_pretrained (a folder)", metavar="DIR")
    # -- data ------------------------------------------------------------------------------------------------
    data: str | None = _f(None, "memory-mapped store or official THINGS-EEG root", metavar="STORE_OR_ROOT")
    subject: str = _f("sub-01", "intra: the subject; loso: the held-out subject; joint: the tested subject")
    setting: str = _f("intra", "intra-subject, leave-one-subject-out or joint multi-subject", choices=SETTINGS)
    subjects: tuple[str, ...] | None = _f(None, "subject pool of loso/joint (default: all in --data)")
    image_embeds: str | None = _f(None, "training-image embeddings file (.safetensors/.npz/.npy)", metavar="FILE")
    test_image_embeds: str | None = _f(None, "test-image embeddings file", metavar="FILE")
    text_embeds: str | None = _f(None, "training-concept text embeddings file (if not in --image-embeds)",
                                 metavar="FILE")
    inputs: str | None = _f(None, "input rows of --task prior (the EEG embeddings) or projector; may hold "
                            "'conditions' (target row per input row) and 'concepts' arrays", metavar="FILE")
    targets: str | None = _f(None, "regression targets of --task low-level (VAE latents per training condition) or "
                             "projector (GIT vision tokens), .npy (memory-mapped) / .safetensors / .npz",
                             metavar="FILE")
    model_config: dict = field(
        default_factory=dict,
        metadata={"help": "configuration fields of the prior / low-level encoder / projector as JSON text or a .json "
                          "file", "choices": None, "metavar": "JSON"},
    )
    clip_model: str | None = _f(None, "compute embeddings with this open_clip model instead of files")
    clip_pretrained: str = _f("laion2b_s32b_b79k", "open_clip pretrained tag or checkpoint of --clip-model")
    target_normalize: bool | None = _f(None, "L2-normalise target embeddings (default: the objective's convention)")
    average_test: bool = _f(True, "average the test repetitions (THINGS convention)")
    val_fraction: float = _f(0.1, "fraction of training concepts/images held out for validation, in [0, 0.9]")
    val_unit: str | None = _f(None, "hold out whole concepts or single images (default: concepts)", choices=VAL_UNITS)
    in_memory: str = _f("auto", "load the trials into RAM (auto: when under 1 GiB)", choices=IN_MEMORY)
    # -- objective -------------------------------------------------------------------------------------------
    objective: str | None = _f(None, "training objective (default: the task's: clip, diffusion, l1 for low-level, "
                               "mse for projector)", choices=OBJECTIVES)
    cond_drop_prob: float = _f(0.1, "probability of training a whole batch of the prior without its condition")
    loss_normalize: bool = _f(False, "L2-normalise embeddings inside the contrastive loss (ATM: no)")
    logit_scale: str = _f("raw", "logit-scale parametrisation: raw (ATM) or exp (open_clip)", choices=LOGIT_SCALES)
    logit_scale_init: float = _f(math.log(1 / 0.07), "initial logit-scale parameter (log(1/0.07))")
    text_weight: float = _f(0.01, "weight of the EEG-text term of atm-mix")
    mse_weight: float = _f(9.0, "MSE weight of recon-mix")
    clip_weight: float = _f(1.0, "CLIP weight of recon-mix")
    label_smoothing: float = _f(0.0, "label smoothing of the classification objective")
    # -- optimisation ----------------------------------------------------------------------------------------
    epochs: int = _f(40, "training epochs")
    batch_size: int = _f(64, "training batch size")
    lr: float = _f(3e-4, "AdamW learning rate")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    schedule: str = _f("none", "learning-rate schedule", choices=SCHEDULES)
    warmup_steps: int = _f(0, "linear warm-up steps of the cosine schedule")
    min_lr: float = _f(0.0, "final learning rate of the cosine schedule")
    grad_clip: float | None = _f(None, "clip the gradient norm at this value")
    drop_last: bool = _f(True, "drop the last incomplete training batch")
    seed: int = _f(0, "seed of initialisation, dropout, shuffling and the validation split")
    selection: str = _f("val_loss", "validation metric choosing the best checkpoint", choices=SELECTIONS)
    # -- runtime ---------------------------------------------------------------------------------------------
    out: str | None = _f(None, "run directory", metavar="RUN_DIR")
    resume: bool = _f(False, "continue the run in --out from its last checkpoint")
    device: str = _f("cpu", "where to train", choices=DEVICES)
    accelerate: bool = _f(False, "wrap model, optimiser and data loader with accelerate.Accelerator")
    num_workers: int = _f(0, "DataLoader worker processes")
    progress: bool = _f(True, "show a progress bar per epoch")

    def __post_init__(self) -> None:
        # Normalise container types (JSON gives lists) before validating.
        if isinstance(self.subjects, (list, tuple)):
            object.__setattr__(self, "subjects", tuple(str(s) for s in self.subjects))
        elif isinstance(self.subjects, str):
            object.__setattr__(self, "subjects", tuple(s for s in self.subjects.replace(",", " ").split() if s))
        if self.encoder_config is None:
            object.__setattr__(self, "encoder_config", {})
        self.validate()

    # -- validation ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field; a bad value raises a :class:`~toolkit.ToolkitError` naming the field."""
        _choice(self, "task", TASKS)
        _choice(self, "setting", SETTINGS)
        if self.objective is not None:
            _choice(self, "objective", OBJECTIVES)
        _choice(self, "selection", SELECTIONS)
        _choice(self, "logit_scale", LOGIT_SCALES)
        _choice(self, "schedule", SCHEDULES)
        _choice(self, "device", DEVICES)
        _choice(self, "in_memory", IN_MEMORY)
        if self.val_unit is not None:
            _choice(self, "val_unit", VAL_UNITS)
        for name in ("encoder", "subject", "clip_pretrained"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ToolkitError(f"TrainConfig.{name} must be a non-empty string; got {getattr(self, name)!r}.")
        for name in ("init_from", "data", "image_embeds", "test_image_embeds", "text_embeds", "inputs", "targets",
                     "clip_model", "out"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value).strip()):
                raise ToolkitError(f"TrainConfig.{name} must be a path string or None; got {value!r}.")
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        for name in ("encoder_config", "model_config"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ToolkitError(
                    f"TrainConfig.{name} must be a mapping of {name.split('_')[0]} configuration fields; got "
                    f"{type(value).__name__}."
                )
            object.__setattr__(self, name, dict(value))
        for name in ("target_normalize",):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ToolkitError(f"TrainConfig.{name} must be true, false or null; got {value!r}.")
        for name in ("average_test", "loss_normalize", "drop_last", "resume", "accelerate", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ToolkitError(f"TrainConfig.{name} must be true or false; got {getattr(self, name)!r}.")
        _number(self, "val_fraction", low=0.0, high=0.9)
        _number(self, "lr", low=0.0, open_low=True)
        _number(self, "weight_decay", low=0.0)
        _number(self, "min_lr", low=0.0)
        _number(self, "text_weight", low=0.0, high=1.0)
        _number(self, "mse_weight", low=0.0)
        _number(self, "clip_weight", low=0.0)
        _number(self, "label_smoothing", low=0.0, high=1.0, open_high=True)
        _number(self, "cond_drop_prob", low=0.0, high=1.0)
        _number(self, "logit_scale_init", low=-math.inf)
        if self.grad_clip is not None:
            _number(self, "grad_clip", low=0.0, open_low=True)
        _integer(self, "epochs", minimum=1)
        _integer(self, "batch_size", minimum=1)
        _integer(self, "warmup_steps", minimum=0)
        _integer(self, "seed", minimum=0)
        _integer(self, "num_workers", minimum=0)
        if self.subjects is not None and (not self.subjects or len(set(self.subjects)) != len(self.subjects)):
            raise ToolkitError(
                f"TrainConfig.subjects must list distinct subjects (or be null for all); got {self.subjects!r}."
            )
        if self.resume and self.out is None:
            raise ToolkitError("resume=True needs the run directory to resume from; pass out (--out RUN_DIR).")
        if self.objective == "classification" and self.val_unit == "concepts" and self.val_fraction > 0:
            raise ToolkitError(
                "val_unit='concepts' holds out whole classes, which a classifier has never seen; use "
                "val_unit='images' (--val-unit images) with the classification objective."
            )
        if self.task != "encoder":
            self._validate_task()
        elif self.inputs is not None or self.targets is not None or self.model_config:
            raise ToolkitError(
                "--inputs / --eeg-embeds, --targets and --model-config belong to --task prior, low-level or "
                "projector; add --task or drop them."
            )
        elif self.objective is not None and self.objective not in TASK_OBJECTIVES["encoder"]:
            raise ToolkitError(
                f"objective {self.objective!r} does not train an EEG encoder; choose one of "
                f"{', '.join(TASK_OBJECTIVES['encoder'])} or the task it belongs to (--task)."
            )
        if self.objective == "recon-mix" and self.target_normalize is True:
            raise ToolkitError(
                "objective 'recon-mix' regresses raw image embeddings (what IP-Adapter consumes); drop "
                "target_normalize=True (--target-normalize) or choose the 'clip' objective."
            )

    def _validate_task(self) -> None:
        """The fields of the prior, low-level and projector tasks (see :mod:`toolkit.training.tasks`)."""
        task, allowed = self.task, TASK_OBJECTIVES[self.task]
        if self.objective is not None and self.objective not in allowed:
            raise ToolkitError(
                f"objective {self.objective!r} does not apply to --task {task}; use {' or '.join(allowed)} (or leave "
                "--objective out for the default)."
            )
        # The files each task needs are checked when its data are opened (the Python API may pass arrays instead).
        unused = {
            "prior": ("data", "targets", "text_embeds", "test_image_embeds", "clip_model"),
            "low-level": ("inputs", "image_embeds", "text_embeds", "test_image_embeds", "clip_model"),
            "projector": ("data", "image_embeds", "text_embeds", "test_image_embeds", "clip_model"),
        }[task]
        given = [f"--{n.replace('_', '-')}" for n in unused if getattr(self, n) is not None]
        if self.encoder_config:
            given.append("--encoder-config (use --model-config)")
        if given:
            raise ToolkitError(f"--task {task} does not use {', '.join(given)}; drop it.")
        if self.setting != "intra":
            raise ToolkitError(f"--task {task} trains on one training set; drop --setting {self.setting}.")
        if self.selection != "val_loss":
            raise ToolkitError(f"--task {task} selects its checkpoint on the validation loss; drop --selection.")
        if task != "prior" and self.target_normalize:
            raise ToolkitError(f"--task {task} regresses its targets as they are; drop --target-normalize.")

    # -- conversions -----------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        """Field names in declaration order (one CLI flag each)."""
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields (tuples become lists)."""
        out = dataclasses.asdict(self)
        if out["subjects"] is not None:
            out["subjects"] = list(out["subjects"])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the training configuration") -> TrainConfig:
        """Build a configuration from a dict, rejecting unknown fields (the error lists the valid ones)."""
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a JSON object of training fields; got {type(data).__name__}.")
        names = cls.field_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ToolkitError(
                f"{source} has unknown training field(s) {', '.join(unknown)}; valid fields are {', '.join(names)}."
            )
        try:
            return cls(**dict(data))
        except ToolkitError as err:
            raise ToolkitError(f"In {source}: {err}") from None

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a configuration written by :meth:`save` (or by hand); only JSON is parsed, nothing is executed."""
        path = Path(path)
        if not path.is_file():
            raise ToolkitError(f"The training configuration file '{path}' does not exist; check --config.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ToolkitError(f"The training configuration file '{path}' is not valid JSON ({err}).") from None
        if isinstance(data, Mapping) and "train" in data and isinstance(data["train"], Mapping):
            data = data["train"]  # a run directory's config.json
        return cls.from_dict(data, source=f"the training configuration file '{path}'")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the configuration as JSON atomically."""
        from ..utils import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return self.from_dict({**self.to_dict(), **changes}, source="TrainConfig.replace()")

    def resolved(self) -> TrainConfig:
        """A copy with every ``None``-means-convention field made explicit (what a run records)."""
        changes: dict[str, Any] = {}
        if self.objective is None:
            changes["objective"] = TASK_OBJECTIVES[self.task][0]
        objective = changes.get("objective", self.objective)
        if self.target_normalize is None:
            # Raw targets for reconstruction: IP-Adapter consumes raw embeddings, regressions keep their targets.
            changes["target_normalize"] = self.task == "encoder" and objective not in ("recon-mix", "mse")
        if self.val_unit is None:
            changes["val_unit"] = "images" if objective == "classification" else "concepts"
        return self.replace(**changes) if changes else self

    def differences(self, other: TrainConfig, *, ignore: frozenset[str] = RESUME_FREE_FIELDS) -> list[str]:
        """Names (with both values) of the fields that differ from ``other``, except ``ignore``."""
        mine, theirs = self.resolved().to_dict(), other.resolved().to_dict()
        return [
            f"{name} ({theirs[name]!r} vs {mine[name]!r})"
            for name in self.field_names()
            if name not in ignore and mine[name] != theirs[name]
        ]


# -- field checks --------------------------------------------------------------------------------------------------
def _choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ToolkitError(
            f"Unknown {name} {value!r} in TrainConfig.{name}; known values: {', '.join(choices)}."
        )


def _number(
    config: Any, name: str, *, low: float, high: float | None = None, open_low: bool = False, open_high: bool = False
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok and not (low == -math.inf and math.isfinite(value)):
        ok = math.isfinite(value) and (value > low if open_low else value >= low)
        if ok and high is not None:
            ok = value < high if open_high else value <= high
    if not ok:
        bound = "a finite number" if low == -math.inf else f"a number {'>' if open_low else '>='} {low}"
        if high is not None:
            bound += f" and {'<' if open_high else '<='} {high}"
        raise ToolkitError(f"TrainConfig.{name} must be {bound}; got {value!r}; fix --{name.replace('_', '-')}.")
    object.__setattr__(config, name, float(value))


def _integer(config: Any, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToolkitError(
            f"TrainConfig.{name} must be an integer >= {minimum}; got {value!r}; fix --{name.replace('_', '-')}."
        )
