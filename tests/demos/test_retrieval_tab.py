"""The "Retrieval" tab: handlers on the tiny bundle, bad input, and ``/retrieve`` through gradio_client."""

from __future__ import annotations

import pytest

from ._marks import DECODING

gr = pytest.importorskip("gradio")

pytestmark = DECODING


@pytest.fixture(scope="module")
def tab(tiny_pipeline):
    from demos.retrieval_tab import RetrievalTab

    return RetrievalTab(tiny_pipeline)


def test_one_gallery_per_encoder_with_the_true_image_marked(tab, tiny_pipeline):
    n = len(tiny_pipeline.gallery("image")[1])
    *galleries, figure, summary, cards = tab.retrieve("sub-01", 3, -1, n)
    assert len(galleries) == len(tiny_pipeline.encoders) == 2
    trials = tiny_pipeline.trials("sub-01", "test")
    for items in galleries:
        assert len(items) == n  # the whole gallery: the true image is in it exactly once
        marked = [caption for _, caption in items if "✓ true" in caption]
        assert len(marked) == 1 and trials.images.concept_of(3) in marked[0]
        assert {path for path, _ in items} == {str(trials.images.image_path(c)) for c in range(n)}
        assert marked[0].startswith("✓ true · ")
        scores = [float(caption.split(" · ")[-1]) for _, caption in items]
        assert scores == sorted(scores, reverse=True)
    # The ranking is the library's: same order as pipeline.retrieve on the averaged trial.
    eeg = trials.data[3].mean(axis=0)
    expected = tiny_pipeline.retrieve(eeg, "sub-01", encoder="nice", k=n).concepts[0]
    assert [caption.split(" · ")[-2].split(". ", 1)[1] for _, caption in galleries[1]] == expected
    assert "atm-s" in summary and "nice" in summary and "Rank of the true image" in summary
    assert "### atm-s" in cards and "### nice" in cards and "Protocol" in cards
    names = [trace.name for trace in figure.data]
    assert names == ["atm-s", "nice", "chance"]
    assert all(trace.error_y.array is not None for trace in figure.data[:2])  # 95 % intervals


def test_k_and_single_repetition(tab):
    *galleries, _, summary, _ = tab.retrieve("sub-02", 1, 0, 2)
    assert all(len(items) == 2 for items in galleries)
    assert "repetition 1" in summary


def test_evaluation_is_cached_per_subject_and_encoder(tab):
    first = tab.evaluation("sub-01", "atm-s")
    assert tab.evaluation("sub-01", "atm-s") is first
    assert tab.evaluation("sub-02", "atm-s") is not first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sub-99", 0, -1, 5), "Unknown subject 'sub-99'"),
        (("", 0, -1, 5), "Choose a subject"),
        (("sub-01", None, -1, 5), "Choose a trial"),
        (("sub-01", 99, -1, 5), "trial must be a whole number from 0 to 7"),
        (("sub-01", 0, 50, 5), "repetition must be a whole number"),
        (("sub-01", 0, -1, 0), "k must be a whole number from 1 to 8"),
        (("sub-01", 0, -1, 2.5), "k must be a whole number"),
    ],
)
def test_bad_input_is_one_clear_error(tab, args, message):
    with pytest.raises(gr.Error, match=message):
        tab.retrieve(*args)


def test_select_subject_refreshes_choices(tab):
    trials, reps = tab.select_subject("sub-02")
    assert trials["value"] == 0 and len(trials["choices"]) == 8
    assert reps["value"] == -1 and reps["choices"][0][1] == -1
    with pytest.raises(gr.Error, match="Unknown subject"):
        tab.select_subject("nobody")


def test_retrieve_through_gradio_client(decoding_app):
    from gradio_client import Client

    url, _ = decoding_app
    client = Client(url, verbose=False)
    *galleries, _, summary, cards = client.predict("sub-01", 2, -1, 3, api_name="/retrieve")
    assert len(galleries) == 2 and all(len(g) == 3 for g in galleries)
    assert all(item["caption"].split(" · ")[-2].startswith("1. ") for item in (g[0] for g in galleries))
    assert "sub-01" in summary and "### nice" in cards
    with pytest.raises(Exception, match="Unknown subject 'sub-77'"):
        client.predict("sub-77", 2, -1, 3, api_name="/retrieve")
    with pytest.raises(Exception, match="greater than maximum value 8"):  # Gradio checks the slider range
        client.predict("sub-01", 2, -1, 80, api_name="/retrieve")
    # Still serving after the errors.
    assert len(client.predict("sub-02", 0, -1, 1, api_name="/retrieve")[0]) == 1


def test_header_says_when_the_models_are_not_built(small_store, monkeypatch):
    import demos.app as app_module
    import toolkit.pipeline
    from toolkit import ToolkitError

    def not_built(*args, **kwargs):
        raise ToolkitError("The demo bundle's models are not built; run 'python -m toolkit demo --build-only'.")

    monkeypatch.setattr(app_module, "open_bundle", lambda bundle: small_store)
    monkeypatch.setattr(toolkit.pipeline, "load_pipeline", not_built)
    app = app_module.build_app("demo")
    assert app.toolkit_pipeline is None
    texts = [block.value for block in app.blocks.values() if isinstance(block, gr.Markdown)]
    header = next(t for t in texts if t.startswith("# "))
    assert "decoding tabs are off" in header and "models are not built" in header
    assert sum("--build-only" in (t or "") for t in texts) == 4  # the header and the three decoding tabs
