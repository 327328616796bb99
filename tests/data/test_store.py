"""The memory-mapped store: round trip, memory maps, atomic conversion, inspection and the command line."""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import replace

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data import (
    Store,
    convert,
    inspect_path,
    is_store,
    load_eeg_imagenet,
    load_things_eeg,
    load_things_meg,
    open_store,
    write_store,
)

from ._official import (
    EEG_FILES,
    TIMES_250,
    VARIANTS,
    SystemCall,
    eeg_dict,
    make_eeg_imagenet,
    make_meg_root,
    make_things_root,
    random_eeg,
    touch_command,
    write_pickle,
    write_splits,
)


@pytest.fixture
def root(tmp_path):
    return make_things_root(tmp_path / "things", subjects=(1, 2))


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


# -- write / open / load -------------------------------------------------------------------------------------------
def test_round_trip_is_exact_and_memory_mapped(tmp_path, root):
    sets = [load_things_eeg(root, 1, "train"), load_things_eeg(root, 1, "test")]
    path = write_store(tmp_path / "store", sets)
    assert is_store(path) and not is_store(root)
    store = open_store(path)
    assert isinstance(store, Store) and store.subjects == ["sub-01"] and store.splits(1) == ["train", "test"]
    meta = json.loads((path / "store.json").read_text())
    assert meta["format"] == "eeg-visual-toolkit-store" and meta["version"] == 1
    entry = meta["entries"][0]
    assert entry["dtype"] == "float32" and entry["shape"] == [20, 2, 63, 250] and entry["file"] == "sub-01_train.npy"
    assert entry["source"]["size"] == (root / "Preprocessed_data_250Hz/sub-01" / EEG_FILES["train"]).stat().st_size
    assert entry["images_root"] == str(root / "training_images")
    for original in sets:
        loaded = store.load("sub-01", original.split)
        assert isinstance(loaded.data, np.memmap) and not loaded.data.flags.writeable
        assert loaded.data.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(loaded.data), original.data)
        np.testing.assert_array_equal(loaded.times, original.times)
        assert loaded.ch_names == original.ch_names and loaded.sfreq == original.sfreq
        assert loaded.dataset == original.dataset and loaded.ch_type == original.ch_type
        assert loaded.images.image_files == original.images.image_files
        assert loaded.images.root == original.images.root
        assert loaded.extra["times_slice"] == original.extra["times_slice"]
        assert loaded.extra["source"] == original.extra["source"]
        trial = loaded.trial(2, 1)
        assert type(trial) is np.ndarray and trial.flags.writeable
        np.testing.assert_array_equal(trial, original.trial(2, 1))
    with pytest.raises(ValueError, match="read-only"):
        store.load(1, "test").data[0, 0, 0, 0] = 1.0


def test_labels_and_free_form_subjects_round_trip(tmp_path):
    pth, _ = make_eeg_imagenet(tmp_path / "eeg", [500, 510, 505])
    trials = load_eeg_imagenet(pth)
    store = open_store(write_store(tmp_path / "store", [trials]))
    assert store.subjects == ["all"]
    loaded = store.load("all", "all")
    np.testing.assert_array_equal(loaded.labels(), trials.labels())
    np.testing.assert_array_equal(np.asarray(loaded.data), trials.data)
    assert loaded.extra["design"] == "block" and loaded.extra["trial_index"] == [0, 1, 2]
    assert loaded.images.image_files == trials.images.image_files and loaded.images.root is None


def test_meg_round_trip(tmp_path):
    root = make_meg_root(tmp_path / "meg")
    result = convert(root, tmp_path / "store")
    assert result["dataset"] == "things-meg"
    loaded = open_store(tmp_path / "store").load(1, "train")
    np.testing.assert_array_equal(np.asarray(loaded.data), load_things_meg(root, 1, "train").data)
    assert loaded.ch_type == "mag" and loaded.sfreq == 200.0
    np.testing.assert_array_equal(loaded.labels(), np.repeat(np.arange(3), 4))


