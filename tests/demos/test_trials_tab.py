"""The "Trials" tab: handlers without a server, the Blocks, and one end-to-end run through gradio_client."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

# Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def _pixel(path) -> tuple:
    return Image.open(path).convert("RGB").getpixel((8, 8))


def test_show_trial_returns_the_four_views(trials_tab, small_store):
    _, root = small_store
    image, erp, topomap, text = trials_tab.show_trial("sub-01", "test", 3, 1, False, 0.3)
    assert image == str(root / "test_images" / "00002_testconcept1" / "img_1.jpg")
    assert abs(_pixel(image)[0] - 60) <= 3  # the stimulus of condition 3 (red channel 20 * 3)
    assert type(erp).__module__.startswith("plotly") and len(erp.data) == 17 + 2
    assert isinstance(topomap, np.ndarray) and topomap.dtype == np.uint8 and topomap.shape[2] == 3
    assert isinstance(text, str) and "testconcept1" in text and "repetition 1" in text


def test_average_differs_from_single_trial(trials_tab):
    _, single, single_map, _ = trials_tab.show_trial("sub-02", "train", 2, 0, False, 0.5)
    _, average, average_map, text = trials_tab.show_trial("sub-02", "train", 2, 0, True, 0.5)
    assert not np.allclose(single.data[0].y, average.data[0].y)
    assert not np.array_equal(single_map, average_map)
    assert "average of 2 repetitions" in text


def test_select_split_refreshes_choices_and_falls_back(trials_tab):
    out = trials_tab.select_split("sub-02", "validation", True, 0.25)
    split, concept, condition, repetition, latency = out[:5]
    assert split["value"] == "test" and split["choices"] == ["test", "train"]
    assert concept["value"] == "testconcept0"
    assert condition["value"] == 0 and [c[1] for c in condition["choices"]] == [0, 1]
    assert repetition["maximum"] == 4
    assert latency["value"] == pytest.approx(0.25) and latency["maximum"] == pytest.approx(0.98)
    assert len(out) == 9 and isinstance(out[-1], str)
    out = trials_tab.select_split("sub-01", "train", False, 5.0)  # latency clamped into the epoch
    assert out[0]["value"] == "train" and out[4]["value"] == pytest.approx(0.98)


def test_select_concept_lists_its_images(trials_tab):
    out = trials_tab.select_concept("sub-01", "train", "trainconcept2", 1, False, 0.1)
    assert out[0]["choices"] == [("img_0.jpg", 4), ("img_1.jpg", 5)] and out[0]["value"] == 4
    assert out[1].endswith("00003_trainconcept2/img_0.jpg")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("sub-01", "test", 9, 0, False, 0.2), "condition 9 is out of range"),
        (("sub-01", "test", 0, 7, False, 0.2), "repetition 7"),
        (("sub-01", "test", 0, 0, False, -3.0), "latency -3.0 s is outside"),
        (("sub-07", "test", 0, 0, False, 0.2), "Subject 'sub-07'"),
    ],
)
def test_bad_input_becomes_a_gradio_error(trials_tab, args, match):
    with pytest.raises(gr.Error, match=match):
        trials_tab.show_trial(*args)
    with pytest.raises(gr.Error, match="not in the train split"):
        trials_tab.select_concept("sub-01", "train", "nothing", 0, False, 0.2)


def test_build_app_without_launching(small_store):
    from demos.app import build_app

    store, root = small_store
    app = build_app("demo", store=store, images_root=root)
    assert isinstance(app, gr.Blocks)
    api_names = {dep.get("api_name") for dep in app.config["dependencies"]}
    assert {"trial", "trials_select", "trials_concept"} <= api_names
    header = next(c for c in app.config["components"] if c.get("type") == "markdown")
    assert "atm-things-eeg" in header["props"]["value"] and "not recordings of people" in header["props"]["value"]


def test_atm_bundle_without_data_is_one_clear_error(monkeypatch):
    from demos.app import open_bundle
    from toolkit import ToolkitError

    monkeypatch.delenv("EEG_TOOLKIT_DATA", raising=False)
    with pytest.raises(ToolkitError, match="EEG_TOOLKIT_DATA"):
        open_bundle("atm-things-eeg")
    with pytest.raises(ToolkitError, match="Unknown bundle"):
        open_bundle("nope")


def test_end_to_end_through_gradio_client(served_app):
    from gradio_client import Client

    client = Client(served_app, verbose=False)
    image, erp, topomap, text = client.predict("sub-01", "test", 2, 4, False, 0.3, api_name="/trial")
    assert abs(_pixel(image)[0] - 40) <= 3  # condition 2's stimulus came back
    assert Image.open(topomap).size[0] > 100
    assert "testconcept1" in text and "repetition 4" in text
    assert "plot" in str(erp) or isinstance(erp, dict)
    # Bad input comes back as the error message, not a traceback: the handler's own check ...
    with pytest.raises(Exception, match="condition 9 is out of range"):
        client.predict("sub-01", "test", 9, 0, False, 0.3, api_name="/trial")
    # ... and Gradio's bounds check on the sliders.
    with pytest.raises(Exception, match="greater than maximum value 4"):
        client.predict("sub-01", "test", 2, 9, False, 0.3, api_name="/trial")


ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "artifacts"


@pytest.mark.browser
def test_page_renders_in_headless_chromium(served_app, chromium):
    """Open the app in Debian's Chromium, check that the views render and that unticking "average" re-renders."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 1100})
    external = []
    page.on("request", lambda req: external.append(req.url) if "127.0.0.1" not in req.url else None)
    page.goto(served_app, wait_until="load")  # not "networkidle": gr.State keeps a heartbeat open
    page.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=20_000)
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() == 17 + 1
    assert page.get_by_text("average of 5 repetitions").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "trials_tab.png"), full_page=True)
    page.get_by_label("Average of all repetitions").uncheck()
    page.get_by_text("single trial, repetition 0").first.wait_for(timeout=20_000)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length === 19", timeout=20_000
    )
    page.screenshot(path=str(ARTIFACTS / "trials_tab_single.png"), full_page=True)
    assert not [u for u in external if not u.startswith(("data:", "blob:"))], external
