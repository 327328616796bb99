"""Sanity checks for attribution maps (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

A map that explains the *model* must change when the model changes. Two tests:

- **Cascading model-parameter randomisation** (:func:`cascading_randomization`): re-initialise the layers one by
  one from the output side down to the input, recomputing the maps after each step; the similarity to the original
  maps should fall as more of the model is randomised. A method whose maps survive full randomisation shows the
  input (edges, large amplitudes), not what the model learned.
- **Label randomisation** (:func:`label_randomization`): compare with the maps of the same architecture trained on
  shuffled labels (the second model is given; ``python -m toolkit explain sanity --label-model`` or its training
  option provides it). Maps of a model that learned nothing should not resemble those of a model that did.

Similarity (:func:`map_similarity`, per trial, then averaged): Spearman rank correlation of the signed maps and of
their magnitudes, and the structural similarity (SSIM, scikit-image) of the magnitude maps scaled to [0, 1] — the
three measures of the paper.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ToolkitError
from .aggregate import as_maps
from .targets import AttributionTarget

logger = logging.getLogger(__name__)

SIMILARITY_MEASURES: tuple[str, ...] = ("spearman", "spearman_abs", "ssim")


# ------------------------------------------------------------------------------------------------ similarity
def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from ..utils import require

    require("skimage", extra="explain", purpose="the SSIM of attribution maps")
    from skimage.metrics import structural_similarity

    side = min(a.shape)
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return math.nan  # maps with fewer than 3 channels have no 2-D structure to compare
    scale_a, scale_b = np.abs(a).max(), np.abs(b).max()
    a = np.abs(a) / scale_a if scale_a > 0 else np.abs(a)
    b = np.abs(b) / scale_b if scale_b > 0 else np.abs(b)
    return float(structural_similarity(a, b, data_range=1.0, win_size=win))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan  # a constant map has no ranking
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def map_similarity(reference: Any, other: Any) -> dict[str, np.ndarray]:
    """Per-trial similarity of two sets of attribution maps.

    Parameters
    ----------
    reference, other : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Maps of the same trials.

    Returns
    -------
    dict of str to np.ndarray, shape (n_trials,)
        ``spearman`` (signed maps), ``spearman_abs`` (magnitudes) and ``ssim`` (magnitudes scaled to [0, 1]);
        NaN where undefined (a constant map; fewer than 3 channels for SSIM).
    """
    a, b = as_maps(reference, name="reference"), as_maps(other, name="other")
    if a.shape != b.shape:
        raise ToolkitError(
            f"The maps to compare have shapes {a.shape} and {b.shape}; compare maps of the same trials."
        )
    out = {name: np.empty(a.shape[0]) for name in SIMILARITY_MEASURES}
    for i in range(a.shape[0]):
        out["spearman"][i] = _spearman(a[i], b[i])
        out["spearman_abs"][i] = _spearman(np.abs(a[i]), np.abs(b[i]))
        out["ssim"][i] = _ssim(a[i], b[i])
    return out


def _summary(sims: dict[str, np.ndarray]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, values in sims.items():
        finite = values[np.isfinite(values)]
        out[name] = float(finite.mean()) if finite.size else None
    return out


# ------------------------------------------------------------------------------------------- randomisation
def _param_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Modules holding parameters directly (not through children), by qualified name (``""``: the model)."""
    return {
        name: module
        for name, module in model.named_modules()
        if any(p is not None for p in module._parameters.values())
    }


def randomization_order(model: nn.Module) -> list[str]:
    """The model's parameterised layers from the output side to the input side (the cascade order).

    The order is the reverse of the order in which the layers are registered, which for the toolkit's encoders
    (and most ``nn.Module`` code) is the order of the forward pass. Registration is used rather than a traced
    forward pass because encoders may use a layer's weights without calling the layer (TSConv computes its
    convolutions as matrix products), which a trace would miss. Pass ``layers=`` to
    :func:`cascading_randomization` for another order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    list of str
        Qualified module names (``""`` stands for parameters held by the model itself, e.g. ATM-S's shared
        subject token); ``model.get_submodule`` resolves them.
    """
    return list(reversed(list(_param_layers(model))))


def randomize_layer(module: nn.Module, generator_seed: int) -> None:
    """Re-initialise the parameters a module holds directly (``reset_parameters`` when it has one).

    ``reset_parameters`` (PyTorch's own initialisation, which also resets BatchNorm statistics) is used for layers
    without parameterised children, so that it cannot reach into other layers of the cascade; otherwise every
    direct parameter is redrawn from a normal distribution with its current standard deviation (1 for constant
    tensors). Runs under a forked RNG seeded by ``generator_seed``, so the global random state is untouched and the
    result is reproducible.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(generator_seed))
        reset = getattr(module, "reset_parameters", None)
        leaf = not any(True for child in module.children() for _ in child.parameters())
        if callable(reset) and leaf:
            reset()
            return
        for p in module._parameters.values():
            if p is None:
                continue
            std = float(p.detach().float().std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, std if std > 0 else 1.0)


@dataclass
class SanityResult:
    """Similarity of attribution maps to the original ones, per randomisation step.

    Attributes
    ----------
    steps : list of dict
        ``step`` (1, 2, ...), ``layer`` randomised at that step, ``randomized`` (all layers randomised so far),
        and the mean ``spearman``, ``spearman_abs``, ``ssim`` over trials (``None`` where undefined).
    per_trial : list of dict of np.ndarray
        The per-trial similarities of each step.
    method : str
        Attribution method.
    maps : list of np.ndarray
        The original maps followed by those of each step, when kept (``keep_maps=True``).
    """

    steps: list[dict]
    per_trial: list[dict] = field(default_factory=list)
    method: str = ""
    maps: list[np.ndarray] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (without maps)."""
        return {"method": self.method, "steps": self.steps}

    def curve(self, measure: str = "spearman_abs") -> np.ndarray:
        """Mean similarity per step (NaN where undefined)."""
        if measure not in SIMILARITY_MEASURES:
            raise ToolkitError(f"Unknown similarity measure {measure!r}; known: {', '.join(SIMILARITY_MEASURES)}.")
        return np.array([math.nan if s[measure] is None else s[measure] for s in self.steps], dtype=np.float64)


