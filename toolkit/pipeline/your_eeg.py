"""Your own EEG through a decoding pipeline: retrieval, reconstruction and saliency on an imported trial set.

A recording imported with :func:`toolkit.data.import_recordings` onto the pipeline's montage (:func:`model_target`
names the import target, ``"things-eeg-63"`` for the THINGS-EEG bundles) is a :class:`~toolkit.data.TrialSet` like
the bundle's own; :func:`decode_trialset` runs the pipeline on it::

    from toolkit.data import import_recordings
    from toolkit.pipeline import decode_trialset, load_pipeline, model_target

    pipe = load_pipeline("demo")
    trials = import_recordings(files, target=model_target(pipe), event_id={"house": 1, "face": 2}).trials
    out = decode_trialset(pipe, trials, condition="face", k=5)
    out.retrieval.concepts        # top-k test concepts of each condition average (and of the chosen trial)
    out.reconstruction.images[0]  # the chosen trial through the diffusion prior, with its two controls
    out.attribution               # (channels with signal, samples): what drives the match to its top-1 image
    out.notes                     # what the numbers can and cannot mean for this recording

What is done to the trials, and why:

- **Montage.** The channels must be the encoders' channels in their order at their rate; a longer window is cropped
  to the encoders' (:meth:`~toolkit.data.TrialSet.crop`), anything else is refused with the target to import onto.
  Channels the import zero-filled (``extra["channel_mask"]`` False) stay zero in the model's input, are listed in
  the notes and are left out of the saliency maps.
- **Amplitude.** Imported trials are in volts; the encoders were trained on the bundle's (unitless, whitened)
  trials. One factor rescales the whole recording so that the root mean square of its single trials over the channels
  with signal equals that of the bundle's training trials (``scale="match"``; a number sets the factor, ``None``
  feeds the values as they are). One factor for every channel keeps the recording's own spatial pattern.
- **Queries.** Every condition's average over its repetitions (the test-set convention) and the chosen trial (a
  condition's average, or one repetition of it) are retrieved; the chosen trial is also reconstructed and explained.
- **Saliency target.** An uploaded recording has no "true image" in the gallery, so the attribution explains the
  cosine similarity of the chosen trial to its own top-1 retrieved image: which channels and moments drove the
  model's choice. Integrated gradients starts from the recording's mean trial (a typical signal of this recording;
  zero-filled channels are zero in both, so their attribution is zero as well).

An encoder trained on other people (or, in the demo bundle, on simulated data) has never seen this person, this
headset or this paradigm: the results describe the model's reaction to out-of-distribution input, not what the
person saw, and :attr:`TrialSetDecoding.notes` says so. Few-shot adaptation on labelled trials of the recording
(:func:`toolkit.training.adapt_encoder`, notebook 05) is how to make them meaningful.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError

if TYPE_CHECKING:  # pragma: no cover
    from ..data import TrialSet
    from .decoding import DecodingPipeline, ReconstructionOutput, RetrievalOutput

logger = logging.getLogger(__name__)

#: Attribution methods :func:`decode_trialset` runs, with settings that keep one trial well under a second on a CPU.
SALIENCY_METHODS: dict[str, dict] = {
    "ig": {"n_steps": 16},
    "saliency": {},
    "occlusion": {"sliding_window_shapes": (1, 50), "strides": (1, 50), "perturbations_per_eval": 128},
}
#: Trials read from the bundle's training split to measure its amplitude (first conditions, up to two repetitions).
REFERENCE_TRIALS = 256
_MAX_LISTED = 8  # channel names written out in a note

# Per pipeline: the RMS of its training trials (computed once; weak keys so that closed pipelines are not kept).
_REFERENCE_RMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class TrialSetDecoding:
    """What :func:`decode_trialset` made of an imported trial set.

    Attributes
    ----------
    queries : list of str
        Label of each retrieval row: ``"<condition> (average of n)"`` per condition, then the chosen trial when it
        is a single repetition.
    retrieval : RetrievalOutput
        Top-k test-gallery items of every query (rows as ``queries``).
    image_paths : list of list of str
        Image file of every retrieved item (as ``retrieval.indices``); empty lists when the bundle has no images.
    chosen : int
        Row of ``queries`` holding the chosen trial.
    condition : int
        The chosen trial's condition.
    repetition : int | None
        Its repetition (0-based), ``None`` for the condition's average.
    reconstruction : ReconstructionOutput | None
        The chosen trial through the diffusion prior and the decoder, with the shuffled-EEG and prior-only controls.
    captions : list of str
        Captions of the reconstruction, the shuffled control and the prior-only control (empty without
        reconstruction).
    attribution : np.ndarray of float32, shape (n_signal, n_times) | None
        Attribution of the chosen trial's similarity to its top-1 image, channels with signal only.
    attribution_ch_names : list of str
        Channels of ``attribution`` (the zero-filled ones left out).
    saliency_target : int | None
        Gallery row the attribution explains (the chosen trial's top-1).
    times : np.ndarray, shape (n_times,)
        Sample times of the model input in seconds.
    signal_channels, zero_filled : list of str
        Channels that carry the recording, and channels the import filled with zeros.
    scale : float
        Factor applied to the trials before the encoder.
    embedding_similarity : np.ndarray of float32, shape (n_conditions, n_conditions)
        Cosine similarity of the condition averages' embeddings (near 1 everywhere: the encoder barely tells the
        conditions apart).
    target : str | None
        The import target of the encoders' montage (see :func:`model_target`).
    notes : list of str
        Caveats, in the order to show them.
    settings : dict
        Encoder, k, saliency method and reconstruction settings.
    """

    queries: list[str]
    retrieval: RetrievalOutput
    image_paths: list[list[str]]
    chosen: int
    condition: int
    repetition: int | None
    reconstruction: ReconstructionOutput | None
    captions: list[str]
    attribution: np.ndarray | None
    attribution_ch_names: list[str]
    saliency_target: int | None
    times: np.ndarray
    signal_channels: list[str]
    zero_filled: list[str]
    scale: float
    embedding_similarity: np.ndarray
    target: str | None
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


# -- the encoders' montage --------------------------------------------------------------------------------------
def _model_grid(pipeline: DecodingPipeline, encoder: str | None) -> tuple[str, Any, list[str], np.ndarray]:
    """``(encoder name, config, channel names, times)`` of what the encoder takes (the bundle's test split)."""
    name = pipeline.encoders[0] if encoder is None else encoder
    config = pipeline.encoder(name).config  # raises a ToolkitError naming the encoders for an unknown one
    entry = pipeline.store.entry(pipeline.subjects[0], "test")
    ch_names = list(entry.ch_names)
    times = np.asarray(entry.times, dtype=np.float64)
    if len(ch_names) != config.n_chans or abs(entry.sfreq - config.sfreq) > 1e-6:
        raise ToolkitError(
            f"The {pipeline.bundle} bundle's data ({len(ch_names)} channels at {entry.sfreq:g} Hz) do not match its "
            f"encoder {name!r} ({config.n_chans} channels at {config.sfreq:g} Hz); rebuild the bundle."
        )
    if times.size != config.n_times:
        times = np.arange(config.n_times) / float(config.sfreq)
    return name, config, ch_names, times


def model_target(pipeline: DecodingPipeline, encoder: str | None = None) -> str | None:
    """The import target (:data:`toolkit.data.importing.TARGETS`) that produces the encoders' input.

    Parameters
    ----------
    pipeline : DecodingPipeline
        The pipeline.
    encoder : str | None
        One of ``pipeline.encoders`` (default: the first).

    Returns
    -------
    str | None
        ``"things-eeg-63"`` for the THINGS-EEG bundles; ``None`` when no target has the encoders' channels and
        rate.
    """
    from ..data.importing import TARGETS

    _, config, ch_names, _ = _model_grid(pipeline, encoder)
    for name, spec in TARGETS.items():
        if spec.ch_names is not None and list(spec.ch_names) == ch_names and spec.sfreq == float(config.sfreq):
            return name
    return None


def _describe_grid(target: str | None, ch_names: list[str], config: Any, times: np.ndarray) -> str:
    shape = (
        f"{len(ch_names)} channels, {config.sfreq:g} Hz, {times[0]:g}–{times[-1]:g} s ({config.n_times} samples)"
    )
    return f"the '{target}' montage ({shape})" if target else f"their own montage ({shape})"


def check_model_montage(
    pipeline: DecodingPipeline, trials: TrialSet, encoder: str | None = None
) -> tuple[TrialSet, list[str]]:
    """``trials`` on the encoder's input grid: its channels in order, its rate and its window.

    Parameters
    ----------
    pipeline : DecodingPipeline
        The pipeline.
    trials : TrialSet
        Imported trials.
    encoder : str | None
        One of ``pipeline.encoders`` (default: the first).

    Returns
    -------
    trials : TrialSet
        The same trials, cropped to the encoder's window when the imported one is longer.
    notes : list of str
        What was done (the crop), for the user.

    Raises
    ------
    ToolkitError
        Naming the import target to choose when the channels or the rate differ, or the window does not cover the
        encoder's.
    """
    _, trials, _, notes = _on_model_grid(pipeline, trials, encoder)
    return trials, notes


def _on_model_grid(
    pipeline: DecodingPipeline, trials: TrialSet, encoder: str | None
) -> tuple[str, TrialSet, str | None, list[str]]:
    """:func:`check_model_montage`, also returning the encoder's name and the import target."""
    name, config, ch_names, times = _model_grid(pipeline, encoder)
    target = model_target(pipeline, name)
    wanted = _describe_grid(target, ch_names, config, times)
    fix = f"choose the target montage '{target}' and import again" if target else "map the channels onto it"
    imported = (trials.extra.get("import_report") or {}).get("target")
    where = f"imported onto '{imported}'" if imported else "on another montage"
    if list(trials.ch_names) != ch_names:
        raise ToolkitError(
            f"These trials are {where} ({trials.n_chans} channels at {trials.sfreq:g} Hz); the {pipeline.bundle} "
            f"encoders take {wanted}: {fix}."
        )
    if abs(float(trials.sfreq) - float(config.sfreq)) > 1e-6:
        raise ToolkitError(
            f"These trials are sampled at {trials.sfreq:g} Hz; the {pipeline.bundle} encoders take {wanted}: {fix}."
        )
    notes = []
    half = 0.5 / float(config.sfreq)
    t = np.asarray(trials.times, dtype=np.float64)
    if trials.n_times != config.n_times or abs(t[0] - times[0]) > half:
        if t[0] <= times[0] + half and t[-1] >= times[-1] - half:
            trials = trials.crop(float(times[0]), float(times[-1]))
            notes.append(
                f"The imported window {t[0]:.3f}–{t[-1]:.3f} s was cropped to the encoders' {times[0]:g}–"
                f"{times[-1]:g} s."
            )
        if trials.n_times != config.n_times:
            raise ToolkitError(
                f"The imported window {t[0]:.3f}–{t[-1]:.3f} s does not cover the encoders' window {times[0]:g}–"
                f"{times[-1]:g} s ({config.n_times} samples); import with that window (the target's default)."
            )
    return name, trials, target, notes


def _channel_mask(trials: TrialSet) -> np.ndarray:
    mask = trials.extra.get("channel_mask")
    if mask is None:
        return np.ones(trials.n_chans, dtype=bool)
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    if mask.size != trials.n_chans:
        raise ToolkitError(
            f"The trials' channel_mask has {mask.size} entries for {trials.n_chans} channels; import the recording "
            "again."
        )
    return mask


# -- amplitude ----------------------------------------------------------------------------------------------------
def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values, dtype=np.float64))))


