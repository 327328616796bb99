"""Window/region analyses scored against a simulator-style ground truth: information shares and best conditions."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.explain import compare_conditions_with_ground_truth, information_shares

CH = ["O1", "Oz", "O2", "Fp1", "Fp2", "Cz"]
SFREQ = 100.0
TIMES = np.arange(40) / SFREQ  # 0 ... 0.39 s


def _truth() -> dict:
    # information on O1/Oz/O2 only, 2/3 of it in 100-200 ms and 1/3 in 200-300 ms; per feature group: "colour"
    # carries the 100-200 ms part, "concept" a small part of the variance at 300-400 ms
    info = np.zeros((len(CH), 40))
    info[:3, 10:20] = 2.0
    info[:3, 20:30] = 1.0
    group = np.zeros((2, len(CH), 40))
    group[0, :3, 10:20] = 2.0
    group[1, :3, 30:40] = 0.01
    return {"ch_names": CH, "sfreq": SFREQ, "information": info, "group_information": group,
            "features": {"groups": {"colour": [0, 1], "concept": [2]}}}


GROUPS = {"back": ["O1", "Oz", "O2"], "front": ["Fp1", "Fp2"], "middle": ["Cz"]}


def test_information_shares():
    shares = information_shares(_truth(), ch_names=CH, times=TIMES, windows=[(0.0, 0.1), (0.1, 0.2), (0.2, 0.3)],
                                groups=GROUPS)
    assert [w["share"] for w in shares["windows"]] == pytest.approx([0.0, 2 / 3, 1 / 3])
    assert [w["label"] for w in shares["windows"]] == ["0–100 ms", "100–200 ms", "200–300 ms"]
    assert shares["groups"] == pytest.approx({"back": 1.0, "front": 0.0, "middle": 0.0})
    # channels matched by name, samples by time: a cropped, reordered data set sees only its part of the information
    sub = information_shares(_truth(), ch_names=["Cz", "oz"], times=TIMES[15:], windows=[(0.15, 0.2)],
                             groups={"a": ["Oz"]})
    assert sub["windows"][0]["share"] == pytest.approx(10 / 20)  # 5 samples x 2 of (5 x 2 + 10 x 1)
    assert sub["groups"] == {"a": 1.0}
    # weighted by what a target depends on: the small concept variance counts as much as the large colour one
    weighted = information_shares(_truth(), ch_names=CH, times=TIMES, windows=[(0.1, 0.2), (0.3, 0.4)],
                                  feature_weights={"colour": 1.0, "concept": 1.0})
    assert [w["share"] for w in weighted["windows"]] == pytest.approx([0.5, 0.5])
    only = information_shares(_truth(), ch_names=CH, times=TIMES, windows=[(0.3, 0.4)],
                              feature_weights={"concept": 2.0})
    assert only["windows"][0]["share"] == pytest.approx(1.0)
    with pytest.raises(ToolkitError, match="unknown feature group"):
        information_shares(_truth(), ch_names=CH, times=TIMES, feature_weights={"smell": 1.0})
    with pytest.raises(ToolkitError, match="not all 0"):
        information_shares(_truth(), ch_names=CH, times=TIMES, feature_weights={"colour": 0.0})
    with pytest.raises(ToolkitError, match="lacks 'information'"):
        information_shares({"ch_names": CH}, ch_names=CH, times=TIMES)
    with pytest.raises(ToolkitError, match="none of the ground truth"):
        information_shares(_truth(), ch_names=["Fp1"], times=TIMES)


def _rows(values: dict, analysis: str) -> list[dict]:
    rows = [{"analysis": "full", "label": "all", "metrics": {"test_top1": 0.9}}]
    for key, v in values.items():
        row = {"analysis": analysis, "label": str(key), "metrics": {"test_top1": v, "kway_top1": {"2": 0.5 + v / 2}}}
        row.update({"window_s": list(key)} if isinstance(key, tuple) else {"region": key})
        rows.append(row)
    return rows


def test_best_window_and_region_against_the_truth():
    windows = _rows({(0.0, 0.1): 0.1, (0.1, 0.2): 0.6, (0.2, 0.3): 0.4, (0.3, 0.4): 0.12}, "sliding")
    regions = _rows({"back": 0.7, "front": 0.1, "middle": 0.15}, "region_keep")
    report = compare_conditions_with_ground_truth(windows + regions[1:], _truth(), ch_names=CH, times=TIMES,
                                                  metric="2-way", groups=GROUPS)
    sliding, keep = report["sliding"], report["region_keep"]
    assert sliding["match"] and sliding["best"] == "(0.1, 0.2)" and sliding["best_share_rank"] == 1
    assert sliding["rows"][1]["value"] == pytest.approx(0.8) and sliding["rows"][1]["share"] == pytest.approx(2 / 3)
    assert sliding["spearman"] > 0.5
    # informative windows (share >= 10 %) all beat the uninformative ones (< 1 %): 0.6 and 0.4 vs 0.1 and 0.12
    assert sliding["best_is_informative"] and sliding["separation"] == pytest.approx(0.5 + 0.4 / 2 - (0.5 + 0.12 / 2))
    assert sliding["best_margin"] == pytest.approx(0.5 + 0.6 / 2 - (0.5 + 0.12 / 2))
    assert keep["match"] and keep["best"] == "back" and keep["truth_best"] == "back"
    # the wrong winner is reported as such
    wrong = _rows({(0.0, 0.1): 0.1, (0.1, 0.2): 0.3, (0.2, 0.3): 0.5, (0.3, 0.4): 0.12}, "sliding")
    report = compare_conditions_with_ground_truth(wrong, _truth(), ch_names=CH, times=TIMES, groups=GROUPS)
    assert not report["sliding"]["match"] and report["sliding"]["best_share_rank"] == 2
    assert report["sliding"]["best_is_informative"] and report["sliding"]["best"] == "(0.2, 0.3)"
    late = _rows({(0.0, 0.1): 0.1, (0.1, 0.2): 0.3, (0.2, 0.3): 0.2, (0.3, 0.4): 0.5}, "sliding")
    report = compare_conditions_with_ground_truth(late, _truth(), ch_names=CH, times=TIMES, groups=GROUPS)
    assert not report["sliding"]["best_is_informative"] and report["sliding"]["separation"] < 0


def test_test_time_ablation_rows_are_read_too():
    rows = [{"analysis": "sliding", "label": "a", "window_s": [0.1, 0.2], "top1": 0.5, "kway": {"2": {"top1": 0.9}}},
            {"analysis": "sliding", "label": "b", "window_s": [0.3, 0.4], "top1": 0.1, "kway": {"2": {"top1": 0.6}}},
            {"analysis": "region_drop", "label": "without back", "region": "back", "top1": 0.1}]
    report = compare_conditions_with_ground_truth(rows, _truth(), ch_names=CH, times=TIMES, metric="2-way",
                                                  groups=GROUPS)
    assert report["sliding"]["best"] == "a" and report["sliding"]["match"]
    assert [r["value"] for r in report["sliding"]["rows"]] == [0.9, 0.6]
    assert report["region_drop"]["rows"][0]["share"] == pytest.approx(0.0)  # what is left without the region
    assert "best" not in report["region_drop"]
