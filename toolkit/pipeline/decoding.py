"""The decoding pipeline: a bundle's store, encoders, galleries, prior, decoder and captioner behind one object.

:func:`load_pipeline` opens a bundle (building the ``demo`` bundle on first use) and returns a
:class:`DecodingPipeline` whose methods are one call per task: :meth:`~DecodingPipeline.retrieve` (EEG → top-k
gallery concepts), :meth:`~DecodingPipeline.reconstruct` (EEG → embedding → diffusion prior → image, with the
shuffled-EEG and prior-only controls), :meth:`~DecodingPipeline.caption`, :meth:`~DecodingPipeline.evaluate` (the
k-way table of a subject's test split with its protocol card). Models load lazily, on first use, and are kept.

EEG is float32 ``(n_trials, n_chans, n_times)`` (one ``(n_chans, n_times)`` trial is accepted too). Subjects are
given as labels (``"sub-01"``) or as the encoder's subject numbers; ``None`` uses the encoder's shared subject token.
"""

from __future__ import annotations

import json
import logging
import math
import os
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
    """

    def __init__(self, bundle: str, path: Path, manifest: dict) -> None:
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
        self._store = None
        self._encoders: dict[str, Any] = {}
        self._vision = None
        self._prior = None
        self._galleries: dict[tuple[str, bool], np.ndarray] = {}
        self._pool: dict[tuple[str, str], np.ndarray] = {}

    # -- listing -------------------------------------------------------------------------------------------------
    @property
    def encoders(self) -> list[str]:
        """Names of the bundle's EEG encoders (the first is the default)."""
        names = list(self._encoder_entries)
        names.remove(self._default)
        return [self._default, *names]

    @property
    def subjects(self) -> list[str]:
        """Subjects of the bundle's store."""
        return list(self._data.get("subjects") or self.store.subjects)

    @property
    def store(self) -> Any:
        """The bundle's memory-mapped trial store (:class:`toolkit.data.store.Store`)."""
        if self._store is None:
            from ..data.store import open_store

            self._store = open_store(self.path / self._data["store"])
        return self._store

    @property
    def images_root(self) -> Path:
        """Folder holding ``training_images/`` and ``test_images/``."""
        return self.path / self._data["images_root"]

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

            self._encoders[name] = EEGEncoder.from_pretrained(self.path / entry["path"]).eval()
        return self._encoders[name]

    @property
    def vision(self) -> Any:
        """The demo vision models (:class:`toolkit.bundles._demo_vision.DemoVision`): embedder, decoder, captioner."""
        if self._vision is None:
            from ..bundles._demo_vision import load_demo_vision

            self._vision = load_demo_vision(self.path / self._vision_entry["path"])
        return self._vision

    @property
    def prior(self) -> Any:
        """The diffusion prior (:class:`toolkit.prior.PriorPipeline`)."""
        if self._prior is None:
            from ..prior import PriorPipeline

            self._prior = PriorPipeline.from_pretrained(self.path / self._prior_entry["path"])
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
        from ..embeddings import load_embeddings

        key = f"test_image_{'norm' if normalize else 'raw'}"
        arrays, meta = load_embeddings(self.path / self._embeddings[key])
        concepts = [str(c) for c in meta.get("concepts", [])]
        images = meta.get("image_files") or []
        # One row per test condition; the concept of row i is the folder of image i.
        row_concepts = _concepts_of_rows(images, concepts) if images else concepts
        if kind == "image":
            return arrays["image_embeds"], row_concepts
        if (kind, normalize) not in self._galleries:
            self._galleries[(kind, normalize)] = self.vision.embedder.encode_texts(row_concepts, normalize=normalize)
        return self._galleries[(kind, normalize)], row_concepts

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
        known = {str(k): int(v) for k, v in (entry.get("subject_ids") or {}).items()}
        values = [subject_ids] * n if isinstance(subject_ids, (str, int, np.integer)) else list(subject_ids)
        if len(values) != n:
            raise ToolkitError(f"subject_ids has {len(values)} entries for {n} EEG trials; give one per trial.")
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

    def embed(self, eeg: Any, subject_ids: Any = None, *, encoder: str | None = None) -> np.ndarray:
        """L2-normalised EEG embeddings ``(n_trials, embed_dim)`` from ``encoder``."""
        name = self._default if encoder is None else encoder
        model = self.encoder(name)
        x = self._check_eeg(eeg, model)
        ids = self._subject_ids(subject_ids, x.shape[0], self._entry(name))
        return np.asarray(model.encode(x, ids, normalize=True), dtype=np.float32)

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

    def _prior_condition(self, eeg_embeds: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(eeg_embeds * math.sqrt(eeg_embeds.shape[1]))

    def _sample(self, cond: Any, n: int, seed: int, steps: int, guidance: float) -> np.ndarray:
        import torch

        generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
        out = self.prior(
            cond, num_inference_steps=steps, guidance_scale=guidance, generator=generators,
            batch_size=n, progress_bar=False,
        )
        return out.image_embeds.float().numpy()

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
        seed = _check_seed(seed)
        eeg_embeds = self.embed(eeg, subject_ids, encoder=encoder)
        n = eeg_embeds.shape[0]
        image = self._sample(self._prior_condition(eeg_embeds), n, seed, num_inference_steps, guidance_scale)
        return eeg_embeds, image

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
            Images and embeddings of the reconstructions and both controls.
        """
        name = self._default if encoder is None else encoder
        eeg_embeds, image = self.predict_image_embeds(
            eeg, subject_ids, encoder=name, seed=seed, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
        )
        n = eeg_embeds.shape[0]
        rng = np.random.default_rng(seed)
        if n >= 2:
            # A random derangement: every row is conditioned on another trial of the batch.
            shift = rng.integers(1, n)
            source = (np.arange(n) + shift) % n
            shuffled_cond = eeg_embeds[source]
        else:
            pool = self._test_pool(name)
            source = np.array([-1])
            shuffled_cond = pool[rng.integers(0, pool.shape[0], size=1)]
        shuffled = self._sample(
            self._prior_condition(shuffled_cond), n, seed, num_inference_steps, guidance_scale
        )
        prior_only = self._sample(None, n, seed, num_inference_steps, guidance_scale)
        decoder = self.vision.decoder
        kwargs = {} if size is None else {"height": size, "width": size}
        return ReconstructionOutput(
            images=decoder(image, **kwargs).images,
            image_embeds=image,
            eeg_embeds=eeg_embeds,
            shuffled_images=decoder(shuffled, **kwargs).images,
            shuffled_embeds=shuffled,
            prior_only_images=decoder(prior_only, **kwargs).images,
            prior_only_embeds=prior_only,
            shuffled_from=source.astype(np.int64),
            settings={
                "encoder": name, "seed": int(seed), "num_inference_steps": int(num_inference_steps),
                "guidance_scale": float(guidance_scale), "prior_condition": self._prior_entry.get("condition"),
            },
        )

    def _test_pool(self, encoder: str) -> np.ndarray:
        """Averaged test-trial embeddings of the first subject (the shuffled control of a single trial)."""
        key = (encoder, self.subjects[0])
        if key not in self._pool:
            trials = self.trials(self.subjects[0], "test", average=True)
            self._pool[key] = self.embed(trials.data[:, 0], self.subjects[0], encoder=encoder)
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
            return self.vision.captioner(self.embed(eeg, subject_ids, encoder=encoder))
        _, image = self.predict_image_embeds(
            eeg, subject_ids, encoder=encoder, seed=seed, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
        )
        return self.vision.captioner(image)

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
        results = self.path / entry["run"] / "results.json"
        try:
            card = json.loads(results.read_text(encoding="utf-8"))["test"]["protocol"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ToolkitError(
                f"'{results}' holds no test protocol card; rebuild the bundle's models "
                "(toolkit.bundles.build_demo_bundle(force=True))."
            ) from None
        for key in ("embedding_normalize", "gallery_size", "distractor_seed", "n_draws", "date", "toolkit_version"):
            card.pop(key, None)
        card["subjects"] = [subject]
        if subject != entry.get("test_subject"):
            card["notes"] = f"{card.get('notes', '')}; evaluated on {subject} by toolkit.pipeline".lstrip("; ")
        if gallery == "text":
            n = len(self.gallery("image")[1])
            card["gallery"] = f"demo text embeddings of the test concept names, {n} concepts"
            card["gallery_kind"] = "text"
        return ProtocolCard.from_dict(card)

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


def load_pipeline(bundle: str = "demo", *, build: bool = True, settings: Any = None, **data: Any) -> DecodingPipeline:
    """Open a bundle as a :class:`DecodingPipeline`.

    Parameters
    ----------
    bundle : str
        ``"demo"`` (built on first use when ``build``) or ``"atm-things-eeg"`` (your THINGS-EEG files and checkpoints
        in the bundle directory; a :class:`~toolkit.ToolkitError` lists what is missing).
    build : bool
        Build the demo bundle (data and models) when it is not built; otherwise fail saying how to build it.
    settings : toolkit.bundles.DemoModelSettings | None
        Training budgets of the demo models (tests pass :meth:`~toolkit.bundles.DemoModelSettings.tiny`).
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
        _check_real_bundle()
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


def _check_real_bundle() -> None:
    """Fail with one error listing what the ``atm-things-eeg`` bundle lacks on this machine."""
    from ..bundles import bundle_dir

    path = bundle_dir("atm-things-eeg")
    missing = []
    root = os.environ.get("EEG_TOOLKIT_DATA")
    if not root:
        missing.append("the THINGS-EEG files (set EEG_TOOLKIT_DATA to the folder holding things-eeg/)")
    elif not (Path(root).expanduser() / "things-eeg").is_dir():
        missing.append(f"the THINGS-EEG folder '{Path(root).expanduser() / 'things-eeg'}'")
    for part, what in (
        ("store", "the converted store (python -m toolkit data convert ROOT STORE)"),
        ("encoders", "encoder checkpoints (save_pretrained folders, one per encoder)"),
        ("prior", "the diffusion prior (PriorPipeline.save_pretrained folder)"),
        ("embeddings", "OpenCLIP ViT-H-14 embeddings of the test images (python -m toolkit embed --out)"),
    ):
        if not (path / part).exists():
            missing.append(f"{what} in '{path / part}'")
    detail = "; ".join(missing) if missing else (
        "SDXL-Turbo, IP-Adapter and GIT weights from the Hugging Face cache (this toolkit version wires the real "
        "bundle's retrieval and generation through toolkit.encoders / toolkit.generation directly)"
    )
    raise ToolkitError(f"The atm-things-eeg bundle cannot be opened as a pipeline: missing {detail}.")
