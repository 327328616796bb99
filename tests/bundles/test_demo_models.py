"""The demo bundle's models: trained on first use (tiny preset and budgets here), recorded, cached, reloadable."""

from __future__ import annotations

import json
import time

import pytest

from toolkit import ToolkitError
from toolkit.bundles import DemoModelSettings, build_demo_bundle, bundle_dir, demo_models_current, read_bundle_manifest

from ..pipeline._tiny import GROUP, build_tiny

pytestmark = pytest.mark.xdist_group(GROUP)


@pytest.fixture
def tiny_home(tmp_path_factory, monkeypatch):
    home, seconds = build_tiny(tmp_path_factory)
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(home))
    return home, seconds


def test_manifest_records_every_model_with_relative_paths(tiny_home):
    _, seconds = tiny_home
    manifest = read_bundle_manifest("demo")
    components = manifest["components"]
    assert {"dataset", "vision", "embeddings", "encoders", "prior", "models"} <= set(components)
    root = bundle_dir("demo")
    assert set(components["encoders"]) == {"atm-s", "nice"}
    for entry in components["encoders"].values():
        assert entry["setting"] == "joint" and entry["subjects"] == ["sub-01", "sub-02"]
        assert (root / entry["path"] / "config.json").is_file() and (root / entry["run"] / "results.json").is_file()
        assert entry["best_epoch"] >= 1 and entry["test_top1"] is not None
    for key in ("train_image_norm", "train_image_raw", "test_image_norm", "test_image_raw"):
        assert (root / components["embeddings"][key]).is_file()
    assert (root / components["prior"]["path"] / "model_index.json").is_file()
    assert components["prior"]["condition_encoders"] == ["atm-s", "nice"]
    assert str(root) not in json.dumps(manifest)
    assert components["models"]["settings_digest"] == DemoModelSettings.tiny().digest()
    assert seconds < 120


def test_selection_used_validation_only(tiny_home):
    root = bundle_dir("demo")
    entry = read_bundle_manifest("demo")["components"]["encoders"]["atm-s"]
    results = json.loads((root / entry["run"] / "results.json").read_text())
    assert results["selection"]["selected_on_test"] is False and results["selection"]["metric"] == "val_top1"
    assert results["split"]["unit"] == "concepts"
    config = json.loads((root / entry["path"] / "config.json").read_text())
    assert config.get("positional_encoding", config.get("config", {}).get("positional_encoding")) == "none"


def test_second_call_is_cached_and_settings_change_is_detected(tiny_home):
    start = time.perf_counter()
    build_demo_bundle(preset="tiny", seed=0)
    assert time.perf_counter() - start < 5
    assert demo_models_current()
    assert not demo_models_current(DemoModelSettings.tiny(seed=1))
    assert not demo_models_current(DemoModelSettings())


def test_models_reload(tiny_home):
    from toolkit.bundles._demo_vision import load_demo_vision
    from toolkit.encoders import EEGEncoder
    from toolkit.prior import PriorPipeline

    root = bundle_dir("demo")
    components = read_bundle_manifest("demo")["components"]
    encoder = EEGEncoder.from_pretrained(root / components["encoders"]["nice"]["path"])
    assert encoder.config.n_chans == 63 and encoder.config.embed_dim == components["embeddings"]["embed_dim"]
    prior = PriorPipeline.from_pretrained(root / components["prior"]["path"])
    assert prior.prior.embed_dim == encoder.config.embed_dim
    assert load_demo_vision(root / components["vision"]["path"]).config.embed_dim == encoder.config.embed_dim


def test_bad_settings():
    with pytest.raises(ToolkitError, match="known encoders"):
        DemoModelSettings(encoders=("atm-s", "resnet-eeg"))
    with pytest.raises(ToolkitError, match="encoder_epochs"):
        DemoModelSettings(encoder_epochs=0)
    with pytest.raises(ToolkitError, match="settings must be a DemoModelSettings"):
        build_demo_bundle(settings={"encoder_epochs": 1})
