"""Training losses: CLIP InfoNCE, the ATM mixes, MSE, classification, and the objective that selects among them.

All embedding losses take ``eeg_embeds`` and target embeddings ``(batch, embed_dim)`` and never normalise behind
the caller's back: contrastive losses have an explicit ``normalize`` argument (ATM's reference code does not
normalise inside its loss; open_clip does). The logit multiplier comes from a
:class:`~toolkit.encoders.LogitScale` (``"raw"``: ATM's parameter used directly, initialised to ``log(1/0.07)``,
unclamped; ``"exp"``: open_clip's exponential of a clamped parameter) and is passed in as a tensor.

Reference formulas (reference/ATM.md §4.1):

- ``clip_loss``: logits = s · A · Bᵀ; the mean of the cross-entropies of the rows and of the columns against the
  diagonal. Duplicate images or concepts inside a batch count as negatives, as in the reference.
- ``atm_mix_loss``: ``(1 - text_weight) · CLIP(eeg, image) + text_weight · CLIP(eeg, text)``, 0.99 / 0.01.
- ``recon_mix_loss``: ``mse_weight · MSE(eeg, image) + clip_weight · CLIP(eeg, image)``, 9 / 1 on raw embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ToolkitError
from .config import EMBEDDING_OBJECTIVES, OBJECTIVES, TrainConfig

__all__ = [
    "Objective",
    "atm_mix_loss",
    "classification_loss",
    "clip_loss",
    "mse_loss",
    "recon_mix_loss",
]


def _check_pair(eeg_embeds: torch.Tensor, target_embeds: torch.Tensor, what: str) -> None:
    if eeg_embeds.ndim != 2 or target_embeds.ndim != 2 or eeg_embeds.shape != target_embeds.shape:
        raise ToolkitError(
            f"{what} needs eeg_embeds and target embeddings of the same shape (batch, embed_dim); got "
            f"{tuple(eeg_embeds.shape)} and {tuple(target_embeds.shape)}; check that the embedding files match the "
            "encoder's embed_dim."
        )


def clip_loss(
    eeg_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    normalize: bool,
) -> torch.Tensor:
    """Symmetric CLIP InfoNCE between paired rows of ``eeg_embeds`` and ``target_embeds``.

    Parameters
    ----------
    eeg_embeds : torch.Tensor, shape (batch, embed_dim)
        EEG embeddings.
    target_embeds : torch.Tensor, shape (batch, embed_dim)
        Image (or text) embeddings; row ``i`` is the positive of EEG row ``i``, every other row a negative.
    logit_scale : torch.Tensor | float
        The multiplier of the similarity logits (the output of a :class:`~toolkit.encoders.LogitScale`).
    normalize : bool
        L2-normalise both sides first (cosine logits) or use the embeddings as they are (ATM).

    Returns
    -------
    torch.Tensor
        The scalar loss ``(CE(logits, diag) + CE(logitsᵀ, diag)) / 2``.
    """
    _check_pair(eeg_embeds, target_embeds, "clip_loss")
    if normalize:
        eeg_embeds = F.normalize(eeg_embeds, dim=-1)
        target_embeds = F.normalize(target_embeds, dim=-1)
    logits = logit_scale * eeg_embeds @ target_embeds.t()
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def atm_mix_loss(
    eeg_embeds: torch.Tensor,
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    normalize: bool,
    text_weight: float = 0.01,
) -> torch.Tensor:
    """ATM's retrieval loss: ``(1 - text_weight) · CLIP(eeg, image) + text_weight · CLIP(eeg, text)``.

    Parameters
    ----------
    eeg_embeds, image_embeds, text_embeds : torch.Tensor, shape (batch, embed_dim)
        Paired rows: each trial's EEG embedding, its image's embedding and its concept's text embedding.
    logit_scale : torch.Tensor | float
        Shared multiplier of both terms (ATM uses one scale).
    normalize : bool
        See :func:`clip_loss`.
    text_weight : float
        Weight of the text term (ATM: 0.01).

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    image_term = clip_loss(eeg_embeds, image_embeds, logit_scale, normalize=normalize)
    text_term = clip_loss(eeg_embeds, text_embeds, logit_scale, normalize=normalize)
    return (1.0 - text_weight) * image_term + text_weight * text_term


