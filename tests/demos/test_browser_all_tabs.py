"""Headless Chromium through every tab of the whole app (tiny bundle): trigger each tab's main action, wait for its
outputs, save one screenshot per tab under ``tests/artifacts/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline._tiny import GROUP

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group(GROUP),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PLOTS = "document.querySelectorAll('{panel} .js-plotly-plot').length >= {n}"


def _panel(page, name: str):
    """Click the tab ``name`` and return its (visible) panel."""
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.locator("[role=tabpanel]:visible")
    panel.first.wait_for(timeout=10_000)
    return panel.first


def _shot(page, name: str) -> None:
    page.wait_for_timeout(600)  # let plotly and the galleries finish their transitions before the picture
    page.screenshot(path=str(ARTIFACTS / f"app_{name}.png"), full_page=True)


def test_every_tab_in_headless_chromium(decoding_app, chromium):
    url, _ = decoding_app
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    external, errors = [], []
    page.on("request", lambda req: external.append(req.url) if "127.0.0.1" not in req.url else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url, wait_until="load")  # not "networkidle": gr.State keeps a heartbeat open

    # Trials: renders its first trial on load.
    page.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=20_000)
    assert page.get_by_text("average of").count() >= 1
    _shot(page, "trials")

    # Retrieval: one gallery per encoder, the true image marked, the k-way curves.
    panel = _panel(page, "Retrieval")
    k_box = panel.locator("input[type=number]").first  # the "Top k" slider's box: the whole gallery of 8
    k_box.fill("8")
    k_box.press("Enter")
    panel.get_by_role("button", name="Retrieve").click()
    panel.get_by_text("Rank of the true image").wait_for(timeout=30_000)
    page.wait_for_function(
        "document.querySelectorAll('.retrieval-gallery img').length >= 16", timeout=20_000
    )
    page.wait_for_selector("[role=tabpanel]:visible .js-plotly-plot .scatterlayer .trace", timeout=20_000)
    assert panel.locator(".retrieval-gallery").get_by_text("✓ true").count() == 2  # once per encoder
    _shot(page, "retrieval")

    # Reconstruct & caption: the stimulus and three generated images, captions and metrics.
    panel = _panel(page, "Reconstruct & caption")
    panel.get_by_role("button", name="Reconstruct").click()
    panel.get_by_text("PixCorr").wait_for(timeout=60_000)
    page.wait_for_function(
        "document.querySelectorAll('[role=tabpanel]:not([hidden]) img').length >= 4", timeout=20_000
    )
    assert panel.get_by_text("EEG reconstruction:").count() >= 1
    _shot(page, "reconstruct")

    # Saliency: scalp map, heatmap, time course and the two ablation bar charts.
    panel = _panel(page, "Saliency")
    panel.get_by_role("button", name="Explain").click()
    panel.get_by_text("Attribution peaks at").wait_for(timeout=60_000)
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).filter(e => e.offsetParent !== null).length >= 5",
        timeout=20_000,
    )
    _shot(page, "saliency")

    # Your EEG: import the bundled example recording.
    panel = _panel(page, "Your EEG")
    panel.get_by_role("button", name="Load the example (real N170 recording)").click()
    panel.get_by_text("2 conditions × 86 repetitions").first.wait_for(timeout=60_000)
    page.wait_for_selector("#your-eeg-topomap img", timeout=20_000)
    # ... onto the encoders' montage, then Decode: retrieval, reconstruction and saliency with their caveats.
    panel.get_by_text("Not decodable as imported").first.wait_for(timeout=20_000)
    panel.get_by_role("combobox", name="Target montage").click()
    page.get_by_role("option", name="things-eeg-63: 63 channels, 250 Hz, 0-0.996 s (ATM models)").click()
    panel.get_by_role("button", name="Import", exact=True).click()
    panel.get_by_text("Ready to decode").first.wait_for(timeout=60_000)
    panel.get_by_role("button", name="Decode", exact=True).click()
    panel.get_by_text("Only 4 of 63 channels carry signal").first.wait_for(timeout=60_000)
    page.wait_for_selector("#your-eeg-saliency-topomap img", timeout=20_000)
    assert panel.get_by_text("Attribution peaks at").count() == 1
    _shot(page, "your_eeg")

    assert not errors, errors
    assert page.locator(".toast-body.error").count() == 0  # no Gradio error toast
    assert not [u for u in external if not u.startswith(("data:", "blob:"))], external
