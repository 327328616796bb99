"""The reconstruction models through the common trainer: the diffusion prior, the low-level encoder, the projector.

:class:`TaskTrainer` is the :class:`~toolkit.training.Trainer` (the same epoch loop, AdamW, warm-up + cosine
schedule, gradient clipping, accelerate, seeds, atomic ``best/`` / ``last/`` checkpoints, bit-identical resume and
checkpoint selection on a validation split carved from the training data only); only the data, the model and the
objective differ. ``TrainConfig.task`` chooses:

============  ===========================================  ============================================  =========
task          inputs → targets                             model (``model_config``)                      objective
============  ===========================================  ============================================  =========
prior         EEG embeddings (``inputs``) → raw image      :class:`~toolkit.prior.DiffusionPriorUNet`    diffusion
              embeddings (``image_embeds``)
low-level     EEG trials of ``data`` → VAE latents         :class:`~toolkit.generation.LowLevelEncoder`  l1 / mse
              (``targets``, one per training condition)
projector     embeddings (``inputs``) → GIT vision tokens  :class:`~toolkit.captions.PixelProjector`     mse / l1
              (``targets``)
============  ===========================================  ============================================  =========

The ``diffusion`` objective is one step of ATM's prior training (reference/ATM.md §7.3) through
:func:`toolkit.prior.prior_loss`: a random timestep per row, DDPM noise from diffusers' ``DDPMScheduler``, the
condition dropped for the **whole batch** with probability ``cond_drop_prob`` (0.1), ε-prediction MSE. The
reference recipe is ``lr=1e-3, weight_decay=0`` (Adam), ``schedule="cosine", warmup_steps=500``,
``grad_clip=1.0``, batch 1024, 150 epochs. Its validation loss uses the condition on every row and fixed noise and
timesteps (a generator re-seeded at every evaluation), so epochs compare on the same draws.

Input files (``inputs``) may pair many rows with one target row: an integer ``conditions`` array (the target row of
each input row, e.g. every trial of an image) and, for whole-concept validation, a ``concepts`` array (per input
row). :func:`save_training_arrays` writes such a file. At the end the selected model is written ready to load to
``RUN_DIR/model``: a :class:`~toolkit.prior.PriorPipeline` folder for the prior (with the training scheduler),
``save_pretrained`` of the low-level encoder or the projector otherwise.

With ``accelerate=True`` over several processes the prior's model is wrapped by ``DistributedDataParallel`` with
``find_unused_parameters=True``: a batch trained without its condition leaves the condition layers without
gradients on that process (an accelerator passed to :func:`~toolkit.training.train` must be built the same way).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .._version import __version__
from ..errors import ToolkitError
from .config import TrainConfig
from .data import (
    PairedTrials,
    ValidationSplit,
    _concepts_of,
    _dataset_label,
    _memmap_recipe,
    _prepare_targets,
    load_embedding_file,
    make_validation_split,
    open_trials,
)
from .trainer import Trainer, _unwrap, evaluate_loss

logger = logging.getLogger(__name__)

__all__ = [
    "DiffusionObjective",
    "PairedRows",
    "RegressionObjective",
    "TaskData",
    "TaskTrainer",
    "build_task_data",
    "load_array_file",
    "save_training_arrays",
]

#: The folder of a run directory holding the selected model, ready to load.
MODEL_DIR = "model"
#: Names tried, in order, for the main array of an input / target file holding several arrays.
_INPUT_KEYS = ("inputs", "eeg_embeds", "image_embeds", "embeds")
_TARGET_KEYS = ("targets", "latents", "image_latent", "tokens", "image_embeds")
_META_KEY = "eeg_visual_toolkit.embeddings"  # the metadata entry of toolkit embedding files (toolkit.embeddings)
_SUFFIXES = (".npy", ".safetensors", ".npz")


# ==================================================================================================== files
def save_training_arrays(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write named arrays (dtypes kept: float inputs, integer ``conditions`` / ``concepts``) to a ``.safetensors``
    file atomically, with a JSON description readable by :func:`load_array_file` and
    :func:`toolkit.embeddings.load_embeddings`.

    Parameters
    ----------
    path : str | os.PathLike
        Target ``.safetensors`` file.
    arrays : Mapping of str to np.ndarray
        E.g. ``{"inputs": eeg_embeds, "conditions": image_row_of_each_trial, "concepts": concept_of_each_trial}``.
    metadata : Mapping | None
        JSON-serialisable description (e.g. ``{"normalize": False, "encoder": "atm-s"}``).

    Returns
    -------
    Path
        The file.
    """
    import json

    from safetensors.numpy import save_file

    from ..utils import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ToolkitError(f"save_training_arrays writes .safetensors files; got '{path}'.")
    if not arrays:
        raise ToolkitError("save_training_arrays needs at least one array.")
    tensors = {str(k): np.ascontiguousarray(v) for k, v in arrays.items()}
    text = json.dumps(dict(metadata or {}), sort_keys=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: text})
    return path


