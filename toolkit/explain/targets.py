"""Scalar attribution targets: small ``nn.Module`` wrappers that turn a model's output into one number per trial.

Attribution methods explain a scalar. An EEG encoder outputs an embedding ``(batch, embed_dim)``, so something
must say *which* scalar to explain; the wrappers here do, and captum sees ``forward(eeg, index, subject_ids)``
returning ``(batch,)`` (no captum ``target`` is needed):

- :class:`SimilarityTarget` — similarity of each trial's EEG embedding to its **true** image embedding (cosine with
  ``normalize=True``, raw dot product with ``normalize=False``). "What in the EEG makes it look like its image?"
- :class:`MarginTarget` — the rank margin: the true similarity minus the strongest competitor in the gallery
  (``reduce="max"``), or minus a smooth maximum ``temperature * logsumexp(s_others / temperature)``
  (``reduce="logsumexp"``). The margin is positive exactly when the true image is ranked first (with ``"max"``),
  so it explains *retrieval success* rather than similarity alone. The maximum is piecewise linear: its gradient
  reaches only the single strongest competitor and jumps when another one takes over; the log-sum-exp is a smooth
  upper bound of the maximum (within ``temperature * log(n_others)`` of it) whose gradient spreads over the close
  competitors, which path methods such as integrated gradients handle more gracefully.
- :class:`LogitTarget` — for classifiers: the logit of each trial's class.

``index`` holds, per trial, the row of ``image_embeds`` with the trial's true image (retrieval targets) or its
class (logit target). Build a target by name with :func:`make_target`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ToolkitError

TARGETS: tuple[str, ...] = ("similarity", "margin", "logit")
"""Names accepted by :func:`make_target` (and by ``target=`` of :func:`toolkit.explain.attribute`)."""

MARGIN_REDUCTIONS: tuple[str, ...] = ("max", "logsumexp")


def _call_model(model: nn.Module, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
    # Toolkit encoders take (eeg, subject_ids); plain classifiers may take eeg only.
    out = model(eeg) if subject_ids is None else model(eeg, subject_ids)
    if not isinstance(out, torch.Tensor):
        raise ToolkitError(
            f"The model returned a {type(out).__name__}, not a torch.Tensor; attribution needs a torch model whose "
            "forward returns a tensor (an EEG encoder's embeddings or a classifier's logits)."
        )
    if out.ndim != 2:
        raise ToolkitError(
            f"The model returned shape {tuple(out.shape)}; attribution targets need (batch, embed_dim) embeddings or "
            "(batch, n_classes) logits."
        )
    return out


def _check_index(index: torch.Tensor, n_items: int, what: str) -> None:
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_items):
        raise ToolkitError(
            f"index holds values from {int(index.min())} to {int(index.max())} but there are {n_items} {what} "
            f"(valid: 0 to {n_items - 1}); pass each trial's true {what[:-1]} index."
        )


class AttributionTarget(nn.Module):
    """Base class: wraps ``model`` and returns one scalar per trial.

    Subclasses implement :meth:`score`. ``forward(eeg, index, subject_ids=None)`` returns ``(batch,)``.

    Parameters
    ----------
    model : torch.nn.Module
        The EEG encoder (``forward(eeg, subject_ids=None) -> (batch, embed_dim)``) or classifier.
    """

    name: str = ""
    #: What ``index`` counts, for messages (``"gallery items"`` or ``"classes"``).
    index_kind: str = "gallery items"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ToolkitError(
                f"model must be a torch.nn.Module (an EEG encoder or classifier); got {type(model).__name__}. "
                "Attribution needs a torch model: convert other models to torch or explain them with your own code."
            )
        self.model = model

    def forward(
        self, eeg: torch.Tensor, index: torch.Tensor, subject_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One scalar per trial.

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            EEG.
        index : torch.Tensor of int64, shape (batch,)
            True gallery row (retrieval) or class (classifier) of each trial.
        subject_ids : torch.Tensor | None, shape (batch,)
            Subject indices passed to the model.

        Returns
        -------
        torch.Tensor, shape (batch,)
            The target values.
        """
        return self.score(_call_model(self.model, eeg, subject_ids), index.to(torch.long))

    def score(self, output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Turn the model's ``(batch, D)`` output into ``(batch,)`` scalars."""
        raise NotImplementedError

    def n_items(self) -> int | None:
        """Number of valid ``index`` values (``None``: known only from the model's output)."""
        return None

    def rebind(self, model: nn.Module) -> AttributionTarget:
        """A copy of this target around another model (same gallery and options; the gallery is shared).

        Used by the sanity checks to explain a randomised copy of the model with the same target.
        """
        if not isinstance(model, nn.Module):
            raise ToolkitError(f"rebind needs a torch.nn.Module; got {type(model).__name__}.")
        # A fresh Module (own hook and submodule tables), carrying over the plain options and the gallery buffer.
        clone = type(self).__new__(type(self))
        nn.Module.__init__(clone)
        for key, value in self.__dict__.items():
            if not key.startswith("_"):
                clone.__dict__[key] = value
        ref = next(iter(model.parameters()), None)
        for key, buf in self._buffers.items():
            if ref is not None and buf is not None:
                buf = buf.to(device=ref.device, dtype=ref.dtype)
            clone.register_buffer(key, buf, persistent=False)
        for key, module in self._modules.items():
            if key != "model":
                clone.add_module(key, module)  # e.g. a classifier head, shared
        clone.model = model
        return clone

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (name and options)."""
        return {"target": self.name}


class _GalleryTarget(AttributionTarget):
    """A target comparing EEG embeddings with a gallery of image embeddings."""

    def __init__(self, model: nn.Module, image_embeds: Any, *, normalize: bool) -> None:
        super().__init__(model)
        if not isinstance(normalize, (bool, np.bool_)):
            raise ToolkitError(
                f"normalize must be True (cosine similarity) or False (dot product); got {normalize!r}. It has no "
                "default on purpose: say whether the embeddings are compared after L2 normalisation."
            )
        self.normalize = bool(normalize)
        gallery = _as_gallery(image_embeds)
        if self.normalize:
            norms = gallery.norm(dim=1)
            if bool((norms == 0).any()):
                raise ToolkitError(
                    f"image_embeds has {int((norms == 0).sum())} all-zero row(s), whose cosine similarity is "
                    "undefined; remove them or use normalize=False."
                )
            gallery = F.normalize(gallery, dim=1)
        ref = next(iter(model.parameters()), None)
        if ref is not None:
            gallery = gallery.to(device=ref.device, dtype=ref.dtype)
        self.register_buffer("image_embeds", gallery, persistent=False)

    def n_items(self) -> int:
        return int(self.image_embeds.shape[0])

    def similarities(self, output: torch.Tensor) -> torch.Tensor:
        """``(batch, n_gallery)`` cosine or dot-product similarities of the embeddings to every gallery item."""
        if output.shape[1] != self.image_embeds.shape[1]:
            raise ToolkitError(
                f"The model's embeddings have {output.shape[1]} dimensions but image_embeds has "
                f"{self.image_embeds.shape[1]}; pass image embeddings from the space the encoder was trained on."
            )
        if self.normalize:
            output = F.normalize(output, dim=1)
        return output @ self.image_embeds.t()

    def describe(self) -> dict[str, Any]:
        return {"target": self.name, "normalize": self.normalize, "gallery_size": self.n_items()}


def _as_gallery(image_embeds: Any) -> torch.Tensor:
    if image_embeds is None:
        raise ToolkitError(
            "The similarity and margin targets need image_embeds (gallery_size, embed_dim): the image embeddings "
            "the EEG is compared with (e.g. the 200 test images); pass image_embeds=."
        )
    if isinstance(image_embeds, torch.Tensor):
        arr = image_embeds.detach().to("cpu", torch.float32)
    else:
        try:
            arr = torch.as_tensor(np.asarray(image_embeds, dtype=np.float32))
        except (TypeError, ValueError) as err:
            raise ToolkitError(f"image_embeds could not be read as a float array ({err}).") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ToolkitError(
            f"image_embeds must be a non-empty 2-D array (gallery_size, embed_dim); got shape {tuple(arr.shape)}."
        )
    if not bool(torch.isfinite(arr).all()):
        raise ToolkitError("image_embeds contains NaN or infinite values; fix the embeddings first.")
    return arr.clone()


class SimilarityTarget(_GalleryTarget):
    """Similarity of each trial's embedding to its true image embedding.

    Parameters
    ----------
    model : torch.nn.Module
        EEG encoder.
    image_embeds : array-like, shape (gallery_size, embed_dim)
        Image embeddings; row ``index[i]`` is trial ``i``'s true image.
    normalize : bool
        ``True``: cosine similarity (both sides L2-normalised); ``False``: raw dot product.
    """

    name = "similarity"

    def score(self, output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        _check_index(index, self.n_items(), self.index_kind)
        if output.shape[1] != self.image_embeds.shape[1]:
            self.similarities(output)  # raises the dimension error
        if self.normalize:
            output = F.normalize(output, dim=1)
        # Only the true row is needed: a row-wise dot product instead of the full (batch, gallery) matrix.
        return (output * self.image_embeds[index]).sum(dim=1)


class MarginTarget(_GalleryTarget):
    """Rank margin: true similarity minus the (smooth) maximum over the other gallery items.

    Parameters
    ----------
    model : torch.nn.Module
        EEG encoder.
    image_embeds : array-like, shape (gallery_size, embed_dim)
        Image embeddings (at least 2 rows); row ``index[i]`` is trial ``i``'s true image.
    normalize : bool
        Cosine (``True``) or dot-product (``False``) similarities.
    reduce : str
        ``"max"``: the strongest competitor (margin > 0 iff the true image ranks first); ``"logsumexp"``:
        ``temperature * logsumexp(s_others / temperature)``, a smooth upper bound of the maximum.
    temperature : float
        Softness of ``"logsumexp"`` in units of the similarity (0.07 suits cosine similarities; scale it up for
        dot products). Ignored with ``"max"``.
    """

    name = "margin"

    def __init__(
        self,
        model: nn.Module,
        image_embeds: Any,
        *,
        normalize: bool,
        reduce: str = "max",
        temperature: float = 0.07,
    ) -> None:
        super().__init__(model, image_embeds, normalize=normalize)
        if reduce not in MARGIN_REDUCTIONS:
            raise ToolkitError(f"reduce must be one of {', '.join(MARGIN_REDUCTIONS)}; got {reduce!r}.")
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise ToolkitError(f"temperature must be a positive number; got {temperature!r}.") from None
        if not np.isfinite(temperature) or temperature <= 0:
            raise ToolkitError(f"temperature must be a positive number; got {temperature!r}.")
        if self.n_items() < 2:
            raise ToolkitError("The margin target needs a gallery of at least 2 image embeddings (true + others).")
        self.reduce = reduce
        self.temperature = temperature

    def score(self, output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        _check_index(index, self.n_items(), self.index_kind)
        sims = self.similarities(output)
        true = sims.gather(1, index[:, None])[:, 0]
        others = sims.masked_fill(F.one_hot(index, sims.shape[1]).bool(), float("-inf"))
        if self.reduce == "max":
            competitor = others.amax(dim=1)
        else:
            competitor = self.temperature * torch.logsumexp(others / self.temperature, dim=1)
        return true - competitor

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), "reduce": self.reduce}
        if self.reduce == "logsumexp":
            out["temperature"] = self.temperature
        return out


class LogitTarget(AttributionTarget):
    """The logit of each trial's class, for classifiers ``forward(eeg) -> (batch, n_classes)``.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier, or an encoder whose embeddings ``head`` turns into logits.
    head : torch.nn.Module | None
        Maps the model's output to ``(batch, n_classes)`` logits (e.g. the linear head of a run trained with the
        classification objective, which the trainer keeps outside the encoder).
    """

    name = "logit"
    index_kind = "classes"

    def __init__(self, model: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__(model)
        if head is not None and not isinstance(head, nn.Module):
            raise ToolkitError(f"head must be a torch.nn.Module (e.g. nn.Linear); got {type(head).__name__}.")
        self.head = head

    def forward(
        self, eeg: torch.Tensor, index: torch.Tensor, subject_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = _call_model(self.model, eeg, subject_ids)
        if self.head is not None:
            out = self.head(out)
        return self.score(out, index.to(torch.long))

    def score(self, output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        _check_index(index, output.shape[1], self.index_kind)
        return output.gather(1, index[:, None])[:, 0]


def make_target(
    name: str | AttributionTarget,
    model: nn.Module,
    *,
    image_embeds: Any = None,
    normalize: bool | None = None,
    **options: Any,
) -> AttributionTarget:
    """Build the attribution target ``name`` around ``model``.

    Parameters
    ----------
    name : str | AttributionTarget
        ``"similarity"``, ``"margin"`` or ``"logit"`` (see :data:`TARGETS`); a ready target is returned as is
        (it must wrap ``model``).
    model : torch.nn.Module
        The encoder or classifier.
    image_embeds : array-like | None, shape (gallery_size, embed_dim)
        Gallery of the similarity and margin targets.
    normalize : bool | None
        Cosine (``True``) or dot product (``False``) for the similarity and margin targets; required for them.
    **options
        ``reduce`` and ``temperature`` of :class:`MarginTarget`; ``head`` of :class:`LogitTarget`.

    Returns
    -------
    AttributionTarget
        The target module.
    """
    if isinstance(name, AttributionTarget):
        if name.model is not model:
            raise ToolkitError(
                "The target passed wraps another model than the one being explained; build it around the same "
                "model (or pass the target's name and let attribute() build it)."
            )
        if image_embeds is not None or normalize is not None or options:
            raise ToolkitError(
                "image_embeds, normalize and target options only apply when target is a name; the target passed "
                "already carries them."
            )
        return name
    if name not in TARGETS:
        raise ToolkitError(f"Unknown attribution target {name!r}; known targets: {', '.join(TARGETS)}.")
    if name == "logit":
        head = options.pop("head", None)
        if image_embeds is not None or normalize is not None or options:
            raise ToolkitError(
                "The logit target explains a classifier's class logit and takes no image_embeds, normalize or "
                "margin options; drop them, or use target='similarity' / 'margin' for a retrieval encoder."
            )
        return LogitTarget(model, head)
    if normalize is None:
        raise ToolkitError(
            f"The {name} target needs normalize=True (cosine similarity) or normalize=False (dot product); it has "
            "no default on purpose."
        )
    if name == "similarity":
        if options:
            raise ToolkitError(
                f"The similarity target takes no options; got {', '.join(sorted(options))} (reduce and temperature "
                "belong to target='margin')."
            )
        return SimilarityTarget(model, image_embeds, normalize=normalize)
    unknown = sorted(set(options) - {"reduce", "temperature"})
    if unknown:
        raise ToolkitError(f"Unknown margin target option(s) {', '.join(unknown)}; valid: reduce, temperature.")
    return MarginTarget(model, image_embeds, normalize=normalize, **options)


__all__ = [
    "MARGIN_REDUCTIONS",
    "TARGETS",
    "AttributionTarget",
    "LogitTarget",
    "MarginTarget",
    "SimilarityTarget",
    "make_target",
]
