"""Test-time window/region ablation on the toy encoder (known answers) and the resumable retraining driver."""

from __future__ import annotations

import json

import pytest
import torch

from toolkit import ToolkitError
from toolkit.explain import (
    ablate,
    ablate_regions,
    ablate_windows,
    build_conditions,
    retrain_analysis,
    scaled_tsconv_kernels,
)

from .conftest import CH_NAMES, TIMES, make_eeg

GROUPS = {"front": CH_NAMES[:2], "back": CH_NAMES[2:4], "sides": CH_NAMES[4:]}  # the toy reads Oz ("back")


@pytest.fixture
def setting(toy):
    eeg = make_eeg(20, seed=4)
    with torch.no_grad():
        gallery = toy(torch.as_tensor(eeg)).numpy()  # the toy's own clean embeddings: perfect retrieval
    return toy, eeg, gallery


def _by_label(result, analysis):
    return {r["label"]: r for r in result.select(analysis)}


def test_windows_keep_only_what_the_model_reads(setting):
    toy, eeg, gallery = setting
    result = ablate_windows(toy, eeg, gallery, normalize=True, times=TIMES, ch_names=CH_NAMES,
                            growing_ends=[0.1, 0.15, 0.2, 0.3], sliding_width=0.1)
    assert result.select("full")[0]["top1"] == 1.0
    growing = _by_label(result, "growing")
    # nothing of samples 10-19 left: every trial gets the same embedding, so one trial of 20 is right (chance)
    assert growing["0–100 ms"]["top1"] == pytest.approx(1 / 20)
    assert growing["0–200 ms"]["top1"] == 1.0 and growing["0–300 ms"]["top1"] == 1.0
    assert 0.0 < growing["0–150 ms"]["kway"]["2"]["top1"] <= 1.0
    sliding = _by_label(result, "sliding")
    assert sliding["100–200 ms"]["top1"] == 1.0
    assert sliding["0–100 ms"]["top1"] == sliding["300–400 ms"]["top1"] == pytest.approx(1 / 20)
    assert sliding["0–100 ms"]["mean_rank"] == pytest.approx(10.5)  # identical queries: ranks 1 ... 20
    assert result.chance["top1"] == pytest.approx(1 / 20)
    json.dumps(result.to_dict())
    table = result.table()
    assert {"analysis", "label", "top1", "top5", "2way_top1", "10way_top5"} <= set(table.columns)


@pytest.mark.parametrize("baseline", ["mean", "zeros"])
def test_regions_keep_and_drop(setting, baseline):
    toy, eeg, gallery = setting
    result = ablate_regions(toy, eeg, gallery, normalize=True, times=TIMES, ch_names=CH_NAMES, groups=GROUPS,
                            baseline=baseline)
    keep, drop = _by_label(result, "region_keep"), _by_label(result, "region_drop")
    assert keep["only back"]["top1"] == 1.0 and keep["only front"]["top1"] < 0.5
    assert drop["without back"]["top1"] < 0.5 and drop["without sides"]["top1"] == 1.0
    assert keep["only back"]["n_channels"] == 2 and drop["without back"]["n_channels"] == 6
    assert result.baseline == baseline


def test_default_analyses_cover_atm(setting):
    toy, eeg, gallery = setting
    result = ablate(toy, eeg, gallery, normalize=True, times=TIMES, ch_names=CH_NAMES, subject_ids=1,
                    ks=(2, 10), progress=False)
    analyses = {r["analysis"] for r in result.rows}
    assert analyses == {"full", "growing", "sliding", "region_keep", "region_drop"}
    assert set(result.rows[0]["kway"]) == {"2", "10"}


def test_ablation_bad_inputs(setting):
    toy, eeg, gallery = setting
    kw = dict(normalize=True, times=TIMES, ch_names=CH_NAMES)
    with pytest.raises(ToolkitError, match="Unknown analysis 'spectral'"):
        ablate(toy, eeg, gallery, analyses=["spectral"], **kw)
    with pytest.raises(ToolkitError, match="outside the epoch"):
        ablate(toy, eeg, gallery, analyses=["windows"], windows=[(0.3, 0.8)], **kw)
    with pytest.raises(ToolkitError, match="names channel"):
        ablate(toy, eeg, gallery, analyses=["region_keep"], groups={"x": ["Oz", "T7"]}, **kw)
    with pytest.raises(ToolkitError, match="Unknown ablation baseline"):
        ablate(toy, eeg, gallery, baseline="noise", **kw)
    with pytest.raises(ToolkitError, match="pass index="):
        ablate(toy, eeg, gallery[:5], **kw)
    with pytest.raises(ToolkitError, match="normalize must be"):
        ablate(toy, eeg, gallery, times=TIMES, ch_names=CH_NAMES, normalize=None)


def test_retraining_is_resumable_and_atomic(tmp_path):
    conditions = build_conditions(CH_NAMES, TIMES, analyses=["sliding", "region_keep"], groups=GROUPS)
    calls = []

    def train(condition):
        calls.append(condition.key)
        if condition.key == "region_keep_back" and len(calls) < 10:
            raise RuntimeError("interrupted")
        return {"top1": condition.samples.size / 100}

    with pytest.raises(RuntimeError):
        retrain_analysis(tmp_path, conditions, train, progress=False)
    done = sorted(p.name for p in tmp_path.glob("*.json") if p.name != "summary.json")
    assert "region_keep_back.json" not in done and len(done) == len(calls) - 1
    assert not list(tmp_path.glob(".*tmp"))  # no partial file left behind
    first = list(calls)
    calls.extend(["-"] * 10)  # the next attempt succeeds
    summary = retrain_analysis(tmp_path, conditions, train, progress=False, metadata={"model": "toy"})
    assert sorted(summary["skipped"]) == sorted(first[:-1])
    assert summary["ran"] == [c.key for c in conditions if c.key not in first[:-1]]
    assert len(summary["rows"]) == len(conditions) and summary["complete"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["metadata"] == {"model": "toy"} and len(saved["rows"]) == len(conditions)


def test_scaled_kernels_match_atm_short_windows():
    assert scaled_tsconv_kernels(250) == {}
    assert scaled_tsconv_kernels(25) == {"temporal_kernel": 5, "pool_kernel": 17, "pool_stride": 5}
    from toolkit.encoders import create_encoder

    for n in (12, 25, 50, 74):
        create_encoder("nice", n_chans=4, n_times=n, embed_dim=8, n_filters=4, **scaled_tsconv_kernels(n))
    with pytest.raises(ToolkitError, match="too short"):
        scaled_tsconv_kernels(2)
