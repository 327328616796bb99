"""Tests of the simulator (`toolkit.data.simulate`, `python -m toolkit simulate`) on the tiny preset."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.cli import main
from toolkit.data.channels import REGIONS_63, THINGS_EEG_63
from toolkit.data.simulate import PRESETS, SimulationConfig, load_ground_truth, simulate
from toolkit.data.simulate._writer import write_official_file

pytestmark = pytest.mark.xdist_group("simulate-tiny")

# Parietal and occipital sites plus the temporo-parietal ones (ATM files TP7/TP8/TP9/TP10 under "temporal").
POSTERIOR = set(REGIONS_63["parietal"]) | set(REGIONS_63["occipital"]) | {"TP7", "TP8", "TP9", "TP10"}
FRONTAL = set(REGIONS_63["frontal"])


def _load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny preset, written once through the command line (seed 0, 2 subjects)."""
    out = tmp_path_factory.mktemp("sim") / "tiny"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["simulate", str(out), "--preset", "tiny", "--seed", "0", "--json"])
    assert code == 0
    summary = json.loads(buf.getvalue().strip().splitlines()[-1])
    return {"root": out, "summary": summary, "truth": load_ground_truth(out)}


# -- layout -------------------------------------------------------------------------------------------------------
def test_official_file_format(sim: dict) -> None:
    cfg = PRESETS["tiny"]
    root = sim["root"]
    assert sorted(p.name for p in (root / "Preprocessed_data_250Hz").iterdir()) == ["sub-01", "sub-02"]
    expected = {
        "preprocessed_eeg_training.npy": (cfg.n_train_concepts * cfg.n_train_images, cfg.n_train_reps, 63, 250),
        "preprocessed_eeg_test.npy": (cfg.n_test_concepts * cfg.n_test_images, cfg.n_test_reps, 63, 250),
    }
    for name, shape in expected.items():
        path = root / "Preprocessed_data_250Hz" / "sub-01" / name
        assert path.read_bytes()[:2] == b"\x80\x04"  # a protocol-4 pickle, as the official files
        obj = _load(path)
        assert isinstance(obj, dict) and set(obj) == {"preprocessed_eeg_data", "ch_names", "times"}
        data = obj["preprocessed_eeg_data"]
        assert isinstance(data, np.ndarray) and data.shape == shape and data.dtype == np.float64
        assert np.isfinite(data).all() and data.std() > 0
        assert obj["ch_names"] == list(THINGS_EEG_63) and all(type(c) is str for c in obj["ch_names"])
        times = obj["times"]
        assert times.shape == (300,) and times.dtype == np.float64
        assert times[0] == pytest.approx(-0.2) and times[50] == pytest.approx(0.0)
        assert times[-1] == pytest.approx(0.996) and np.allclose(np.diff(times), 0.004)
        # the way ATM reads them
        loaded = np.load(path, allow_pickle=True)
        np.testing.assert_array_equal(loaded["preprocessed_eeg_data"], data)
    # noise-standardised units: whitened-like scale
    data = _load(root / "Preprocessed_data_250Hz" / "sub-01" / "preprocessed_eeg_training.npy")
    assert 0.8 < data["preprocessed_eeg_data"].var() < 5.0


def test_restricted_loader_and_things_loader_read_it(sim: dict) -> None:
    from toolkit.data._unpickle import restricted_load
    from toolkit.data.things import load_things_eeg

    root = sim["root"]
    obj = restricted_load(root / "Preprocessed_data_250Hz" / "sub-02" / "preprocessed_eeg_test.npy")
    assert obj["preprocessed_eeg_data"].shape == (8, 4, 63, 250)
    trials = load_things_eeg(root, 2, "test", average=True)
    assert trials.data.shape == (8, 1, 63, 250)
    assert trials.images is not None and trials.images.n_concepts == 8
    assert trials.images.concepts == [row["name"] for row in sim["truth"]["concepts"]["test"]]


