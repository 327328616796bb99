"""One trainer for every encoder and objective: AdamW, validation-only model selection, resumable checkpoints.

:func:`train` (or :class:`Trainer`) runs a :class:`~toolkit.training.TrainConfig`:

1. opens the data for the subject setting and carves the validation split from the **training** data
   (:func:`~toolkit.training.build_run_data`);
2. builds the encoder fresh from the seed (or from ``init_from``; a leave-one-subject-out fold never reuses
   another fold's weights), the objective (logit scale / classification head) and AdamW;
3. per epoch: a shuffled pass over the training trials (order a pure function of ``(seed, epoch)``), then the
   validation loss and the validation retrieval top-1 among the held-out images, then ``last/`` (and ``best/`` when
   the validation metric improved) written atomically with the full trainer state;
4. at the end: the ``best`` weights are loaded and the test set is evaluated **once**
   (:func:`toolkit.retrieval.evaluate_retrieval`), with a protocol card stating the validation selection rule
   (``selected_on_test`` is ``False``).

Runs are bit-identical on CPU for the same seed, and resuming from ``last/`` gives exactly the result of an
uninterrupted run (RNG states, optimiser, scheduler and the data-loader generator are checkpointed; shuffling
needs no state). A run directory holds ``config.json``, ``history.json``, ``best/``, ``last/`` and
``results.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import ToolkitError
from .checkpoint import capture_rng_state, load_checkpoint, load_encoder_weights, restore_rng_state, save_checkpoint
from .config import EMBEDDING_OBJECTIVES, SETTING_NAMES, TrainConfig
from .data import PairedTrials, RunData, TrialSample, batch_to_dict, build_run_data
from .losses import Objective

if TYPE_CHECKING:  # pragma: no cover
    from ..encoders import EEGEncoder
    from ..retrieval import ProtocolCard, RetrievalResult

logger = logging.getLogger(__name__)

__all__ = [
    "Callback",
    "LoggingCallback",
    "TrainResult",
    "Trainer",
    "WarmupCosine",
    "evaluate_loss",
    "retrieval_top1",
    "run_epoch",
    "train",
    "train_loso",
]

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
RESULTS_FILE = "results.json"
BEST, LAST = "best", "last"


# ==================================================================================================== callbacks
class Callback:
    """Hooks called by the trainer (override what you need; a plain callable is used as ``on_epoch_end``)."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called once the model, optimiser and data are ready (after a resume, too)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Called after each epoch's validation and checkpoint, with that epoch's history record."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Called after the final test evaluation."""


class LoggingCallback(Callback):
    """Log each epoch's record through :mod:`logging` (level INFO)."""

    def __init__(self, logger_name: str = "toolkit.training") -> None:
        self.log = logging.getLogger(logger_name)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in record.items()}
        self.log.info("epoch %s: %s", record.get("epoch"), shown)


class _FunctionCallback(Callback):
    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.func(trainer, record)


def _as_callbacks(callbacks: Iterable[Any]) -> list[Callback]:
    out = []
    for cb in callbacks or ():
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_FunctionCallback(cb))
        else:
            raise ToolkitError(
                f"A callback must be a toolkit.training.Callback or a callable; got {type(cb).__name__}."
            )
    return out


# ==================================================================================================== schedule
class WarmupCosine:
    """Learning-rate factor of :class:`torch.optim.lr_scheduler.LambdaLR`: linear warm-up, then cosine decay.

    A callable object (not a function) so that ``LambdaLR.state_dict`` records it.

    Parameters
    ----------
    total_steps : int
        Optimiser steps of the whole run.
    warmup_steps : int
        Steps of linear warm-up from 0.
    min_ratio : float
        Final factor (``min_lr / lr``).
    """

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float) -> None:
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ==================================================================================================== loop pieces
def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def _n_rows(inputs: dict[str, Any]) -> int:
    """Samples in a batch dict: its EEG rows, or the rows of its first tensor (the other tasks' ``inputs``)."""
    first = inputs["eeg"] if "eeg" in inputs else next(v for v in inputs.values() if isinstance(v, torch.Tensor))
    return int(first.shape[0])