def reference_rms(pipeline: DecodingPipeline) -> float:
    """Root mean square of the bundle's training trials (the amplitude the encoders learnt from; cached).

    Read from the first subject's training split (its test split when there is none): up to
    :data:`REFERENCE_TRIALS` trials, the first two repetitions of the first conditions.

    Parameters
    ----------
    pipeline : DecodingPipeline
        The pipeline.

    Returns
    -------
    float
        The RMS over those trials' channels and samples.
    """
    if pipeline in _REFERENCE_RMS:
        return _REFERENCE_RMS[pipeline]
    subject = pipeline.subjects[0]
    split = "train" if "train" in pipeline.store.splits(subject) else "test"
    trials = pipeline.store.load(subject, split)
    n_rep = min(2, trials.n_repetitions)
    n_cond = max(1, min(trials.n_conditions, REFERENCE_TRIALS // n_rep))
    value = _rms(np.asarray(trials.data[:n_cond, :n_rep], dtype=np.float32))
    if not value > 0 or not math.isfinite(value):
        raise ToolkitError(f"The {pipeline.bundle} bundle's {split} trials of {subject} are flat; rebuild the bundle.")
    _REFERENCE_RMS[pipeline] = value
    return value


def _scale_factor(pipeline: DecodingPipeline, data: np.ndarray, mask: np.ndarray, scale: Any) -> float:
    if scale is None:
        return 1.0
    if isinstance(scale, str):
        if scale != "match":
            raise ToolkitError(f"scale must be 'match', a positive number or None; got {scale!r}.")
        rms = _rms(data[:, :, mask])
        if not rms > 0:
            raise ToolkitError(
                "The imported trials are flat (all zeros) on every channel with signal; nothing to decode."
            )
        return reference_rms(pipeline) / rms
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ToolkitError(f"scale must be 'match', a positive number or None; got {scale!r}.")
    if not (math.isfinite(float(scale)) and float(scale) > 0):
        raise ToolkitError(f"scale must be a positive finite number; got {scale!r}.")
    return float(scale)


# -- selection ----------------------------------------------------------------------------------------------------
def _condition(trials: TrialSet, condition: Any) -> int:
    names = trials.concept_names()
    if condition is None or (isinstance(condition, str) and not condition.strip()):
        raise ToolkitError(f"Choose a condition to decode: one of {', '.join(names)}.")
    if isinstance(condition, str):
        if condition in names:
            return names.index(condition)
        try:
            number = float(condition)
        except ValueError:
            raise ToolkitError(f"Unknown condition {condition!r}; choose one of {', '.join(names)}.") from None
    elif isinstance(condition, bool):
        raise ToolkitError(f"condition must be a name or a number; got {condition!r}.")
    else:
        number = condition
    try:
        number = float(number)
    except (TypeError, ValueError):
        raise ToolkitError(f"condition must be a name or a number; got {condition!r}.") from None
    if not number.is_integer() or not 0 <= number < trials.n_conditions:
        raise ToolkitError(
            f"condition {condition!r} is out of range: give a number from 0 to {trials.n_conditions - 1} or one of "
            f"{', '.join(names)}."
        )
    return int(number)


def _repetition(trials: TrialSet, repetition: Any) -> int | None:
    if repetition is None:
        return None
    try:
        number = float(repetition)
    except (TypeError, ValueError):
        raise ToolkitError(f"repetition must be a whole number or None (the average); got {repetition!r}.") from None
    if isinstance(repetition, bool) or not number.is_integer() or not 0 <= number < trials.n_repetitions:
        raise ToolkitError(
            f"repetition must be a whole number from 0 to {trials.n_repetitions - 1} or None (the average); got "
            f"{repetition!r}."
        )
    return int(number)


def _listed(names: list[str]) -> str:
    if len(names) <= _MAX_LISTED:
        return ", ".join(names)
    return f"{', '.join(names[:_MAX_LISTED])}, … ({len(names) - _MAX_LISTED} more)"


def _gallery_paths(pipeline: DecodingPipeline, indices: np.ndarray) -> list[list[str]]:
    """Image file of each retrieved gallery row (row i of the gallery is test condition i of the bundle)."""
    images = pipeline.trials(pipeline.subjects[0], "test").images
    if images is None:
        return [[] for _ in indices]
    return [[str(images.image_path(int(j))) for j in row] for row in indices]


def _training_data(pipeline: DecodingPipeline) -> str:
    kind = str((pipeline.manifest.get("components", {}).get("dataset") or {}).get("kind", ""))
    if kind.startswith("simulated"):
        return (
            "simulated THINGS-like EEG (coloured-shape stimuli generated through a head model), not recordings of "
            "people"
        )
    return f"the {pipeline.bundle} bundle's subjects viewing its images"


# -- the one call -------------------------------------------------------------------------------------------------
def decode_trialset(
    pipeline: DecodingPipeline,
    trials: TrialSet,
    *,
    encoder: str | None = None,
    condition: int | str = 0,
    repetition: int | None = None,
    k: int = 5,
    reconstruct: bool = True,
    saliency: bool = True,
    saliency_method: str = "ig",
    saliency_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    image_size: int | None = None,
    scale: float | str | None = "match",
    subject_ids: Any = None,
) -> TrialSetDecoding:
    """Retrieval, reconstruction and saliency on an imported trial set (see the module notes).

    Parameters
    ----------
    pipeline : DecodingPipeline
        The pipeline (from :func:`~toolkit.pipeline.load_pipeline`).
    trials : TrialSet
        Trials on the encoders' montage, e.g. from :func:`toolkit.data.import_recordings` with
        ``target=model_target(pipeline)``; a window longer than the encoders' is cropped.
    encoder : str | None
        One of ``pipeline.encoders`` (default: the first).
    condition : int | str
        The chosen trial's condition: its index or its name (``trials.concept_names()``).
    repetition : int | None
        The chosen repetition (0-based); ``None``: the condition's average over its repetitions.
    k : int
        Gallery items per query (1 to the gallery size).
    reconstruct : bool
        Reconstruct the chosen trial (with both controls) and caption the three images.
    saliency : bool
        Attribute the chosen trial's similarity to its top-1 image.
    saliency_method : str
        ``"ig"`` (integrated gradients from the recording's mean trial), ``"saliency"`` (gradient) or
        ``"occlusion"`` (one channel × 50 samples, 200 ms at 250 Hz, replaced by the mean trial).
    saliency_options : Mapping | None
        Options of :func:`toolkit.explain.attribute` overriding :data:`SALIENCY_METHODS`.
    seed, num_inference_steps, guidance_scale
        Of the diffusion prior (see :meth:`DecodingPipeline.reconstruct`).
    image_size : int | None
        Side of the reconstructed images in pixels (``None``: the decoder's).
    scale : "match" | float | None
        Amplitude factor: ``"match"`` rescales to the bundle's training trials' RMS, a number multiplies, ``None``
        leaves the values unchanged.
    subject_ids : str | int | None
        Subject token of the encoders (``None``: the shared token, right for a person the encoders never saw).

    Returns
    -------
    TrialSetDecoding
        Retrieval of every condition average and of the chosen trial, its reconstruction and attribution, and the
        notes to show with them.

    Raises
    ------
    ToolkitError
        When the trials are on another montage, rate or window than the encoders' (naming the import target),
        contain NaN or infinite values, are flat, or a selection is out of range.
    """
    name, trials, target, notes = _on_model_grid(pipeline, trials, encoder)
    mask = _channel_mask(trials)
    if not mask.any():
        raise ToolkitError(
            "No channel of the imported trials carries signal (all are zero-filled); nothing to decode."
        )
    cond = _condition(trials, condition)
    rep = _repetition(trials, repetition)
    if saliency and saliency_method not in SALIENCY_METHODS:
        raise ToolkitError(
            f"Unknown saliency method {saliency_method!r}; choose one of {', '.join(SALIENCY_METHODS)}."
        )
    data = np.asarray(trials.data, dtype=np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        where = sorted({trials.concept_names()[c] for c in np.flatnonzero(bad.any(axis=(1, 2, 3)))})
        raise ToolkitError(
            f"The imported trials contain {int(bad.sum())} NaN or infinite values (conditions {', '.join(where)}); "
            "re-import with rejection on, or repair the recording."
        )
    factor = _scale_factor(pipeline, data, mask, scale)
    data = data * np.float32(factor)
    names = trials.concept_names()
    averages = data.mean(axis=1)
    queries = [f"{n} (average of {trials.n_repetitions})" for n in names]
    eeg = averages
    chosen = cond
    if rep is not None:
        eeg = np.concatenate([averages, data[cond, rep][None]])
        queries.append(f"{names[cond]} (repetition {rep + 1})")
        chosen = len(queries) - 1
    retrieval = pipeline.retrieve(eeg, subject_ids, encoder=name, k=k)
    gallery, _ = pipeline.gallery("image", normalize=True)
    embeds = retrieval.eeg_embeds[: trials.n_conditions]
    similarity = (embeds @ embeds.T).astype(np.float32)
    x = eeg[chosen][None]

    reconstruction, captions = None, []
    if reconstruct:
        reconstruction = pipeline.reconstruct(
            x, subject_ids, encoder=name, seed=seed, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, size=image_size,
        )
        captions = list(
            pipeline.vision.captioner(
                np.concatenate(
                    [reconstruction.image_embeds, reconstruction.shuffled_embeds, reconstruction.prior_only_embeds]
                )
            )
        )

    signal = [c for c, keep in zip(trials.ch_names, mask) if keep]
    zero = [c for c, keep in zip(trials.ch_names, mask) if not keep]
    attribution, top1 = None, None
    if saliency:
        from ..explain import attribute

        top1 = int(retrieval.indices[chosen, 0])
        options = {**SALIENCY_METHODS[saliency_method], **dict(saliency_options or {})}
        if saliency_method != "saliency":
            options.setdefault("baselines", data.reshape(-1, *data.shape[2:]).mean(axis=0, keepdims=True))
        ids = pipeline._subject_ids(subject_ids, 1, pipeline._entry(name))
        full = attribute(
            pipeline.encoder(name), x, method=saliency_method, target="similarity", index=[top1],
            image_embeds=gallery, normalize=True, subject_ids=ids, **options,
        )[0]
        attribution = np.ascontiguousarray(full[mask], dtype=np.float32)

    notes = _notes(pipeline, trials, signal, zero, factor, scale, similarity, retrieval, gallery, chosen) + notes
    return TrialSetDecoding(
        queries=queries,
        retrieval=retrieval,
        image_paths=_gallery_paths(pipeline, retrieval.indices),
        chosen=chosen,
        condition=cond,
        repetition=rep,
        reconstruction=reconstruction,
        captions=captions,
        attribution=attribution,
        attribution_ch_names=signal if saliency else [],
        saliency_target=top1,
        times=np.asarray(trials.times, dtype=np.float64),
        signal_channels=signal,
        zero_filled=zero,
        scale=float(factor),
        embedding_similarity=similarity,
        target=target,
        notes=notes,
        settings={
            "encoder": name, "k": int(k), "saliency_method": saliency_method if saliency else None,
            "seed": seed, "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
            "scale": scale if isinstance(scale, str) or scale is None else float(scale),
        },
    )


def _notes(
    pipeline: DecodingPipeline,
    trials: TrialSet,
    signal: list[str],
    zero: list[str],
    factor: float,
    scale: Any,
    similarity: np.ndarray,
    retrieval: RetrievalOutput,
    gallery: np.ndarray,
    chosen: int,
) -> list[str]:
    """The caveats of a decoding, most important first."""
    n_gallery = gallery.shape[0]
    names = trials.concept_names()
    notes = []
    if trials.dataset == "imported":
        notes.append(
            f"The {pipeline.bundle} encoders were trained on {_training_data(pipeline)}; they never saw this person, "
            f"this headset or this paradigm. The {n_gallery} gallery images are the bundle's test images, not what "
            "was shown during this recording: the retrieval, the reconstruction and the saliency map show how the "
            "model reacts to out-of-distribution input, not what the person saw. To make them meaningful, adapt an "
            "encoder on labelled trials of this recording (few-shot adaptation: toolkit.training.adapt_encoder, "
            "notebook 05)."
        )
    if zero:
        notes.append(
            f"Only {len(signal)} of {trials.n_chans} channels carry signal ({_listed(signal)}); the other "
            f"{len(zero)} were zero-filled by the import (no recorded electrode near them): the encoders see zeros "
            "there, and the saliency views leave them out."
        )
    else:
        notes.append(f"All {trials.n_chans} channels carry signal.")
    if scale == "match":
        notes.append(
            f"Amplitudes were multiplied by {factor:.3g} (one factor for every channel) so that the recording's "
            "single trials have the RMS of the bundle's training trials."
        )
    if len(names) >= 2:
        off = similarity[~np.eye(len(names), dtype=bool)]
        span = f"{off.min():.3f}" if len(names) == 2 else f"{off.min():.3f}–{off.max():.3f}"
        notes.append(
            f"The condition averages' embeddings have a cosine similarity of {span} to each other (1: the encoder "
            "does not tell the conditions apart)."
        )
    scores = retrieval.eeg_embeds[chosen] @ (gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
    notes.append(
        f"The chosen trial's top-1 image scores {scores.max():.3f} (cosine); the median of the {n_gallery} gallery "
        f"images scores {np.median(scores):.3f}. A top-1 that barely stands out is no evidence of anything."
    )
    return notes


__all__ = [
    "SALIENCY_METHODS", "TrialSetDecoding", "check_model_montage", "decode_trialset", "model_target", "reference_rms",
]