def _attribute_with(model: nn.Module, target: Any, kwargs: dict[str, Any]) -> np.ndarray:
    from .aggregate import attribute_batched

    if isinstance(target, AttributionTarget):
        target = target.rebind(model)
    return attribute_batched(model, target=target, **kwargs)


def _check_model(model: Any, what: str) -> None:
    if not isinstance(model, nn.Module):
        raise ToolkitError(f"{what} must be a torch.nn.Module; got {type(model).__name__}.")


def cascading_randomization(
    model: nn.Module,
    eeg: Any,
    *,
    method: str = "ig",
    target: str | AttributionTarget = "similarity",
    index: Any = None,
    image_embeds: Any = None,
    normalize: bool | None = None,
    baselines: Any = None,
    subject_ids: Any = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    keep_maps: bool = False,
    progress: bool = True,
    **method_kwargs: Any,
) -> SanityResult:
    """Cascading model-parameter randomisation: re-initialise layers from the top down and compare the maps.

    The model itself is not modified (a deep copy is randomised).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model.
    eeg : array, shape (n_trials, n_chans, n_times)
        Trials to explain (a few dozen suffice).
    method, target, index, image_embeds, normalize, baselines, subject_ids, **method_kwargs
        As for :func:`~toolkit.explain.attribute` (a target object is re-bound to each randomised copy).
    layers : sequence of str | None
        Module names in cascade order (first randomised first); ``None``: every parameterised layer from the
        output side to the input side (:func:`randomization_order`).
    seed : int
        Seed of the re-initialisation (step ``i`` uses ``seed + i``).
    batch_size : int
        Trials per attribution call.
    keep_maps : bool
        Keep every step's maps in the result.
    progress : bool
        Show progress bars.

    Returns
    -------
    SanityResult
        Step 0 (the original maps compared with themselves) is not listed; step ``i`` has ``i`` layers randomised.
    """
    _check_model(model, "model")
    names = randomization_order(model) if layers is None else [str(n) for n in layers]
    known = _param_layers(model)
    missing = [n for n in names if n not in known]
    if missing:
        raise ToolkitError(
            f"layers names {', '.join(repr(n) for n in missing)} that hold no parameters in this model; "
            f"parameterised layers: {', '.join(repr(n) for n in known)}."
        )
    if not names:
        raise ToolkitError("The model has no parameterised layers to randomise.")
    kwargs = dict(
        eeg=eeg, method=method, index=index, image_embeds=image_embeds, normalize=normalize, baselines=baselines,
        subject_ids=subject_ids, batch_size=batch_size, progress=progress, **method_kwargs,
    )
    original = _attribute_with(model, target, kwargs)
    work = copy.deepcopy(model)
    steps, per_trial, maps = [], [], [original] if keep_maps else []
    done: list[str] = []
    for step, name in enumerate(names, start=1):
        randomize_layer(work.get_submodule(name), seed + step)
        done.append(name)
        current = _attribute_with(work, target, kwargs)
        sims = map_similarity(original, current)
        per_trial.append(sims)
        steps.append({"step": step, "layer": name or "(model parameters)", "randomized": list(done), **_summary(sims)})
        if keep_maps:
            maps.append(current)
    return SanityResult(steps=steps, per_trial=per_trial, method=method, maps=maps)


def label_randomization(
    model: nn.Module,
    random_model: nn.Module,
    eeg: Any,
    *,
    method: str = "ig",
    target: str | AttributionTarget = "similarity",
    index: Any = None,
    image_embeds: Any = None,
    normalize: bool | None = None,
    baselines: Any = None,
    subject_ids: Any = None,
    batch_size: int = 16,
    progress: bool = True,
    **method_kwargs: Any,
) -> dict[str, Any]:
    """Compare the maps of ``model`` with those of the same architecture trained on shuffled labels.

    Parameters
    ----------
    model : torch.nn.Module
        The model trained on the true pairing.
    random_model : torch.nn.Module
        The same architecture trained with the labels (EEG ↔ image pairing) shuffled.
    eeg, method, target, index, image_embeds, normalize, baselines, subject_ids, batch_size, progress
        See :func:`cascading_randomization`.
    **method_kwargs
        Options of the attribution method.

    Returns
    -------
    dict
        ``method``, the mean ``spearman``, ``spearman_abs``, ``ssim`` and ``per_trial`` lists.
    """
    _check_model(model, "model")
    _check_model(random_model, "random_model")
    if random_model is model:
        raise ToolkitError("random_model is the model itself; pass the model trained with shuffled labels.")
    kwargs = dict(
        eeg=eeg, method=method, index=index, image_embeds=image_embeds, normalize=normalize, baselines=baselines,
        subject_ids=subject_ids, batch_size=batch_size, progress=progress, **method_kwargs,
    )
    sims = map_similarity(_attribute_with(model, target, kwargs), _attribute_with(random_model, target, kwargs))
    return {
        "method": method,
        **_summary(sims),
        "per_trial": {k: [None if not math.isfinite(v) else float(v) for v in vals] for k, vals in sims.items()},
    }


__all__ = [
    "SIMILARITY_MEASURES",
    "SanityResult",
    "cascading_randomization",
    "label_randomization",
    "map_similarity",
    "randomization_order",
    "randomize_layer",
]