def load_array_file(
    path: str | os.PathLike, *, what: str, keys: Sequence[str] = _INPUT_KEYS
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Read the main array of an input or target file, its other arrays and its description; nothing executes.

    Parameters
    ----------
    path : str | os.PathLike
        ``.npy`` (opened as a read-only memory map: targets larger than RAM stay on disk), ``.safetensors`` or
        ``.npz`` (read whole; pickled objects are refused).
    what : str
        The argument the path came from, named in errors (``"--inputs"``).
    keys : sequence of str
        Names tried, in order, for the main array of a file holding several; a file with a single floating-point
        array needs none.

    Returns
    -------
    main : np.ndarray
        The floating-point main array, ``(n_rows, ...)``.
    others : dict of str to np.ndarray
        The file's other arrays (e.g. ``conditions``, ``concepts``).
    metadata : dict
        The toolkit description stored in the file (empty when there is none).
    """
    import json

    path = Path(path).expanduser()
    if not path.is_file():
        raise ToolkitError(f"{what} file '{path}' does not exist; check the path.")
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ToolkitError(f"{what} file '{path}' must be a {', '.join(_SUFFIXES)} file.")
    metadata: dict[str, Any] = {}
    try:
        if suffix == ".npy":
            arrays = {"": np.load(path, mmap_mode="r", allow_pickle=False)}
        elif suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as fh:
                text = (fh.metadata() or {}).get(_META_KEY)
                arrays = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 (not a dict)
            metadata = json.loads(text) if text else {}
        else:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            text = arrays.pop(_META_KEY, None)
            metadata = json.loads(str(text)) if text is not None else {}
    except Exception as err:  # numpy, safetensors and json raise many types for a damaged file
        raise ToolkitError(f"{what} file '{path}' cannot be read ({type(err).__name__}: {err}).") from None
    if not isinstance(metadata, dict):
        metadata = {}
    floats = [name for name, a in arrays.items() if np.issubdtype(a.dtype, np.floating)]
    name = next((k for k in keys if k in floats), floats[0] if len(floats) == 1 else None)
    if name is None:
        raise ToolkitError(
            f"{what} file '{path}' holds {', '.join(sorted(arrays)) or 'no arrays'}; it needs one floating-point "
            f"array or one named {' / '.join(keys)}."
        )
    main = arrays.pop(name)
    if main.ndim < 2 or main.shape[0] == 0:
        raise ToolkitError(f"{what} file '{path}' must hold rows (n, ...) with n >= 1; got shape {main.shape}.")
    return main, arrays, metadata


def _finite(array: np.ndarray, what: str, source: str) -> None:
    # Checked in row blocks so that a memory-mapped file is never loaded whole.
    step = max(1, (64 << 20) // max(1, array[0].nbytes))
    for start in range(0, array.shape[0], step):
        if not np.isfinite(array[start : start + step]).all():
            raise ToolkitError(f"{what} '{source}' holds NaN or infinite values; recompute it.")


def _index_array(others: dict[str, np.ndarray], name: str, n: int, source: str) -> np.ndarray | None:
    if name not in others:
        return None
    values = np.asarray(others[name])
    if values.shape != (n,) or not (
        np.issubdtype(values.dtype, np.integer)
        or (np.issubdtype(values.dtype, np.floating) and np.all(values == np.round(values)))
    ):
        raise ToolkitError(
            f"'{name}' in '{source}' must hold one integer per input row ({n}); got {values.dtype} {values.shape}."
        )
    values = values.astype(np.int64)
    if values.min() < 0:
        raise ToolkitError(f"'{name}' in '{source}' holds negative indices.")
    return values


# ==================================================================================================== dataset
class PairedRows(Dataset):
    """Input rows paired with target rows (``targets[target_rows[i]]`` for input ``i``); batches as dicts.

    Parameters
    ----------
    inputs : np.ndarray, shape (n_rows, ...)
        Input rows (may be a memory map).
    targets : np.ndarray, shape (n_targets, ...)
        Target rows (may be a memory map: batches are read with sorted indices).
    target_rows : np.ndarray of int, shape (n_rows,)
        Target row of each input row.
    rows : np.ndarray of int | None
        The input rows this dataset serves (default: all).
    order_seed : int | None
        Permute the sample order once with this seed (a fixed, mixed order for evaluation batches).
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        target_rows: np.ndarray,
        *,
        rows: np.ndarray | None = None,
        order_seed: int | None = None,
    ) -> None:
        self.inputs, self.targets = inputs, targets
        self.target_rows = np.asarray(target_rows, dtype=np.int64)
        rows = np.arange(inputs.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        if order_seed is not None:
            rows = rows[np.random.default_rng([int(order_seed), 0x0DE5]).permutation(rows.size)]
        self.rows = rows

    def __getstate__(self) -> dict:  # DataLoader workers: a memory map travels as its file, not its bytes
        state = self.__dict__.copy()
        for name in ("inputs", "targets"):
            recipe = _memmap_recipe(state[name])
            state[name] = ("memmap", recipe) if recipe is not None else ("array", state[name])
        return state

    def __setstate__(self, state: dict) -> None:
        for name in ("inputs", "targets"):
            kind, value = state[name]
            if kind == "memmap":
                filename, offset, shape, dtype = value
                value = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
            state[name] = value
        self.__dict__.update(state)

    def __len__(self) -> int:
        return int(self.rows.size)

    @staticmethod
    def _take(array: np.ndarray, index: np.ndarray) -> torch.Tensor:
        unique, inverse = np.unique(index, return_inverse=True)  # sorted reads: sequential on a memory map
        block = np.asarray(array[unique], dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(block[inverse]))

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """A batch: ``{"inputs": (batch, ...), "targets": (batch, ...)}`` as float32 tensors."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        return {"inputs": self._take(self.inputs, rows), "targets": self._take(self.targets, self.target_rows[rows])}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} is out of range for {len(self)} samples")
        return {k: v[0] for k, v in self.__getitems__([index % len(self)]).items()}


# ==================================================================================================== data
@dataclass
class TaskData:
    """What a prior / low-level / projector run reads (built by :func:`build_task_data`).

    Attributes
    ----------
    split : ValidationSplit
        The validation split over the target rows ("conditions"), carved from the training data only.
    train, val : Dataset
        :class:`PairedRows` (prior, projector) or :class:`~toolkit.training.PairedTrials` (low-level) of the
        training and validation rows (``val`` is ``None`` without validation).
    input_shape, target_shape : tuple of int
        Shape of one input row (``(n_chans, n_times)`` for EEG) and of one target row.
    input_metadata : dict
        The description stored in the inputs file (e.g. ``normalize``).
    info : dict
        JSON-ready description recorded in ``config.json``.
    """

    config: TrainConfig
    split: ValidationSplit
    train: Dataset
    val: Dataset | None
    input_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    input_metadata: dict = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    train_subjects: list[str] = field(default_factory=list)
    test_subject: str | None = None
    subject_ids: dict[str, int] = field(default_factory=dict)
    backbone: str = "none"
    n_classes: int | None = None


def _split_rows(
    config: TrainConfig, target_rows: np.ndarray, concepts: np.ndarray | None, n_targets: int, source: str
) -> ValidationSplit:
    """The validation split over the target rows that have inputs (whole concepts when ``concepts`` are known)."""
    present = np.unique(target_rows)
    unit = config.val_unit
    if concepts is not None:
        per_target = np.full(n_targets, -1, dtype=np.int64)
        per_target[target_rows] = concepts
        if not np.array_equal(per_target[target_rows], concepts):
            raise ToolkitError(f"'concepts' in '{source}' gives one target row two concepts; fix the file.")
        concept_of = per_target[present]
    else:
        concept_of = np.arange(present.size)
        if unit == "concepts" and config.val_fraction > 0:
            logger.info("%s holds no 'concepts' array; the validation split holds out whole target rows.", source)
            unit = "images"
    local = make_validation_split(concept_of, fraction=config.val_fraction, unit=unit, seed=config.seed)
    return ValidationSplit(
        unit=local.unit,
        fraction=local.fraction,
        seed=local.seed,
        n_conditions=int(n_targets),
        val_conditions=tuple(int(present[i]) for i in local.val_conditions),
        val_concepts=tuple(int(c) for c in np.unique(concept_of[list(local.val_conditions)]))
        if concepts is not None else tuple(int(present[i]) for i in local.val_conditions),
    )


def build_task_data(
    config: TrainConfig,
    *,
    inputs: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    conditions: np.ndarray | None = None,
    concepts: np.ndarray | None = None,
    input_metadata: Mapping[str, Any] | None = None,
) -> TaskData:
    """Open the data of a prior / low-level / projector run, or take them from arrays.

    Parameters
    ----------
    config : TrainConfig
        The configuration (resolved here); ``config.task`` is not ``"encoder"``.
    inputs : np.ndarray | None, shape (n_rows, in_dim)
        Input rows instead of ``config.inputs`` (prior, projector).
    targets : np.ndarray | None, shape (n_targets, ...)
        Target rows instead of ``config.image_embeds`` (prior) or ``config.targets``.
    conditions, concepts : np.ndarray of int | None, shape (n_rows,)
        With array inputs: the target row and the concept of each input row (see the module notes).
    input_metadata : Mapping | None
        With array inputs: their description (e.g. ``{"normalize": True}``).

    Returns
    -------
    TaskData
        The datasets and the split.
    """
    config = config.resolved()
    if config.task == "encoder":
        raise ToolkitError("build_task_data builds the data of the prior / low-level / projector tasks; use "
                           "build_run_data for encoders.")
    needs = {"prior": ("inputs", "image_embeds"), "low-level": ("data", "targets"), "projector": ("inputs", "targets")}
    given = {"inputs": inputs is not None, "image_embeds": targets is not None, "targets": targets is not None}
    for name in needs[config.task]:
        if getattr(config, name) is None and not given.get(name, False):
            flag = "--data STORE_OR_ROOT" if name == "data" else f"--{name.replace('_', '-')} FILE"
            raise ToolkitError(f"--task {config.task} needs {flag}; see python -m toolkit train -h.")
    if config.task == "low-level":
        return _low_level_data(config, targets)
    # -- inputs --------------------------------------------------------------------------------------------------
    if inputs is not None:
        in_source, others, in_meta = "the given inputs", {}, dict(input_metadata or {})
        inputs = np.asarray(inputs)
        if conditions is not None:
            others["conditions"] = np.asarray(conditions)
        if concepts is not None:
            others["concepts"] = np.asarray(concepts)
    else:
        in_source = str(config.inputs)
        inputs, others, in_meta = load_array_file(config.inputs, what="--inputs")
    if inputs.ndim != 2 or not np.issubdtype(inputs.dtype, np.floating) or inputs.shape[0] == 0:
        raise ToolkitError(
            f"The inputs ('{in_source}') must be a float array (n_rows, dim); got {inputs.dtype} {inputs.shape}."
        )
    _finite(inputs, "The inputs", in_source)
    n_rows = inputs.shape[0]
    # -- targets -------------------------------------------------------------------------------------------------
    backbone = "none"
    if targets is not None:
        out_source = "the given targets"
        targets = np.asarray(targets)
        if config.task == "prior" and config.target_normalize:
            from ..embeddings import l2_normalize

            targets = l2_normalize(np.asarray(targets, dtype=np.float32))
    elif config.task == "prior":
        out_source = str(config.image_embeds)
        table = load_embedding_file(config.image_embeds, what="--image-embeds")
        targets = _prepare_targets(table, normalize=bool(config.target_normalize), what="--image-embeds")
        backbone = table.backbone
    else:
        out_source = str(config.targets)
        targets = load_array_file(config.targets, what="--targets", keys=_TARGET_KEYS)[0]
    want = {"prior": 2, "projector": 3}[config.task]
    if targets.ndim != want or not np.issubdtype(targets.dtype, np.floating) or targets.shape[0] == 0:
        shape = {"prior": "(n, embed_dim) image embeddings", "projector": "(n, n_tokens, hidden_size) vision tokens"}
        raise ToolkitError(
            f"--task {config.task} needs targets of shape {shape[config.task]}; '{out_source}' holds "
            f"{targets.dtype} {targets.shape}."
        )
    _finite(targets, "The targets", out_source)
    # -- pairing and split ---------------------------------------------------------------------------------------
    target_rows = _index_array(others, "conditions", n_rows, in_source)
    if target_rows is None:
        if targets.shape[0] != n_rows:
            raise ToolkitError(
                f"The inputs ('{in_source}') have {n_rows} rows but the targets ('{out_source}') {targets.shape[0]}; "
                "pair them row by row or store a 'conditions' array (the target row of each input row) with the "
                "inputs."
            )
        target_rows = np.arange(n_rows)
    elif target_rows.max() >= targets.shape[0]:
        raise ToolkitError(
            f"'conditions' in '{in_source}' points at target row {int(target_rows.max())} but '{out_source}' has "
            f"{targets.shape[0]} rows; the files do not belong together."
        )
    concept_ids = _index_array(others, "concepts", n_rows, in_source)
    split = _split_rows(config, target_rows, concept_ids, targets.shape[0], in_source)
    in_val = np.isin(target_rows, np.asarray(split.val_conditions, dtype=np.int64))
    train_rows, val_rows = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    _check_train_size(config, train_rows.size)
    train = PairedRows(inputs, targets, target_rows, rows=train_rows)
    val = PairedRows(inputs, targets, target_rows, rows=val_rows, order_seed=config.seed) if val_rows.size else None
    info = {
        "task": config.task,
        "inputs": in_source,
        "targets": out_source,
        "n_rows": int(n_rows),
        "n_targets": int(targets.shape[0]),
        "input_shape": list(inputs.shape[1:]),
        "target_shape": list(targets.shape[1:]),
        "n_train_rows": int(train_rows.size),
        "n_val_rows": int(val_rows.size),
        "inputs_normalized": in_meta.get("normalize") if isinstance(in_meta.get("normalize"), bool) else None,
        "targets_normalized": bool(config.target_normalize) if config.task == "prior" else None,
    }
    return TaskData(
        config=config,
        split=split,
        train=train,
        val=val,
        input_shape=tuple(int(d) for d in inputs.shape[1:]),
        target_shape=tuple(int(d) for d in targets.shape[1:]),
        input_metadata=in_meta,
        info=info,
        backbone=backbone,
    )


def _check_train_size(config: TrainConfig, n: int) -> None:
    if n == 0:
        raise ToolkitError("The training set is empty after the validation split; lower --val-fraction.")
    if config.drop_last and n < config.batch_size:
        raise ToolkitError(
            f"The training set has {n} rows after the validation split, fewer than one batch of {config.batch_size} "
            "(drop_last drops it); lower --batch-size or pass --no-drop-last."
        )


def _low_level_data(config: TrainConfig, targets: np.ndarray | None) -> TaskData:
    """EEG trials of one subject's training split (every repetition a sample) → one latent per condition."""
    trials = open_trials(config.data, config.subject, "train")
    source = "the given targets" if targets is not None else str(config.targets)
    meta: dict[str, Any] = {}
    if targets is None:
        targets, _, meta = load_array_file(config.targets, what="--targets", keys=_TARGET_KEYS)
    targets = np.asarray(targets) if not isinstance(targets, np.memmap) else targets
    if targets.ndim != 4 or not np.issubdtype(targets.dtype, np.floating):
        raise ToolkitError(
            f"--task low-level needs VAE latents (n_conditions, channels, height, width); '{source}' holds "
            f"{targets.dtype} {targets.shape}."
        )
    if targets.shape[0] != trials.n_conditions:
        raise ToolkitError(
            f"'{source}' holds {targets.shape[0]} latents but {trials.subject}'s training data have "
            f"{trials.n_conditions} conditions; encode the training images of this split, one latent per image, in "
            "order."
        )
    files = meta.get("image_files")
    if trials.images is not None and isinstance(files, list) and len(files) == trials.n_conditions:
        for i, (a, b) in enumerate(zip(files, trials.images.image_files)):
            if str(a) != str(b):
                raise ToolkitError(f"'{source}' row {i} is for {a!r} but the data's condition {i} is {b!r}.")
    _finite(targets, "The targets", source)
    split = make_validation_split(_concepts_of(trials), fraction=config.val_fraction, unit=config.val_unit,
                                  seed=config.seed)
    common = {"image_embeds": np.asarray(targets, dtype=np.float32), "in_memory": config.in_memory}
    train = PairedTrials([trials], [-1], conditions=split.train_conditions, **common)
    _check_train_size(config, len(train))
    val = (
        PairedTrials([trials], [-1], conditions=split.val_conditions, order_seed=config.seed, **common)
        if split.n_val else None
    )
    info = {
        "task": config.task,
        "dataset": _dataset_label(config.data, trials),
        "source": str(config.data),
        "subject": trials.subject,
        "n_chans": trials.n_chans,
        "n_times": trials.n_times,
        "sfreq": float(trials.sfreq),
        "targets": source,
        "target_shape": list(targets.shape[1:]),
        "n_train_trials": len(train),
        "n_val_trials": 0 if val is None else len(val),
        "in_memory": train.in_memory,
    }
    return TaskData(
        config=config,
        split=split,
        train=train,
        val=val,
        input_shape=(trials.n_chans, trials.n_times),
        target_shape=tuple(int(d) for d in targets.shape[1:]),
        input_metadata=meta,
        info=info,
        train_subjects=[trials.subject],
        test_subject=trials.subject,
    )


# ==================================================================================================== objectives
class DiffusionObjective(nn.Module):
    """The prior's objective: :func:`toolkit.prior.prior_loss` (ε-MSE, whole-batch condition dropout).

    In training mode the draws (drop decision, timesteps, noise) come from the global torch RNG, which the trainer
    seeds and checkpoints. In evaluation mode the condition is always used and the draws come from a generator
    re-seeded with ``seed`` whenever the objective is put in evaluation mode, so every validation pass sees the
    same timesteps and noise.

    Parameters
    ----------
    scheduler : diffusers.SchedulerMixin
        Noise schedule (``add_noise``, ``config.num_train_timesteps``); saved with the exported pipeline.
    cond_drop_prob : float
        Probability of training a whole batch unconditionally.
    seed : int
        Seed of the evaluation draws.
    """

    name = "diffusion"

    def __init__(self, scheduler: Any, *, cond_drop_prob: float, seed: int) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.cond_drop_prob = float(cond_drop_prob)
        self.seed = int(seed)
        self._eval_generator = torch.Generator().manual_seed(self.seed)

    def train(self, mode: bool = True) -> DiffusionObjective:
        if not mode:
            self._eval_generator = torch.Generator().manual_seed(self.seed)
        return super().train(mode)

    def scale(self) -> None:
        """No logit scale (the trainer records ``None``)."""
        return None

    def forward(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None]:
        """The loss of ``model`` (the prior, possibly wrapped) on ``{"inputs": cond, "targets": image_embeds}``."""
        from ..prior import prior_loss

        if self.training:
            drop, generator = self.cond_drop_prob, None
        else:
            drop, generator = 0.0, self._eval_generator
        loss = prior_loss(
            model, self.scheduler, batch["targets"], batch["inputs"], cond_drop_prob=drop, generator=generator
        )
        return loss, None

    def extra_repr(self) -> str:
        return f"objective='diffusion', cond_drop_prob={self.cond_drop_prob}"


class RegressionObjective(nn.Module):
    """Element-wise regression of the model's output onto the targets: ``"mse"`` or ``"l1"`` (mean over elements).

    The batch is ``{"inputs", "targets"}`` (projector) or the EEG batch of :class:`~toolkit.training.PairedTrials`
    whose per-condition ``image_embeds`` hold the targets (low-level encoder).
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in ("mse", "l1"):
            raise ToolkitError(f"RegressionObjective takes 'mse' or 'l1', got {name!r}.")
        self.name = name

    def scale(self) -> None:
        """No logit scale (the trainer records ``None``)."""
        return None

    def forward(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the predictions of ``model`` on ``batch``."""
        if "eeg" in batch:
            x, y = batch["eeg"], batch["image_embeds"]
        else:
            x, y = batch["inputs"], batch["targets"]
        pred = model(x)
        if tuple(pred.shape) != tuple(y.shape):
            raise ToolkitError(
                f"The model predicts {tuple(pred.shape[1:])} per row but the targets are {tuple(y.shape[1:])}; build "
                "it for the targets' shape (--model-config)."
            )
        y = y.to(pred.dtype)
        loss = F.mse_loss(pred, y) if self.name == "mse" else F.l1_loss(pred, y)
        return loss, pred

    def extra_repr(self) -> str:
        return f"objective={self.name!r}"


# ==================================================================================================== trainer
_MODEL_CLASSES = {"prior": "DiffusionPriorUNet", "low-level": "LowLevelEncoder", "projector": "PixelProjector"}


def _model_module(task: str) -> tuple[type, type]:
    """(model class, configuration class) of a task."""
    if task == "prior":
        from ..prior import DiffusionPriorUNet, PriorUNetConfig

        return DiffusionPriorUNet, PriorUNetConfig
    if task == "low-level":
        from ..generation.low_level import LowLevelEncoder, LowLevelEncoderConfig

        return LowLevelEncoder, LowLevelEncoderConfig
    from ..captions.projector import PixelProjector, PixelProjectorConfig

    return PixelProjector, PixelProjectorConfig


class TaskTrainer(Trainer):
    """The trainer for the prior, low-level and projector tasks (see the module notes; built by
    :class:`~toolkit.training.Trainer` or :func:`~toolkit.training.train` when ``config.task`` is one of them).

    Parameters
    ----------
    config : TrainConfig
        What to train.
    encoder : nn.Module | None
        Train this model (of the task's class) instead of building one from ``model_config``.
    callbacks, accelerator
        As :class:`~toolkit.training.Trainer`.
    data : TaskData | None
        Pre-built data (:func:`build_task_data`, e.g. from in-memory arrays).
    embedder
        Not used (the encoder task computes image embeddings).
    """

    def _build_data(self, embedder: Any) -> TaskData:
        return build_task_data(self.config)

    def _accelerator_kwargs(self) -> dict[str, Any]:
        if self.config.task != "prior":
            return {}
        from accelerate.utils import DistributedDataParallelKwargs

        # A batch trained without its condition leaves the condition layers without gradients; DDP must expect that.
        return {"kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=True)]}

    # -- model -----------------------------------------------------------------------------------------------
    def _model_fields(self) -> dict[str, Any]:
        """``model_config`` plus the sizes the data give (an explicit value that disagrees is an error)."""
        cfg, data = self.config, self.data
        fields = dict(cfg.model_config)
        if cfg.task == "prior":
            derived: dict[str, Any] = {"embed_dim": data.target_shape[0], "cond_dim": data.input_shape[0]}
        elif cfg.task == "low-level":
            derived = {"n_chans": data.input_shape[0], "n_times": data.input_shape[1],
                       "latent_channels": data.target_shape[0]}
        else:
            derived = {"embed_dim": data.input_shape[0], "n_tokens": data.target_shape[0],
                       "hidden_size": data.target_shape[1]}
            normalized = data.input_metadata.get("normalize")
            if "normalized_inputs" not in fields and isinstance(normalized, bool):
                fields["normalized_inputs"] = normalized
        for name, value in derived.items():
            if name in fields and fields[name] != value:
                raise ToolkitError(
                    f"model_config sets {name}={fields[name]!r} but the data give {value!r}; drop it from "
                    "--model-config to take it from the data, or use matching files."
                )
            fields[name] = value
        return fields

    def _check_model(self, model: Any, origin: str) -> None:
        cls, _ = _model_module(self.config.task)
        if not isinstance(model, cls):
            raise ToolkitError(f"{origin} must be a {cls.__name__} for --task {self.config.task}; got "
                               f"{type(model).__name__}.")
        data, c = self.data, model.config
        if self.config.task == "prior":
            have, want = (c.cond_dim, c.embed_dim), (data.input_shape[0], data.target_shape[0])
        elif self.config.task == "low-level":
            have = (c.n_chans, c.n_times, c.latent_channels, c.latent_size, c.latent_size)
            want = (*data.input_shape, *data.target_shape)
        else:
            have, want = (c.embed_dim, c.n_tokens, c.hidden_size), (data.input_shape[0], *data.target_shape)
        if tuple(have) != tuple(want):
            raise ToolkitError(
                f"{origin} maps {have[: len(data.input_shape)]} inputs to {have[len(data.input_shape):]} but the data "
                f"are {tuple(data.input_shape)} → {tuple(data.target_shape)}; build the model for these shapes "
                "(--model-config) or use matching files."
            )

    def _build_encoder(self, model: Any) -> nn.Module:
        cfg = self.config
        cls, config_cls = _model_module(cfg.task)
        if model is not None:
            origin = "The given model"
        elif cfg.init_from is not None:
            origin = f"init_from '{cfg.init_from}'"
            folder = Path(cfg.init_from).expanduser()
            if (folder / MODEL_DIR).is_dir() and (folder / "history.json").is_file():
                folder = folder / MODEL_DIR  # a run directory of this task: its selected model
            if cfg.task == "prior" and (folder / "model_index.json").is_file():
                model = cls.from_pretrained(folder, subfolder="prior")  # a PriorPipeline folder
            else:
                model = cls.from_pretrained(folder)
        else:
            origin = f"The {cfg.task} model"
            config = config_cls.from_dict(self._model_fields(), source="--model-config")
            model = cls(config)
        self._check_model(model, origin)
        return model.train()

    def _build_objective(self) -> nn.Module:
        cfg = self.config
        if cfg.task == "prior":
            from ..prior import default_scheduler

            return DiffusionObjective(default_scheduler(), cond_drop_prob=cfg.cond_drop_prob, seed=cfg.seed)
        return RegressionObjective(cfg.objective)

    # -- validation, test, files -----------------------------------------------------------------------------
    def _validation(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"val_loss": None, "val_top1": None, "val_concept_top1": None}
        if self.data.val is not None:
            out["val_loss"] = evaluate_loss(
                self.encoder, self.objective, self.data.val, batch_size=self.config.batch_size, device=self.device
            )
        return out

    def _evaluate_test(self, encoder: nn.Module, objective: nn.Module) -> tuple[None, str]:
        how = {
            "prior": "the prior is tested through reconstructions (python -m toolkit reconstruct)",
            "low-level": "the low-level encoder is tested through reconstructions (python -m toolkit reconstruct)",
            "projector": "the projector is tested through captions (python -m toolkit caption)",
        }
        return None, how[self.config.task]

    def _selection_rule(self) -> str:
        split = self.data.split
        if self.data.val is None:
            return f"{split.describe()}; the last epoch ({len(self.history)}) is kept"
        return f"{split.describe()}; checkpoint with the lowest validation loss over {len(self.history)} epochs"

    def _write_run_files(self) -> None:
        if self.run_dir is None or not self.is_main:
            return
        from ..utils import atomic_write_json

        model = _unwrap(self.encoder)
        atomic_write_json(
            self.run_dir / "config.json",
            {
                "train": {**self.config.to_dict(), "resume": False},
                "model": {"class": type(model).__name__, "config": model.config.to_dict()},
                "data": self.data.info,
                "split": self.data.split.to_dict(),
                "backbone": self.data.backbone,
                "toolkit_version": __version__,
            },
        )

    def _export(self, model: nn.Module) -> Path:
        target = self.run_dir / MODEL_DIR
        if self.config.task == "prior":
            from ..prior import PriorPipeline

            PriorPipeline(model, _unwrap(self.objective).scheduler).save_pretrained(target)
        else:
            model.save_pretrained(target)
        return target
