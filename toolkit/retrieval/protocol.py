"""Protocol cards: the machine-readable description that travels with every retrieval number.

Published THINGS-EEG numbers are often not comparable (different channels, windows, sampling rates, repetition
averaging, galleries, backbones and, above all, model selection on the test set). A :class:`ProtocolCard` records
all of it next to the result, round-trips through JSON, renders as markdown or text, and prints a loud warning when
the checkpoint was selected on the test set.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ToolkitError

GALLERY_KINDS: tuple[str, ...] = ("image", "text", "class_centre")
"""What the gallery holds: the stimulus images' embeddings (retrieval), text-prompt embeddings such as
"This picture is {concept}" (ATM's "classification"), or class-centre image embeddings (NICE's "classification")."""

TRAINING_SETTINGS: tuple[str, ...] = ("intra-subject", "leave-one-subject-out", "joint")
"""Intra-subject (one subject's training data), leave-one-subject-out (LOSO; the tested subject is unseen) or
joint (all subjects' training data, tested subject included)."""

TEST_SELECTION_WARNING = (
    "WARNING: MODEL SELECTED ON THE TEST SET. The checkpoint was chosen with test-set metrics, so these numbers are "
    "optimistically biased; compare them only with other test-selected numbers (such as the ATM paper's), never "
    "with validation-selected results."
)

# Fields that must be present (non-empty) for a card to describe a comparable number.
_ESSENTIAL_TEXT = (
    "dataset",
    "data_variant",
    "split",
    "gallery",
    "channels",
    "backbone",
    "eeg_normalisation",
    "selection_rule",
    "encoder",
    "config_hash",
)

_LABELS = {
    "dataset": "Dataset",
    "data_variant": "Data variant",
    "subjects": "Subjects",
    "split": "Split",
    "gallery": "Gallery",
    "gallery_kind": "Gallery kind (task)",
    "gallery_size": "Gallery size",
    "n_channels": "Channels (count)",
    "channels": "Channels (set)",
    "time_window": "Time window (s)",
    "sfreq": "Sampling rate (Hz)",
    "repetitions_averaged": "Test repetitions averaged",
    "training_setting": "Training setting",
    "backbone": "Embedding backbone",
    "eeg_normalisation": "EEG normalisation",
    "embedding_normalize": "Embeddings L2-normalised (cosine)",
    "training_seed": "Training seed",
    "distractor_seed": "Distractor seed",
    "n_draws": "Distractor draws",
    "selection_rule": "Selection rule",
    "selected_on_test": "Selected on test set",
    "encoder": "Encoder",
    "config_hash": "Encoder config hash",
    "toolkit_version": "Toolkit version",
    "date": "Date",
    "notes": "Notes",
}


def _today() -> str:
    return datetime.date.today().isoformat()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProtocolCard:
    """Everything needed to interpret, compare and reproduce a zero-shot retrieval number.

    All fields are keyword-only. Lists passed for ``subjects`` and ``time_window`` are stored as tuples. The fields
    ``embedding_normalize``, ``gallery_size``, ``distractor_seed`` and ``n_draws`` describe the metric computation
    itself; leave them ``None`` and :func:`~toolkit.retrieval.evaluate_retrieval` fills them in (it refuses a card
    whose values contradict the call).

    Parameters
    ----------
    dataset : str
        Dataset, e.g. ``"THINGS-EEG2"``.
    data_variant : str
        Which preprocessing of it, e.g. ``"NICE/ATM Preprocessed_data_250Hz"`` or ``"UBP 17-channel whitened"``.
    subjects : tuple of str
        Subjects the number is about, e.g. ``("sub-01",)``.
    split : str
        The evaluated split, e.g. ``"test"``.
    gallery : str
        What the candidates are, e.g. ``"test images, 200 concepts"`` or ``"text prompts 'This picture is
        {concept}', 200 concepts"``.
    gallery_kind : str
        One of :data:`GALLERY_KINDS`: ``"image"`` (retrieval), ``"text"`` or ``"class_centre"`` (classification).
    n_channels : int
        Number of EEG channels fed to the encoder.
    channels : str
        Which channel set, e.g. ``"all 63"`` or ``"17 posterior (P*, PO*, O*)"``.
    time_window : tuple of float
        ``(start, stop)`` in seconds relative to stimulus onset.
    sfreq : float
        Sampling rate in Hz.
    repetitions_averaged : int
        Test repetitions averaged per query (80 for the usual THINGS-EEG2 test average, 1 for single trials).
    training_setting : str
        One of :data:`TRAINING_SETTINGS`.
    backbone : str
        The image/text embedding model, e.g. ``"open_clip ViT-H-14 laion2b_s32b_b79k"`` or ``"demo embedder"``.
    eeg_normalisation : str
        EEG normalisation in preprocessing, e.g. ``"MVNN"``, ``"whitened"`` or ``"none"``.
    selection_rule : str
        How the checkpoint was chosen, e.g. ``"validation split carved from training images; best validation
        loss"``.
    selected_on_test : bool
        True when the checkpoint (or the epoch, or any hyper-parameter) was chosen with test-set metrics. Rendering
        then prints :data:`TEST_SELECTION_WARNING`.
    encoder : str
        Encoder name, e.g. ``"ATM-S"``.
    config_hash : str
        Hash of the encoder's full training configuration (see :func:`config_hash`).
    training_seed : int | None
        Seed of the training run; ``None`` renders as "not recorded".
    embedding_normalize : bool | None
        Whether scores are cosine similarities (``True``) or raw dot products (``False``).
    gallery_size : int | None
        Number of gallery items.
    distractor_seed : int | None
        Seed of the sampled k-way distractor draws.
    n_draws : int | None
        Number of sampled distractor draws per query.
    toolkit_version : str
        Toolkit version that computed the number.
    date : str
        ISO date of the evaluation.
    notes : str
        Free text.
    """

    dataset: str
    data_variant: str
    subjects: tuple[str, ...]
    split: str
    gallery: str
    gallery_kind: str
    n_channels: int
    channels: str
    time_window: tuple[float, float]
    sfreq: float
    repetitions_averaged: int
    training_setting: str
    backbone: str
    eeg_normalisation: str
    selection_rule: str
    selected_on_test: bool = False
    encoder: str
    config_hash: str
    training_seed: int | None = None
    embedding_normalize: bool | None = None
    gallery_size: int | None = None
    distractor_seed: int | None = None
    n_draws: int | None = None
    toolkit_version: str = __version__
    date: str = dataclasses.field(default_factory=_today)
    notes: str = ""

    def __post_init__(self) -> None:
        # Accept lists (JSON, YAML, users) but store hashable tuples; a lone string is one subject, not characters.
        if isinstance(self.subjects, str):
            object.__setattr__(self, "subjects", (self.subjects,))
        elif isinstance(self.subjects, (list, tuple)):
            object.__setattr__(self, "subjects", tuple(self.subjects))
        if isinstance(self.time_window, list):
            object.__setattr__(self, "time_window", tuple(self.time_window))

    # ------------------------------------------------------------------------------------------------ checks
    def validate(self) -> ProtocolCard:
        """Check that the card is complete and consistent.

        Returns
        -------
        ProtocolCard
            ``self``, so that ``card.validate()`` can be chained.

        Raises
        ------
        ToolkitError
            Listing every missing essential field, or naming the first field with a bad value.
        """
        missing = [name for name in _ESSENTIAL_TEXT if not _is_text(getattr(self, name))]
        if not isinstance(self.subjects, tuple) or not self.subjects:
            missing.insert(2, "subjects")
        if missing:
            raise ToolkitError(
                f"The protocol card is missing essential field(s) {', '.join(missing)}; fill them in (non-empty) "
                "so that the reported number can be interpreted and compared."
            )
        bad = self._first_bad_value()
        if bad is not None:
            raise ToolkitError(f"The protocol card field {bad}.")
        return self

    def _first_bad_value(self) -> str | None:
        if not all(_is_text(s) for s in self.subjects):
            return f"'subjects' must hold non-empty strings, got {self.subjects!r}"
        if len(set(self.subjects)) != len(self.subjects):
            return f"'subjects' lists a subject twice: {self.subjects!r}"
        if self.gallery_kind not in GALLERY_KINDS:
            return f"'gallery_kind' is {self.gallery_kind!r}; use one of {', '.join(GALLERY_KINDS)}"
        if self.training_setting not in TRAINING_SETTINGS:
            return f"'training_setting' is {self.training_setting!r}; use one of {', '.join(TRAINING_SETTINGS)}"
        if not _is_int(self.n_channels) or self.n_channels < 1:
            return f"'n_channels' must be a positive integer, got {self.n_channels!r}"
        if not _is_int(self.repetitions_averaged) or self.repetitions_averaged < 1:
            return (
                f"'repetitions_averaged' must be a positive integer (1 = single trials), got "
                f"{self.repetitions_averaged!r}"
            )
        window = self.time_window
        if (
            not isinstance(window, tuple)
            or len(window) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in window)
            or not window[0] < window[1]
        ):
            return f"'time_window' must be (start, stop) in seconds with start < stop, got {window!r}"
        if not _is_number(self.sfreq) or not math.isfinite(self.sfreq) or self.sfreq <= 0:
            return f"'sfreq' must be a positive number of Hz, got {self.sfreq!r}"
        if not isinstance(self.selected_on_test, bool):
            return f"'selected_on_test' must be True or False, got {self.selected_on_test!r}"
        for name in ("training_seed", "distractor_seed"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                return f"'{name}' must be a non-negative integer or None, got {value!r}"
        if self.embedding_normalize is not None and not isinstance(self.embedding_normalize, bool):
            return f"'embedding_normalize' must be True, False or None, got {self.embedding_normalize!r}"
        for name, low in (("gallery_size", 2), ("n_draws", 1)):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < low):
                return f"'{name}' must be an integer >= {low} or None, got {value!r}"
        for name in ("toolkit_version", "date", "notes"):
            if not isinstance(getattr(self, name), str):
                return f"'{name}' must be a string, got {getattr(self, name)!r}"
        return None

    # ------------------------------------------------------------------------------------------- properties
    @property
    def task(self) -> str:
        """``"retrieval"`` for an image gallery, ``"classification"`` for text prompts or class centres."""
        return "retrieval" if self.gallery_kind == "image" else "classification"

    @property
    def warning(self) -> str | None:
        """:data:`TEST_SELECTION_WARNING` when ``selected_on_test`` is set, else ``None``."""
        return TEST_SELECTION_WARNING if self.selected_on_test else None

    # ---------------------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["subjects"] = list(self.subjects)
        out["time_window"] = list(self.time_window)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the protocol card") -> ProtocolCard:
        """Rebuild a card from :meth:`to_dict` output and validate it.

        Parameters
        ----------
        data : Mapping
            Field values.
        source : str
            What the data came from (a file name), used in error messages.

        Returns
        -------
        ProtocolCard
            The validated card.
        """
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must be a JSON object of protocol fields, got {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ToolkitError(
                f"{source} has unknown protocol field(s) {', '.join(map(repr, unknown))}; "
                f"known fields are {', '.join(sorted(known))}."
            )
        try:
            card = cls(**dict(data))
        except TypeError as err:  # a required field is absent
            required = [f.name for f in dataclasses.fields(cls)
                        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
            absent = [name for name in required if name not in data]
            raise ToolkitError(
                f"{source} lacks the protocol field(s) {', '.join(absent)}; add them to the card."
            ) from err
        try:
            return card.validate()
        except ToolkitError as err:
            raise ToolkitError(f"In {source}: {err}") from None

    def to_json(self, *, indent: int = 2) -> str:
        """The card as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str, *, source: str = "the protocol card JSON") -> ProtocolCard:
        """Parse :meth:`to_json` output (only data is read; nothing is executed)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ToolkitError(f"{source} is not valid JSON ({err.msg} at line {err.lineno}); fix the file.") from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card as JSON atomically and return the path."""
        from ..utils import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProtocolCard:
        """Read a card written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ToolkitError(f"The protocol card file {path} does not exist; check the path.")
        return cls.from_json(path.read_text(encoding="utf-8"), source=f"the protocol card file {path}")

    def replace(self, **changes: Any) -> ProtocolCard:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -------------------------------------------------------------------------------------------- rendering
    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs in display order, values formatted for people."""
        out = [("Task", self.task)]
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "notes" and not value:
                continue
            out.append((_LABELS[field.name], _format_value(field.name, value)))
        return out

    def to_markdown(self) -> str:
        """Markdown: the test-selection warning (if any) as a bold block quote, then a two-column table."""
        lines = []
        if self.selected_on_test:
            lines += [f"> **⚠ {TEST_SELECTION_WARNING}**", ""]
        lines += ["| Protocol | Value |", "|---|---|"]
        lines += [f"| {label} | {_md_escape(value)} |" for label, value in self.rows()]
        return "\n".join(lines)

    def to_text(self) -> str:
        """Plain text: the test-selection warning (if any) between rules of ``!``, then ``label: value`` lines."""
        lines = []
        if self.selected_on_test:
            rule = "!" * 100
            lines += [rule, *_wrap(f"!!! {TEST_SELECTION_WARNING}", 100), rule]
        width = max(len(label) for label, _ in self.rows())
        lines += [f"{label:<{width}} : {value}" for label, value in self.rows()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def config_hash(config: Mapping[str, Any], *, length: int = 12) -> str:
    """A short, stable hash of a JSON-serialisable configuration (key order does not matter).

    Parameters
    ----------
    config : Mapping
        The encoder/training configuration.
    length : int
        Number of hexadecimal characters kept (of a SHA-256).

    Returns
    -------
    str
        The hash, e.g. ``"3f2a9c01b7de"``.
    """
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ToolkitError(
            f"The configuration cannot be hashed because it is not plain JSON data ({err}); "
            "pass numbers, strings, lists and dicts only."
        ) from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_value(name: str, value: Any) -> str:
    if value is None:
        return "filled in by evaluate_retrieval" if name in ("embedding_normalize", "gallery_size",
                                                              "distractor_seed", "n_draws") else "not recorded"
    if name == "subjects":
        return ", ".join(value)
    if name == "time_window":
        return f"{value[0]:g} to {value[1]:g}"
    if name == "selected_on_test":
        return "YES (see warning)" if value else "no"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, subsequent_indent="!!! ")


__all__ = [
    "GALLERY_KINDS",
    "TEST_SELECTION_WARNING",
    "TRAINING_SETTINGS",
    "ProtocolCard",
    "config_hash",
]