def test_image_folders_sorted_and_named(sim: dict) -> None:
    from PIL import Image

    cfg = PRESETS["tiny"]
    truth = sim["truth"]
    for split, folder, n_concepts, n_images in (
        ("train", "training_images", cfg.n_train_concepts, cfg.n_train_images),
        ("test", "test_images", cfg.n_test_concepts, cfg.n_test_images),
    ):
        names = sorted(p.name for p in (sim["root"] / folder).iterdir())
        assert len(names) == n_concepts
        assert names == [row["folder"] for row in truth["concepts"][split]]
        for idx, name in enumerate(names):
            match = re.fullmatch(r"(\d{5})_([a-z]+)_([a-z]+)_([a-z]+)", name)
            assert match and int(match.group(1)) == idx + 1  # sorted order is index order
            row = truth["concepts"][split][idx]
            assert match.groups()[1:] == (row["colour"], row["texture"], row["shape"])
            files = sorted(p.name for p in (sim["root"] / folder / name).iterdir())
            assert files == [f"{name[6:]}_{j + 1:02d}.jpg" for j in range(n_images)]
        images = [f"{n}/{f.name}" for n in names for f in sorted((sim["root"] / folder / n).iterdir())]
        assert truth["images"][split] == images
    first = sim["root"] / "training_images" / truth["images"]["train"][0]
    with Image.open(first) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (cfg.image_size, cfg.image_size)


def test_test_concepts_are_unseen_combinations(sim: dict) -> None:
    truth = sim["truth"]
    train = {(r["shape"], r["colour"], r["texture"]) for r in truth["concepts"]["train"]}
    test = {(r["shape"], r["colour"], r["texture"]) for r in truth["concepts"]["test"]}
    assert len(test) == PRESETS["tiny"].n_test_concepts and not train & test
    for a in range(3):
        assert {t[a] for t in test} <= {t[a] for t in train}
    # every value of the vocabularies occurs in training
    for a, key in enumerate(("shape", "colour", "texture")):
        assert {t[a] for t in train} == set(truth["attributes"][key])


# -- determinism and writing --------------------------------------------------------------------------------------
def _tree_bytes(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern)) if p.is_file()}


