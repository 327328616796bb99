"""Core package behaviour: cheap import, atomic writes, soft imports, errors, the info command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolkit import ToolkitError
from toolkit.bundles import bundle_status, get_bundle
from toolkit.cli import main
from toolkit.utils import atomic_path, atomic_write_json, cache_dir, require


def test_import_is_cheap():
    code = (
        "import sys, toolkit, toolkit.data; "
        "heavy = [m for m in ('torch', 'mne', 'gradio', 'diffusers', 'transformers', 'captum', 'open_clip') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_existing(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_atomic_write_json_roundtrip(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "b.json", {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}


def test_require_names_the_extra():
    with pytest.raises(ToolkitError, match=r"eeg-visual-toolkit\[demo\]"):
        require("surely_not_a_module_xyz", extra="demo", purpose="the app")
    assert require("json", extra="core").dumps([1]) == "[1]"


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path / "home"))
    assert cache_dir("x") == tmp_path / "home" / "x"
    assert (tmp_path / "home" / "x").is_dir()


def test_unknown_bundle_lists_known():
    with pytest.raises(ToolkitError, match="known bundles: atm-things-eeg, demo"):
        get_bundle("nope")
    status = bundle_status()
    assert set(status) == {"demo", "atm-things-eeg"}
    assert status["demo"]["offline"] is True


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["version"]
    assert set(info["bundles"]) == {"demo", "atm-things-eeg"}
    assert info["machine"]["cores"] >= 1
    assert info["machine"]["device"].startswith(("cpu", "cuda"))


def test_console_script_and_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "toolkit", "info", "--json"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1])["version"]


def test_atomic_write_uses_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "perm.json", {})
        with atomic_path(tmp_path / "permdir", is_dir=True) as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "permdir").stat().st_mode & 0o777 == 0o755
