"""The whole reconstruction suite, result tables and the benchmark registration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.metrics import IMAGE_METRICS, evaluate_reconstructions, per_pair_frame, to_frame

pytest.importorskip("torchvision")
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def identical(images, tiny_networks):
    return evaluate_reconstructions(images[:4], images[:4], feature_weights=tiny_networks, per_pair=True)


def test_identical_pairs_score_perfectly(identical):
    assert list(identical)[: len(IMAGE_METRICS)] == list(IMAGE_METRICS)
    for name in ("pixcorr", "ssim", "alexnet2", "alexnet5", "inception", "clip"):
        assert identical[name] == pytest.approx(1.0, abs=1e-6), name
    for name in ("effnet", "swav"):
        assert identical[name] == pytest.approx(0.0, abs=1e-6), name
    assert identical["n_pairs"] == 4 and identical["image_size"] == 256
    assert identical["random_weights"] is True
    assert set(identical["weights"]) == {"alexnet", "inception", "clip", "effnet", "swav"}
    assert set(identical["timings_s"]) >= {"load", "pixcorr", "ssim", "alexnet", "swav"}
    assert all(len(v) == 4 for v in identical["per_pair"].values())


def test_shuffled_pairs_score_worse(images, tiny_networks, identical):
    gts = images[:4]
    shuffled = gts[1:] + gts[:1]
    metrics = ["pixcorr", "ssim", "alexnet2", "alexnet5", "effnet", "swav"]
    res = evaluate_reconstructions(shuffled, gts, metrics=metrics, feature_weights=tiny_networks)
    for name in ("pixcorr", "ssim", "alexnet2", "alexnet5"):
        assert res[name] < identical[name] - 0.1, name
    for name in ("effnet", "swav"):
        assert res[name] > identical[name], name


def test_subset_of_metrics_loads_no_network(images):
    res = evaluate_reconstructions(images[:1], images[:1], metrics=["ssim", "pixcorr"], image_size=64)
    assert list(res)[:2] == ["pixcorr", "ssim"]
    assert res["weights"] == {} and res["random_weights"] is False
    assert "alexnet" not in res["timings_s"]


def test_mixed_inputs_in_the_suite(images, tmp_path):
    torch = pytest.importorskip("torch")
    from PIL import Image

    path = tmp_path / "gt0.png"
    Image.fromarray(images[0]).resize((50, 70)).save(path)
    gts = [path, Image.fromarray(images[1]).convert("L"), torch.from_numpy(images[2]).permute(2, 0, 1) / 255.0]
    res = evaluate_reconstructions(images[:3], gts, metrics=["pixcorr"], image_size=64)
    assert 0.0 < res["pixcorr"] <= 1.0


def test_real_weights_missing_give_one_clear_error(images, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ToolkitError, match=r"alexnet-owt-7be5be79\.pth"):
        evaluate_reconstructions(images[:2], images[:2], metrics=["alexnet2"])
    # Checked before any image is read or any metric computed.
    with pytest.raises(ToolkitError, match=r"swav_800ep_pretrain"):
        evaluate_reconstructions([tmp_path / "missing.png"] * 2, images[:2], metrics=["pixcorr", "swav"])
    with pytest.raises(ToolkitError, match="neither 'pretrained' nor an existing file"):
        evaluate_reconstructions(
            images[:2], images[:2], metrics=["effnet"], feature_weights={"effnet": tmp_path / "nope.pth"}
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": ["pixcorr", "lpips"]}, r"Unknown metric\(s\) 'lpips'; known metrics: pixcorr, ssim, alexnet2"),
        ({"metrics": []}, "empty"),
        ({"feature_weights": {"alexnet2": None}}, r"for 'alexnet2' use 'alexnet'"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(images, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        evaluate_reconstructions(images[:2], images[:2], **kwargs)


def test_identification_needs_two_pairs(images):
    with pytest.raises(ToolkitError, match="at least 2 image pairs"):
        evaluate_reconstructions(images[:1], images[:1], metrics=["pixcorr", "alexnet2"], feature_weights="tiny")


def test_count_mismatch(images):
    with pytest.raises(ToolkitError, match="3 reconstructions but 2 ground truths"):
        evaluate_reconstructions(images[:3], images[:2], metrics=["pixcorr"])


def test_tables(identical):
    other = {**identical, "pixcorr": 0.5, "swav": 0.7}
    table = to_frame({"a": identical, "b": other})
    assert list(table.index) == ["a", "b"]
    assert list(table.columns) == [*IMAGE_METRICS, "random_weights"]
    assert table.loc["b", "pixcorr"] == 0.5
    labelled = to_frame([identical], labels=True)
    assert "AlexNet(2) ↑" in labelled.columns and "SwAV ↓" in labelled.columns
    single = to_frame(identical)
    assert single.shape[0] == 1
    captions = to_frame({"x": {"bleu1": 0.3, "meteor": 0.2}})
    assert list(captions.columns) == ["bleu1", "meteor"]
    pairs = per_pair_frame(identical)
    assert pairs.shape == (4, len(IMAGE_METRICS))
    with pytest.raises(ToolkitError, match="no per-pair values"):
        per_pair_frame({"pixcorr": 1.0})
    with pytest.raises(ToolkitError, match="not a metrics result"):
        to_frame({"a": {"foo": 1}})
    with pytest.raises(ToolkitError, match="to_frame needs"):
        to_frame(3)


def test_result_is_json_serialisable(identical):
    import json

    text = json.dumps(identical)
    assert math.isclose(json.loads(text)["pixcorr"], identical["pixcorr"])


def test_benchmark_is_registered_and_images_are_valid():
    from toolkit.bench import _REGISTRY
    from toolkit.bench import metrics as bench_metrics

    assert "metrics.suite_200" in _REGISTRY
    recs, gts = bench_metrics._image_pairs(8, 16)
    assert len(recs) == len(gts) == 8
    assert recs[0].shape == (16, 16, 3) and recs[0].dtype == np.uint8


@pytest.mark.gpu
def test_suite_on_cuda(images, tiny_networks):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from toolkit.metrics import tiny_stand_in

    nets = {name: tiny_stand_in(name) for name in tiny_networks}
    cpu = evaluate_reconstructions(images[1:5], images[:4], feature_weights=nets)
    gpu = evaluate_reconstructions(images[1:5], images[:4], feature_weights=nets, device="cuda")
    for name in IMAGE_METRICS:
        assert gpu[name] == pytest.approx(cpu[name], abs=1e-3), name
