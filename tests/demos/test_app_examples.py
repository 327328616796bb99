"""Examples of the decoding tabs: present in every build, stored at start-up on a Space (or when asked), read back
from the store, never reused from an unfinished start; off by default on a laptop."""

from __future__ import annotations

import pytest

from tests.demos.conftest import free_port
from tests.pipeline._tiny import GROUP

gr = pytest.importorskip("gradio")

pytestmark = [
    pytest.mark.xdist_group(GROUP),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

TABS = ("retrieval", "reconstruct", "saliency")


def _example_events(app) -> set[str]:
    """API names of the app's example events."""
    return {fn.api_name for fn in app.fns.values() if fn.api_name and fn.api_name.endswith("_example")}


def test_every_decoding_tab_has_examples_not_stored_locally(tiny_pipeline, monkeypatch):
    from demos.app import build_app

    monkeypatch.delenv("SPACE_ID", raising=False)
    app = build_app("demo", pipeline=tiny_pipeline)
    assert app.toolkit_cache_examples is False and app.toolkit_examples_dir is None
    assert {f"{tab}_example" for tab in TABS} <= _example_events(app)
    assert list(app.toolkit_examples) == ["Retrieval", "Reconstruct & caption", "Saliency"]
    datasets = [b for b in app.blocks.values() if isinstance(b, gr.Dataset)]
    labels = [label for d in datasets for label in (d.sample_labels or [])]
    assert any("sub-01 · trial 0:" in label and "average" in label for label in labels)
    assert any("repetition 1" in label for label in labels)  # one single-repetition example


def test_space_stores_examples_by_default(tiny_pipeline, monkeypatch, tmp_path):
    from demos.app import build_app

    monkeypatch.setenv("SPACE_ID", "someone/eeg-toolkit")
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    app = build_app("demo", pipeline=tiny_pipeline)
    assert app.toolkit_cache_examples is True
    assert app.toolkit_examples_dir.parent == tmp_path and app.toolkit_examples_dir.name.startswith("demo-")


def test_examples_are_stored_at_start_and_read_back(tiny_pipeline, monkeypatch, tmp_path):
    pytest.importorskip("gradio_client")
    from demos.app import _examples_cache_dir, build_app, launch
    from demos.retrieval_tab import RetrievalTab

    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    stale = _examples_cache_dir("demo", tiny_pipeline)
    (stale / "leftover").mkdir(parents=True)  # an earlier start that stopped before it had stored everything
    app = build_app("demo", pipeline=tiny_pipeline, cache_examples=True)
    folder = app.toolkit_examples_dir
    assert folder == stale and not (folder / "leftover").exists()
    launch(app, port=free_port(), block=False, quiet=True)  # one torch thread, as the other served apps here
    try:
        assert (folder / ".complete").is_file()
        logs = sorted(folder.glob("*/log.csv"))
        assert len(logs) == len(TABS)
        # The stored outputs are the handler's: the retrieval example's galleries mark the true image once.
        examples = app.toolkit_examples["Retrieval"]
        first = examples.load_from_cache(0)
        expected = RetrievalTab(tiny_pipeline).retrieve(*examples.examples[0])
        n_galleries = len(tiny_pipeline.encoders)
        assert len(first) == len(expected)
        for stored, fresh in zip(first[:n_galleries], expected[:n_galleries], strict=True):
            captions = [item["caption"] for item in stored.model_dump()]
            assert captions == [caption for _, caption in fresh]
            assert len(captions) == examples.examples[0][-1]  # top k
        assert first[-2] == expected[-2]  # the summary
    finally:
        app.close()
    # A second start finds the complete store: nothing recomputed, the same folder.
    again = build_app("demo", pipeline=tiny_pipeline, cache_examples=True)
    assert again.toolkit_examples_dir == folder and (folder / ".complete").is_file()


def test_cache_examples_is_checked(tiny_pipeline):
    from demos.app import build_app
    from toolkit import ToolkitError

    with pytest.raises(ToolkitError, match="cache_examples must be True, False, 'lazy' or None"):
        build_app("demo", pipeline=tiny_pipeline, cache_examples="always")
