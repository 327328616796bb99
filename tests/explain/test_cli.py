"""``python -m toolkit explain ...`` in-process: attribute, ablate, sanity, retrain (on the simulator's tiny data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit.cli import main

pytestmark = pytest.mark.xdist_group("explain-sim")


def _run(capsys, *argv) -> dict:
    assert main(["explain", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _fail(capsys, *argv) -> str:
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err  # one line, no traceback
    return err


def test_attribute_with_encoder_folder(sim, capsys, tmp_path):
    out = _run(capsys, "attribute", "--model", str(sim.encoder_dir), "--data", str(sim.store), "--subject",
               "sub-01", "--image-embeds", str(sim.test_embeds), "--method", "ig", "--n-steps", "4",
               "--windows", "0:0.2", "0.2:0.4", "--ground-truth", str(sim.root), "--out", str(tmp_path / "maps.npz"),
               "--plot", str(tmp_path / "figs"))
    assert out["n_trials"] == 8 and out["method"] == "ig" and out["target"] == "similarity" and out["normalize"]
    summary = out["summary"]
    assert set(summary["region_scores"]) == {"frontal", "central", "parietal", "temporal", "occipital"}
    assert 0.0 <= out["validation"]["channel_auroc"] <= 1.0
    with np.load(tmp_path / "maps.npz") as npz:
        assert npz["attributions"].shape == (8, 63, 250) and list(npz["index"]) == list(range(8))
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "heatmap.png", "regions.png", "time_course.png", "topomaps.png"
    ]


def test_attribute_from_run_dir_uses_its_data(sim, capsys):
    out = _run(capsys, "attribute", "--model", str(sim.run_dir), "--method", "feature_ablation", "--target",
               "margin", "--windows", "0:0.2", "0.2:0.5", "--max-trials", "3")
    assert out["n_trials"] == 3 and out["data"] == str(sim.store) and out["subject_id"] == 1
    assert [w["label"] for w in out["summary"]["window_scores"]] == ["0–200 ms", "200–500 ms"]


def test_ablate(sim, capsys, tmp_path):
    out = _run(capsys, "ablate", "--model", str(sim.run_dir), "--analyses", "sliding", "region_keep",
               "--sliding-width", "0.25", "--out", str(tmp_path / "ablation.json"))
    analyses = [r["analysis"] for r in out["rows"]]
    assert analyses.count("sliding") == 4 and analyses.count("region_keep") == 5 and analyses[0] == "full"
    assert out["gallery_size"] == 8 and json.loads((tmp_path / "ablation.json").read_text())["rows"]


def test_sanity_cascade_and_label_model(sim, capsys):
    out = _run(capsys, "sanity", "--model", str(sim.run_dir), "--method", "saliency", "--max-trials", "3",
               "--layers", "projector.linear", "tsconv.spatial", "--label-model", str(sim.encoder_dir))
    assert [s["layer"] for s in out["cascading"]] == ["projector.linear", "tsconv.spatial"]
    assert set(out["label_randomization"]) >= {"spearman", "spearman_abs", "ssim"}


def test_retrain_is_resumable(sim, capsys, tmp_path):
    groups = json.dumps({"posterior": ["O1", "Oz", "O2", "PO7", "PO8"], "anterior": ["Fp1", "Fp2", "AFz"]})
    args = ["retrain", "--model", str(sim.run_dir), "--out", str(tmp_path / "retrain"), "--analyses",
            "region_keep", "--groups", groups, "--epochs", "1"]
    out = _run(capsys, *args)
    assert [r["key"] for r in out["rows"]] == ["full_all", "region_keep_posterior", "region_keep_anterior"]
    assert all(r["metrics"]["test_top1"] is not None for r in out["rows"])
    assert out["rows"][1]["n_channels"] == 5
    again = _run(capsys, *args)
    assert sorted(again["skipped"]) == sorted(r["key"] for r in out["rows"]) and again["ran"] == []
    assert not (tmp_path / "retrain" / ".data" / "region_keep_posterior").exists()  # scratch data removed


def test_bad_arguments(sim, capsys, tmp_path):
    err = _fail(capsys, "attribute", "--model", str(tmp_path))
    assert "neither a training run" in err
    err = _fail(capsys, "attribute", "--model", str(sim.encoder_dir), "--data", str(sim.store))
    assert "--image-embeds" in err
    err = _fail(capsys, "attribute", "--model", str(sim.encoder_dir), "--data", str(sim.store), "--image-embeds",
                str(sim.train_embeds))
    assert "has 40 rows but the test split has 8 conditions" in err
    err = _fail(capsys, "ablate", "--model", str(sim.run_dir), "--groups", '{"x": ["Oz", "Iz"]}')
    assert "Iz" in err
    err = _fail(capsys, "attribute", "--model", str(sim.run_dir), "--method", "deeplift", "--max-trials", "2")
    assert "method='ig'" in err
    err = _fail(capsys, "retrain", "--out", str(tmp_path / "r"))
    assert "exactly one of --model" in err


def test_logit_target_of_a_classification_run(sim, capsys, tmp_path):
    import torch

    from toolkit.training import TrainConfig, train

    from .conftest import SIM_ATM

    run_dir = tmp_path / "clf"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(data=str(sim.store), subject="sub-01", objective="classification", val_unit="images",
                          encoder="atm-s", encoder_config={**SIM_ATM, "embed_dim": 16}, epochs=1, batch_size=16,
                          val_fraction=0.2, progress=False, out=str(run_dir)))
    finally:
        torch.set_num_threads(previous)
    out = _run(capsys, "attribute", "--model", str(run_dir), "--split", "train", "--image-embeds",
               str(sim.train_embeds), "--target", "logit", "--method", "saliency", "--max-trials", "3")
    assert out["target"] == "logit" and out["n_trials"] == 3
    err = _fail(capsys, "attribute", "--model", str(sim.run_dir), "--target", "logit", "--max-trials", "2")
    assert "without a classifier head" in err


def test_retrain_shrinks_kernels_for_short_windows():
    from toolkit.commands.explain import _encoder_kernels
    from toolkit.training import TrainConfig

    assert _encoder_kernels(TrainConfig(encoder="atm-s"), 25) == {
        "temporal_kernel": 5, "pool_kernel": 17, "pool_stride": 5
    }
    assert _encoder_kernels(TrainConfig(encoder="atm-s"), 250) == {}
    fixed = TrainConfig(encoder="atm-s", encoder_config={"d_model": 250})
    assert _encoder_kernels(fixed, 25) == {}  # the token width, not the window, feeds TSConv
    assert _encoder_kernels(TrainConfig(encoder="nice", encoder_config={"pool_kernel": 9}), 25) == {
        "temporal_kernel": 5, "pool_stride": 5
    }