def test_images_root_on_load(tmp_path, root):
    write_store(tmp_path / "store", [load_things_eeg(root, 1, "test")])
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    store = open_store(tmp_path / "store")
    assert store.load(1, "test").images.root is None  # recorded folder gone: mapping kept, no files
    assert store.load(1, "test").concept_names() == ["concept_3", "concept_4", "concept_5"]
    assert store.load(1, "test", images_root=moved).images.root == moved / "test_images"
    assert store.load(1, "test", images_root=moved / "test_images").images.image_path(0).is_file()
    with pytest.raises(ToolkitError, match=r"does not hold 'test_images/00003_concept_3"):
        store.load(1, "test", images_root=tmp_path)
    with pytest.raises(ToolkitError, match=r"no sub-03 'test' data; it holds sub-01/test"):
        store.load(3, "test")


def test_existing_store_needs_overwrite(tmp_path, root):
    first = load_things_eeg(root, 1, "test")
    path = write_store(tmp_path / "store", [first])
    with pytest.raises(ToolkitError, match=r"already exists.*overwrite"):
        write_store(path, [first])
    second = replace(first, data=first.data * 2)
    write_store(path, [second], overwrite=True)
    np.testing.assert_array_equal(np.asarray(open_store(path).load(1, "test").data), second.data)
    assert _siblings(path) == ["store", "things"]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("mine")
    with pytest.raises(ToolkitError, match="is not a store"):
        write_store(plain, [first], overwrite=True)
    assert (plain / "keep.txt").read_text() == "mine"


def test_write_errors_leave_nothing(tmp_path, root):
    first = load_things_eeg(root, 1, "test")
    with pytest.raises(ToolkitError, match="Two trial sets"):
        write_store(tmp_path / "store", [first, first])
    with pytest.raises(ToolkitError, match="No trial sets"):
        write_store(tmp_path / "store", [])
    with pytest.raises(ToolkitError, match="expects TrialSet"):
        write_store(tmp_path / "store", [np.zeros(3)])
    assert _siblings(tmp_path / "store") == ["things"]