def run_epoch(
    encoder: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[TrialSample],
    *,
    device: torch.device,
    scheduler: Any = None,
    grad_clip: float | None = None,
    accelerator: Any = None,
    params: Sequence[nn.Parameter] = (),
    desc: str = "train",
    show_progress: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``: forward, loss, backward, (clip), AdamW step, (scheduler step) per batch.

    Returns
    -------
    dict
        ``train_loss`` (mean over trials), ``n_trials``, ``n_steps``, ``seconds``, ``trials_per_s``.
    """
    from ..utils import progress

    encoder.train()
    objective.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    n_trials = n_steps = 0
    start = time.perf_counter()
    total_batches = len(loader) if hasattr(loader, "__len__") else None
    bar = progress(loader, desc=desc, total=total_batches, unit="batch", disable=None if show_progress else True)
    for batch in bar:
        inputs = batch_to_dict(batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss, _ = objective(encoder, inputs)
        if not bool(torch.isfinite(loss.detach())):
            raise ToolkitError(
                f"The training loss became {float(loss.detach())} at step {n_steps + 1} of {desc}; lower --lr, "
                "enable --grad-clip or check the data for extreme values."
            )
        if accelerator is not None:
            accelerator.backward(loss)
            if grad_clip is not None:
                accelerator.clip_grad_norm_(params, grad_clip)
        else:
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        size = _n_rows(inputs)
        total += loss.detach().to(torch.float64) * size
        n_trials += size
        n_steps += 1
    seconds = time.perf_counter() - start
    if n_steps == 0:
        raise ToolkitError(f"{desc} had no batches; the training set is smaller than one batch.")
    return {
        "train_loss": float(total) / n_trials,
        "n_trials": n_trials,
        "n_steps": n_steps,
        "seconds": seconds,
        "trials_per_s": n_trials / seconds if seconds > 0 else float("inf"),
    }


@torch.no_grad()
def evaluate_loss(
    encoder: nn.Module, objective: Objective, dataset: PairedTrials, *, batch_size: int, device: torch.device
) -> float:
    """The objective's mean loss over ``dataset`` in eval mode, in fixed-order batches of ``batch_size``."""
    encoder = _unwrap(encoder)
    objective = _unwrap(objective)
    was = encoder.training, objective.training
    encoder.eval()
    objective.eval()
    total, n = 0.0, 0
    try:
        for start in range(0, len(dataset), batch_size):
            batch = dataset.__getitems__(np.arange(start, min(start + batch_size, len(dataset))))
            inputs = batch_to_dict(batch, device)
            loss, _ = objective(encoder, inputs)
            size = _n_rows(inputs)
            total += float(loss) * size
            n += size
    finally:
        encoder.train(was[0])
        objective.train(was[1])
    return total / max(n, 1)


@torch.no_grad()
def embed_dataset(encoder: nn.Module, dataset: PairedTrials, *, batch_size: int, device: torch.device) -> torch.Tensor:
    """EEG embeddings of every sample of ``dataset`` (eval mode), on the CPU."""
    encoder = _unwrap(encoder)
    was = encoder.training
    encoder.eval()
    out = []
    try:
        for start in range(0, len(dataset), batch_size):
            batch = dataset.__getitems__(np.arange(start, min(start + batch_size, len(dataset))))
            inputs = batch_to_dict(batch, device)
            out.append(encoder(inputs["eeg"], inputs["subject_ids"]).float().cpu())
    finally:
        encoder.train(was)
    return torch.cat(out)


def retrieval_top1(
    eeg_embeds: Any, gallery: np.ndarray, targets: np.ndarray, *, gallery_concepts: np.ndarray | None = None
) -> tuple[float | None, float | None]:
    """Top-1 retrieval accuracy (cosine) of queries among ``gallery`` via :func:`toolkit.retrieval.ranks`.

    Returns
    -------
    top1 : float | None
        Fraction of queries whose own item ranks first (``None`` for a gallery of fewer than 2 items).
    concept_top1 : float | None
        Fraction whose best-scoring item belongs to the right concept (when ``gallery_concepts`` is given).
    """
    from ..retrieval import ranks, similarity

    if gallery.shape[0] < 2:
        return None, None
    rank = ranks(eeg_embeds, gallery, targets, normalize=True)
    top1 = float(np.mean(rank == 0))
    concept = None
    if gallery_concepts is not None:
        best = similarity(eeg_embeds, gallery, normalize=True).argmax(axis=1)
        concept = float(np.mean(gallery_concepts[best] == gallery_concepts[targets]))
    return top1, concept


def _validate(trainer: Trainer) -> dict[str, float | None]:
    """Validation loss and retrieval (or classification) top-1 on the held-out training data."""
    data = trainer.data
    out: dict[str, float | None] = {"val_loss": None, "val_top1": None, "val_concept_top1": None}
    if data.val is None:
        return out
    cfg = trainer.config
    out["val_loss"] = evaluate_loss(
        trainer.encoder, trainer.objective, data.val, batch_size=cfg.batch_size, device=trainer.device
    )
    queries = data.val_queries
    if cfg.objective == "classification":
        embeds = embed_dataset(trainer.encoder, queries, batch_size=cfg.batch_size, device=trainer.device)
        head = _unwrap(trainer.objective).head
        with torch.no_grad():
            logits = head(embeds.to(trainer.device)).cpu()
        labels = torch.from_numpy(queries.labels[queries.sample_conditions])
        out["val_top1"] = float((logits.argmax(dim=1) == labels).float().mean())
    elif data.image_embeds is not None and trainer.embed_dim == data.image_embeds.shape[1]:
        embeds = embed_dataset(trainer.encoder, queries, batch_size=cfg.batch_size, device=trainer.device)
        val_conds = np.asarray(data.split.val_conditions)
        local = np.searchsorted(val_conds, queries.sample_conditions)
        out["val_top1"], out["val_concept_top1"] = retrieval_top1(
            embeds.numpy(), data.image_embeds[val_conds], local, gallery_concepts=queries.concept_of[val_conds]
        )
    return out


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _state_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ToolkitError("--device cuda was requested but no CUDA device is available; use --device cpu or auto.")
    return torch.device(name)


# ==================================================================================================== results
@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    config : TrainConfig
        The resolved configuration.
    run_dir : Path | None
        The run directory (``None`` when nothing was written).
    encoder : EEGEncoder
        The encoder with the **selected** (``best``) weights, in eval mode.
    objective : Objective
        The objective with the selected state (logit scale, classification head).
    history : list of dict
        One record per epoch (losses, validation metrics, learning rate, logit scale, throughput).
    best_epoch : int
        The selected epoch (by the validation metric; the last epoch without validation).
    best_metric : float | None
        Its validation metric.
    split : ValidationSplit
        The validation split.
    test : RetrievalResult | None
        The one test evaluation of the selected checkpoint (``None`` when no test data/embeddings).
    results : dict
        What ``results.json`` holds.
    model_dir : Path | None
        Tasks other than ``"encoder"``: the selected model written ready to load (``RUN_DIR/model``: a
        ``PriorPipeline`` folder for the prior, ``save_pretrained`` of the low-level encoder or projector).
    """

    config: TrainConfig
    run_dir: Path | None
    encoder: Any
    objective: Objective
    history: list[dict[str, Any]]
    best_epoch: int
    best_metric: float | None
    split: Any
    test: RetrievalResult | None
    results: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None

    @property
    def model(self) -> Any:
        """The trained model with the selected weights (the encoder, prior, low-level encoder or projector)."""
        return self.encoder


# ==================================================================================================== trainer
class Trainer:
    """Train an EEG encoder for a :class:`~toolkit.training.TrainConfig` (see the module notes).

    A configuration whose ``task`` is not ``"encoder"`` (the prior, the low-level encoder, the caption projector)
    builds a :class:`toolkit.training.tasks.TaskTrainer`, which runs the same loop, checkpoints, resume and
    validation-only selection on its own data, model and objective.

    Parameters
    ----------
    config : TrainConfig
        What to train.
    encoder : EEGEncoder | None
        Train this encoder (e.g. one with a ``training_loss`` method for the ``"model"`` objective) instead of
        building ``config.encoder`` fresh; its registry name must be ``config.encoder``.
    embedder : toolkit.embeddings.Embedder | None
        Compute the image/text embeddings with this embedder instead of reading files.
    callbacks : iterable of Callback | callable
        Hooks (a callable ``f(trainer, record)`` is called after each epoch).
    accelerator : accelerate.Accelerator | None
        Use this accelerator (``config.accelerate`` builds one when ``None``).
    data : RunData | None
        Pre-built data (:func:`~toolkit.training.build_run_data`, or
        :func:`~toolkit.training.tasks.build_task_data` for the other tasks) for this configuration.
    """

    def __new__(cls, config: TrainConfig, *args: Any, **kwargs: Any) -> Trainer:
        if cls is Trainer and isinstance(config, TrainConfig) and config.task != "encoder":
            from .tasks import TaskTrainer

            cls = TaskTrainer
        return super().__new__(cls)

    def __init__(
        self,
        config: TrainConfig,
        *,
        encoder: EEGEncoder | None = None,
        embedder: Any = None,
        callbacks: Iterable[Any] = (),
        accelerator: Any = None,
        data: RunData | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise ToolkitError(f"Trainer needs a TrainConfig; got {type(config).__name__}.")
        self.config = config.resolved()
        self.callbacks = _as_callbacks(callbacks)
        self.run_dir = Path(self.config.out).expanduser() if self.config.out is not None else None
        self._resume_state: tuple[dict, dict] | None = None
        self._check_run_dir()
        self.data = data if data is not None else self._build_data(embedder)
        self.device = _resolve_device(self.config.device)
        _seed_everything(self.config.seed)
        self.encoder = self._build_encoder(encoder)
        self.embed_dim = getattr(self.encoder.config, "embed_dim", None)
        self.init_digest = _state_digest(self.encoder)
        self.objective = self._build_objective()
        self.accelerator = accelerator
        if self.config.accelerate and self.accelerator is None:
            from ..utils import require

            accelerate = require("accelerate", extra="encoders", purpose="--accelerate")
            self.accelerator = accelerate.Accelerator(cpu=self.device.type == "cpu", **self._accelerator_kwargs())
        if self.accelerator is not None:
            self.device = self.accelerator.device
        self.encoder.to(self.device)
        self.objective.to(self.device)
        self.params = [p for p in self.encoder.parameters() if p.requires_grad] + list(self.objective.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.loader = self._build_loader()
        self.steps_per_epoch = len(self.loader)
        self.scheduler = None
        if self.config.schedule == "cosine":
            cfg = self.config
            factor = WarmupCosine(self.steps_per_epoch * cfg.epochs, cfg.warmup_steps, cfg.min_lr / cfg.lr)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        if self.accelerator is not None:
            prepared = [self.encoder]
            if list(self.objective.parameters()):
                prepared.append(self.objective)
            prepared += [self.optimizer, self.loader]
            prepared = list(self.accelerator.prepare(*prepared))
            self.encoder = prepared.pop(0)
            if list(_unwrap(self.objective).parameters()):
                self.objective = prepared.pop(0)
            self.optimizer, self.loader = prepared
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 1
        self.best_epoch = 0
        self.best_metric: float | None = None
        if self._resume_state is not None:
            self._restore(*self._resume_state)

    # -- construction ------------------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        """Whether this process writes files (always, without accelerate)."""
        return self.accelerator is None or self.accelerator.is_main_process

    def _accelerator_kwargs(self) -> dict[str, Any]:
        """Extra arguments of the :class:`accelerate.Accelerator` built for ``accelerate=True``."""
        return {}

    def _build_data(self, embedder: Any) -> RunData:
        return build_run_data(self.config, embedder=embedder)

    def _build_objective(self) -> nn.Module:
        return Objective(self.config, embed_dim=self.embed_dim, n_classes=self.data.n_classes)

    def _check_run_dir(self) -> None:
        cfg = self.config
        if self.run_dir is None:
            return
        last = self.run_dir / LAST
        if cfg.resume:
            if not last.is_dir():
                raise ToolkitError(
                    f"--resume: '{self.run_dir}' holds no '{LAST}' checkpoint to resume from; start a new run "
                    "without --resume."
                )
            state, meta = load_checkpoint(last)
            try:
                previous = TrainConfig.from_dict(meta.get("config", {}), source=f"'{last}/checkpoint.json'")
            except ToolkitError as err:
                raise ToolkitError(f"Cannot resume from '{last}': {err}") from None
            diffs = cfg.differences(previous)
            if previous.epochs != cfg.epochs and cfg.schedule == "cosine":
                diffs.append(f"epochs ({previous.epochs!r} vs {cfg.epochs!r}; the cosine schedule depends on it)")
            if diffs:
                raise ToolkitError(
                    f"'{self.run_dir}' was trained with another configuration; these fields differ (run vs now): "
                    f"{'; '.join(diffs)}. Resume with the run's configuration (--config {self.run_dir / CONFIG_FILE} "
                    "--resume) or start a new run in another --out."
                )
            self._resume_state = (state, meta)
        elif last.exists() or (self.run_dir / CONFIG_FILE).exists():
            raise ToolkitError(
                f"'{self.run_dir}' already holds a training run; pass --resume to continue it or choose another "
                "--out."
            )

    def _encoder_fields(self) -> dict[str, Any]:
        """The encoder configuration: the user's fields plus those taken from the data and the embeddings."""
        cfg, info = self.config, self.data.info
        fields = dict(cfg.encoder_config)
        derived = {"n_chans": info["n_chans"], "n_times": info["n_times"], "sfreq": info["sfreq"]}
        if self.data.embed_dim is not None and cfg.objective != "classification":
            derived["embed_dim"] = self.data.embed_dim
        for name, value in derived.items():
            if name in fields and fields[name] != value:
                what = "the embeddings" if name == "embed_dim" else "the data"
                raise ToolkitError(
                    f"encoder_config sets {name}={fields[name]!r} but {what} give {value!r} "
                    f"({'embedding dim' if name == 'embed_dim' else name} mismatch); drop it from --encoder-config to "
                    "take it from the data, or use matching data/embeddings."
                )
            fields[name] = value
        for name in ("logit_scale", "logit_scale_init"):
            if name in fields and fields[name] != getattr(cfg, name):
                raise ToolkitError(
                    f"encoder_config sets {name}={fields[name]!r} but the training configuration says "
                    f"{getattr(cfg, name)!r}; set it once, with --{name.replace('_', '-')}."
                )
            fields[name] = getattr(cfg, name)
        return fields

    def _check_encoder(self, encoder: Any, origin: str) -> None:
        from ..encoders import EEGEncoder

        cfg, info = self.config, self.data.info
        if not isinstance(encoder, EEGEncoder):
            raise ToolkitError(f"{origin} must be a toolkit EEGEncoder; got {type(encoder).__name__}.")
        if encoder.name != cfg.encoder:
            raise ToolkitError(
                f"{origin} is a '{encoder.name}' encoder but the configuration names '{cfg.encoder}'; set --encoder "
                f"{encoder.name}."
            )
        ec = encoder.config
        if (ec.n_chans, ec.n_times) != (info["n_chans"], info["n_times"]):
            raise ToolkitError(
                f"{origin} expects {ec.n_chans} channels x {ec.n_times} samples but the data have {info['n_chans']} x "
                f"{info['n_times']}; select/crop the data to match or train a new encoder."
            )
        dim = self.data.embed_dim
        if dim is not None and cfg.objective in EMBEDDING_OBJECTIVES and ec.embed_dim != dim:
            raise ToolkitError(
                f"The embedding dim does not match the encoder: {origin} outputs {ec.embed_dim}-d embeddings but the "
                f"image embeddings are {dim}-d; use embeddings of the encoder's backbone or a new encoder."
            )

    def _build_encoder(self, encoder: EEGEncoder | None) -> EEGEncoder:
        from ..encoders import EEGEncoder, create_encoder

        cfg = self.config
        if encoder is not None:
            self._check_encoder(encoder, "The given encoder")
        elif cfg.init_from is not None:
            encoder = EEGEncoder.from_pretrained(cfg.init_from)
            self._check_encoder(encoder, f"init_from '{cfg.init_from}'")
        else:
            encoder = create_encoder(cfg.encoder, **self._encoder_fields())
            self._check_encoder(encoder, f"The '{cfg.encoder}' encoder")
        n_subjects = getattr(encoder.config, "n_subjects", None)
        if n_subjects is not None and cfg.setting == "joint":
            # Joint training must keep subjects apart; ids beyond the table would all fall back to the shared token.
            too_big = {s: i for s, i in self.data.subject_ids.items() if i >= n_subjects}
            if too_big:
                raise ToolkitError(
                    f"Subject number(s) {too_big} do not fit the encoder's subject table of n_subjects={n_subjects} "
                    "rows, so joint training would merge them into the shared token; set encoder_config "
                    f"n_subjects to at least {max(too_big.values()) + 1}."
                )
        return encoder.train()

    def _build_loader(self) -> torch.utils.data.DataLoader:
        from torch.utils.data import BatchSampler, DataLoader

        from .data import EpochSampler, collate_trials

        cfg = self.config
        self.sampler = EpochSampler(len(self.data.train), cfg.seed)
        batches = BatchSampler(self.sampler, cfg.batch_size, cfg.drop_last)
        self.loader_generator = torch.Generator().manual_seed(cfg.seed)
        return DataLoader(
            self.data.train,
            batch_sampler=batches,
            collate_fn=collate_trials,
            num_workers=cfg.num_workers,
            generator=self.loader_generator,
            worker_init_fn=_seed_worker,
            pin_memory=self.device.type == "cuda",
        )

    # -- state ------------------------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "objective": _unwrap(self.objective).state_dict(),
            "rng": capture_rng_state(),
            "loader_generator": self.loader_generator.get_state(),
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
        }

    def _meta(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "selection": self.config.selection,
            "config": self.config.to_dict(),
            "split": self.data.split.to_dict(),
            "subjects": {"train": self.data.train_subjects, "test": self.data.test_subject},
            "init_digest": self.init_digest,
            "history": self.history,
            "toolkit_version": __version__,
        }

    def _restore(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        last = self.run_dir / LAST
        saved_split = meta.get("split")
        if saved_split is not None and saved_split != self.data.split.to_dict():
            raise ToolkitError(
                f"The validation split recorded in '{last}' differs from the one this configuration gives; the data "
                "changed since the run started, so it cannot be resumed."
            )
        load_encoder_weights(_unwrap(self.encoder), last)
        _unwrap(self.objective).load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.loader_generator.set_state(state["loader_generator"])
        restore_rng_state(state["rng"])
        self.history = list(meta.get("history", []))
        self.start_epoch = int(state["epoch"]) + 1
        self.best_epoch = int(state["best_epoch"])
        self.best_metric = state["best_metric"]
        self.init_digest = meta.get("init_digest", self.init_digest)
        logger.info("Resuming %s after epoch %d.", self.run_dir, state["epoch"])

    def _write_run_files(self) -> None:
        if self.run_dir is None or not self.is_main:
            return
        from ..utils import atomic_write_json

        atomic_write_json(
            self.run_dir / CONFIG_FILE,
            {
                # resume is how this process started, not part of the run: a copied config starts a fresh run
                "train": {**self.config.to_dict(), "resume": False},
                "encoder": {"name": _unwrap(self.encoder).name, "config": _unwrap(self.encoder).config.to_dict()},
                "data": self.data.info,
                "subjects": {
                    "train": self.data.train_subjects,
                    "test": self.data.test_subject,
                    "ids": self.data.subject_ids,
                },
                "split": self.data.split.to_dict(),
                "backbone": self.data.backbone,
                "toolkit_version": __version__,
            },
        )

    # -- selection --------------------------------------------------------------------------------------------
    def _improved(self, record: dict[str, Any]) -> bool:
        if self.data.val is None:
            return True  # no validation: keep the last epoch
        value = record.get(self.config.selection)
        if value is None:
            raise ToolkitError(
                f"The selection metric {self.config.selection!r} could not be computed on the validation split "
                "(too few held-out images?); use selection 'val_loss' or a larger --val-fraction."
            )
        if self.best_metric is None:
            return True
        if self.config.selection == "val_loss":
            return value < self.best_metric
        return value > self.best_metric

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train, select on validation, evaluate the selected checkpoint once on test, and return the result.

        A ``KeyboardInterrupt`` leaves ``RUN_DIR/last`` at the last completed epoch; ``resume=True`` continues
        from it with an identical outcome.
        """
        cfg = self.config
        if self.run_dir is not None and self.is_main:
            self._write_run_files()  # on resume too: records e.g. the extended number of epochs
        for cb in self.callbacks:
            cb.on_train_begin(self)
        epoch = self.start_epoch
        try:
            for epoch in range(self.start_epoch, cfg.epochs + 1):
                self._set_epoch(epoch)
                stats = run_epoch(
                    self.encoder,
                    self.objective,
                    self.optimizer,
                    self.loader,
                    device=self.device,
                    scheduler=self.scheduler,
                    grad_clip=cfg.grad_clip,
                    accelerator=self.accelerator,
                    params=self.params,
                    desc=f"epoch {epoch}/{cfg.epochs}",
                    show_progress=cfg.progress,
                )
                record = self._record(epoch, stats)
                improved = self._improved(record)
                if improved:
                    self.best_epoch = epoch
                    self.best_metric = record.get(cfg.selection) if self.data.val is not None else None
                record["best"] = improved
                self.history.append(record)
                self._save(epoch, best=improved)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, record)
        except KeyboardInterrupt:
            if self.run_dir is not None:
                logger.warning(
                    "Interrupted during epoch %d; '%s' holds epoch %d; continue with resume=True (--resume).",
                    epoch, self.run_dir / LAST, epoch - 1,
                )
            raise
        result = self._finish()
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def _set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def _validation(self) -> dict[str, float | None]:
        return _validate(self)  # looked up at call time (tests script it)

    def _record(self, epoch: int, stats: dict[str, float]) -> dict[str, Any]:
        val = self._validation()
        objective = _unwrap(self.objective)
        scale = objective.scale()
        return {
            "epoch": epoch,
            "train_loss": stats["train_loss"],
            **val,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "logit_scale": None if scale is None else float(scale.detach()),
            "n_steps": stats["n_steps"],
            "train_seconds": stats["seconds"],
            "trials_per_s": stats["trials_per_s"],
        }

    def _save(self, epoch: int, *, best: bool) -> None:
        if self.run_dir is None:
            if best:  # no run directory: keep the selected weights in memory
                self._best_snapshot = (
                    {k: v.detach().clone() for k, v in _unwrap(self.encoder).state_dict().items()},
                    {k: v.detach().clone() for k, v in _unwrap(self.objective).state_dict().items()},
                )
            return
        if not self.is_main:
            return
        from ..utils import atomic_write_json

        encoder = _unwrap(self.encoder)
        state, meta = self._state(epoch), self._meta(epoch)
        if best:
            save_checkpoint(self.run_dir / BEST, encoder=encoder, state=state, meta=meta)
        save_checkpoint(self.run_dir / LAST, encoder=encoder, state=state, meta=meta)
        atomic_write_json(self.run_dir / HISTORY_FILE, self.history)

    def _best_weights(self) -> None:
        """Load the selected epoch's weights (from ``best/`` on disk, or from memory without a run directory)."""
        encoder, objective = _unwrap(self.encoder), _unwrap(self.objective)
        if self.run_dir is not None:
            if (self.run_dir / BEST).is_dir():
                load_encoder_weights(encoder, self.run_dir / BEST)
                state, _ = load_checkpoint(self.run_dir / BEST)
                objective.load_state_dict(state["objective"])
        elif self._best_snapshot is not None:
            encoder.load_state_dict(self._best_snapshot[0])
            objective.load_state_dict(self._best_snapshot[1])

    _best_snapshot: tuple[dict, dict] | None = None

    def _finish(self) -> TrainResult:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
        self._best_weights()
        encoder, objective = _unwrap(self.encoder).eval(), _unwrap(self.objective).eval()
        test, reason = self._evaluate_test(encoder, objective)
        model_dir = self._export(encoder) if self.run_dir is not None and self.is_main else None
        best = self.history[self.best_epoch - 1] if 0 < self.best_epoch <= len(self.history) else {}
        results = {
            "selection": {
                "metric": self.config.selection if self.data.val is not None else "last_epoch",
                "rule": self._selection_rule(),
                "best_epoch": self.best_epoch,
                "best_metric": self.best_metric,
                "selected_on_test": False,
            },
            "validation": {k: best.get(k) for k in ("val_loss", "val_top1", "val_concept_top1")},
            "test": None if test is None else test.to_dict(),
            "test_skipped": reason,
            "split": self.data.split.to_dict(),
            "subjects": {"train": self.data.train_subjects, "test": self.data.test_subject},
            "init_digest": self.init_digest,
            "epochs": len(self.history),
            "toolkit_version": __version__,
        }
        if model_dir is not None:
            results["model_dir"] = model_dir.name
        if self.run_dir is not None and self.is_main:
            from ..utils import atomic_write_json

            atomic_write_json(self.run_dir / RESULTS_FILE, results)
        return TrainResult(
            config=self.config,
            run_dir=self.run_dir,
            encoder=encoder,
            objective=objective,
            history=list(self.history),
            best_epoch=self.best_epoch,
            best_metric=self.best_metric,
            split=self.data.split,
            test=test,
            results=results,
            model_dir=model_dir,
        )

    def _export(self, model: nn.Module) -> Path | None:
        """Write the selected model ready to load (the other tasks); encoders are used from ``best/``."""
        return None

    # -- test -------------------------------------------------------------------------------------------------
    def _selection_rule(self) -> str:
        split = self.data.split
        if self.data.val is None:
            return f"{split.describe()}; the last epoch ({len(self.history)}) is kept"
        how = "lowest validation loss" if self.config.selection == "val_loss" else "highest validation top-1"
        # The selected epoch goes to the card's notes, so that folds/subjects share one selection rule.
        return f"{split.describe()}; checkpoint with the {how} over {len(self.history)} epochs; test evaluated " \
               "once, after selection"

    def protocol_card(self) -> ProtocolCard:
        """The protocol card of this run's test evaluation."""
        from ..retrieval import ProtocolCard, config_hash

        info, cfg, data = self.data.info, self.config, self.data
        dataset = str(info["dataset"])
        pretty = (
            "THINGS-EEG2" if dataset.startswith("things-eeg")
            else "THINGS-MEG" if dataset.startswith("things-meg")
            else "simulated THINGS-like (toolkit simulator)" if dataset == "simulated"
            else dataset
        )
        eeg_norm = (
            "MVNN (official preprocessing)" if dataset.startswith("things-eeg")
            else "none (simulated)" if dataset == "simulated"
            else "as stored"
        )
        n_chans = int(info["n_chans"])
        start, stop = info["time_window"]
        classification = cfg.objective == "classification"
        reps = int(info["test_repetitions"] or 1) if cfg.average_test else 1
        split = data.split
        ids = split.val_concepts if split.unit == "concepts" else split.val_conditions
        notes = f"selected epoch {self.best_epoch}; " + (
            f"validation held-out {split.unit} (training-split indices): {', '.join(map(str, ids))}"
            if split.n_val else "no validation split"
        )
        full_config = {"train": cfg.to_dict(), "encoder": _unwrap(self.encoder).config.to_dict()}
        for key in ("out", "resume", "device", "accelerate", "num_workers", "progress"):
            full_config["train"].pop(key, None)
        return ProtocolCard(
            dataset=pretty,
            data_variant=f"{dataset} ({info['n_chans']} ch, {info['n_times']} samples at {info['sfreq']:g} Hz)",
            subjects=(data.test_subject,),
            split="test",
            gallery=(
                f"learned linear classifier over {data.n_classes} training classes (logits as scores)"
                if classification else f"test images, {info['n_test_conditions']} conditions"
            ),
            gallery_kind="class_centre" if classification else "image",
            n_channels=n_chans,
            channels=f"all {n_chans}",
            time_window=(start, max(stop, start + 1 / info["sfreq"])),
            sfreq=float(info["sfreq"]),
            repetitions_averaged=reps,
            training_setting=SETTING_NAMES[cfg.setting],
            backbone=data.backbone if not classification else "none (class labels)",
            eeg_normalisation=eeg_norm,
            selection_rule=self._selection_rule(),
            selected_on_test=False,
            encoder=cfg.encoder,
            config_hash=config_hash(full_config),
            training_seed=cfg.seed,
            notes=notes,
        )

    def _evaluate_test(self, encoder: nn.Module, objective: Objective) -> tuple[RetrievalResult | None, str | None]:
        from ..retrieval import evaluate_retrieval

        cfg = self.config
        test = self.data.test_dataset()
        if test is None:
            return None, f"no test data for {self.data.test_subject}"
        if cfg.objective == "classification":
            if self.data.test_labels is None:
                return None, "the test classes are not among the training classes (zero-shot concepts)"
            labels = self.data.test_labels[test.sample_conditions]
            embeds = embed_dataset(encoder, test, batch_size=cfg.batch_size, device=self.device)
            with torch.no_grad():
                logits = objective.head(embeds.to(self.device)).cpu().numpy().astype(np.float64)
            gallery = np.eye(self.data.n_classes)
            return evaluate_retrieval(
                logits, gallery, labels, normalize=False, protocol=self.protocol_card(), seed=cfg.seed
            ), None
        if self.data.test_image_embeds is None:
            return None, "no test image embeddings (pass --test-image-embeds)"
        if self.embed_dim != self.data.test_image_embeds.shape[1]:
            return None, "the encoder's embeddings do not live in the image-embedding space"
        embeds = embed_dataset(encoder, test, batch_size=cfg.batch_size, device=self.device).numpy()
        return evaluate_retrieval(
            embeds,
            self.data.test_image_embeds,
            test.sample_conditions,
            normalize=True,
            protocol=self.protocol_card(),
            seed=cfg.seed,
        ), None


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and Python in a DataLoader worker from its torch seed (set by the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# ==================================================================================================== entry points
def train(
    config: TrainConfig,
    *,
    encoder: EEGEncoder | None = None,
    embedder: Any = None,
    callbacks: Iterable[Any] = (),
    accelerator: Any = None,
    data: Any = None,
) -> TrainResult:
    """Run a training configuration (see :class:`Trainer`) and return its :class:`TrainResult`.

    Parameters
    ----------
    config : TrainConfig
        What to train (``config.task``: an EEG encoder, the prior, the low-level encoder or the projector).
    encoder : nn.Module | None
        Train this model instead of building a fresh one (an EEG encoder, or the task's model).
    embedder : toolkit.embeddings.Embedder | None
        Compute the image/text embeddings with this embedder (encoder task).
    callbacks : iterable of Callback | callable
        Hooks (a callable ``f(trainer, record)`` is called after each epoch).
    accelerator : accelerate.Accelerator | None
        Use this accelerator.
    data : RunData | TaskData | None
        Pre-built data (e.g. :func:`toolkit.training.tasks.build_task_data` from in-memory arrays).

    Returns
    -------
    TrainResult
        The selected model, the history and the results.
    """
    return Trainer(
        config, encoder=encoder, embedder=embedder, callbacks=callbacks, accelerator=accelerator, data=data
    ).fit()


def train_loso(
    config: TrainConfig,
    *,
    subjects: Sequence[str] | None = None,
    embedder: Any = None,
    callbacks: Iterable[Any] = (),
) -> dict[str, TrainResult]:
    """Every leave-one-subject-out fold: each held-out subject gets a **freshly initialised** encoder.

    Parameters
    ----------
    config : TrainConfig
        The configuration (its ``setting`` is forced to ``"loso"``); with ``out`` set, fold ``s`` is written to
        ``out/s``.
    subjects : sequence of str | None
        Held-out subjects (default: the pool, ``config.subjects`` or every subject of the data).

    Returns
    -------
    dict of str to TrainResult
        One result per held-out subject.
    """
    from ..retrieval import summarize_subjects, summary_to_dict
    from .data import _data_subjects

    if config.task != "encoder":
        raise ToolkitError(f"Leave-one-subject-out folds train EEG encoders; --task {config.task} has none.")
    if config.data is None:
        raise ToolkitError("No training data given; pass data (--data STORE_OR_ROOT).")
    pool = list(config.subjects) if config.subjects is not None else _data_subjects(config.data)
    held_out = list(subjects) if subjects is not None else pool
    results = {}
    for subject in held_out:
        out = None if config.out is None else str(Path(config.out) / subject)
        fold = dataclasses.replace(config, setting="loso", subject=subject, subjects=tuple(pool), out=out)
        # A new Trainer builds a new encoder from the seed: nothing of the previous fold survives (ATM issue #7).
        results[subject] = Trainer(fold, embedder=embedder, callbacks=callbacks).fit()
    tested = {s: r.test for s, r in results.items() if r.test is not None}
    if config.out is not None and len(tested) == len(results) and len(results) > 1:
        from ..utils import atomic_write_json

        atomic_write_json(Path(config.out) / "summary.json", summary_to_dict(summarize_subjects(tested)))
    return results
