"""The demo bundle's data: built once (tiny preset here), cached, rebuilt when half-built or stale."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.bundles import (
    BUNDLES,
    BundleSpec,
    add_bundle_component,
    build_demo_data,
    bundle_dir,
    demo_paths,
    load_demo_store,
    read_bundle_manifest,
)

pytestmark = pytest.mark.xdist_group("demo-bundle")


@pytest.fixture(scope="session")
def tiny_bundle():
    """The demo bundle built from the ``tiny`` preset in the session's isolated cache."""
    start = time.perf_counter()
    path = build_demo_data(preset="tiny", seed=0)
    return path, time.perf_counter() - start


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """An empty toolkit cache for tests that build or break a bundle of their own."""
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_build_writes_store_images_and_manifest(tiny_bundle):
    path, seconds = tiny_bundle
    assert path == bundle_dir("demo")
    manifest = json.loads((path / "bundle.json").read_text())
    assert manifest["format"] == "eeg-visual-toolkit-bundle" and manifest["bundle"] == "demo"
    data = manifest["components"]["dataset"]
    assert (data["preset"], data["seed"]) == ("tiny", 0)
    assert {"toolkit", "numpy", "mne", "python"} <= set(manifest["versions"])
    for key in ("root", "store", "images_root"):  # relative paths, inside the bundle
        assert not data[key].startswith("/") and (path / data[key]).is_dir()
    paths = demo_paths(preset="tiny")
    assert (paths["images_root"] / "test_images").is_dir() and (paths["images_root"] / "training_images").is_dir()
    # The simulated arrays were converted into the store and then removed from the dataset folder.
    assert not (paths["root"] / "Preprocessed_data_250Hz").exists()
    assert str(path) not in json.dumps(manifest)  # nothing absolute in the manifest
    assert seconds < 60


def test_store_loads_trials_with_their_images(tiny_bundle):
    store = load_demo_store(preset="tiny")
    assert store.subjects == ["sub-01", "sub-02"]
    assert sorted(store.splits("sub-01")) == ["test", "train"]
    ts = store.load("sub-01", "test", images_root=demo_paths(preset="tiny")["images_root"])
    assert ts.data.shape[2:] == (63, 250) and isinstance(ts.data, np.memmap)
    assert ts.images is not None and ts.images.image_path(0).is_file()
    assert np.isfinite(ts.trial(0, 0)).all()


def test_second_call_is_cached(tiny_bundle):
    path, _ = tiny_bundle
    before = (path / "bundle.json").stat().st_mtime_ns
    start = time.perf_counter()
    assert build_demo_data(preset="tiny", seed=0) == path
    assert time.perf_counter() - start < 0.5
    assert (path / "bundle.json").stat().st_mtime_ns == before


def _copy_of(tiny_bundle, home) -> None:
    """Put a copy of the session's tiny bundle into ``home`` (saves simulating it again)."""
    import shutil

    shutil.copytree(tiny_bundle[0], home / "bundles" / "demo")


def test_half_built_bundle_is_rebuilt_and_components_are_dropped(tiny_bundle, fresh_home):
    _copy_of(tiny_bundle, fresh_home)
    path = build_demo_data(preset="tiny", seed=0)
    assert path == fresh_home / "bundles" / "demo"
    add_bundle_component("demo", "encoder", {"path": "encoder", "arch": "test"})
    assert read_bundle_manifest("demo")["components"]["encoder"]["arch"] == "test"
    (path / "bundle.json").unlink()  # as if the build had been interrupted before its last step
    (path / "store" / "store.json").write_text("{broken")
    with pytest.raises(ToolkitError, match="not built"):
        load_demo_store(build=False, preset="tiny")
    build_demo_data(preset="tiny", seed=0)
    manifest = read_bundle_manifest("demo")
    assert set(manifest["components"]) == {"dataset"}
    assert load_demo_store(build=False, preset="tiny").subjects == ["sub-01", "sub-02"]


