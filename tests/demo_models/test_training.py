"""train_demo_vision / load_demo_vision: files, checksums, determinism, training images only, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tests.demo_models.conftest import TINY_TRAINING, one_thread
from toolkit import ToolkitError
from toolkit.bundles._demo_vision import load_demo_vision, train_demo_vision
from toolkit.embeddings.demo import DEMO_VISION_FORMAT, read_demo_vision

pytestmark = pytest.mark.xdist_group("demo-models")

QUICK = {**TINY_TRAINING, "epochs": 2, "decoder_epochs": 1}


def test_training_writes_a_self_describing_folder(tiny_trained, tiny_root):
    folder, summary = tiny_trained
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["format"] == DEMO_VISION_FORMAT and meta["version"] == 1
    assert meta["weights_sha256"] == summary["weights"]
    assert set(meta["weights_sha256"]) == {"encoder", "decoder", "heads", "text"}
    assert meta["config"]["vocabulary"]["shape"] == ["circle", "square", "triangle", "star"]
    training = meta["training"]
    assert training == summary["training"]
    assert (training["n_train_images"], training["n_train_concepts"]) == (40, 20)
    assert training["dataset_preset"] == "tiny"
    assert str(tiny_root) not in json.dumps(meta)  # nothing absolute in the stored summary
    train = training["metrics"]["train"]
    assert train["caption_accuracy"] >= 0.9 and train["zero_shot_top1"] >= 0.9
    test = training["metrics"]["test"]
    assert test["n_images"] == 8 and test["attribute_accuracy"]["colour"] >= 0.75
    assert set(load_file(str(folder / "model.safetensors"))) >= {"heads.weight", "text.word_vectors", "text.bias"}


def test_round_trip_reproduces_the_trained_models(tiny_trained, tiny_models, train_images):
    reloaded = load_demo_vision(tiny_trained[0])
    assert reloaded.path == tiny_trained[0] and reloaded.config == tiny_models.config
    assert reloaded.embedder.identity == tiny_models.embedder.identity
    assert reloaded.training["seed"] == 0
    paths = [train_images.image_path(i) for i in range(4)]
    embeds = reloaded.embedder.encode_images(paths, normalize=False)
    np.testing.assert_array_equal(embeds, tiny_models.embedder.encode_images(paths, normalize=False))
    np.testing.assert_array_equal(reloaded.decoder.decode(embeds), tiny_models.decoder.decode(embeds))
    assert reloaded.captioner(embeds) == tiny_models.captioner(embeds)


def test_training_is_deterministic_and_ignores_the_test_images(tiny_root, tmp_path):
    copy = tmp_path / "sim"
    shutil.copytree(tiny_root / "training_images", copy / "training_images")
    shutil.copy(tiny_root / "ground_truth.json", copy)
    shutil.copy(tiny_root / "ground_truth.npz", copy)
    with one_thread():
        first = train_demo_vision(tiny_root, tmp_path / "a", seed=3, progress_bar=False, **QUICK)
        without_tests = train_demo_vision(copy, tmp_path / "b", seed=3, progress_bar=False, **QUICK)
        other_seed = train_demo_vision(tiny_root, tmp_path / "c", seed=4, progress_bar=False, **QUICK)
    assert first["weights"] == without_tests["weights"]  # same seed, same weights; test images never used
    assert "test" in first["training"]["metrics"] and "test" not in without_tests["training"]["metrics"]
    assert other_seed["weights"]["encoder"] != first["weights"]["encoder"]
    # Retraining into an existing demo-vision folder replaces it.
    with one_thread():
        again = train_demo_vision(tiny_root, tmp_path / "c", seed=3, progress_bar=False, **QUICK)
    assert again["weights"] == first["weights"]
    assert json.loads((tmp_path / "c" / "config.json").read_text())["training"]["seed"] == 3


def test_vocabulary_from_folder_names_without_ground_truth(tiny_root, tmp_path):
    copy = tmp_path / "sim"
    shutil.copytree(tiny_root / "training_images", copy / "training_images")
    with one_thread():
        summary = train_demo_vision(copy, tmp_path / "out", progress_bar=False, **{**QUICK, "decoder_epochs": 0})
    vocab = json.loads((tmp_path / "out" / "config.json").read_text())["config"]["vocabulary"]
    assert vocab["shape"] == sorted(vocab["shape"]) and len(vocab["shape"]) == 4
    assert summary["training"]["dataset_preset"] is None and summary["training"]["decoder_epochs"] == 0
    assert load_demo_vision(tmp_path / "out").captioner(np.ones((1, 32), np.float32))[0].startswith("a ")


def test_bad_training_input_is_refused(tiny_root, tmp_path):
    with pytest.raises(ToolkitError, match="training_images"):
        train_demo_vision(tmp_path, tmp_path / "out")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ToolkitError, match="non-empty folder"):
        train_demo_vision(tiny_root, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    odd = tmp_path / "odd"
    shutil.copytree(tiny_root / "training_images", odd / "training_images")
    first = sorted((odd / "training_images").iterdir())[0]
    first.rename(first.with_name("00001_aardvark"))
    with pytest.raises(ToolkitError, match="aardvark"):
        train_demo_vision(odd, tmp_path / "out")
    with pytest.raises(ToolkitError, match="epochs"):
        train_demo_vision(tiny_root, tmp_path / "out", epochs=0)
    with pytest.raises(ToolkitError, match="image_size"):
        train_demo_vision(tiny_root, tmp_path / "out", image_size=48)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_save_leaves_nothing(tiny_root, tmp_path, monkeypatch):
    import safetensors.numpy

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    with one_thread(), pytest.raises(KeyboardInterrupt):
        train_demo_vision(tiny_root, tmp_path / "out", progress_bar=False, **QUICK)
    assert list(tmp_path.iterdir()) == []


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_damaged_folders_are_refused(tiny_trained, tmp_path):
    folder = tiny_trained[0]
    with pytest.raises(ToolkitError, match="holds no demo vision models"):
        load_demo_vision(tmp_path)

    copy = _copy(folder, tmp_path)
    tensors = load_file(str(copy / "model.safetensors"))
    tensors["decoder.0.weight"] = tensors["decoder.0.weight"] + 1.0
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(ToolkitError, match=r"decoder weights .* do not match the checksum"):
        load_demo_vision(copy)

    (copy / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ToolkitError, match="damaged"):
        read_demo_vision(copy)

    shutil.rmtree(copy)
    copy = _copy(folder, tmp_path)
    meta = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ToolkitError, match="newer"):
        load_demo_vision(copy)
    (copy / "config.json").write_text(json.dumps({**meta, "format": "something else"}))
    with pytest.raises(ToolkitError, match="not a demo vision configuration"):
        load_demo_vision(copy)
    (copy / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "embed_dim": 64}}))
    with pytest.raises(ToolkitError, match=r"do not fit|configuration needs"):
        load_demo_vision(copy)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(ToolkitError, match="not readable JSON"):
        load_demo_vision(copy)