def test_other_seed_other_data_same_seed_same_bytes(sim: dict, tmp_path: Path) -> None:
    other = simulate(tmp_path / "other", "tiny", seed=1, n_subjects=1, show_progress=False)
    a = _load(sim["root"] / "Preprocessed_data_250Hz" / "sub-01" / "preprocessed_eeg_training.npy")
    b = _load(other.eeg_file(1, "train"))
    assert a["preprocessed_eeg_data"].shape == b["preprocessed_eeg_data"].shape
    assert not np.allclose(a["preprocessed_eeg_data"], b["preprocessed_eeg_data"])
    assert load_ground_truth(other.root)["seed"] == 1
    assert not (other.root / "Preprocessed_data_250Hz" / "sub-02").exists()
    # --overwrite replaces a simulated dataset; seed 0 again gives a byte-identical dataset, every file included
    again = simulate(other.root, "tiny", seed=0, overwrite=True, show_progress=False)
    assert _tree_bytes(again.root, "**/*") == _tree_bytes(sim["root"], "**/*")
    assert load_ground_truth(again.root)["seed"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["other"]  # no temporary folders left behind


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.data.simulate import _eeg

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(_eeg, "calibrate", broken)
    with pytest.raises(RuntimeError, match="simulated failure"):
        simulate(tmp_path / "out", "tiny", show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_streamed_pickle_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(7, 3, 4, 5))
    times = np.arange(5) / 250.0
    for dtype in ("float64", "float32"):
        path = tmp_path / f"x-{dtype}.npy"
        write_official_file(path, [data[:3], data[3:6], data[6:]], data.shape, dtype, ["a", "b", "c", "d"], times)
        obj = _load(path)
        assert set(obj) == {"preprocessed_eeg_data", "ch_names", "times"}
        assert obj["preprocessed_eeg_data"].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(obj["preprocessed_eeg_data"], data.astype(dtype))
        assert obj["ch_names"] == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(obj["times"], times)
    with pytest.raises(RuntimeError, match="expected"):
        write_official_file(tmp_path / "short.npy", [data[:3]], data.shape, "float64", ["a"], times)


# -- ground truth ------------------------------------------------------------------------------------------------
def test_ground_truth_content(sim: dict) -> None:
    truth = sim["truth"]
    cfg = PRESETS["tiny"]
    assert truth["preset"] == "tiny" and truth["seed"] == 0 and truth["snr"] == cfg.snr
    assert truth["version"] and truth["simulator_version"]
    names = truth["features"]["names"]
    groups = truth["features"]["groups"]
    assert truth["train_features"].shape == (cfg.n_train_concepts * cfg.n_train_images, len(names))
    assert truth["test_features"].shape == (cfg.n_test_concepts * cfg.n_test_images, len(names))
    for key in ("shape", "colour", "texture"):
        block = truth["train_features"][:, groups[key]]
        assert np.array_equal(block.sum(axis=1), np.ones(len(block)))
        # one-hot agrees with the attribute values per concept
        attr = np.array([truth["attributes"][key].index(r[key]) for r in truth["concepts"]["train"]])
        assert np.array_equal(block.argmax(axis=1), attr[truth["train_image_concept"]])
    assert {"size", "x", "y"} <= set(names)
    assert truth["channel_score"].shape == (63,) and truth["channel_score"].max() == pytest.approx(1.0)
    assert truth["channel_score_by_name"]["Oz"] == pytest.approx(truth["channel_score"][61], abs=1e-4)
    assert truth["informative_channels_mask"].shape == (63,) and truth["time_score"].shape == (250,)
    comps = {c["name"]: c for c in truth["components"]}
    assert {"P1-left", "N170-right", "P300"} <= set(comps)
    assert comps["N170-left"]["carries"] == ["shape"] and "colour" in comps["P1-left"]["carries"]
    for comp in comps.values():
        assert len(comp["position_m"]) == 3 and 0 < comp["latency_s"] < 1
    # realised SNR close to the target, for every subject and split
    for per in truth["snr_realised"].values():
        for value in per.values():
            assert 0.5 * cfg.snr < value < 2.0 * cfg.snr
    assert truth["train_blinks"].shape == (2, cfg.n_train_concepts * cfg.n_train_images, cfg.n_train_reps)
    with pytest.raises(ToolkitError, match="no ground truth"):
        load_ground_truth(sim["root"] / "training_images")


def test_informative_channels_are_posterior(sim: dict) -> None:
    truth = sim["truth"]
    informative = truth["informative_channels"]
    assert 5 <= len(informative) < 63
    assert not set(informative) & FRONTAL
    assert sum(ch in POSTERIOR for ch in informative) >= 0.75 * len(informative)
    assert set(informative[:5]) <= POSTERIOR  # listed best first
    mask = truth["informative_channels_mask"]
    assert [c for c, m in zip(THINGS_EEG_63, mask) if m] == [c for c in THINGS_EEG_63 if c in informative]


def test_informative_windows_cover_components(sim: dict) -> None:
    truth = sim["truth"]
    windows = truth["informative_windows"]
    assert windows
    for comp in truth["components"]:
        shifts = comp["subject_latency_shift_s"].values()
        lat = comp["latency_s"] + float(np.mean(list(shifts)))
        assert any(w["start_s"] - 0.01 <= lat <= w["stop_s"] + 0.01 for w in windows), comp["name"]
    for w in windows:
        assert w["start_index_in_times"] == w["start_sample"] + 50
        assert 0 <= w["start_sample"] < w["stop_sample"] <= 250
    assert truth["time_score"][: int(0.04 * 250)].max() < 0.05  # nothing before 40 ms
    assert truth["time_score"][int(0.7 * 250) :].max() < 0.05  # nor after 700 ms


def _ridge_classifier(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Closed-form ridge regression onto one-hot labels (dual form: few samples, many features)."""
    classes = np.unique(y_train)
    targets = (y_train[:, None] == classes[None, :]).astype(float)
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    gram = a @ a.T
    coef = np.linalg.solve(gram + alpha * np.trace(gram) / len(gram) * np.eye(len(gram)), targets - targets.mean(0))
    return classes[np.argmax(b @ (a.T @ coef), axis=1)]


def test_eeg_encodes_features_of_unseen_test_concepts(sim: dict) -> None:
    """Decoders trained on training images predict attributes of the held-out test concepts far above chance."""
    truth = sim["truth"]
    groups = truth["features"]["groups"]

    def features(x: np.ndarray) -> np.ndarray:  # trial average, 20 ms bins over 0 ... 600 ms
        x = x.mean(axis=1)[:, :, :150]
        return x.reshape(len(x), 63, 30, 5).mean(axis=-1).reshape(len(x), -1)

    x_train, x_test = [], []
    for sub in ("sub-01", "sub-02"):
        folder = sim["root"] / "Preprocessed_data_250Hz" / sub
        x_train.append(features(_load(folder / "preprocessed_eeg_training.npy")["preprocessed_eeg_data"]))
        x_test.append(features(_load(folder / "preprocessed_eeg_test.npy")["preprocessed_eeg_data"]))
    x_train, x_test = np.concatenate(x_train), np.concatenate(x_test)
    accuracy, chance = {}, {}
    for key in ("shape", "colour", "texture"):
        y_train = np.tile(truth["train_features"][:, groups[key]].argmax(axis=1), 2)
        y_test = np.tile(truth["test_features"][:, groups[key]].argmax(axis=1), 2)
        accuracy[key] = float(np.mean(_ridge_classifier(x_train, y_train, x_test, 1.0) == y_test))
        chance[key] = 1.0 / len(groups[key])
    assert accuracy["shape"] >= 0.6, accuracy  # chance 0.25
    assert np.mean(list(accuracy.values())) >= 2 * np.mean(list(chance.values())), accuracy
    # Shuffled training labels carry no information: the same decoder falls to chance level.
    rng = np.random.default_rng(0)
    y_train = rng.permutation(np.tile(truth["train_features"][:, groups["shape"]].argmax(axis=1), 2))
    y_test = np.tile(truth["test_features"][:, groups["shape"]].argmax(axis=1), 2)
    assert np.mean(_ridge_classifier(x_train, y_train, x_test, 1.0) == y_test) < 0.6


def test_noise_components_present(sim: dict) -> None:
    from scipy.signal import welch

    truth = sim["truth"]
    data = _load(sim["root"] / "Preprocessed_data_250Hz" / "sub-01" / "preprocessed_eeg_training.npy")
    x = data["preprocessed_eeg_data"].reshape(-1, 63, 250)
    freqs, psd = welch(x, fs=250.0, nperseg=250, axis=-1)  # 1 Hz resolution
    ch = list(THINGS_EEG_63)
    # blinks: frontal low-frequency power, concentrated in the trials the ground truth marks
    low = psd[:, :, (freqs >= 0.5) & (freqs <= 4)].mean(axis=2)  # (trials, 63)
    fp = [ch.index("Fp1"), ch.index("Fp2")]
    assert low.mean(axis=0)[fp].mean() > 1.2 * np.median(low.mean(axis=0))
    blink = truth["train_blinks"][0].reshape(-1)
    assert 0 < blink.sum() < len(blink)
    assert low[blink][:, fp].mean() > 4 * low[~blink][:, fp].mean()
    # 50 Hz mains: a narrow peak
    mean_psd = psd.mean(axis=(0, 1))
    around = ((freqs >= 44) & (freqs <= 48)) | ((freqs >= 52) & (freqs <= 56))
    assert mean_psd[freqs == 50.0][0] > 2.0 * mean_psd[around].mean()
    # posterior alpha: a bump at 8-12 Hz over the neighbouring bands
    post = psd[:, [ch.index(c) for c in ("O1", "Oz", "O2", "PO3", "POz", "PO4")]].mean(axis=(0, 1))
    flank = ((freqs >= 4) & (freqs <= 6)) | ((freqs >= 15) & (freqs <= 18))
    assert post[(freqs >= 8) & (freqs <= 12)].mean() > 1.3 * post[flank].mean()


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "huge"}, "tiny, demo, full"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"snr": -1.0}, "snr"),
        ({"snr": 0.0}, "snr"),
        ({"snr": float("nan")}, "snr"),
        ({"n_subjects": 0}, "subjects"),
        ({"dtype": "int16"}, "float64, float32"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ToolkitError, match=match):
        simulate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_refuses_non_empty_output(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ToolkitError, match=r"not empty.*--overwrite"):
        simulate(out, "tiny")
    with pytest.raises(ToolkitError, match="not a simulated dataset"):
        simulate(out, "tiny", overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    file_out = tmp_path / "file"
    file_out.write_text("x")
    with pytest.raises(ToolkitError, match="not a folder"):
        simulate(file_out, "tiny")


def test_config_validation() -> None:
    with pytest.raises(ToolkitError, match="combinations"):
        SimulationConfig(
            name="x", n_subjects=1, n_train_concepts=10, n_train_images=1, n_train_reps=1, n_test_concepts=2,
            n_test_images=1, n_test_reps=1, n_shapes=2, n_colours=2, n_textures=2, image_size=64, snr=1.0,
        )  # fmt: skip
    with pytest.raises(ToolkitError, match="n_train_concepts"):
        SimulationConfig(
            name="x", n_subjects=1, n_train_concepts=3, n_train_images=1, n_train_reps=1, n_test_concepts=2,
            n_test_images=1, n_test_reps=1, n_shapes=4, n_colours=2, n_textures=2, image_size=64, snr=1.0,
        )  # fmt: skip


def test_presets_match_things_sizes() -> None:
    full = PRESETS["full"]
    assert (full.n_train_concepts, full.n_train_images, full.n_train_reps) == (1654, 10, 4)
    assert (full.n_test_concepts, full.n_test_images, full.n_test_reps) == (200, 1, 80)
    assert full.n_subjects == 10 and full.dtype == "float64"
    assert full.eeg_bytes() // full.n_subjects == (16540 * 4 + 200 * 80) * 63 * 250 * 8
    demo = PRESETS["demo"]
    assert 150 <= demo.n_train_concepts <= 250 and 40 <= demo.n_test_concepts <= 50


@pytest.mark.parametrize(
    "argv",
    [
        ["--preset", "huge"],
        ["--seed", "-3"],
        ["--seed", "abc"],
        ["--snr", "-1"],
        ["--snr", "inf"],
        ["--subjects", "0"],
        ["--subjects", "two"],
        ["--dtype", "float16"],
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    code = main(["simulate", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_cli_refuses_non_empty_output(sim: dict, capsys: pytest.CaptureFixture) -> None:
    code = main(["simulate", str(sim["root"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0]


def test_cli_summary(sim: dict) -> None:
    summary = sim["summary"]
    assert summary["preset"] == "tiny" and summary["subjects"] == ["sub-01", "sub-02"]
    assert summary["shapes"]["train"] == [40, 2, 63, 250] and summary["shapes"]["times"] == [300]
    assert all(Path(p).is_file() for p in summary["files"]["eeg"])
    assert set(summary["timings_s"]) >= {"forward_model", "eeg", "images"}


def test_public_names() -> None:
    import toolkit.data as data

    assert data.simulate_dataset is simulate and data.load_ground_truth is load_ground_truth
    assert data.SimulationConfig is SimulationConfig and set(data.SIMULATION_PRESETS) == {"tiny", "demo", "full"}


def test_benchmarks_registered() -> None:
    from toolkit.bench import _REGISTRY
    from toolkit.bench import simulate as bench_simulate  # noqa: F401  (registers the suite)

    assert {"simulate.tiny", "simulate.demo"} <= set(_REGISTRY)


def test_simulated_root_is_labelled_simulated(sim):
    from toolkit.data import load_things_eeg

    trials = load_things_eeg(sim["root"], "sub-01", "test")
    assert trials.dataset == "simulated-things-eeg-250hz"
