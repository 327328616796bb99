"""Write a simulated dataset in the official THINGS-EEG layout, with its ground truth; read the ground truth back.

::

    OUT/Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_training.npy   pickled dict (protocol 4): preprocessed_eeg_data
                                                                        (n_train_images, n_reps, 63, 250), ch_names,
                                                                        times (300, from -0.2 s)
    OUT/Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_test.npy       same keys, (n_test_images, n_reps, 63, 250)
    OUT/training_images/NNNNN_<colour>_<texture>_<shape>/<name>_JJ.jpg
    OUT/test_images/NNNNN_<colour>_<texture>_<shape>/<name>_JJ.jpg
    OUT/ground_truth.json + ground_truth.npz                            what the data encode, where and when
    OUT/simulation.json + README.md                                     how it was made

Everything is built in a temporary sibling folder and renamed into place at the end, so an interrupted or failed run
leaves nothing at ``OUT``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import shutil
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import ToolkitError
from ..channels import THINGS_EEG_63
from . import _eeg, _stimuli
from ._presets import SimulationConfig, resolve_config

logger = logging.getLogger(__name__)

SIMULATOR_VERSION = "1.0"  # bump when the generative model changes (same seed, different data)
GROUND_TRUTH_VERSION = "1.0"  # bump when the ground-truth file format changes
EEG_FOLDER = "Preprocessed_data_250Hz"
TRAIN_FILE = "preprocessed_eeg_training.npy"
TEST_FILE = "preprocessed_eeg_test.npy"
IMAGE_FOLDERS = {"train": "training_images", "test": "test_images"}
CHANNEL_THRESHOLD = 0.2  # informative channel: at least this fraction of the best channel's image-dependent variance
WINDOW_THRESHOLD = 0.05  # informative sample: at least this fraction of the best sample's image-dependent variance
UNITS = (
    "noise-standardised units: the noise has a mean square of about 1 over channels, samples and trials, and the "
    "stimulus-evoked signal a mean square of `snr` (the scale of whitened data; the noise is not whitened, so "
    "blinks and alpha stay where they occur)"
)

# -- the official pickle, streamed -------------------------------------------------------------------------------
_PLACEHOLDER_BYTES = b"eeg-visual-toolkit/streamed-array-data/5f0c2e91"
_PROTO4 = b"\x80\x04"
_FRAME = b"\x95"
_SHORT_BINBYTES = b"C"
_BINBYTES8 = b"\x8e"


class _ArrayPlaceholder:
    """Stands for the large array while the small rest of the dictionary is pickled."""


class _PlaceholderPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, placeholder: _ArrayPlaceholder, shape: tuple, dtype: np.dtype) -> None:
        super().__init__(file, protocol=4)
        self._placeholder, self._shape, self._dtype = placeholder, shape, dtype

    def reducer_override(self, obj: object):
        if obj is self._placeholder:
            # Exactly what numpy's own ndarray.__reduce__ returns, with the raw data replaced by a marker.
            func, args, state = np.empty(0, dtype=self._dtype).__reduce__()
            return func, args, (state[0], self._shape, state[2], False, _PLACEHOLDER_BYTES)
        return NotImplemented


def write_official_file(
    path: Path,
    chunks: Iterable[np.ndarray],
    shape: tuple[int, ...],
    dtype: str,
    ch_names: list[str],
    times: np.ndarray,
) -> int:
    """Write an official ``preprocessed_eeg_*.npy`` file, streaming the data array chunk by chunk.

    The file is a protocol-4 pickle of ``{"preprocessed_eeg_data": array, "ch_names": list, "times": array}`` that
    ``pickle.load`` (and ``np.load(..., allow_pickle=True)``) reads back as numpy itself would have written it. A
    plain ``pickle.dump`` would first copy the whole array into one ``bytes`` object (8.3 GB per subject at the
    real size); here the small part of the dict is pickled with a marker where the array's bytes go, and the bytes
    are written in place of the marker as they are generated (protocol 4 allows unframed data).

    Parameters
    ----------
    path : Path
        Output file.
    chunks : iterable of np.ndarray
        Consecutive C-ordered slices along the first axis that together make the array of ``shape``.
    shape : tuple of int
        Shape of ``preprocessed_eeg_data``.
    dtype : str
        Its dtype (``"float64"`` or ``"float32"``).
    ch_names : list of str
        Channel names.
    times : np.ndarray, shape (300,)
        The official times vector.

    Returns
    -------
    int
        Bytes written.
    """
    dt = np.dtype(dtype)
    placeholder = _ArrayPlaceholder()
    buf = io.BytesIO()
    obj = {"preprocessed_eeg_data": placeholder, "ch_names": list(ch_names), "times": np.asarray(times)}
    _PlaceholderPickler(buf, placeholder, tuple(int(s) for s in shape), dt).dump(obj)
    small = buf.getvalue()
    if small[:2] != _PROTO4:
        raise RuntimeError("unexpected pickle header")  # internal invariant, not user input
    body = small[2:]
    if body[:1] == _FRAME:  # drop the single frame header: the array bytes will not fit in one frame
        (frame_len,) = struct.unpack("<Q", body[1:9])
        if frame_len != len(body) - 9:
            raise RuntimeError("unexpected pickle framing")
        body = body[9:]
    marker = _SHORT_BINBYTES + bytes([len(_PLACEHOLDER_BYTES)]) + _PLACEHOLDER_BYTES
    if body.count(marker) != 1:
        raise RuntimeError("array marker not found exactly once in the pickle")
    head, tail = body.split(marker)
    nbytes = int(np.prod(shape)) * dt.itemsize
    written = 0
    with open(path, "wb") as fh:
        fh.write(_PROTO4 + head + _BINBYTES8 + struct.pack("<Q", nbytes))
        for chunk in chunks:
            arr = np.ascontiguousarray(chunk, dtype=dt)
            fh.write(memoryview(arr).cast("B"))
            written += arr.nbytes
        if written != nbytes:
            raise RuntimeError(f"wrote {written} bytes of array data, expected {nbytes}")
        fh.write(tail)
    return path.stat().st_size


# -- ground truth ------------------------------------------------------------------------------------------------
def load_ground_truth(root: str | os.PathLike) -> dict:
    """Read the ground truth of a simulated dataset.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset folder (``OUT`` of ``python -m toolkit simulate``).

    Returns
    -------
    dict
        The content of ``ground_truth.json`` with the arrays of ``ground_truth.npz`` added under their own keys
        (``train_features``, ``test_features``, ``channel_score``, ``time_score``, ``informative_channels_mask``,
        ``information``, ``component_information``, ``group_information``, ``component_topographies``, ...;
        ``arrays`` in the JSON describes each one).
    """
    root = Path(root)
    json_path, npz_path = root / "ground_truth.json", root / "ground_truth.npz"
    if not json_path.is_file() or not npz_path.is_file():
        raise ToolkitError(
            f"'{root}' has no ground truth (ground_truth.json and ground_truth.npz); it is written by "
            "`python -m toolkit simulate`, so pass the folder of a simulated dataset."
        )
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ToolkitError(f"'{json_path}' is not readable JSON ({err}); simulate the dataset again.") from None
    if not isinstance(meta, dict) or meta.get("format") != "eeg-visual-toolkit/simulated-ground-truth":
        raise ToolkitError(f"'{json_path}' is not a simulator ground-truth file; simulate the dataset again.")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise ToolkitError(f"'{npz_path}' is not a readable .npz file ({err}); simulate the dataset again.") from None
    return {**meta, **arrays}


def _component_table(subjects: list[_eeg.Subject]) -> list[dict]:
    out = []
    for ci, comp in enumerate(_eeg.COMPONENTS):
        start, stop = comp.window()
        out.append(
            {
                "name": comp.name,
                "region": comp.region,
                "hemisphere": comp.hemisphere,
                "below_electrodes": list(comp.anchors),
                "latency_s": comp.latency,
                "width_s": comp.width,
                "window_s": [round(start, 3), round(stop, 3)],
                "window_samples": [round(start * _eeg.SFREQ), round(stop * _eeg.SFREQ) + 1],
                "mean_amplitude": comp.amplitude,
                "modulation": comp.modulation,
                "carries": list(comp.carries),
                "n_bases": comp.n_bases,
                "position_m": np.mean([s.positions[ci] for s in subjects], axis=0).round(5).tolist(),
                "subject_latency_shift_s": {s.label: round(float(s.latency_shifts[ci]), 5) for s in subjects},
                "subject_gain": {s.label: round(float(s.gains[ci]), 4) for s in subjects},
            }
        )
    return out


def _windows(score: np.ndarray) -> list[dict]:
    times = _eeg.official_times()[_eeg.N_BASELINE :]
    out = []
    for start, stop in _eeg.windows_from_score(score, WINDOW_THRESHOLD):
        out.append(
            {
                "start_s": round(float(times[start]), 3),
                "stop_s": round(float(times[stop - 1]), 3),
                "start_sample": start,  # index into the data's 250 samples (stop exclusive)
                "stop_sample": stop,
                "start_index_in_times": start + _eeg.N_BASELINE,  # index into the official 300-sample `times`
                "stop_index_in_times": stop + _eeg.N_BASELINE,
            }
        )
    return out


# -- the whole dataset -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote. Usable as a path (``os.fspath(result)`` is the dataset folder).

    Attributes
    ----------
    root : Path
        The dataset folder.
    config : SimulationConfig
        The configuration used.
    seed : int
        The seed used.
    subjects : tuple of str
        Subject folders written (``"sub-01"`` …).
    snr : dict
        Realised single-trial SNR per subject and split.
    timings : dict
        Seconds spent per stage.
    """

    root: Path
    config: SimulationConfig
    seed: int
    subjects: tuple[str, ...]
    snr: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.root)

    def eeg_file(self, subject: str | int, split: str = "train") -> Path:
        """Path of a subject's official file (``subject`` as ``"sub-01"`` or 1; ``split`` ``"train"``/``"test"``)."""
        label = subject if isinstance(subject, str) else f"sub-{int(subject):02d}"
        return self.root / EEG_FOLDER / label / (TRAIN_FILE if split == "train" else TEST_FILE)

    def to_dict(self) -> dict:
        """JSON-serialisable summary: paths, shapes, dtype, SNR and timings."""
        cfg = self.config
        return {
            "root": str(self.root),
            "preset": cfg.name,
            "seed": self.seed,
            "subjects": list(self.subjects),
            "dtype": cfg.dtype,
            "shapes": {
                "train": [cfg.n_conditions("train"), cfg.n_train_reps, 63, _eeg.N_TIMES],
                "test": [cfg.n_conditions("test"), cfg.n_test_reps, 63, _eeg.N_TIMES],
                "times": [_eeg.N_BASELINE + _eeg.N_TIMES],
            },
            "files": {
                "eeg": [str(self.eeg_file(s, split)) for s in self.subjects for split in ("train", "test")],
                "training_images": str(self.root / IMAGE_FOLDERS["train"]),
                "test_images": str(self.root / IMAGE_FOLDERS["test"]),
                "ground_truth": str(self.root / "ground_truth.json"),
            },
            "n_images": {"train": cfg.n_conditions("train"), "test": cfg.n_conditions("test")},
            "snr": self.snr,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ToolkitError(f"Output '{out}' exists and is not a folder; choose a folder path for the dataset.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ToolkitError(
                f"Output folder '{out}' is not empty; choose a new folder or pass --overwrite (overwrite=True) to "
                "replace a previously simulated dataset."
            )
        if not (out / "simulation.json").is_file():
            raise ToolkitError(
                f"Output folder '{out}' is not empty and is not a simulated dataset (no simulation.json), so "
                "--overwrite will not replace it; choose a new or empty folder."
            )


def _check_space(out: Path, config: SimulationConfig) -> None:
    need = config.eeg_bytes() + 2 * (config.n_conditions("train") + config.n_conditions("test")) * (
        config.image_size**2 // 8 + 2048
    )
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if need > free:
        raise ToolkitError(
            f"Simulating preset '{config.name}' with {config.n_subjects} subject(s) needs about {need / 1e9:.1f} GB "
            f"but only {free / 1e9:.1f} GB are free at '{parent}'; use fewer subjects (--subjects), "
            "dtype float32 (--dtype float32), or another disk."
        )


def _default_modes(root: Path) -> None:
    """Give the dataset folder and its top-level files the permissions of ordinary files (the temporary folder and
    the atomically written files start private, 0700/0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o777 & ~umask)
    for path in root.iterdir():
        if path.is_file():
            os.chmod(path, 0o666 & ~umask)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ToolkitError(f"seed (--seed) is {seed!r}; it must be a non-negative integer.")
    return int(seed)


def simulate(
    out: str | os.PathLike,
    preset: str | SimulationConfig = "tiny",
    *,
    seed: int = 0,
    n_subjects: int | None = None,
    snr: float | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> SimulationResult:
    """Write a simulated THINGS-like dataset in the official THINGS-EEG layout, with its ground truth.

    Parameters
    ----------
    out : str | os.PathLike
        Dataset folder to create (must not exist or be empty, unless ``overwrite``).
    preset : str | SimulationConfig
        ``"tiny"`` (tests, seconds), ``"demo"`` (the demo bundle, under a minute), ``"full"`` (the real THINGS-EEG
        sizes, 10 subjects, about 10 GB per subject in float64), or a custom configuration.
    seed : int
        Non-negative seed; the same seed and configuration give byte-identical files.
    n_subjects : int | None
        Number of subjects instead of the preset's (subject ``k``'s data do not depend on this number).
    snr : float | None
        Single-trial SNR instead of the preset's (mean-square ratio of evoked signal to noise, > 0).
    dtype : str | None
        ``"float64"`` (official) or ``"float32"`` for ``preprocessed_eeg_data`` instead of the preset's.
    overwrite : bool
        Replace ``out`` if it holds a previously simulated dataset.
    show_progress : bool
        Show a progress bar on standard error.

    Returns
    -------
    SimulationResult
        Paths, configuration, realised SNR and timings; usable wherever a path is expected.
    """
    from ...utils import atomic_path, atomic_write_json, atomic_write_text, progress

    config = resolve_config(preset, n_subjects=n_subjects, snr=snr, dtype=dtype)
    seed = _check_seed(seed)
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ToolkitError(f"Output folder {out!r} is not a path; pass a folder path such as 'data/simulated'.")
    out = Path(out).expanduser().absolute()
    _check_out(out, overwrite)
    _check_space(out, config)

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    # The world: concepts, per-image variation and latent features.
    world_rng = np.random.default_rng([seed, 0])
    train_concepts, test_concepts = _stimuli.choose_concepts(config, world_rng)
    concepts = {"train": train_concepts, "test": test_concepts}
    n_img = {"train": config.n_train_images, "test": config.n_test_images}
    groups = _stimuli.feature_groups(config)
    feats, params, image_concept = {}, {}, {}
    for si, split in enumerate(("train", "test")):
        dims = world_rng.normal(size=(len(concepts[split]), config.n_concept_dims))
        image_concept[split] = np.repeat(np.arange(len(concepts[split])), n_img[split])
        params[split] = _stimuli.sample_image_params(len(image_concept[split]), np.random.default_rng([seed, 1, si]))
        feats[split] = _stimuli.feature_matrix(config, concepts[split], image_concept[split], params[split], dims)
    lap("stimuli")

    head = _eeg.build_head()
    world = _eeg.build_world(config, head, groups, feats["train"], np.random.default_rng([seed, 2]))
    subjects = _eeg.build_subjects(config, head, world, seed, groups)
    lap("forward_model")

    n_chunks = {s: -(-config.n_conditions(s) // config.chunk_conditions(s)) for s in ("train", "test")}
    total_steps = sum(config.n_conditions(s) for s in ("train", "test")) + config.n_subjects * sum(n_chunks.values())
    bar = progress(
        desc=f"simulate {config.name}", total=total_steps, unit="step", disable=None if show_progress else True
    )
    stats: dict[str, dict[str, _eeg.SplitStats]] = {}
    calibration: dict[str, dict] = {}
    times = _eeg.official_times()

    def advancing(chunks: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        for chunk in chunks:
            yield chunk
            bar.update(1)

    try:
        with atomic_path(out, is_dir=True) as tmp:
            image_files = {}
            for si, split in enumerate(("train", "test")):
                image_files[split] = _stimuli.write_images(
                    tmp / IMAGE_FOLDERS[split], config, concepts[split], n_img[split], params[split], [seed, 7, si],
                    bar,
                )  # fmt: skip
            lap("images")

            for subject in subjects:
                calibration[subject.label] = _eeg.calibrate(config, subject, feats["train"], seed)
                folder = tmp / EEG_FOLDER / subject.label
                folder.mkdir(parents=True)
                stats[subject.label] = {}
                for si, split in enumerate(("train", "test")):
                    split_stats = _eeg.SplitStats()
                    reps = config.n_reps(split)
                    key = [seed, 4, int(subject.label[4:]), si]
                    write_official_file(
                        folder / (TRAIN_FILE if split == "train" else TEST_FILE),
                        advancing(_eeg.generate(config, subject, feats[split], reps, key, split_stats)),
                        (config.n_conditions(split), reps, 63, _eeg.N_TIMES), config.dtype, list(THINGS_EEG_63),
                        times,
                    )  # fmt: skip
                    stats[subject.label][split] = split_stats
            lap("eeg")

            maps = _eeg.information_maps(config, subjects, feats["train"], groups, seed)
            _write_ground_truth(
                tmp, config, seed, subjects, world, groups, concepts, image_files, feats, params, image_concept,
                maps, stats, calibration,
            )  # fmt: skip
            result_snr = {
                label: {split: round(st.snr, 4) for split, st in per.items()} for label, per in stats.items()
            }
            summary = {
                "format": "eeg-visual-toolkit/simulated-things-eeg",
                "simulator_version": SIMULATOR_VERSION,
                "layout": "THINGS-EEG2 preprocessed (ATM): Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_*.npy",
                "preset": config.name,
                "seed": seed,
                "subjects": [s.label for s in subjects],
                "sfreq": _eeg.SFREQ,
                "units": UNITS,
                "snr_target": config.snr,
                "snr_realised": result_snr,
                "config": config.to_dict(),
            }
            atomic_write_json(tmp / "simulation.json", summary)
            atomic_write_text(tmp / "README.md", _readme(config, seed, subjects))
            _default_modes(tmp)
            lap("ground_truth")
    finally:
        bar.close()
    return SimulationResult(
        root=out, config=config, seed=seed, subjects=tuple(s.label for s in subjects), snr=result_snr, timings=timings
    )


def _write_ground_truth(
    root: Path,
    config: SimulationConfig,
    seed: int,
    subjects: list[_eeg.Subject],
    world: _eeg.World,
    groups: dict[str, list[int]],
    concepts: dict[str, list[_stimuli.Concept]],
    image_files: dict[str, list[str]],
    feats: dict[str, np.ndarray],
    params: dict[str, dict[str, np.ndarray]],
    image_concept: dict[str, np.ndarray],
    maps: dict[str, np.ndarray],
    stats: dict[str, dict[str, _eeg.SplitStats]],
    calibration: dict[str, dict],
) -> None:
    from ...utils import atomic_path, atomic_write_json

    ch = list(THINGS_EEG_63)
    info = maps["variance"]  # (63, 250)
    channel_var = info.sum(axis=1)
    channel_score = channel_var / channel_var.max()
    channel_share = channel_var / channel_var.sum()
    channel_snr = info.mean(axis=1) / maps["noise_variance"]
    time_var = info.sum(axis=0)
    time_score = time_var / time_var.max()
    informative = channel_score >= CHANNEL_THRESHOLD
    topographies = np.stack([np.stack(s.topographies) for s in subjects])  # (n_subjects, n_comp, 63, 2)
    leadfield = (topographies**2).sum(axis=(1, 3)).mean(axis=0)
    leadfield_score = leadfield / leadfield.max()
    order = np.argsort(-channel_score)
    group_channel = maps["group_variance"].sum(axis=2)  # (n_groups, 63)
    group_time = maps["group_variance"].sum(axis=1)  # (n_groups, 250)
    times = _eeg.official_times()[_eeg.N_BASELINE :]

    def concept_rows(split: str) -> list[dict]:
        return [
            {
                "index": c.index,
                "folder": c.folder,
                "name": c.name,
                "shape": config.shapes[c.shape],
                "colour": config.colours[c.colour],
                "texture": config.textures[c.texture],
            }
            for c in concepts[split]
        ]

    kmax = max(c.n_bases for c in _eeg.COMPONENTS)
    n_feat = feats["train"].shape[1]
    weights = np.zeros((len(subjects), len(_eeg.COMPONENTS), n_feat, 2, kmax))
    base = np.zeros((len(_eeg.COMPONENTS), 2, kmax))
    for ci, comp in enumerate(_eeg.COMPONENTS):
        base[ci, :, : comp.n_bases] = world.base[ci].reshape(2, comp.n_bases)
        for si, sub in enumerate(subjects):
            weights[si, ci, :, :, : comp.n_bases] = sub.weights[ci].reshape(n_feat, 2, comp.n_bases)
    param_names = ("size", "x", "y", "rotation")
    arrays = {
        "train_features": feats["train"],
        "test_features": feats["test"],
        "train_image_concept": image_concept["train"],
        "test_image_concept": image_concept["test"],
        "train_concept_attributes": np.array([[c.shape, c.colour, c.texture] for c in concepts["train"]]),
        "test_concept_attributes": np.array([[c.shape, c.colour, c.texture] for c in concepts["test"]]),
        "train_image_params": np.stack([params["train"][k] for k in param_names], axis=1),
        "test_image_params": np.stack([params["test"][k] for k in param_names], axis=1),
        "channel_score": channel_score,
        "channel_share": channel_share,
        "channel_snr": channel_snr,
        "informative_channels_mask": informative,
        "time_score": time_score,
        "informative_samples_mask": time_score >= WINDOW_THRESHOLD,
        "information": info,
        "component_information": maps["component_variance"],
        "group_information": maps["group_variance"],
        "noise_variance": maps["noise_variance"],
        "channel_leadfield_score": leadfield_score,
        "component_topographies": topographies,
        "component_positions": np.stack([s.positions for s in subjects]),
        "component_orientations": np.stack([s.orientations for s in subjects]),
        "mapping_weights": weights,
        "mapping_base": base,
        "latency_weights": world.latency_weights,
        "train_blinks": np.stack([stats[s.label]["train"].blink for s in subjects]),
        "test_blinks": np.stack([stats[s.label]["test"].blink for s in subjects]),
    }
    descriptions = {
        "train_features": "(n_train_images, n_features) latent features per training image (condition order)",
        "test_features": "(n_test_images, n_features) latent features per test image",
        "train_image_concept": "(n_train_images,) concept index of each training image",
        "test_image_concept": "(n_test_images,) concept index of each test image",
        "train_concept_attributes": "(n_train_concepts, 3) shape, colour, texture index per training concept",
        "test_concept_attributes": "(n_test_concepts, 3) shape, colour, texture index per test concept",
        "train_image_params": "(n_train_images, 4) size (fraction of side), x, y (offset, fraction), rotation (deg)",
        "test_image_params": "(n_test_images, 4) as train_image_params",
        "channel_score": "(63,) image-dependent variance per channel, relative to the best channel",
        "channel_share": "(63,) share of the image-dependent variance per channel (sums to 1)",
        "channel_snr": "(63,) image-dependent variance over noise variance per channel (single trial)",
        "channel_leadfield_score": "(63,) summed squared leadfields of the stimulus-driven dipoles, relative to the "
        "best channel (where the sources project, regardless of how much they vary)",
        "informative_channels_mask": f"(63,) channel_score >= {CHANNEL_THRESHOLD}",
        "time_score": "(250,) image-dependent variance per sample (0 ... 0.996 s), relative to the best sample",
        "informative_samples_mask": f"(250,) time_score >= {WINDOW_THRESHOLD}",
        "information": "(63, 250) variance across training images of the noise-free response, data units squared",
        "component_information": "(n_components, 63, 250) the same, per component",
        "group_information": "(n_groups, 63, 250) the same, with only one feature group varying (order of "
        "features.groups)",
        "noise_variance": "(63,) noise variance per channel, data units squared",
        "component_topographies": "(n_subjects, n_components, 63, 2) radial and tangential source topographies "
        "(Fz reference, before the subject's signal scale)",
        "component_positions": "(n_subjects, n_components, 3) dipole positions, head coordinates, metres",
        "component_orientations": "(n_subjects, n_components, 2, 3) radial and tangential unit orientations",
        "mapping_weights": "(n_subjects, n_components, n_features, 2, max_bases) feature -> source amplitude weights",
        "mapping_base": "(n_components, 2, max_bases) feature-independent source amplitudes",
        "latency_weights": "(n_features, n_components) feature -> latency shift, seconds per unit",
        "train_blinks": "(n_subjects, n_train_images, n_train_reps) trials holding a blink",
        "test_blinks": "(n_subjects, n_test_images, n_test_reps) trials holding a blink",
    }
    meta = {
        "format": "eeg-visual-toolkit/simulated-ground-truth",
        "version": GROUND_TRUTH_VERSION,
        "simulator_version": SIMULATOR_VERSION,
        "preset": config.name,
        "seed": seed,
        "snr": config.snr,
        "snr_realised": {s: {k: round(v.snr, 4) for k, v in per.items()} for s, per in stats.items()},
        "units": UNITS,
        "sfreq": _eeg.SFREQ,
        "ch_names": ch,
        "reference": _eeg.REFERENCE,
        "time_axis": "data samples 0..249 are times[50:300] of the official 300-sample `times` (0 ... 0.996 s)",
        "attributes": {"shape": list(config.shapes), "colour": list(config.colours), "texture": list(config.textures)},
        "features": {"names": _stimuli.feature_names(config), "groups": groups},
        "concepts": {"train": concept_rows("train"), "test": concept_rows("test")},
        "images": {"train": image_files["train"], "test": image_files["test"]},
        "image_params": list(param_names),
        "components": _component_table(subjects),
        "informative_channels": [ch[i] for i in order if informative[i]],
        "channel_score_by_name": {ch[i]: round(float(channel_score[i]), 4) for i in range(63)},
        "channel_snr_by_name": {ch[i]: round(float(channel_snr[i]), 4) for i in range(63)},
        "informative_windows": _windows(time_score),
        "feature_groups": {
            name: {
                "carried_by": [c.name for c in _eeg.COMPONENTS if name in c.carries],
                "top_channels": [ch[i] for i in np.argsort(-group_channel[gi])[:8]],
                "peak_time_s": round(float(times[int(np.argmax(group_time[gi]))]), 3),
                "share": round(float(group_channel[gi].sum() / max(group_channel.sum(), 1e-30)), 4),
            }
            for gi, name in enumerate(groups)
        },
        "subjects": {
            s.label: {
                "alpha_hz": round(s.alpha_hz, 3),
                "signal_scale": s.signal_scale,
                "noise_scale": s.noise_scale,
                "noise_part_gains": s.part_gains,
                "raw_powers": calibration[s.label],
                "blink_rate": {k: round(float(v.blink.mean()), 4) for k, v in stats[s.label].items()},
            }
            for s in subjects
        },
        "noise": config.to_dict()["noise"],
        "arrays": descriptions,
    }
    if subjects and subjects[0].anterior_profile is not None:  # only when switched on (default files unchanged)
        arrays["anterior_artefact_profile"] = subjects[0].anterior_profile
        descriptions["anterior_artefact_profile"] = (
            "(63,) weight of the electrode-level anterior artefacts per channel (noise.anterior_artefact_power)"
        )
    if set(meta) & set(arrays):  # load_ground_truth merges both into one dict
        raise RuntimeError(f"ground-truth keys collide: {sorted(set(meta) & set(arrays))}")
    with atomic_path(root / "ground_truth.npz") as tmp:
        _write_npz(tmp, arrays)
    atomic_write_json(root / "ground_truth.json", meta)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` that ``np.load`` reads, byte-reproducibly.

    ``np.savez_compressed`` stamps the current time into each zip entry, so two identical simulations would differ
    in this file; here every entry gets a fixed timestamp (the format is the same: one ``.npy`` per array).
    """
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def _readme(config: SimulationConfig, seed: int, subjects: list[_eeg.Subject]) -> str:
    return f"""# Simulated THINGS-EEG dataset (preset `{config.name}`, seed {seed})

Written by `python -m toolkit simulate` (eeg-visual-toolkit simulator {SIMULATOR_VERSION}). Same layout as the
official THINGS-EEG2 preprocessed release used by ATM, so every loader of the real data reads it.

- `{EEG_FOLDER}/sub-XX/{TRAIN_FILE}`: pickled dict (protocol 4) with `preprocessed_eeg_data`
  ({config.n_conditions("train")}, {config.n_train_reps}, 63, 250) {config.dtype}, `ch_names` (63), `times` (300,
  from -0.2 s; the data hold `times[50:]`, 0 ... 0.996 s). Subjects: {", ".join(s.label for s in subjects)}.
- `{EEG_FOLDER}/sub-XX/{TEST_FILE}`: ({config.n_conditions("test")}, {config.n_test_reps}, 63, 250).
- `training_images/NNNNN_<colour>_<texture>_<shape>/`: {config.n_train_concepts} concepts x {config.n_train_images}
  images; `test_images/`: {config.n_test_concepts} concepts x {config.n_test_images} image(s), all unseen
  (shape, colour, texture) combinations of attribute values seen in training.
- `ground_truth.json` / `ground_truth.npz`: latent features per image, ERP components, informative channels and
  time windows (`toolkit.data.load_ground_truth(root)` reads both).
- `simulation.json`: the full configuration.

Units: {UNITS}. Target single-trial SNR (mean-square ratio): {config.snr}.

The data are synthetic: an MNE forward model on a three-shell spherical head, ERP components whose amplitudes and
latencies depend on the image's shape, colour, texture, size and position, 1/f background, alpha, blinks and 50 Hz
mains. They are free of any licence restriction of the real THINGS data.
"""
