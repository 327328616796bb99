"""``python -m toolkit reconstruct`` in batches: batch invariance, resuming, sharding between processes (tiny demo)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from toolkit import ToolkitError
from toolkit.cli import main
from toolkit.commands import reconstruct as command
from toolkit.commands.reconstruct import make_batches, shard

from ..pipeline._tiny import GROUP, build_tiny, use_tiny

pytestmark = pytest.mark.xdist_group(GROUP)

_KINDS = ("stimulus", "reconstruction", "shuffled", "prior_only", "semantic/reconstruction", "semantic/shuffled",
          "semantic/prior_only")


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    return build_tiny(tmp_path_factory)[0]


@pytest.fixture
def tiny(tiny_home, monkeypatch):
    use_tiny(monkeypatch, tiny_home)


def _run(out, *extra) -> dict:
    return ["reconstruct", "--bundle", "demo", "--subject", "sub-01", "--out", str(out), "--n", "4", "--steps", "1",
            "--json", *extra]


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _pngs(folder, kind):
    return {p.name: p.read_bytes() for p in sorted((folder / kind).glob("*.png"))}


# -- pure helpers ----------------------------------------------------------------------------------------------------
def test_batches_are_contiguous_and_never_leave_a_single_condition():
    assert make_batches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert make_batches(9, 4) == [(0, 4), (4, 9)]  # (8, 9) would borrow its shuffled control from nowhere
    assert make_batches(1, 4) == [(0, 1)] and make_batches(3, 8) == [(0, 3)]


def test_shard_splits_batches_like_accelerate_between_two_processes():
    batches = make_batches(11, 2)  # 5 batches
    first = shard(batches, process_index=0, num_processes=2)
    second = shard(batches, process_index=1, num_processes=2)
    assert first == batches[:3] and second == batches[3:]  # contiguous; the first process takes the extra one
    assert shard(batches[:1], process_index=1, num_processes=2) == []
    assert shard(batches) == batches  # this (single) process: everything
    threes = [shard(batches, process_index=i, num_processes=3) for i in range(3)]
    assert [len(s) for s in threes] == [2, 2, 1] and [b for s in threes for b in s] == batches
    with pytest.raises(ToolkitError, match="process_index < num_processes"):
        shard(batches, process_index=2, num_processes=2)


# -- the command on the tiny demo bundle -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tiny_home, tmp_path_factory):
    """One process, 4 conditions in batches of 2: the folder and its metrics.json."""
    out = tmp_path_factory.mktemp("reconstruct") / "base"
    with pytest.MonkeyPatch.context() as mp:
        use_tiny(mp, tiny_home)
        assert main(_run(out, "--batch-size", "2")) == 0
    return out, json.loads((out / "metrics.json").read_text())


def _copy(base, target):
    import shutil

    shutil.copytree(base[0], target)
    return target


def test_single_process_batches(base, tiny, tmp_path, capsys):
    out, metrics = base
    assert metrics["n"] == 4 and metrics["protocol"]["batch_size"] == 2 and metrics["protocol"]["processes"] == 1
    for kind in _KINDS:
        assert len(_pngs(out, kind)) == 4
    assert len(json.loads((out / "captions.json").read_text())["reconstruction"]) == 4
    records = [json.loads((out / "records" / f"{i:03d}.json").read_text()) for i in range(4)]
    # batches (0, 2) and (2, 4): each shuffled control borrows another condition of its own batch
    assert all(r["shuffled_from"] != r["index"] and (r["shuffled_from"] < 2) == (r["index"] < 2) for r in records)
    # one batch of 4 gives the same reconstructions and prior-only controls (condition i always uses seed + i)
    whole = tmp_path / "whole"
    assert main(_run(whole, "--batch-size", "4")) == 0
    assert _last_json(capsys)["protocol"]["batch_size"] == 4
    for kind in ("stimulus", "reconstruction", "prior_only", "semantic/reconstruction", "semantic/prior_only"):
        assert _pngs(whole, kind) == _pngs(out, kind), kind


def test_an_interrupted_run_resumes_where_it_stopped(base, tiny, tmp_path, capsys):
    out = _copy(base, tmp_path / "resumed")
    before = _pngs(out, "shuffled")
    (out / "records" / "003.json").unlink()  # condition 3 was being written when the run stopped
    (out / "reconstruction" / sorted(_pngs(out, "reconstruction"))[3]).unlink()
    semantic = _pngs(out, "semantic/shuffled")
    (out / "semantic" / "shuffled" / sorted(semantic)[0]).unlink()  # a semantic image of batch (0, 2) is missing
    assert main(_run(out, "--batch-size", "2")) == 0
    again = _last_json(capsys)
    assert again["resumed"] == 3 and again["written"] == 4  # both batches are redone
    assert _pngs(out, "shuffled") == before and again["metrics"] == base[1]["metrics"]
    assert _pngs(out, "semantic/shuffled") == semantic and again["semantic_metrics"] == base[1]["semantic_metrics"]


def test_two_processes_share_the_batches_and_the_main_one_gathers(base, tiny, tmp_path, capsys, monkeypatch):
    # Simulated in turn: process 0 prepares the folder and writes its share, and cannot gather before process 1
    # has written its own; then the folder is the single-process one.
    def as_process(index):
        state = SimpleNamespace(num_processes=2, process_index=index, is_main_process=index == 0, device=None,
                                wait_for_everyone=lambda: None)
        monkeypatch.setattr(command, "_state", lambda: state)

    shared = tmp_path / "shared"
    as_process(0)
    assert main(_run(shared, "--batch-size", "2")) == 2  # batch (0, 2) written; (2, 4) belongs to process 1
    assert "missing after every process finished" in capsys.readouterr().err
    as_process(1)
    assert main(_run(shared, "--batch-size", "2")) == 0
    assert _last_json(capsys) == {"out": str(shared), "process_index": 1, "written": 2}
    as_process(0)
    assert main(_run(shared, "--batch-size", "2")) == 0
    gathered = _last_json(capsys)
    assert gathered["written"] == 0 and gathered["protocol"]["processes"] == 2
    assert gathered["metrics"] == base[1]["metrics"]
    for kind in _KINDS:
        assert _pngs(shared, kind) == _pngs(base[0], kind), kind


def test_other_settings_clear_only_this_commands_files(base, tiny, tmp_path, capsys):
    out = _copy(base, tmp_path / "changed")
    (out / "notes.txt").write_text("mine")
    assert main(_run(out, "--n", "all")) == 0  # the last --n wins: the whole test set (8), made afresh
    result = _last_json(capsys)
    assert result["resumed"] == 0 and (out / "notes.txt").read_text() == "mine"
    assert result["n"] == 8 and result["protocol"]["conditions"] == "all 8 test conditions"
    assert all(len(_pngs(out, kind)) == 8 for kind in _KINDS)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("keep")
    assert main(_run(foreign)) == 2
    assert "not an earlier reconstruct folder" in capsys.readouterr().err
    assert main(_run(tmp_path / "bad", "--batch-size", "0")) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
