"""Few-shot adaptation: fine-tune a trained encoder to a new subject or paradigm from a few labelled trials.

The new trials come as a :class:`~toolkit.data.TrialSet` on the encoder's montage and window (for example from
:func:`toolkit.data.import_recording` with the model's import target) with, per condition, an image embedding
(contrastive / MSE objectives) or a class label (classification with a new linear head). A seeded part of those
trials is held out for validation; the epoch with the best validation metric is kept, the unadapted encoder
(epoch 0) included, so adaptation never returns a model that validates worse than the one it started from.

What is trained (``AdaptConfig.mode``):

- ``"last"`` — only the last ``n_last`` child modules of the encoder (for ATM-S the projector);
- ``"subject"`` — only the subject token (a row of the subject table, or the shared token);
- ``"adapter"`` — only a small channel-mixing adapter placed before the frozen encoder (``n_chans²`` weights,
  initialised to the identity), the usual subject-specific spatial layer;
- ``"all"`` — every parameter.

Frozen BatchNorm layers stay in eval mode, so their running statistics do not drift on the few new trials.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ToolkitError
from .config import TrainConfig
from .data import UNKNOWN_SUBJECT, PairedTrials, make_validation_split

__all__ = ["ADAPT_MODES", "AdaptConfig", "AdaptResult", "AdaptedEncoder", "ChannelAdapter", "adapt_encoder"]

ADAPT_MODES: tuple[str, ...] = ("last", "subject", "adapter", "all")
ADAPT_OBJECTIVES: tuple[str, ...] = ("clip", "mse", "classification")
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_META = "adapter.json"
ENCODER_SUBDIR = "encoder"


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """How to adapt (see the module notes).

    Parameters
    ----------
    mode : str
        ``"last"``, ``"subject"``, ``"adapter"`` or ``"all"``.
    n_last : int
        Trailing child modules trained with ``mode="last"``.
    subject_id : int | None
        Subject-table row of the new subject (its trials are fed with this id; ``mode="subject"`` trains that row).
        ``None``: the new subject is unknown to the encoder (its shared token, which ``"subject"`` then trains).
    objective : str
        ``"clip"`` (image embeddings), ``"mse"`` (raw image embeddings) or ``"classification"`` (class labels).
    loss_normalize : bool
        L2-normalise inside the contrastive loss.
    target_normalize : bool
        L2-normalise the image embeddings (use ``False`` with ``"mse"`` on raw embeddings).
    logit_scale, logit_scale_init : str, float
        Logit-scale parametrisation and start value (when no trained logit scale is passed in).
    epochs, batch_size, lr, weight_decay : int, int, float, float
        AdamW settings (few epochs, small batches).
    grad_clip : float | None
        Gradient-norm clipping.
    val_fraction : float
        Fraction of the new conditions held out for validation, in (0, 0.9].
    val_unit : str
        ``"images"`` (conditions) or ``"concepts"``.
    selection : str
        ``"val_loss"`` or ``"val_top1"``.
    seed : int
        Seeds the split, shuffling, dropout and new layers.
    progress : bool
        Show a progress bar per epoch.
    """

    mode: str = "last"
    n_last: int = 1
    subject_id: int | None = None
    objective: str = "clip"
    loss_normalize: bool = False
    target_normalize: bool = True
    logit_scale: str = "raw"
    logit_scale_init: float = math.log(1 / 0.07)
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None
    val_fraction: float = 0.25
    val_unit: str = "images"
    selection: str = "val_loss"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ADAPT_MODES:
            raise ToolkitError(f"Unknown adaptation mode {self.mode!r}; known modes: {', '.join(ADAPT_MODES)}.")
        if self.objective not in ADAPT_OBJECTIVES:
            raise ToolkitError(
                f"Unknown adaptation objective {self.objective!r}; known objectives: {', '.join(ADAPT_OBJECTIVES)}."
            )
        for name, minimum in (("n_last", 1), ("epochs", 1), ("batch_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ToolkitError(f"AdaptConfig.{name} must be an integer >= {minimum}; got {value!r}.")
        if self.subject_id is not None and (
            isinstance(self.subject_id, bool) or not isinstance(self.subject_id, int) or self.subject_id < 0
        ):
            raise ToolkitError(
                f"AdaptConfig.subject_id must be a non-negative integer or None; got {self.subject_id!r}."
            )
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction <= 0.9:
            raise ToolkitError(
                f"AdaptConfig.val_fraction must be in (0, 0.9]: adaptation needs held-out trials to validate on; got "
                f"{self.val_fraction!r}."
            )
        if self.val_unit not in ("images", "concepts"):
            raise ToolkitError(f"Unknown val_unit {self.val_unit!r}; known values: images, concepts.")
        if self.selection not in ("val_loss", "val_top1"):
            raise ToolkitError(f"Unknown selection {self.selection!r}; known values: val_loss, val_top1.")
        if self.objective == "classification" and self.val_unit == "concepts":
            raise ToolkitError("Classification cannot validate on held-out classes; use val_unit='images'.")
        for name in ("lr",):
            if not isinstance(getattr(self, name), (int, float)) or not getattr(self, name) > 0:
                raise ToolkitError(f"AdaptConfig.{name} must be a positive number; got {getattr(self, name)!r}.")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ToolkitError(f"AdaptConfig.weight_decay must be >= 0; got {self.weight_decay!r}.")

    def objective_config(self) -> TrainConfig:
        """The training configuration that parametrises the objective."""
        return TrainConfig(
            objective=self.objective,
            loss_normalize=self.loss_normalize,
            logit_scale=self.logit_scale,
            logit_scale_init=self.logit_scale_init,
            val_unit="images",
            target_normalize=self.target_normalize,
        )


# ==================================================================================================== modules
class ChannelAdapter(nn.Module):
    """A learnable channel-mixing matrix applied to EEG before an encoder: ``eeg' = W @ eeg`` (``W`` starts as I).

    Parameters
    ----------
    n_chans : int
        Number of channels.
    """

    def __init__(self, n_chans: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(n_chans))

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        """Mix the channels of ``(batch, n_chans, n_times)`` EEG."""
        return torch.matmul(self.weight, eeg)


class AdaptedEncoder(nn.Module):
    """An encoder behind an optional :class:`ChannelAdapter`, with the same ``forward(eeg, subject_ids=None)``.

    Parameters
    ----------
    encoder : EEGEncoder
        The (adapted) encoder.
    adapter : ChannelAdapter | None
        The adapter applied first.
    frozen_batchnorm : bool
        Keep BatchNorm layers whose parameters are all frozen in eval mode whenever the module enters training.
    """

    def __init__(self, encoder: nn.Module, adapter: ChannelAdapter | None = None, *, frozen_batchnorm: bool = True):
        super().__init__()
        self.encoder = encoder
        self.adapter = adapter
        self.frozen_batchnorm = frozen_batchnorm

    @property
    def config(self) -> Any:
        """The wrapped encoder's configuration."""
        return self.encoder.config

    @property
    def name(self) -> str:
        """The wrapped encoder's registry name."""
        return self.encoder.name

    def forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embed EEG ``(batch, n_chans, n_times)`` → ``eeg_embeds`` ``(batch, embed_dim)``, not normalised."""
        if self.adapter is not None:
            eeg = self.adapter(eeg)
        return self.encoder(eeg, subject_ids)

    def train(self, mode: bool = True) -> AdaptedEncoder:
        super().train(mode)
        if mode and self.frozen_batchnorm:
            for module in self.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()
                ):
                    module.eval()
        return self

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the encoder (``directory/encoder``, ``save_pretrained``) and the adapter (``adapter.safetensors``)."""
        from safetensors.torch import save_file

        from ..utils import atomic_path, atomic_write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory / ENCODER_SUBDIR)
        if self.adapter is not None:
            with atomic_path(directory / ADAPTER_FILE) as tmp:
                save_file({"weight": self.adapter.weight.detach().cpu().contiguous()}, str(tmp))
        atomic_write_json(
            directory / ADAPTER_META,
            {"format": "eeg-visual-toolkit/adapted-encoder", "adapter": "channel" if self.adapter else None,
             "encoder_dir": ENCODER_SUBDIR},
        )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> AdaptedEncoder:
        """Load what :meth:`save_pretrained` wrote (in eval mode)."""
        from .._pretrained import load_checked_state_dict, read_state_dict
        from ..encoders import EEGEncoder

        directory = Path(directory)
        meta_path = directory / ADAPTER_META
        if not meta_path.is_file():
            raise ToolkitError(f"'{directory}' holds no {ADAPTER_META}; it is not an adapted encoder.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ToolkitError(f"'{meta_path}' is not valid JSON ({err}).") from None
        if not isinstance(meta, dict) or meta.get("adapter") not in ("channel", None):
            raise ToolkitError(
                f"'{meta_path}' must be an object whose 'adapter' is \"channel\" or null; save the adapted encoder "
                "again."
            )
        encoder = EEGEncoder.from_pretrained(directory / ENCODER_SUBDIR)
        adapter = None
        if meta.get("adapter") == "channel":
            path = directory / ADAPTER_FILE
            adapter = ChannelAdapter(encoder.config.n_chans)
            load_checked_state_dict(
                adapter,
                read_state_dict(path, what="channel adapter"),
                source=str(path),
                what=f"channel adapter of the encoder's {encoder.config.n_chans} channels",
            )
        return cls(encoder, adapter).eval()


@dataclass
class AdaptResult:
    """The adapted model and what happened.

    Attributes
    ----------
    encoder : nn.Module
        The adapted encoder: an :class:`~toolkit.encoders.EEGEncoder` (modes last / subject / all) or an
        :class:`AdaptedEncoder` (mode adapter), in eval mode, with the selected epoch's weights.
    objective : Objective
        The objective (logit scale or the new classification head) at the selected epoch.
    report : dict
        Mode, trainable parameters, split ids, validation metrics before (epoch 0) and after, the selected epoch
        and the per-epoch history. The validation trials chose the epoch, so "after" is optimistic.
    """

    encoder: nn.Module
    objective: Any
    report: dict[str, Any] = field(default_factory=dict)


# ==================================================================================================== adaptation
def _set_trainable(model: AdaptedEncoder, config: AdaptConfig) -> None:
    encoder = model.encoder
    for p in encoder.parameters():
        p.requires_grad_(config.mode == "all")
    if config.mode == "last":
        children = [m for _, m in encoder.named_children() if any(True for _ in m.parameters())]
        if not children:
            raise ToolkitError(f"The '{encoder.name}' encoder has no sub-modules with parameters to adapt.")
        for module in children[-config.n_last:]:
            for p in module.parameters():
                p.requires_grad_(True)
    elif config.mode == "subject":
        table = getattr(encoder, "subject_embedding", None)
        shared = getattr(encoder, "shared_token", None)
        if not isinstance(table, nn.Embedding) or not isinstance(shared, nn.Parameter):
            raise ToolkitError(
                f"mode 'subject' needs an encoder with subject tokens (e.g. atm-s); the '{encoder.name}' encoder has "
                "none; use mode 'last', 'adapter' or 'all'."
            )
        if config.subject_id is None or config.subject_id >= table.num_embeddings:
            if config.subject_id is not None:
                raise ToolkitError(
                    f"subject_id {config.subject_id} is outside the encoder's subject table of {table.num_embeddings} "
                    "rows; pick a free row or None (the shared token)."
                )
            shared.requires_grad_(True)
        else:
            table.weight.requires_grad_(True)


def _metrics(model: nn.Module, objective: Any, val: PairedTrials, queries: PairedTrials, gallery: np.ndarray | None,
             config: AdaptConfig, device: torch.device) -> dict[str, float | None]:
    from .trainer import embed_dataset, evaluate_loss, retrieval_top1

    out: dict[str, float | None] = {
        "val_loss": evaluate_loss(model, objective, val, batch_size=config.batch_size, device=device),
        "val_top1": None,
    }
    embeds = embed_dataset(model, queries, batch_size=config.batch_size, device=device)
    conds = queries.sample_conditions
    if config.objective == "classification":
        with torch.no_grad():
            logits = objective.head(embeds.to(device)).cpu()
        out["val_top1"] = float((logits.argmax(1) == torch.from_numpy(queries.labels[conds])).float().mean())
    elif gallery is not None:
        val_conds = np.unique(conds)
        out["val_top1"], _ = retrieval_top1(embeds.numpy(), gallery[val_conds], np.searchsorted(val_conds, conds))
    return out


def _better(config: AdaptConfig, value: float | None, best: float | None) -> bool:
    if value is None:
        return False
    if best is None:
        return True
    return value < best if config.selection == "val_loss" else value > best


def adapt_encoder(
    encoder: nn.Module,
    trials: Any,
    *,
    image_embeds: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    config: AdaptConfig | None = None,
    logit_scale: nn.Module | None = None,
    device: str | torch.device = "cpu",
) -> AdaptResult:
    """Fine-tune a copy of ``encoder`` on a few labelled trials of a new subject or paradigm.

    Parameters
    ----------
    encoder : EEGEncoder
        The trained encoder (left untouched: a copy is adapted).
    trials : TrialSet
        The new trials, on the encoder's channels and samples (``n_chans`` x ``n_times``).
    image_embeds : np.ndarray | None, shape (n_conditions, embed_dim)
        One image embedding per condition (objectives ``clip`` / ``mse``).
    labels : np.ndarray | None, shape (n_conditions,)
        Class label per condition (objective ``classification``; default :meth:`TrialSet.labels`).
    config : AdaptConfig | None
        Mode, objective and optimisation (default :class:`AdaptConfig`).
    logit_scale : LogitScale | None
        The logit scale trained with the encoder (its value is copied; default: a fresh one).
    device : str | torch.device
        Where to train.

    Returns
    -------
    AdaptResult
        The adapted encoder, the objective and a report.
    """
    from torch.utils.data import BatchSampler, DataLoader

    from ..data import TrialSet
    from ..embeddings import l2_normalize
    from ..encoders import EEGEncoder
    from .data import EpochSampler, collate_trials
    from .losses import Objective
    from .trainer import _seed_everything, run_epoch

    config = config or AdaptConfig()
    if not isinstance(config, AdaptConfig):
        raise ToolkitError(f"config must be an AdaptConfig; got {type(config).__name__}.")
    if not isinstance(encoder, EEGEncoder):
        raise ToolkitError(f"adapt_encoder needs a toolkit EEGEncoder; got {type(encoder).__name__}.")
    if not isinstance(trials, TrialSet):
        raise ToolkitError(f"trials must be a TrialSet; got {type(trials).__name__}.")
    ec = encoder.config
    if (trials.n_chans, trials.n_times) != (ec.n_chans, ec.n_times):
        raise ToolkitError(
            f"The new trials have {trials.n_chans} channels x {trials.n_times} samples but the encoder expects "
            f"{ec.n_chans} x {ec.n_times}; import them onto the model's montage and window first "
            "(toolkit.data.import_recording with the model's target)."
        )
    device = torch.device(device)
    gallery = None
    if config.objective in ("clip", "mse"):
        if image_embeds is None:
            raise ToolkitError(
                f"The {config.objective!r} adaptation objective needs image_embeds (one per condition)."
            )
        gallery = np.ascontiguousarray(image_embeds, dtype=np.float32)
        if gallery.ndim != 2 or gallery.shape[0] != trials.n_conditions:
            raise ToolkitError(
                f"image_embeds has shape {tuple(gallery.shape)} but the trials have {trials.n_conditions} conditions; "
                "pass one embedding per condition."
            )
        if gallery.shape[1] != ec.embed_dim:
            raise ToolkitError(
                f"image_embeds are {gallery.shape[1]}-d but the encoder outputs {ec.embed_dim}-d embeddings "
                "(embedding dim mismatch); embed the images with the encoder's backbone."
            )
        if config.target_normalize:
            gallery = l2_normalize(gallery)
    label_arr = np.asarray(labels if labels is not None else trials.labels(), dtype=np.int64)
    if label_arr.shape != (trials.n_conditions,):
        raise ToolkitError(f"labels must hold one label per condition ({trials.n_conditions}); got {label_arr.shape}.")

    concepts = label_arr if trials.images is None else np.asarray(trials.images.condition_concept, dtype=np.int64)
    split = make_validation_split(concepts, fraction=config.val_fraction, unit=config.val_unit, seed=config.seed)
    sid = UNKNOWN_SUBJECT if config.subject_id is None else config.subject_id
    common = {"image_embeds": gallery, "labels": label_arr, "concept_of": concepts}
    train_set = PairedTrials([trials], [sid], conditions=split.train_conditions, **common)
    val = PairedTrials([trials], [sid], conditions=split.val_conditions, order_seed=config.seed, **common)
    queries = PairedTrials([trials], [sid], conditions=split.val_conditions, average=True, **common)

    _seed_everything(config.seed)
    adapter = ChannelAdapter(ec.n_chans) if config.mode == "adapter" else None
    model = AdaptedEncoder(copy.deepcopy(encoder), adapter).to(device)
    _set_trainable(model, config)
    table_before = None
    if config.mode == "subject" and model.encoder.subject_embedding.weight.requires_grad:
        table_before = model.encoder.subject_embedding.weight.detach().clone()
    n_classes = int(label_arr.max()) + 1
    objective = Objective(config.objective_config(), embed_dim=ec.embed_dim, n_classes=n_classes).to(device)
    if logit_scale is not None and objective.logit_scale is not None:
        objective.logit_scale.load_state_dict(logit_scale.state_dict())
    params = [p for p in model.parameters() if p.requires_grad] + list(objective.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sampler = EpochSampler(len(train_set), config.seed)
    loader = DataLoader(
        train_set, batch_sampler=BatchSampler(sampler, config.batch_size, False), collate_fn=collate_trials
    )

    def snapshot() -> tuple[dict, dict]:
        return (
            {k: v.detach().clone() for k, v in model.state_dict().items()},
            {k: v.detach().clone() for k, v in objective.state_dict().items()},
        )

    before = _metrics(model, objective, val, queries, gallery, config, device)
    best_value, best_epoch, best_state = before[config.selection], 0, snapshot()
    history = [{"epoch": 0, **before}]
    for epoch in range(1, config.epochs + 1):
        sampler.set_epoch(epoch)
        stats = run_epoch(
            model, objective, optimizer, loader, device=device, grad_clip=config.grad_clip, params=params,
            desc=f"adapt {epoch}/{config.epochs}", show_progress=config.progress,
        )
        metrics = _metrics(model, objective, val, queries, gallery, config, device)
        history.append({"epoch": epoch, "train_loss": stats["train_loss"], **metrics})
        if _better(config, metrics[config.selection], best_value):
            best_value, best_epoch, best_state = metrics[config.selection], epoch, snapshot()
    model.load_state_dict(best_state[0])
    objective.load_state_dict(best_state[1])
    if table_before is not None:  # only the new subject's row may change
        with torch.no_grad():
            keep = torch.ones(table_before.shape[0], dtype=torch.bool)
            keep[config.subject_id] = False
            model.encoder.subject_embedding.weight[keep] = table_before[keep].to(device)
    after = history[best_epoch]
    report = {
        "mode": config.mode,
        "objective": config.objective,
        "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "n_train_trials": len(train_set),
        "n_val_trials": len(val),
        "split": split.to_dict(),
        "before": before,
        "after": {k: after.get(k) for k in ("val_loss", "val_top1")},
        "best_epoch": best_epoch,
        "improved": best_epoch > 0,
        "selection": config.selection,
        "history": history,
        "note": "the validation trials also chose the epoch, so 'after' is optimistic; judge on other trials",
    }
    for p in model.parameters():
        p.requires_grad_(True)
    result_model: nn.Module = model if adapter is not None else model.encoder
    return AdaptResult(encoder=result_model.eval(), objective=objective.eval(), report=report)