def test_damaged_stores(tmp_path, root):
    path = write_store(tmp_path / "store", [load_things_eeg(root, 1, "test")])
    with pytest.raises(ToolkitError, match="not a store"):
        open_store(tmp_path)
    meta = json.loads((path / "store.json").read_text())
    (path / "store.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ToolkitError, match=r"version 99.*upgrade"):
        open_store(path)
    (path / "store.json").write_text("{not json")
    with pytest.raises(ToolkitError, match="cannot be read"):
        open_store(path)
    meta["entries"][0]["shape"] = [4, 4, 63, 250]
    (path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(ToolkitError, match="damaged"):
        open_store(path).load(1, "test")
    (path / "sub-01_test.npy").unlink()
    with pytest.raises(ToolkitError, match="missing"):
        open_store(path).load(1, "test")


# -- convert ---------------------------------------------------------------------------------------------------------
def test_convert_official_root(tmp_path, root):
    result = convert(root, tmp_path / "store")
    assert result["dataset"] == "things-eeg" and len(result["entries"]) == 4
    assert {(e["subject"], e["split"]) for e in result["entries"]} == {
        ("sub-01", "train"), ("sub-01", "test"), ("sub-02", "train"), ("sub-02", "test")
    }
    store = open_store(tmp_path / "store")
    expected = load_things_eeg(root, 2, "train")
    loaded = store.load("sub-02", "train")
    np.testing.assert_array_equal(np.asarray(loaded.data), expected.data)
    assert loaded.images.n_conditions == 20 and loaded.dataset == "things-eeg-250hz"
    only = convert(root, tmp_path / "one", subjects=["sub-02"], splits=["test"])
    assert [(e["subject"], e["split"]) for e in only["entries"]] == [("sub-02", "test")]


def test_convert_100hz(tmp_path):
    root = make_things_root(tmp_path / "osf", variant="100", container="npy")
    convert(root, tmp_path / "store")
    loaded = open_store(tmp_path / "store").load(1, "test")
    assert loaded.dataset == "things-eeg-100hz" and loaded.data.shape == (3, 4, 17, 100)


def test_convert_bad_second_subject_leaves_nothing(tmp_path, root):
    data = random_eeg(3, 4)
    data[0, 0, 0, 0] = np.nan
    write_pickle(root / "Preprocessed_data_250Hz/sub-02" / EEG_FILES["test"],
                 eeg_dict(data, VARIANTS["250"]["ch_names"], TIMES_250))
    with pytest.raises(ToolkitError, match=r"sub-02.*non-finite"):
        convert(root, tmp_path / "store")
    assert _siblings(tmp_path / "store") == ["things"]  # no store and no temporary directory


def test_convert_refusals(tmp_path, root):
    convert(root, tmp_path / "store", subjects=[1], splits=["test"])
    with pytest.raises(ToolkitError, match="already exists"):
        convert(root, tmp_path / "store", subjects=[1], splits=["test"])
    convert(root, tmp_path / "store", subjects=[2], splits=["test"], overwrite=True)
    assert open_store(tmp_path / "store").subjects == ["sub-02"]
    with pytest.raises(ToolkitError, match="sub-05"):
        convert(root, tmp_path / "new", subjects=[5])
    with pytest.raises(ToolkitError, match="No THINGS-EEG or THINGS-MEG"):
        convert(tmp_path / "store", tmp_path / "new")
    with pytest.raises(ToolkitError, match="dataset='eeg'"):
        convert(root, tmp_path / "new", dataset="eeg")
    assert not (tmp_path / "new").exists()


# -- inspect ---------------------------------------------------------------------------------------------------------
def test_inspect_official_files(tmp_path, root):
    info = inspect_path(root / "Preprocessed_data_250Hz/sub-01" / EEG_FILES["train"])
    assert info["kind"] == "things-eeg-file" and info["dataset"] == "things-eeg-250hz" and info["valid"]
    assert info["shape"] == [20, 2, 63, 250] and info["dtype"] == "float64" and info["n_channels"] == 63
    assert info["channels"][:2] == ["Fp1", "Fp2"] and info["sfreq"] == 250.0 and info["nan_count"] == 0
    assert info["file_times"] == {"first": pytest.approx(-0.2), "last": pytest.approx(0.996), "n": 300}
    assert info["times"]["n"] == 250 and info["times"]["first"] == pytest.approx(0.0)
    data = random_eeg(3, 4)
    data[1, 2, 3, 4] = np.nan
    bad = write_pickle(tmp_path / "nan.npy", eeg_dict(data, VARIANTS["250"]["ch_names"], TIMES_250))
    info = inspect_path(bad)
    assert info["nan_count"] == 1 and info["valid"] is False and "NaN" in info["problem"]
    wrong = write_pickle(tmp_path / "rate.npy", eeg_dict(random_eeg(3, 4), VARIANTS["250"]["ch_names"],
                                                          np.arange(250) / 500))
    info = inspect_path(wrong)
    assert info["valid"] is False and "500 Hz" in info["problem"] and info["sfreq"] == 500.0
    meg = make_meg_root(tmp_path / "meg")
    info = inspect_path(meg / "preprocessed_MEG/sub-01/preprocessed_meg_zs_test.pkl")
    assert info["kind"] == "things-meg-file" and info["data_shape"] == [5, 3, 6, 201] and info["split"] == "test"


def test_inspect_store_root_and_pth(tmp_path, root):
    convert(root, tmp_path / "store", subjects=[1])
    info = inspect_path(tmp_path / "store")
    assert info["kind"] == "store" and info["subjects"] == ["sub-01"]
    assert info["splits"] == {"sub-01": ["train", "test"]}
    assert info["nan_count"] == 0 and info["entries"][1]["shape"] == [3, 4, 63, 250]
    assert info["entries"][1]["sfreq"] == 250.0 and info["entries"][1]["times"]["n"] == 250
    info = inspect_path(root)
    assert info["kind"] == "things-eeg-root" and info["subjects"] == ["sub-01", "sub-02"]
    assert info["images"] == {"training_images": 2, "test_images": 3}
    pth, _ = make_eeg_imagenet(tmp_path / "eeg", [500, 700, 505])
    info = inspect_path(pth)
    assert info["kind"] == "eeg-imagenet" and info["n_trials"] == 3 and info["n_kept"] == 2
    assert info["shape"] == [2, 1, 128, 440] and info["subjects"] == [1, 2] and info["design"] == "block"
    info = inspect_path(write_splits(tmp_path / "s.pth", [0, 1], [2], []))
    assert info["kind"] == "eeg-imagenet-splits" and info["splits"] == [{"train": 2, "val": 1, "test": 0}]


# -- command line ----------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``toolkit.cli.main`` in-process with only the ``data`` command family registered."""
    import toolkit.cli

    monkeypatch.setattr(toolkit.cli, "_COMMANDS", ("data",))

    def run(*argv):
        code = toolkit.cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_convert_and_inspect_json(tmp_path, root, cli):
    code, out, err = cli("data", "convert", root, tmp_path / "store", "--subjects", "sub-01", "sub-02", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["dataset"] == "things-eeg" and len(result["entries"]) == 4
    code, out, _ = cli("data", "inspect", tmp_path / "store", "--json")
    info = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and info["kind"] == "store" and info["subjects"] == ["sub-01", "sub-02"]
    code, out, _ = cli("data", "inspect", root / "Preprocessed_data_250Hz/sub-01" / EEG_FILES["test"], "--json")
    info = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and info["shape"] == [3, 4, 63, 250] and info["sfreq"] == 250.0


def test_cli_human_output(tmp_path, root, cli):
    code, out, _ = cli("data", "convert", root, tmp_path / "store", "--subjects", "1", "--splits", "test")
    assert code == 0 and "wrote" in out and "sub-01 test" in out
    for target in (tmp_path / "store", root, root / "Preprocessed_data_250Hz/sub-01" / EEG_FILES["test"]):
        code, out, err = cli("data", "inspect", target)
        assert code == 0 and str(target) in out and not err


def _assert_cli_error(result, pattern):
    code, out, err = result
    assert code == 2 and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err
    assert pattern in lines[0]


def test_cli_bad_input(tmp_path, root, cli):
    convert(root, tmp_path / "store", subjects=[1], splits=["test"])
    _assert_cli_error(cli("data", "convert", root, tmp_path / "store"), "already exists")
    assert cli("data", "convert", root, tmp_path / "store", "--overwrite", "--json")[0] == 0
    marker = tmp_path / "pwned"
    evil = write_pickle(tmp_path / "evil.npy", {"preprocessed_eeg_data": SystemCall(touch_command(marker))})
    _assert_cli_error(cli("data", "inspect", evil, "--json"), "evil.npy")
    assert not marker.exists()
    cut = tmp_path / "cut.npy"
    cut.write_bytes((root / "Preprocessed_data_250Hz/sub-01" / EEG_FILES["test"]).read_bytes()[:1000])
    _assert_cli_error(cli("data", "inspect", cut), "truncated")
    _assert_cli_error(cli("data", "inspect", tmp_path / "missing.npy"), "does not exist")
    bad = pickle.dumps(eeg_dict(np.zeros((3, 4, 63, 250), dtype=np.int64), VARIANTS["250"]["ch_names"], TIMES_250))
    (root / "Preprocessed_data_250Hz/sub-02" / EEG_FILES["test"]).write_bytes(bad)
    _assert_cli_error(cli("data", "convert", root, tmp_path / "new", "--json"), "int64")
    assert _siblings(tmp_path / "new") == ["cut.npy", "evil.npy", "store", "things"]