def mse_loss(eeg_embeds: torch.Tensor, target_embeds: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (``torch.nn.MSELoss()``), e.g. regression onto raw image embeddings."""
    _check_pair(eeg_embeds, target_embeds, "mse_loss")
    return F.mse_loss(eeg_embeds, target_embeds)


def recon_mix_loss(
    eeg_embeds: torch.Tensor,
    image_embeds: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    normalize: bool,
    mse_weight: float = 9.0,
    clip_weight: float = 1.0,
) -> torch.Tensor:
    """ATM's reconstruction loss: ``mse_weight · MSE(eeg, image) + clip_weight · CLIP(eeg, image)`` (9 and 1).

    Parameters
    ----------
    eeg_embeds, image_embeds : torch.Tensor, shape (batch, embed_dim)
        EEG embeddings and the **raw** (unnormalised) image embeddings they should reproduce.
    logit_scale : torch.Tensor | float
        Multiplier of the contrastive term.
    normalize : bool
        Normalisation inside the contrastive term only (the MSE always compares the raw vectors).
    mse_weight, clip_weight : float
        The weights (ATM: 0.9 · 10 and 0.1 · 10).

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    return mse_weight * mse_loss(eeg_embeds, image_embeds) + clip_weight * clip_loss(
        eeg_embeds, image_embeds, logit_scale, normalize=normalize
    )


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of class ``logits`` ``(batch, n_classes)`` against integer ``labels`` ``(batch,)``."""
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ToolkitError(
            f"classification_loss needs logits (batch, n_classes) and labels (batch,); got {tuple(logits.shape)} "
            f"and {tuple(labels.shape)}."
        )
    return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)


class Objective(nn.Module):
    """The training objective of a run: the loss selected by ``config.objective`` and its own parameters.

    It owns the learnable logit scale of the contrastive objectives and the linear head of the classification
    objective; both are optimised with the encoder and saved in the trainer state (retrieval never needs them).

    Parameters
    ----------
    config : TrainConfig
        The (resolved) training configuration: ``objective``, ``loss_normalize``, ``logit_scale``,
        ``logit_scale_init``, ``text_weight``, ``mse_weight``, ``clip_weight``, ``label_smoothing``.
    embed_dim : int
        The encoder's output size (input of the classification head).
    n_classes : int | None
        Number of classes (classification only).
    """

    def __init__(self, config: TrainConfig, *, embed_dim: int, n_classes: int | None = None) -> None:
        from ..encoders import LogitScale

        super().__init__()
        config = config.resolved()
        if config.task != "encoder":
            raise ToolkitError(
                f"Objective trains EEG encoders; --task {config.task} has its own objective (DiffusionObjective or "
                "RegressionObjective in toolkit.training.tasks)."
            )
        if config.objective not in OBJECTIVES:
            raise ToolkitError(f"Unknown objective {config.objective!r}; known objectives: {', '.join(OBJECTIVES)}.")
        self.name = config.objective
        self.normalize = config.loss_normalize
        self.text_weight = config.text_weight
        self.mse_weight = config.mse_weight
        self.clip_weight = config.clip_weight
        self.label_smoothing = config.label_smoothing
        self.logit_scale = (
            LogitScale(config.logit_scale, config.logit_scale_init)
            if config.objective in ("clip", "atm-mix", "recon-mix")
            else None
        )
        self.head: nn.Linear | None = None
        if config.objective == "classification":
            if not n_classes or n_classes < 2:
                raise ToolkitError(
                    f"The classification objective needs at least 2 classes in the training data; got {n_classes}."
                )
            self.head = nn.Linear(embed_dim, n_classes)

    @property
    def needs_images(self) -> bool:
        """Whether the loss needs image embeddings."""
        return self.name in EMBEDDING_OBJECTIVES

    @property
    def needs_texts(self) -> bool:
        """Whether the loss needs text embeddings."""
        return self.name == "atm-mix"

    def scale(self) -> torch.Tensor | None:
        """The current logit multiplier (``None`` for objectives without one)."""
        return None if self.logit_scale is None else self.logit_scale()

    def forward(self, encoder: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The loss of ``encoder`` on ``batch`` and the EEG embeddings it computed.

        Parameters
        ----------
        encoder : nn.Module
            The encoder (possibly wrapped by accelerate); called as ``encoder(eeg, subject_ids)``. For the
            ``"model"`` objective, ``encoder.training_loss(batch)`` is called instead (unwrapped first).
        batch : Mapping
            ``eeg`` (batch, n_chans, n_times), ``image_embeds`` and ``text_embeds`` (batch, embed_dim) or empty,
            ``labels`` (batch,), ``subject_ids`` (batch,) or ``None``.

        Returns
        -------
        loss : torch.Tensor
            The scalar loss.
        eeg_embeds : torch.Tensor | None
            The embeddings (``None`` for the ``"model"`` objective).
        """
        if self.name == "model":
            model = getattr(encoder, "module", encoder)
            hook = getattr(model, "training_loss", None)
            if not callable(hook):
                raise ToolkitError(
                    f"objective 'model' needs an encoder with a training_loss(batch) method; "
                    f"{type(model).__name__} has none — choose another objective."
                )
            out = hook(batch)
            loss = out.get("loss") if isinstance(out, Mapping) else out
            if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                raise ToolkitError(
                    f"{type(model).__name__}.training_loss must return a scalar tensor (or a dict with 'loss'); got "
                    f"{type(loss).__name__}."
                )
            return loss, None
        eeg_embeds = encoder(batch["eeg"], batch.get("subject_ids"))
        if self.head is not None:  # the classification objective
            return classification_loss(
                self.head(eeg_embeds), batch["labels"], label_smoothing=self.label_smoothing
            ), eeg_embeds
        image = batch["image_embeds"]
        if self.name == "clip":
            loss = clip_loss(eeg_embeds, image, self.scale(), normalize=self.normalize)
        elif self.name == "atm-mix":
            loss = atm_mix_loss(
                eeg_embeds, image, batch["text_embeds"], self.scale(), normalize=self.normalize,
                text_weight=self.text_weight,
            )
        elif self.name == "recon-mix":
            loss = recon_mix_loss(
                eeg_embeds, image, self.scale(), normalize=self.normalize, mse_weight=self.mse_weight,
                clip_weight=self.clip_weight,
            )
        else:
            loss = mse_loss(eeg_embeds, image)
        return loss, eeg_embeds

    def extra_repr(self) -> str:
        return f"objective={self.name!r}, normalize={self.normalize}"
