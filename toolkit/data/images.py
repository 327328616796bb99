"""Stimulus image sets in the official THINGS layout: ``ROOT/NNNNN_concept/<image>.jpg``, sorted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolkitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def concept_from_folder(folder: str) -> str:
    """Return the concept text of a THINGS folder name: what follows the first ``_`` (``00001_aircraft_carrier``
    gives ``aircraft_carrier``); a name without ``_`` is returned unchanged."""
    _, sep, rest = folder.partition("_")
    return rest if sep else folder


@dataclass(frozen=True)
class ImageSet:
    """The condition → concept → image mapping of one split.

    Conditions are numbered by walking the concept folders in sorted order and, inside each, the image files in
    sorted order (THINGS-EEG2's event numbering). The set may exist without the image files (``root`` is ``None``),
    for example when a store was converted on a machine that had the images and is read on one that has not.

    Parameters
    ----------
    root : Path | None
        Folder holding the concept folders, or ``None`` when the images are not available.
    concept_folders : tuple of str
        Sorted folder names, one per concept (``"00001_aardvark"``).
    image_files : tuple of str
        One path per condition, relative to ``root`` (``"00001_aardvark/aardvark_01b.jpg"``).
    condition_concept : np.ndarray of int, shape (n_conditions,)
        Concept index of each condition.
    """

    root: Path | None
    concept_folders: tuple[str, ...]
    image_files: tuple[str, ...]
    condition_concept: np.ndarray

    @property
    def concepts(self) -> list[str]:
        """Concept texts, one per concept index (underscores kept, as in the reference code)."""
        return [concept_from_folder(f) for f in self.concept_folders]

    @property
    def n_concepts(self) -> int:
        """Number of concepts."""
        return len(self.concept_folders)

    @property
    def n_conditions(self) -> int:
        """Number of image conditions."""
        return len(self.image_files)

    def concept_of(self, condition: int) -> str:
        """Concept text of a condition."""
        return concept_from_folder(self.concept_folders[int(self.condition_concept[condition])])

    def image_path(self, condition: int) -> Path:
        """Absolute path of a condition's image file.

        Raises a :class:`~toolkit.ToolkitError` when the set has no image root.
        """
        if self.root is None:
            raise ToolkitError(
                "This image set has no image folder attached; pass the folder of the stimulus images "
                "(for example ROOT/test_images) when loading."
            )
        return self.root / self.image_files[condition]

    def to_dict(self) -> dict:
        """JSON-serialisable description (without the absolute root), for store metadata."""
        return {
            "concept_folders": list(self.concept_folders),
            "image_files": list(self.image_files),
            "condition_concept": [int(c) for c in self.condition_concept],
        }

    @classmethod
    def from_dict(cls, obj: dict, root: str | os.PathLike | None = None) -> ImageSet:
        """Rebuild from :meth:`to_dict` output, attaching ``root`` if given."""
        return cls(
            root=Path(root) if root is not None else None,
            concept_folders=tuple(obj["concept_folders"]),
            image_files=tuple(obj["image_files"]),
            condition_concept=np.asarray(obj["condition_concept"], dtype=np.int64),
        )

    @classmethod
    def from_folder(cls, root: str | os.PathLike, *, images_per_concept: int | None = None) -> ImageSet:
        """Scan ``root`` for concept folders and their images, in sorted order.

        Parameters
        ----------
        root : str | os.PathLike
            Folder holding ``NNNNN_concept`` sub-folders.
        images_per_concept : int | None
            If given, every concept folder must hold exactly this many images (10 for THINGS-EEG training,
            1 for test); otherwise the error names the first folder that differs.

        Returns
        -------
        ImageSet
            The mapping, with ``root`` attached.
        """
        root = Path(root)
        if not root.is_dir():
            raise ToolkitError(f"Image folder '{root}' does not exist; pass the folder holding the concept folders.")
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise ToolkitError(f"Image folder '{root}' holds no concept folders (expected NNNNN_concept/...).")
        files: list[str] = []
        concept_idx: list[int] = []
        for idx, folder in enumerate(folders):
            names = sorted(
                p.name for p in (root / folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not names:
                raise ToolkitError(f"Concept folder '{root / folder}' holds no images.")
            if images_per_concept is not None and len(names) != images_per_concept:
                raise ToolkitError(
                    f"Concept folder '{root / folder}' holds {len(names)} images but {images_per_concept} are "
                    "expected; check that the image set is complete."
                )
            files.extend(f"{folder}/{name}" for name in names)
            concept_idx.extend([idx] * len(names))
        return cls(
            root=root,
            concept_folders=tuple(folders),
            image_files=tuple(files),
            condition_concept=np.asarray(concept_idx, dtype=np.int64),
        )
