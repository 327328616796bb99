"""The simulated k-way benchmark job (toolkit.bench.kway_table) on a tiny simulated subject."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.bench.kway_table import KWaySchedule, main, run_kway_benchmark
from toolkit.data.store import open_store
from toolkit.errors import ToolkitError

_SCHEDULE = KWaySchedule(
    epochs=1, batch_size=16, vision_epochs=1, vision_image_size=32, threads=1, average_train_repetitions=True
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolkit.data.simulate import simulate

    root = tmp_path_factory.mktemp("kway") / "sim"
    simulate(root, preset="tiny", seed=0, n_subjects=1)
    return root


@pytest.mark.slow
def test_table_for_two_encoders_and_resume(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_kway_benchmark(tiny_root, out, encoders=("nice", "eegnet"), schedule=_SCHEDULE)
    assert list(summary["encoders"]) == ["nice", "eegnet"]
    for row in summary["encoders"].values():
        result = row["result"]
        assert result["protocol"]["selected_on_test"] is False
        assert result["gallery_size"] == 8
        assert row["best_epoch"] == 1
    table = (out / "kway_table.md").read_text(encoding="utf-8")
    assert "| nice | " in table and "| eegnet | " in table and "2-way" in table and "4-way" in table
    saved = json.loads((out / "kway_table.json").read_text(encoding="utf-8"))
    assert saved["schedule"]["epochs"] == 1
    assert "repetition average of each training image" in table
    # The CPU shortcut trains on one repetition average per image; the test split keeps its repetitions.
    averaged = open_store(out / "store-train-averaged")
    assert averaged.load("sub-01", "train").data.shape[:2] == (40, 1)
    assert averaged.load("sub-01", "test").data.shape[:2] == (8, 4)
    # A second call reuses the finished runs and the embeddings: the same numbers, nothing retrained.
    mtime = (out / "runs" / "nice" / "results.json").stat().st_mtime_ns
    again = run_kway_benchmark(tiny_root, out, encoders=("nice",), schedule=_SCHEDULE)
    assert (out / "runs" / "nice" / "results.json").stat().st_mtime_ns == mtime
    assert again["encoders"]["nice"]["result"]["kway"] == summary["encoders"]["nice"]["result"]["kway"]


def test_refuses_a_folder_that_is_not_simulated(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="not a simulated dataset"):
        run_kway_benchmark(tmp_path, tmp_path / "out")


def test_unknown_encoder_lists_known(tiny_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"Unknown encoder.*atm-s"):
        run_kway_benchmark(tiny_root, tmp_path / "out", encoders=("atm-z",))
    assert not (tmp_path / "out").exists()


def test_command_line_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path), str(tmp_path / "out"), "--epochs", "1"]) == 2
    assert "not a simulated dataset" in capsys.readouterr().err
