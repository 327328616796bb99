"""Window analysis on real EEG: a face-vs-house classifier on the EEG-ExPy N170 recordings (Muse, 4 channels).

EEGNet is trained with the toolkit trainer (classification objective, fixed epochs, no validation split) on the
first four runs and evaluated on the two held-out runs. Test-time window ablation must find the face/house
information where the N170 is (the most informative 100 ms window lies within 150-300 ms) and none in 0-100 ms:
the accuracy with only 0-100 ms kept lies inside the central 95% binomial interval of a coin flip over the same
held-out trials.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolkit.bench.explain_validation import n170_validation

pytestmark = [pytest.mark.xdist_group("explain-n170"), pytest.mark.slow]

EPOCHS = 25


@pytest.fixture(scope="module")
def report(n170_dir: Path, tmp_path_factory):
    recordings = n170_dir / "recordings"
    if len(sorted(recordings.glob("*.csv"))) != 6:
        pytest.skip(f"the six N170 recordings are not in {recordings}")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return n170_validation(recordings, tmp_path_factory.mktemp("n170"), encoder="eegnet", epochs=EPOCHS)
    finally:
        torch.set_num_threads(previous)


def test_sessions_are_split(report):
    assert report["n_train_trials"] > report["n_test_trials"] > 300


def test_the_classifier_beats_chance_on_held_out_runs(report):
    low, high = report["chance_interval95"]
    assert 0.44 < low < 0.5 < high < 0.56
    assert report["full_accuracy"] > high


def test_most_informative_window_is_the_n170(report):
    assert report["best_window_in_150_300ms"], report["best_window_s"]
    assert report["best_window_accuracy"] > report["chance_interval95"][1]


def test_first_100_ms_are_at_chance(report):
    assert report["early_near_chance"], report["early_window_accuracy"]
    early = next(r for r in report["sliding"] if r["window_s"] == [0.0, 0.1])
    assert early["ci95"][0] <= 0.5 <= early["ci95"][1]


def test_growing_windows_gain_after_150_ms(report):
    growing = {tuple(r["window_s"]): r["accuracy"] for r in report["growing"]}
    assert growing[(0.0, 0.3)] > growing[(0.0, 0.1)]
