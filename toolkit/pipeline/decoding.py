"""The decoding pipeline: a bundle's store, encoders, galleries, prior, decoder and captioner behind one object.

:func:`load_pipeline` opens a bundle (building the ``demo`` bundle on first use) and returns a
:class:`DecodingPipeline` whose methods are one call per task: :meth:`~DecodingPipeline.retrieve` (EEG → top-k
gallery concepts), :meth:`~DecodingPipeline.reconstruct` (EEG → embedding → diffusion prior → image, with the
shuffled-EEG and prior-only controls), :meth:`~DecodingPipeline.caption`, :meth:`~DecodingPipeline.evaluate` (the
k-way table of a subject's test split with its protocol card). Models load lazily, on first use, and are kept.

EEG is float32 ``(n_trials, n_chans, n_times)`` (one ``(n_chans, n_times)`` trial is accepted too). Subjects are
given as labels (``"sub-01"``) or as the encoder's subject numbers; ``None`` uses the encoder's shared subject token.

The same class serves both bundles: the EEG side (store, encoders, galleries, prior) is read from the bundle's
manifest, and the image and text side is a *generator backend* (:mod:`toolkit.pipeline.backends`): the demo's small
autoencoder, or SDXL(-Turbo) + IP-Adapter and GIT for ``atm-things-eeg`` (float16 on CUDA, float32 on the CPU).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError

logger = logging.getLogger(__name__)

#: Galleries :meth:`DecodingPipeline.retrieve` and :meth:`DecodingPipeline.evaluate` can search.
GALLERIES: tuple[str, ...] = ("image", "text")


@dataclass
class RetrievalOutput:
    """Top-k gallery items per EEG trial.

    Attributes
    ----------
    indices : np.ndarray of int64, shape (n_trials, k)
        Gallery rows, best first.
    scores : np.ndarray of float32, shape (n_trials, k)
        Cosine similarities of those rows.
    concepts : list of list of str
        Concept names of those rows.
    eeg_embeds : np.ndarray of float32, shape (n_trials, embed_dim)
        The encoder's L2-normalised EEG embeddings.
    encoder : str
        The encoder used.
    gallery : str
        ``"image"`` (test images) or ``"text"`` (test concept texts).
    """

    indices: np.ndarray
    scores: np.ndarray
    concepts: list[list[str]]
    eeg_embeds: np.ndarray
    encoder: str
    gallery: str


@dataclass
class ReconstructionOutput:
    """Images decoded from EEG and from the two controls, with the embeddings behind them.

    Attributes
    ----------
    images : list of PIL.Image.Image
        One reconstruction per trial: EEG embedding → diffusion prior → image embedding → decoder.
    image_embeds : np.ndarray of float32, shape (n_trials, embed_dim)
        The prior's predicted (raw) image embeddings.
    eeg_embeds : np.ndarray of float32, shape (n_trials, embed_dim)
        The encoder's L2-normalised EEG embeddings.
    shuffled_images, prior_only_images : list of PIL.Image.Image
        Controls made with the same seeds: the prior conditioned on the embedding of *another* trial (the batch's
        embeddings deranged; a single trial is paired with a random test trial of the bundle), and the
        unconditional prior (no EEG at all).
    shuffled_embeds, prior_only_embeds : np.ndarray of float32, shape (n_trials, embed_dim)
        The image embeddings behind the controls.
    shuffled_from : np.ndarray of int64, shape (n_trials,)
        For each row, the batch row whose EEG conditioned its shuffled control (``-1``: a bundle test trial).
    settings : dict
        Encoder, seed, steps, guidance scale.
    semantic_images, shuffled_semantic_images, prior_only_semantic_images : list of PIL.Image.Image | None
        The *semantic path* of the reconstruction and of both controls: the captions of ``image_embeds``,
        ``shuffled_embeds`` and ``prior_only_embeds`` (those :meth:`DecodingPipeline.caption` gives) turned back into
        images. In the demo bundle the caption is drawn by the simulator's stimulus renderer
        (:meth:`~toolkit.pipeline.DemoBackend.render_captions`), at the size of :attr:`images`. ``None`` for the
        real bundle, whose semantic path (GIT caption → SDXL) is :mod:`toolkit.generation.semantic` /
        ``python -m toolkit caption``.
    """

    images: list
    image_embeds: np.ndarray
    eeg_embeds: np.ndarray
    shuffled_images: list
    shuffled_embeds: np.ndarray
    prior_only_images: list
    prior_only_embeds: np.ndarray
    shuffled_from: np.ndarray
    settings: dict = field(default_factory=dict)
    semantic_images: list | None = None
    shuffled_semantic_images: list | None = None
    prior_only_semantic_images: list | None = None


class DecodingPipeline:
    """One bundle's components behind task-level calls (build it with :func:`load_pipeline`).

    Parameters
    ----------
    bundle : str
        Bundle name.
    path : Path
        Bundle directory.
    manifest : dict
        The bundle's ``bundle.json``.
    device : str | torch.device | None
        ``atm-things-eeg`` only: where the encoders, the prior, SDXL and GIT run (``None``: CUDA when available).
    dtype : torch.dtype | str | None
        ``atm-things-eeg`` only: weight type of SDXL and GIT (``None``: float16 on CUDA, float32 on the CPU).

    Attributes
    ----------
    backend : toolkit.pipeline.GeneratorBackend
        The image and text side: :class:`~toolkit.pipeline.DemoBackend` or :class:`~toolkit.pipeline.DiffusersBackend`.
    """

    def __init__(self, bundle: str, path: Path, manifest: dict, *, device: Any = None, dtype: Any = None) -> None:
        self.bundle = bundle
        self.path = Path(path)
        self.manifest = manifest
        components = manifest.get("components", {})
        self._data = components["dataset"]
        self._encoder_entries: dict[str, dict] = dict(components.get("encoders") or {})
        self._embeddings = components.get("embeddings") or {}
        self._prior_entry = components.get("prior") or {}
        self._vision_entry = components.get("vision") or {}
        self._default = (components.get("models") or {}).get("default_encoder") or next(iter(self._encoder_entries))
        self._prior_mode = _prior_mode(self._prior_entry.get("condition"))
        self._store = None
        self._encoders: dict[str, Any] = {}
        self._prior = None
        self._galleries: dict[tuple[str, bool], np.ndarray] = {}
        self._pool: dict[tuple[str, str], np.ndarray] = {}
        self._gallery_files: dict[str, tuple[dict, dict]] = {}
        if self._vision_entry:
            if device is not None or dtype is not None:
                raise ToolkitError(
                    "device and dtype apply to the atm-things-eeg bundle; the demo bundle's models run on the CPU."
                )
            from .backends import DemoBackend

            self._device = None
            self.backend: Any = DemoBackend(self._resolve(self._vision_entry["path"]))
        else:
            from .backends import DiffusersBackend

            clip = dict(components.get("clip") or {})
            pretrained = clip.get("pretrained")
            if isinstance(pretrained, str) and self._resolve(pretrained).is_file():
                clip["pretrained"] = str(self._resolve(pretrained))
            self.backend = DiffusersBackend(
                {**components, "clip": clip}, self._source, image_embed_dim=self._gallery_dim(), device=device,
                dtype=dtype,
            )
            self._device = self.backend.device

    def _resolve(self, value: Any) -> Path:
        """A manifest path: absolute as written, else relative to the bundle directory."""
        from ..bundles._real import resolve_path

        return resolve_path(str(value), self.path)

    def _source(self, entry: Any) -> tuple[str, str | None]:
        """``(local path or Hub id, revision)`` of a manifest component entry."""
        from ..bundles._real import source_of

        return source_of(entry, self.path)

    # -- listing -------------------------------------------------------------------------------------------------
    @property
    def encoders(self) -> list[str]:
        """Names of the bundle's EEG encoders (the first is the default)."""
        names = list(self._encoder_entries)
        names.remove(self._default)
        return [self._default, *names]

    @property
    def subjects(self) -> list[str]:
        """Subjects of the bundle's store (those with a test split)."""
        if self._data.get("subjects"):
            return list(self._data["subjects"])
        return [s for s in self.store.subjects if "test" in self.store.splits(s)]

    @property
    def store(self) -> Any:
        """The bundle's memory-mapped trial store (:class:`toolkit.data.store.Store`)."""
        if self._store is None:
            from ..data.store import open_store

            self._store = open_store(self._resolve(self._data["store"]))
        return self._store

    @property
    def images_root(self) -> Path | None:
        """Folder holding ``training_images/`` and ``test_images/`` (``None``: the folder recorded in the store)."""
        if self._vision_entry:
            return self.path / self._data["images_root"]
        from ..bundles._real import real_images_root

        root = real_images_root(self._data)
        if root is None:
            entry = next((e for e in self.store.entries if e.split == "test" and e.images_root), None)
            return None if entry is None else Path(entry.images_root).parent
        return root

    def trials(self, subject: str, split: str = "test", *, average: bool = False) -> Any:
        """One subject's split as a :class:`~toolkit.data.TrialSet` with its stimulus images attached.

        Parameters
        ----------
        subject : str
            Subject label (see :attr:`subjects`).
        split : str
            ``"train"`` or ``"test"``.
        average : bool
            Average the repetitions (one trial per condition, the test convention).

        Returns
        -------
        TrialSet
            Memory-mapped trials (averaged ones are in memory).
        """
        self._check_subject(subject)
        trials = self.store.load(subject, split, images_root=self.images_root)
        return trials.average() if average else trials

    def _check_subject(self, subject: Any) -> None:
        if subject not in self.subjects:
            raise ToolkitError(
                f"Unknown subject {subject!r}; the {self.bundle} bundle has {', '.join(self.subjects)}."
            )

    # -- components ----------------------------------------------------------------------------------------------
    def _entry(self, encoder: str) -> dict:
        if encoder not in self._encoder_entries:
            raise ToolkitError(
                f"Unknown encoder {encoder!r} for the {self.bundle} bundle; available encoders: "
                f"{', '.join(self.encoders)}."
            )
        return self._encoder_entries[encoder]

    def encoder(self, name: str | None = None) -> Any:
        """The EEG encoder ``name`` (default: the bundle's first), loaded on first use, in eval mode."""
        name = self._default if name is None else name
        entry = self._entry(name)
        if name not in self._encoders:
            from ..encoders import EEGEncoder

            model = EEGEncoder.from_pretrained(self._resolve(entry["path"])).eval()
            self._encoders[name] = model if self._device is None else model.to(self._device)
        return self._encoders[name]

    @property
    def vision(self) -> Any:
        """The bundle's vision models, with ``embedder``, ``decoder`` and ``captioner`` attributes.

        The demo's :class:`toolkit.bundles._demo_vision.DemoVision`; for ``atm-things-eeg`` the
        :class:`~toolkit.pipeline.backends.DiffusersBackend` (OpenCLIP embedder, SDXL + IP-Adapter decoder, GIT
        captioner), each loaded on first use.
        """
        return self.backend.models

    @property
    def prior(self) -> Any:
        """The diffusion prior (:class:`toolkit.prior.PriorPipeline`; float32, on the pipeline's device)."""
        if self._prior is None:
            from ..prior import PriorPipeline

            prior = PriorPipeline.from_pretrained(self._resolve(self._prior_entry["path"]))
            self._prior = prior if self._device is None else prior.to(self._device)
        return self._prior

    def gallery(self, kind: str = "image", *, normalize: bool = True) -> tuple[np.ndarray, list[str]]:
        """The test gallery: embeddings of the test images (or test concept texts) and their concept names.

        Parameters
        ----------
        kind : str
            ``"image"`` or ``"text"``.
        normalize : bool
            L2-normalised rows (retrieval) or raw ones (images only: what the decoder and the prior use).

        Returns
        -------
        embeds : np.ndarray of float32, shape (n_test_conditions, embed_dim)
        concepts : list of str
            Concept of each row.
        """
        if kind not in GALLERIES:
            raise ToolkitError(f"Unknown gallery {kind!r}; use one of {', '.join(GALLERIES)}.")
        image_embeds, meta = self._test_image_embeds(normalize)
        concepts = [str(c) for c in meta.get("concepts", [])]
        images = meta.get("image_files") or []
        # One row per test condition; the concept of row i is the folder of image i.
        row_concepts = _concepts_of_rows(images, concepts) if images else concepts
        if not row_concepts:  # a file without image names: the store's test images, in condition order
            test_images = self.store.load(self.subjects[0], "test").images
            row_concepts = [test_images.concept_of(i) if test_images is not None else f"condition {i}"
                            for i in range(image_embeds.shape[0])]
        if kind == "image":
            return image_embeds, row_concepts
        if (kind, normalize) not in self._galleries:
            self._galleries[(kind, normalize)] = self._text_embeds(meta, row_concepts, normalize)
        return self._galleries[(kind, normalize)], row_concepts

    def _test_image_embeds(self, normalize: bool) -> tuple[np.ndarray, dict]:
        """The test images' embeddings (normalised or raw) and the metadata of their file."""
        from ..embeddings import l2_normalize, load_embeddings

        key = f"test_image_{'norm' if normalize else 'raw'}"
        if key in self._embeddings:  # the demo bundle: one file per normalisation
            arrays, meta = load_embeddings(self._resolve(self._embeddings[key]))
            return arrays["image_embeds"], meta
        file = self._resolve(self._embeddings["test_image"])
        if str(file) not in self._gallery_files:
            self._gallery_files[str(file)] = load_embeddings(file)
        arrays, meta = self._gallery_files[str(file)]
        if "image_embeds" not in arrays:
            raise ToolkitError(f"'{file}' holds no image_embeds; export it with python -m toolkit embed --out.")
        embeds = np.asarray(arrays["image_embeds"], dtype=np.float32)
        if normalize:
            return l2_normalize(embeds), meta
        if meta.get("normalize") is True:
            raise ToolkitError(
                f"'{file}' holds L2-normalised image embeddings, but raw ones are needed here; export them with "
                "python -m toolkit embed ROOT/test_images --no-normalize --out FILE and set up the bundle again."
            )
        return embeds.copy(), meta

    def _text_embeds(self, meta: dict, row_concepts: list[str], normalize: bool) -> np.ndarray:
        """Text embeddings of the test concepts: from the embeddings file when it holds them, else the backend's."""
        from ..embeddings import l2_normalize
        from ..embeddings.base import format_prompts

        key = f"test_image_{'norm' if normalize else 'raw'}"
        if key not in self._embeddings:
            arrays, _ = self._gallery_files[str(self._resolve(self._embeddings["test_image"]))]
            concepts = [str(c) for c in meta.get("concepts", [])]
            usable = "text_embeds" in arrays and len(concepts) == arrays["text_embeds"].shape[0]
            if usable and set(row_concepts) <= set(concepts):
                if not normalize and meta.get("normalize") is True:
                    raise ToolkitError("The bundle's text embeddings are L2-normalised; raw ones are not available.")
                index = {c: i for i, c in enumerate(concepts)}
                rows = np.asarray(arrays["text_embeds"], dtype=np.float32)[[index[c] for c in row_concepts]]
                return l2_normalize(rows) if normalize else rows
        return self.backend.encode_texts(format_prompts(row_concepts, self.backend.text_prompt), normalize=normalize)

    def _gallery_dim(self) -> int:
        """Width of the test-image embeddings (read from the file)."""
        return int(self._test_image_embeds(True)[0].shape[1])

    def _text_gallery_label(self, n: int) -> str:
        key = "test_image_norm"
        if key not in self._embeddings:
            arrays, meta = self._gallery_files[str(self._resolve(self._embeddings["test_image"]))]
            if "text_embeds" in arrays and meta.get("prompt"):
                return f"text embeddings of the prompts '{meta['prompt']}' of the test concepts, {n} concepts"
        return self.backend.text_gallery.format(n=n, prompt=self.backend.text_prompt)

    # -- inputs --------------------------------------------------------------------------------------------------
    def _check_eeg(self, eeg: Any, encoder: Any) -> np.ndarray:
        try:
            x = np.array(eeg.detach().cpu() if hasattr(eeg, "detach") else eeg, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ToolkitError(f"eeg could not be read as a float array ({err}); pass a numeric array.") from None
        cfg = encoder.config
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (cfg.n_chans, cfg.n_times) or x.shape[0] == 0:
            raise ToolkitError(
                f"eeg has shape {tuple(np.shape(eeg))}; the {self.bundle} encoders take (n_trials, {cfg.n_chans}, "
                f"{cfg.n_times}) float32 arrays (channels x samples of the bundle's data)."
            )
        if not np.isfinite(x).all():
            raise ToolkitError("eeg contains NaN or infinite values; clean or drop those trials.")
        return x

    def _subject_ids(self, subject_ids: Any, n: int, entry: dict) -> np.ndarray | None:
        if subject_ids is None:
            return None
        known = self._known_subjects(entry)
        values = [subject_ids] * n if isinstance(subject_ids, (str, int, np.integer)) else list(subject_ids)
        if len(values) != n:
            raise ToolkitError(f"subject_ids has {len(values)} entries for {n} EEG trials; give one per trial.")
        unseen = [v for v in values if isinstance(v, str) and v not in known and v in self.subjects]
        if not self._vision_entry and len(unseen) == n:
            # A subject of the bundle the encoder was not trained on (an intra-subject or leave-one-subject-out
            # checkpoint): the shared subject token, as in the encoder's own test evaluation.
            return None
        out = []
        for value in values:
            if isinstance(value, str):
                if value not in known:
                    raise ToolkitError(
                        f"Unknown subject {value!r} in subject_ids; the encoder knows {', '.join(known) or 'none'} "
                        "(or pass None for the shared subject token)."
                    )
                out.append(known[value])
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
                out.append(int(value))
            else:
                raise ToolkitError(f"subject_ids holds {value!r}; use subject labels like 'sub-01' or numbers >= 0.")
        return np.asarray(out, dtype=np.int64)

    def _known_subjects(self, entry: dict) -> dict[str, int]:
        """Subject label → number of an encoder: recorded by its training run, else the trainer's numbering of the
        bundle's subjects (``sub-08`` → 8)."""
        if "subject_ids" in entry:
            return {str(k): int(v) for k, v in (entry.get("subject_ids") or {}).items()}
        from ..training import subject_numbers

        return subject_numbers(self.subjects)

    def embed(
        self, eeg: Any, subject_ids: Any = None, *, encoder: str | None = None, normalize: bool = True
    ) -> np.ndarray:
        """EEG embeddings ``(n_trials, embed_dim)`` of ``encoder``, L2-normalised (raw with ``normalize=False``)."""
        name = self._default if encoder is None else encoder
        model = self.encoder(name)
        x = self._check_eeg(eeg, model)
        ids = self._subject_ids(subject_ids, x.shape[0], self._entry(name))
        out = model.encode(x, ids, normalize=bool(normalize))
        return np.asarray(out.float().cpu() if out.device.type != "cpu" else out, dtype=np.float32)

    # -- tasks ---------------------------------------------------------------------------------------------------
    def retrieve(
        self,
        eeg: Any,
        subject_ids: Any = None,
        *,
        encoder: str | None = None,
        k: int = 5,
        gallery: str = "image",
    ) -> RetrievalOutput:
        """Top-``k`` test-gallery items per EEG trial (cosine similarity of the encoder's embeddings).

        Parameters
        ----------
        eeg : array, shape (n_trials, n_chans, n_times) or (n_chans, n_times)
            EEG trials (averaged test trials give the usual zero-shot retrieval).
        subject_ids : str | int | sequence | None
            Subject of every trial (labels like ``"sub-01"`` or the encoder's numbers); ``None``: shared token.
        encoder : str | None
            One of :attr:`encoders` (default: the first, ATM-S for the demo).
        k : int
            Items returned per trial (at most the gallery size).
        gallery : str
            ``"image"`` (test images) or ``"text"`` (test concept texts).

        Returns
        -------
        RetrievalOutput
            Indices, scores and concepts, best first.
        """
        name = self._default if encoder is None else encoder
        embeds = self.embed(eeg, subject_ids, encoder=name)
        items, concepts = self.gallery(gallery, normalize=True)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= items.shape[0]:
            raise ToolkitError(f"k must be an integer from 1 to the gallery size {items.shape[0]}; got {k!r}.")
        scores = embeds @ (items / np.linalg.norm(items, axis=1, keepdims=True)).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, : int(k)]
        return RetrievalOutput(
            indices=order.astype(np.int64),
            scores=np.take_along_axis(scores, order, axis=1).astype(np.float32),
            concepts=[[concepts[j] for j in row] for row in order],
            eeg_embeds=embeds,
            encoder=name,
            gallery=gallery,
        )

    def _prior_condition(self, eeg: Any, subject_ids: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised EEG embeddings, the prior's condition made from the encoder's output as it was trained)."""
        eeg_embeds = self.embed(eeg, subject_ids, encoder=name)
        if self._prior_mode == "raw":
            return eeg_embeds, self.embed(eeg, subject_ids, encoder=name, normalize=False)
        if self._prior_mode == "normalized":
            return eeg_embeds, eeg_embeds
        return eeg_embeds, eeg_embeds * math.sqrt(eeg_embeds.shape[1])

    def _sample(self, cond: np.ndarray | None, n: int, seed: int, steps: int, guidance: float) -> np.ndarray:
        import torch

        generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
        out = self.prior(
            None if cond is None else torch.from_numpy(cond), num_inference_steps=steps, guidance_scale=guidance,
            generator=generators, batch_size=n, progress_bar=False,
        )
        return out.image_embeds.float().cpu().numpy()

    def predict_image_embeds(
        self,
        eeg: Any,
        subject_ids: Any = None,
        *,
        encoder: str | None = None,
        seed: int = 0,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """EEG → (L2-normalised EEG embeddings, the prior's raw image embeddings)."""
        eeg_embeds, _, image = self._predict(eeg, subject_ids, encoder, seed, num_inference_steps, guidance_scale)
        return eeg_embeds, image

    def _predict(
        self, eeg: Any, subject_ids: Any, encoder: str | None, seed: Any, steps: int, guidance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L2-normalised EEG embeddings, prior conditions, the prior's image embeddings)."""
        seed = _check_seed(seed)
        name = self._default if encoder is None else encoder
        eeg_embeds, cond = self._prior_condition(eeg, subject_ids, name)
        return eeg_embeds, cond, self._sample(cond, cond.shape[0], seed, steps, guidance)

    def reconstruct(
        self,
        eeg: Any,
        subject_ids: Any = None,
        *,
        encoder: str | None = None,
        seed: int = 0,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        size: int | None = None,
    ) -> ReconstructionOutput:
        """Images from EEG, with the shuffled-EEG and prior-only controls (same seeds).

        Parameters
        ----------
        eeg : array, shape (n_trials, n_chans, n_times) or (n_chans, n_times)
            EEG trials.
        subject_ids : str | int | sequence | None
            See :meth:`retrieve`.
        encoder : str | None
            One of :attr:`encoders`.
        seed : int
            Row ``i`` is sampled with seed ``seed + i`` (the controls reuse the seeds).
        num_inference_steps : int
            Denoising steps of the prior.
        guidance_scale : float
            Classifier-free guidance of the prior (see :class:`toolkit.prior.PriorPipeline`).
        size : int | None
            Side of the returned images in pixels (``None``: the decoder's display size).

        Returns
        -------
        ReconstructionOutput
            Images and embeddings of the reconstructions and both controls; in the demo bundle also their semantic
            path (caption → the simulator's renderer; see :attr:`has_semantic_path`).
        """
        name = self._default if encoder is None else encoder
        eeg_embeds, cond, image = self._predict(eeg, subject_ids, name, seed, num_inference_steps, guidance_scale)
        n = eeg_embeds.shape[0]
        rng = np.random.default_rng(seed)
        if n >= 2:
            # A random derangement: every row is conditioned on another trial of the batch.
            shift = rng.integers(1, n)
            source = (np.arange(n) + shift) % n
            shuffled_cond = cond[source]
        else:
            pool = self._test_pool(name)
            source = np.array([-1])
            shuffled_cond = pool[rng.integers(0, pool.shape[0], size=1)]
        shuffled = self._sample(shuffled_cond, n, seed, num_inference_steps, guidance_scale)
        prior_only = self._sample(None, n, seed, num_inference_steps, guidance_scale)
        decode = self.backend.decode
        images = decode(image, seed=seed, size=size)
        semantic: list[list | None] = [None, None, None]
        if self.has_semantic_path:
            # One captioner call for the three sets of embeddings (row-wise, so the captions are those of
            # self.caption), then each caption rendered at the size of the decoded images.
            captions = self.backend.caption(np.concatenate([image, shuffled, prior_only]))
            rendered = self.backend.render_captions(captions, size=int(images[0].size[0]))
            semantic = [rendered[k * n:(k + 1) * n] for k in range(3)]
        return ReconstructionOutput(
            images=images,
            image_embeds=image,
            eeg_embeds=eeg_embeds,
            shuffled_images=decode(shuffled, seed=seed, size=size),
            shuffled_embeds=shuffled,
            prior_only_images=decode(prior_only, seed=seed, size=size),
            prior_only_embeds=prior_only,
            shuffled_from=source.astype(np.int64),
            settings={
                "encoder": name, "seed": int(seed), "num_inference_steps": int(num_inference_steps),
                "guidance_scale": float(guidance_scale), "prior_condition": self._prior_entry.get("condition"),
                **self.backend.settings(),
            },
            semantic_images=semantic[0],
            shuffled_semantic_images=semantic[1],
            prior_only_semantic_images=semantic[2],
        )

    @property
    def has_semantic_path(self) -> bool:
        """Whether :meth:`reconstruct` fills the ``*semantic_images`` fields (the demo bundle: its backend renders
        captions). The real bundle's semantic path is :mod:`toolkit.generation.semantic` (``python -m toolkit
        caption``)."""
        return callable(getattr(self.backend, "render_captions", None))

    def _test_pool(self, encoder: str) -> np.ndarray:
        """Prior conditions of the first subject's averaged test trials (the shuffled control of a single trial)."""
        key = (encoder, self.subjects[0])
        if key not in self._pool:
            trials = self.trials(self.subjects[0], "test", average=True)
            self._pool[key] = self._prior_condition(trials.data[:, 0], self.subjects[0], encoder)[1]
        return self._pool[key]

    def caption(
        self,
        eeg: Any,
        subject_ids: Any = None,
        *,
        encoder: str | None = None,
        via: str = "prior",
        seed: int = 0,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
    ) -> list[str]:
        """Captions of EEG trials: the captioner applied to the prior's image embeddings (or the EEG embeddings).

        Parameters
        ----------
        eeg, subject_ids, encoder
            See :meth:`retrieve`.
        via : str
            ``"prior"`` (EEG → prior → image embedding → caption) or ``"eeg"`` (caption the EEG embedding itself,
            which lives in the image-embedding space).
        seed, num_inference_steps, guidance_scale
            See :meth:`reconstruct` (``via="prior"`` only).

        Returns
        -------
        list of str
            One caption per trial.
        """
        if via not in ("prior", "eeg"):
            raise ToolkitError(f"via must be 'prior' or 'eeg'; got {via!r}.")
        if via == "eeg":
            embeds = self.embed(eeg, subject_ids, encoder=encoder)
            if not self.backend.scale_free:
                # The captioner takes image embeddings at their own scale: the unit EEG embedding is given the mean
                # norm of the raw test-image embeddings (ATM's one-stage path feeds the EEG embedding directly).
                raw, _ = self._test_image_embeds(False)
                embeds = embeds * np.float32(np.linalg.norm(raw, axis=1).mean())
            return self.backend.caption(embeds)
        _, image = self.predict_image_embeds(
            eeg, subject_ids, encoder=encoder, seed=seed, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
        )
        return self.backend.caption(image)

    # -- evaluation ----------------------------------------------------------------------------------------------
    def protocol_card(self, subject: str, *, encoder: str | None = None, gallery: str = "image") -> Any:
        """The protocol card of ``encoder``'s test evaluation on ``subject`` (from its training run's card).

        Parameters
        ----------
        subject : str
            Tested subject.
        encoder : str | None
            One of :attr:`encoders`.
        gallery : str
            ``"image"`` (retrieval) or ``"text"`` (zero-shot classification against concept texts).

        Returns
        -------
        toolkit.retrieval.ProtocolCard
            With the metric fields (normalisation, gallery size, draws) left for the evaluation to fill in.
        """
        from ..retrieval import ProtocolCard

        name = self._default if encoder is None else encoder
        entry = self._entry(name)
        self._check_subject(subject)
        if gallery not in GALLERIES:
            raise ToolkitError(f"Unknown gallery {gallery!r}; use one of {', '.join(GALLERIES)}.")
        results = self._resolve(entry["run"]) / "results.json" if entry.get("run") else None
        try:
            card = json.loads(results.read_text(encoding="utf-8"))["test"]["protocol"]
        except (AttributeError, OSError, ValueError, KeyError, TypeError):
            if self._vision_entry:
                raise ToolkitError(
                    f"'{results}' holds no test protocol card; rebuild the bundle's models "
                    "(toolkit.bundles.build_demo_bundle(force=True))."
                ) from None
            card = self._card_without_run(name, entry, subject, results)
        for key in ("embedding_normalize", "gallery_size", "distractor_seed", "n_draws", "date", "toolkit_version"):
            card.pop(key, None)
        card["subjects"] = [subject]
        if subject != entry.get("test_subject"):
            card["notes"] = f"{card.get('notes', '')}; evaluated on {subject} by toolkit.pipeline".lstrip("; ")
        if gallery == "text":
            n = len(self.gallery("image")[1])
            card["gallery"] = self._text_gallery_label(n)
            card["gallery_kind"] = "text"
        return ProtocolCard.from_dict(card)

    def _card_without_run(self, name: str, entry: dict, subject: str, results: Path | None) -> dict:
        """A card for a checkpoint whose training run holds no test card: what the bundle's data and files say."""
        from ..retrieval import config_hash

        trials = self.store.load(subject, "test")
        _, meta = self._test_image_embeds(True)
        identity = meta.get("identity") if isinstance(meta.get("identity"), dict) else {}
        backbone = " ".join(str(identity[k]) for k in ("backend", "model", "weights") if identity.get(k))
        rule, seed = "not recorded (the checkpoint was registered without its training run)", None
        if results is not None:
            try:
                summary = json.loads(results.read_text(encoding="utf-8"))
                rule = str(summary["selection"]["rule"])
                seed = json.loads((results.parent / "config.json").read_text(encoding="utf-8"))["train"]["seed"]
            except (OSError, ValueError, KeyError, TypeError):
                pass
        model = self.encoder(name)
        return {
            "dataset": trials.dataset,
            "data_variant": f"{trials.dataset} ({trials.n_chans} ch, {trials.n_times} samples at {trials.sfreq:g} Hz)",
            "subjects": [subject],
            "split": "test",
            "gallery": f"test images, {trials.n_conditions} conditions",
            "gallery_kind": "image",
            "n_channels": trials.n_chans,
            "channels": f"all {trials.n_chans}",
            "time_window": [float(trials.times[0]), float(trials.times[-1])],
            "sfreq": float(trials.sfreq),
            "repetitions_averaged": trials.n_repetitions,
            "training_setting": entry.get("training_setting") or "intra-subject",
            "backbone": backbone or f"unknown (from {Path(str(self._embeddings.get('test_image'))).name})",
            "eeg_normalisation": "as stored",
            "selection_rule": rule,
            "selected_on_test": False,
            "encoder": name,
            "config_hash": config_hash(model.config.to_dict()),
            "training_seed": seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None,
            "notes": (
                f"card made by toolkit.pipeline from the {self.bundle} bundle's data"
                + ("" if entry.get("training_setting") else "; the training setting was not recorded")
            ),
        }

    def evaluate(
        self,
        subject: str,
        *,
        encoder: str | None = None,
        gallery: str = "image",
        ks: Sequence[int] | None = None,
        n_draws: int = 100,
        seed: int = 0,
    ) -> Any:
        """k-way zero-shot retrieval of ``subject``'s test split (repetitions averaged) with its protocol card.

        Parameters
        ----------
        subject : str
            Tested subject.
        encoder : str | None
            One of :attr:`encoders`.
        gallery : str
            ``"image"`` or ``"text"``.
        ks : sequence of int | None
            k values (``None``: the standard ones up to the gallery size).
        n_draws : int
            Sampled distractor draws per query.
        seed : int
            Seed of the draws and bootstrap.

        Returns
        -------
        toolkit.retrieval.RetrievalResult
            Exact and sampled k-way accuracies, full-gallery top-k, with intervals and the card.
        """
        from ..retrieval import evaluate_retrieval

        name = self._default if encoder is None else encoder
        card = self.protocol_card(subject, encoder=name, gallery=gallery)
        trials = self.trials(subject, "test", average=True)
        embeds = self.embed(trials.data[:, 0], subject, encoder=name)
        items, _ = self.gallery(gallery, normalize=True)
        if ks is not None:
            ks = [int(k) for k in ks if int(k) <= items.shape[0]]
        return evaluate_retrieval(
            embeds, items, np.arange(trials.n_conditions), normalize=True, protocol=card, ks=ks, n_draws=n_draws,
            seed=seed,
        )

    def __repr__(self) -> str:
        return f"DecodingPipeline(bundle={self.bundle!r}, encoders={self.encoders}, subjects={self.subjects})"


def _concepts_of_rows(image_files: Sequence[str], concepts: Sequence[str]) -> list[str]:
    """Concept of each image row: the concept whose folder name (``NNNNN_concept``) holds the image."""
    out = []
    for file in image_files:
        folder = Path(str(file)).parts[-2] if len(Path(str(file)).parts) >= 2 else ""
        match = [c for c in concepts if folder.endswith(c)]
        out.append(max(match, key=len) if match else folder)
    return out


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63 - 1024:
        raise ToolkitError(f"seed must be a non-negative integer; got {seed!r}.")
    return int(seed)


def _prior_mode(condition: Any) -> str:
    """How the prior's condition is made (a key of :data:`toolkit.bundles._real.PRIOR_CONDITIONS`)."""
    from ..bundles._demo_models import PRIOR_CONDITION
    from ..bundles._real import PRIOR_CONDITIONS

    if condition is None or condition == PRIOR_CONDITION:
        return "normalized-scaled"  # the demo bundle's prior
    if condition not in PRIOR_CONDITIONS:
        raise ToolkitError(
            f"The bundle's prior names an unknown condition {condition!r}; use one of {', '.join(PRIOR_CONDITIONS)} "
            "(python -m toolkit bundle init ... --prior-condition)."
        )
    return str(condition)


def load_pipeline(
    bundle: str = "demo",
    *,
    build: bool = True,
    settings: Any = None,
    device: Any = None,
    dtype: Any = None,
    **data: Any,
) -> DecodingPipeline:
    """Open a bundle as a :class:`DecodingPipeline`.

    Parameters
    ----------
    bundle : str
        ``"demo"`` (built on first use when ``build``) or ``"atm-things-eeg"``: your THINGS-EEG store, encoders,
        prior and CLIP embeddings named in its ``bundle.json`` (``python -m toolkit bundle init atm-things-eeg``) or
        laid out in its directory; one :class:`~toolkit.ToolkitError` lists whatever is missing.
    build : bool
        Build the demo bundle (data and models) when it is not built; otherwise fail saying how to build it. The real
        bundle is never built (its parts are yours).
    settings : toolkit.bundles.DemoModelSettings | None
        Training budgets of the demo models (tests pass :meth:`~toolkit.bundles.DemoModelSettings.tiny`).
    device : str | torch.device | None
        ``atm-things-eeg`` only: where the models run (``None``: CUDA when available, else the CPU).
    dtype : torch.dtype | str | None
        ``atm-things-eeg`` only: weight type of SDXL and GIT (``None``: float16 on CUDA, float32 on the CPU); the
        encoders and the prior run in float32.
    **data
        ``preset`` / ``seed`` of the demo dataset (see :func:`toolkit.bundles.build_demo_data`).

    Returns
    -------
    DecodingPipeline
        The pipeline; models load on first use.
    """
    from ..bundles import get_bundle, read_bundle_manifest
    from ..bundles._demo_models import build_demo_bundle, demo_models_current

    get_bundle(bundle)
    unknown = sorted(set(data) - {"preset", "seed"})
    if unknown:
        raise ToolkitError(f"load_pipeline() got unknown argument(s) {', '.join(unknown)}; use preset and seed.")
    if bundle == "atm-things-eeg":
        from ..bundles import bundle_dir
        from ..bundles._real import load_real_bundle_manifest

        if data or settings is not None:
            raise ToolkitError("preset, seed and settings apply to the demo bundle, not to atm-things-eeg.")
        manifest = load_real_bundle_manifest()  # one error listing every missing part
        return DecodingPipeline(bundle, bundle_dir(bundle), manifest, device=device, dtype=dtype)
    if device is not None or dtype is not None:
        raise ToolkitError(
            "device and dtype apply to the atm-things-eeg bundle; the demo bundle's models run on the CPU."
        )
    if build:
        path = build_demo_bundle(settings=settings, **data)
    else:
        from ..bundles import demo_paths

        path = demo_paths(build=False, **data)["bundle"]
        if not demo_models_current(settings):
            raise ToolkitError(
                "The demo bundle's models are not built; build them with 'python -m toolkit demo --build-only' or "
                "toolkit.bundles.build_demo_bundle()."
            )
    return DecodingPipeline("demo", path, read_bundle_manifest("demo"))