def test_other_seed_rebuilds(tiny_bundle, fresh_home):
    _copy_of(tiny_bundle, fresh_home)
    first = load_demo_store(preset="tiny").load("sub-01", "test").trial(0, 0)
    build_demo_data(preset="tiny", seed=3)
    assert read_bundle_manifest("demo")["components"]["dataset"]["seed"] == 3
    second = load_demo_store(preset="tiny", seed=3).load("sub-01", "test").trial(0, 0)
    assert not np.allclose(first, second)


@pytest.mark.parametrize(("kwargs", "match"), [({"seed": -1}, "seed"), ({"preset": "huge"}, "preset")])
def test_bad_arguments(fresh_home, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        build_demo_data(**kwargs)
    assert read_bundle_manifest("demo") is None


def test_add_component_needs_a_built_bundle(fresh_home):
    with pytest.raises(ToolkitError, match="not built"):
        add_bundle_component("demo", "encoder", {})


def test_demo_command_builds_only(tiny_bundle, monkeypatch, capsys):
    from toolkit.cli import main

    monkeypatch.setitem(BUNDLES, "demo", _tiny_spec())
    assert main(["demo", "--build-only", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["bundle"] == "demo" and out["bundle_dir"] == str(tiny_bundle[0])
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port must be between" in capsys.readouterr().err


def _tiny_spec() -> BundleSpec:
    spec = BUNDLES["demo"]
    return BundleSpec(
        name=spec.name,
        description=spec.description,
        components={"dataset": {**spec.components["dataset"], "preset": "tiny"}},
        offline=spec.offline,
    )


def test_trials_tab_on_the_tiny_bundle(tiny_bundle):
    """The app's handler on real simulated data: the image shown is the condition's stimulus."""
    pytest.importorskip("gradio")
    from demos.trials_tab import TrialsTab
    from toolkit.viz import TrialBrowser

    images_root = demo_paths(preset="tiny")["images_root"]
    tab = TrialsTab(TrialBrowser(load_demo_store(preset="tiny"), images_root=images_root))
    ts = tab.browser.trials("sub-02", "test")
    image, erp, topomap, text = tab.show_trial("sub-02", "test", 3, 1, False, 0.173)
    assert image == str(ts.images.image_path(3)) and image.endswith(".jpg")
    assert ts.images.concept_of(3) in text and "0.172 s" in text
    assert len(erp.data) == 63 + 2 and topomap.ndim == 3


def test_benchmark_runs(tiny_bundle, monkeypatch):
    """The app benchmark's code path (its timing is reported by `python -m toolkit bench`, never asserted)."""
    pytest.importorskip("gradio")
    from toolkit.bench import app as bench_app

    monkeypatch.setitem(BUNDLES, "demo", _tiny_spec())
    monkeypatch.setattr(bench_app, "N_CHANGES", 3)
    out = bench_app.trial_rerender()
    assert out["n_changes"] == 3 and out["handler"].endswith("show_trial")
    assert out["median_ms"] > 0 and out["median_cpu_ms"] >= 0 and isinstance(out["met_target"], bool)


def test_build_app_opens_the_demo_bundle(tiny_bundle, monkeypatch):
    gr = pytest.importorskip("gradio")
    from demos.app import build_app, open_bundle

    monkeypatch.setitem(BUNDLES, "demo", _tiny_spec())
    store, images_root = open_bundle("demo")
    assert store.subjects == ["sub-01", "sub-02"] and images_root == demo_paths()["images_root"]
    app = build_app("demo")
    assert isinstance(app, gr.Blocks)
    # Both image folders are served, through the dataset folder itself when the pipeline (built by an earlier
    # test of the session) adds it, and nothing outside the dataset is.
    roots, dataset = app.toolkit_image_roots, images_root.resolve()
    for folder in ("test_images", "training_images"):
        assert any((dataset / folder).is_relative_to(root) for root in roots)
    assert roots and all(root == dataset or root.parent == dataset for root in roots)
