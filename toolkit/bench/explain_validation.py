"""Ground-truth validation of the attribution tools: simulated data (known channels and latencies) and real N170 EEG.

``python -m toolkit bench --only 'explain.validation_*' --json``.

- ``explain.validation_simulated`` — ATM-S trained with the toolkit trainer on a small simulated dataset
  (:func:`simulated_validation`); integrated gradients with the similarity target over the averaged test trials;
  the channel ranking is scored against the simulator's informative-channel mask (AUROC, target >= 0.8) and the
  peak of the attribution time course against the simulated ERP components' latencies. The same maps of an
  untrained ATM-S are reported as a control (``untrained_channel_auroc``): on this simulation it is as high, because
  integrated gradients multiply by the input and the informative channels carry the largest evoked signals, so the
  AUROC checks the plumbing and the ranking, not how much the model learned.
- ``explain.validation_n170`` — a face-vs-house classifier (EEGNet, classification objective) trained with the
  toolkit trainer on four of the six real EEG-ExPy N170 recordings (Muse, 4 channels) and evaluated on the two
  held-out recordings (:func:`n170_validation`); test-time window ablation (100 ms sliding windows and growing
  windows) must find the most informative window between 150 and 300 ms and leave the 0-100 ms window near chance.

"Near chance" is defined as: the single-trial accuracy with only 0-100 ms kept lies inside the central 95%
interval of the number of correct answers of a coin flip over the same trials (``scipy.stats.binom.interval``).
Accuracies are reported with Wilson 95% intervals. The test part is never used for any choice: no validation
split is used (the last epoch is kept; the epoch count is fixed in advance).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from . import benchmark
from .encoders import _threads

_THREADS = 2

#: A simulated dataset large enough for ATM-S to learn the image information in well under a minute on 2 cores.
SIM_SIZES: dict[str, Any] = dict(
    n_subjects=1, n_train_concepts=80, n_train_images=1, n_train_reps=2, n_test_concepts=24, n_test_images=1,
    n_test_reps=4, n_shapes=6, n_colours=6, n_textures=4, image_size=32, snr=2.0, chunk_trials=64,
)
#: A small ATM-S (the THINGS-EEG input shape, 63 x 250).
SIM_ATM: dict[str, Any] = {
    "d_model": 32, "n_heads": 2, "d_ff": 32, "n_filters": 8, "temporal_kernel": 5, "pool_kernel": 5,
    "pool_stride": 3, "n_subjects": 1,
}
SIM_EMBED_DIM = 16
N170_EVENT_ID = {"house": 1, "face": 2}


def _simulation_config(**overrides: Any) -> Any:
    from ..data.simulate import SimulationConfig

    return SimulationConfig(name="explain-validation", **{**SIM_SIZES, **overrides})


def simulated_validation(
    workdir: str | Path,
    *,
    seed: int = 0,
    epochs: int = 12,
    n_steps: int = 16,
    method: str = "ig",
    baselines: str | None = None,
    sizes: dict[str, Any] | None = None,
    control: bool = True,
) -> dict[str, Any]:
    """Train ATM-S on a simulated dataset and score its integrated-gradients maps against the ground truth.

    Parameters
    ----------
    workdir : str | Path
        Empty folder for the simulated dataset, its store and the embedding files.
    seed : int
        Seed of the simulation, the embedding projection and the training run.
    epochs : int
        Training epochs (fixed in advance; no validation split, the last epoch is kept).
    n_steps : int
        Integration steps of integrated gradients.
    sizes : dict | None
        Overrides of :data:`SIM_SIZES` (fields of :class:`~toolkit.data.simulate.SimulationConfig`).
    control : bool
        Also score an untrained ATM-S of the same configuration (``untrained_channel_auroc``).

    Returns
    -------
    dict
        ``channel_auroc``, ``channel_spearman``, ``time_auroc``, ``peak_latency_s``, ``truth_peak_latency_s``,
        ``nearest_component``, ``peak_in_component_window`` (the peak lies in the informative window of a simulated
        component, as the ground truth's time score defines it), ``components`` (name, latency), the test top-1 of
        the trained encoder, and the timings ``simulate_s``, ``train_s``, ``attribute_s``.
    """
    import numpy as np
    import torch

    from ..data import convert, open_store
    from ..data.simulate import load_ground_truth, simulate
    from ..embeddings import save_embeddings
    from ..encoders import create_encoder
    from ..explain import attribute_batched, compare_with_ground_truth
    from ..training import TrainConfig, train

    workdir = Path(workdir)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    root = workdir / "sim"
    simulate(root, _simulation_config(**(sizes or {})), seed=seed, show_progress=False)
    store = workdir / "store"
    convert(root, store)
    timings["simulate_s"] = time.perf_counter() - start
    truth = load_ground_truth(root)
    handle = open_store(store)
    train_set, test_set = handle.load("sub-01", "train"), handle.load("sub-01", "test")
    # The image embeddings: a fixed random projection of the simulator's latent image features (what a perfect
    # image backbone would know about the images).
    proj = np.random.default_rng(seed + 123).standard_normal((truth["train_features"].shape[1], SIM_EMBED_DIM))
    identity = {"backend": "bench", "model": "ground-truth-features", "weights": f"projection-{seed + 123}"}
    files = {}
    for split, ts in (("train", train_set), ("test", test_set)):
        files[split] = workdir / f"{split}.safetensors"
        embeds = (truth[f"{split}_features"] @ proj).astype(np.float32)
        save_embeddings(files[split], {"image_embeds": embeds},
                        {"normalize": False, "identity": identity, "image_files": list(ts.images.image_files)})
    start = time.perf_counter()
    result = train(TrainConfig(
        data=str(store), subject="sub-01", image_embeds=str(files["train"]), test_image_embeds=str(files["test"]),
        encoder="atm-s", encoder_config=dict(SIM_ATM), epochs=epochs, batch_size=16, lr=1e-3, val_fraction=0.0,
        loss_normalize=True, seed=seed, progress=False,
    ))
    timings["train_s"] = time.perf_counter() - start
    encoder = result.encoder.eval()
    test = test_set.average()
    eeg = np.asarray(test.data[:, 0], dtype=np.float32)  # (n_test_images, 63, 250), one averaged trial per image
    gallery = (truth["test_features"] @ proj).astype(np.float32)
    extra: dict[str, Any] = {} if method == "saliency" else {"n_steps": n_steps, "baselines": baselines}
    start = time.perf_counter()
    torch.manual_seed(seed)
    attr = attribute_batched(
        encoder, eeg, method=method, target="similarity", index=np.arange(len(eeg)), image_embeds=gallery,
        normalize=True, batch_size=8, progress=False, **extra,
    )
    timings["attribute_s"] = time.perf_counter() - start
    report = compare_with_ground_truth(attr, truth, ch_names=test.ch_names, times=test.times)
    if control:
        # The same analysis on an untrained ATM-S: what the architecture and the input alone give (IG multiplies
        # the gradient by the input, so channels with large signals could rank high without any learning).
        torch.manual_seed(seed)
        fresh = create_encoder("atm-s", n_chans=eeg.shape[1], n_times=eeg.shape[2], embed_dim=SIM_EMBED_DIM,
                               **SIM_ATM).eval()
        attr0 = attribute_batched(
            fresh, eeg, method=method, target="similarity", index=np.arange(len(eeg)), image_embeds=gallery,
            normalize=True, batch_size=8, progress=False, **extra,
        )
        report["untrained_channel_auroc"] = compare_with_ground_truth(
            attr0, truth, ch_names=test.ch_names, times=test.times
        )["channel_auroc"]
    comps = [{"name": c.get("name"), "latency_s": float(c["latency_s"])} for c in truth.get("components") or []]
    # The informative windows of the truth (its time score above threshold) contain the components' peaks; the
    # attribution peak must fall into one of them.
    sfreq = float(truth.get("sfreq", 250.0))
    mask = np.asarray(truth["informative_samples_mask"], dtype=bool)
    peak_sample = round(report["peak_latency_s"] * sfreq)
    report["peak_in_component_window"] = bool(0 <= peak_sample < mask.size and mask[peak_sample])
    report["components"] = comps
    top1 = None
    if result.test is not None:
        full = result.test.to_dict().get("full_gallery") if hasattr(result.test, "to_dict") else None
        if full:
            top1 = float(full[0]["value"])
    report["test_top1"] = top1
    report["test_chance"] = 1.0 / len(eeg)
    report["n_informative_channels"] = int(np.sum(truth["informative_channels_mask"]))
    report["n_trials"] = len(eeg)
    report.update({k: round(v, 2) for k, v in timings.items()})
    return report


# ------------------------------------------------------------------------------------------------------ N170
def _wilson(k: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def _chance_interval(n: int) -> list[float]:
    from scipy.stats import binom

    low, high = binom.interval(0.95, int(n), 0.5)
    return [float(low) / n, float(high) / n]


def _classifier(encoder: Any, head: Any) -> Any:
    """``encoder -> classification head`` as one module whose output is the class logits (eval mode)."""
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, head

        def forward(self, eeg: Any, subject_ids: Any = None) -> Any:
            return self.head(self.encoder(eeg))

    return Classifier().eval()


def n170_validation(
    recordings_dir: str | Path,
    workdir: str | Path,
    *,
    n_train_files: int = 4,
    encoder: str = "eegnet",
    epochs: int = 25,
    seed: int = 0,
    sliding_step: float = 0.05,
) -> dict[str, Any]:
    """Face-vs-house on the real N170 recordings: train on some runs, window-ablate on the held-out runs.

    Parameters
    ----------
    recordings_dir : str | Path
        Folder with the six EEG-ExPy visual N170 CSV files (``.../eegexpy-visual-n170/recordings``).
    workdir : str | Path
        Empty folder for the store.
    n_train_files : int
        The first (by name, i.e. by time) runs train the classifier; the others are the test part.
    encoder : str
        Registered encoder trained with the classification objective.
    epochs : int
        Training epochs, fixed in advance (no validation split: the last epoch is kept).
    seed : int
        Training seed.
    sliding_step : float
        Distance between the ends of the 100 ms sliding windows (s).

    Returns
    -------
    dict
        ``full`` accuracy, ``sliding`` / ``growing`` rows (window, accuracy, Wilson 95% interval), the best sliding
        window, ``early_window`` (0-100 ms) with its accuracy, the chance interval and ``early_near_chance``, the
        logit-target integrated-gradients time course peak, and timings.
    """
    import numpy as np
    import torch

    from ..data import import_recordings, write_store
    from ..errors import ToolkitError
    from ..explain import ablate_windows, attribute_batched, peak_latency, time_course
    from ..training import TrainConfig, train

    files = sorted(Path(recordings_dir).glob("*.csv"))
    if len(files) <= n_train_files:
        raise ToolkitError(
            f"{recordings_dir} holds {len(files)} CSV recordings; the N170 validation needs more than "
            f"{n_train_files} (the EEG-ExPy visual N170 runs)."
        )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    kw = dict(target="native", event_id=N170_EVENT_ID, l_freq=1.0, h_freq=30.0, reject=100e-6, subject="sub-0001")
    train_set = import_recordings(files[:n_train_files], split="train", **kw).trials
    test_set = import_recordings(files[n_train_files:], split="test", **kw).trials
    # Volts (~1e-5) would sit far below the epsilon of the encoders' normalisation layers (BatchNorm eps 1e-5 on
    # variances of ~1e-10), which silences the input; microvolts keep them in their working range.
    train_set = dataclasses.replace(train_set, data=np.asarray(train_set.data) * 1e6)
    test_set = dataclasses.replace(test_set, data=np.asarray(test_set.data) * 1e6)
    store = write_store(Path(workdir) / "store", [train_set, test_set])
    timings["import_s"] = time.perf_counter() - start
    start = time.perf_counter()
    result = train(TrainConfig(
        data=str(store), subject="sub-0001", encoder=encoder, objective="classification", epochs=epochs,
        batch_size=32, lr=1e-3, val_fraction=0.0, seed=seed, progress=False, average_test=False,
    ))
    timings["train_s"] = time.perf_counter() - start
    model = _classifier(result.encoder.eval(), result.objective.head.eval())
    # Single test trials of both classes, labelled by condition (house = 0, face = 1).
    n_cond, n_rep = test_set.n_conditions, test_set.n_repetitions
    eeg = np.asarray(test_set.data, dtype=np.float32).reshape(n_cond * n_rep, test_set.n_chans, test_set.n_times)
    labels = np.repeat(np.asarray(test_set.labels(), dtype=np.int64), n_rep)
    n = int(labels.size)
    start = time.perf_counter()
    # A gallery of one-hot rows with dot-product scores turns "retrieval" into argmax over the logits: top-1 is the
    # classification accuracy of each ablation condition.
    ablation = ablate_windows(
        model, eeg, np.eye(n_cond, dtype=np.float32), normalize=False, index=labels, times=test_set.times,
        ch_names=test_set.ch_names, sliding_width=0.1, sliding_step=sliding_step, baseline="mean",
        batch_size=256, progress=False,
    )
    timings["ablation_s"] = time.perf_counter() - start

    def rows(analysis: str) -> list[dict]:
        out = []
        for r in ablation.select(analysis):
            out.append({
                "window_s": [round(float(v), 4) for v in r["window_s"]], "label": r["label"],
                "accuracy": round(r["top1"], 4), "ci95": _wilson(round(r["top1"] * n), n),
            })
        return out

    sliding, growing = rows("sliding"), rows("growing")
    full = ablation.select("full")[0]["top1"]
    best = max(sliding, key=lambda r: r["accuracy"])
    early = next(r for r in sliding if abs(r["window_s"][0]) < 1e-6)
    chance = _chance_interval(n)
    start = time.perf_counter()
    torch.manual_seed(seed)
    attr = attribute_batched(model, eeg, method="ig", target="logit", index=labels, n_steps=16, batch_size=64,
                             progress=False)
    timings["attribute_s"] = time.perf_counter() - start
    course = time_course(attr)
    times = np.asarray(test_set.times)
    post = (times >= 0.0)
    early_mass = float(course[(times >= 0) & (times < 0.1)].sum() / course[post].sum())
    return {
        "encoder": encoder,
        "epochs": epochs,
        "n_train_trials": int(train_set.n_conditions * train_set.n_repetitions),
        "n_test_trials": n,
        "full_accuracy": round(full, 4),
        "full_ci95": _wilson(round(full * n), n),
        "chance_interval95": [round(v, 4) for v in chance],
        "sliding": sliding,
        "growing": growing,
        "best_window_s": best["window_s"],
        "best_window_accuracy": best["accuracy"],
        "best_window_in_150_300ms": bool(best["window_s"][0] >= 0.15 - 1e-6 and best["window_s"][1] <= 0.3 + 1e-6),
        "early_window_accuracy": early["accuracy"],
        "early_near_chance": bool(chance[0] <= early["accuracy"] <= chance[1]),
        "ig_peak_latency_s": round(peak_latency(course[post], times[post]), 4),
        "ig_mass_0_100ms": round(early_mass, 4),
        **{k: round(v, 2) for k, v in timings.items()},
    }


# ------------------------------------------------------------------------------------------------ benchmarks
@benchmark(
    "explain.validation_simulated",
    "ATM-S trained on simulated data (80 concepts), IG over the test trials: channel AUROC vs the simulator's "
    "informative channels >= 0.8 and the attribution peak inside a simulated component window; 2 threads",
)
def validation_simulated() -> dict:
    with _threads(_THREADS), tempfile.TemporaryDirectory(prefix="toolkit-bench-xval-") as tmp:
        report = simulated_validation(tmp)
    report["target_auroc"] = 0.8
    report["met"] = bool(report["channel_auroc"] >= 0.8 and report["peak_in_component_window"])
    return report


@benchmark(
    "explain.validation_n170",
    "EEGNet face-vs-house on the real N170 runs (train 4, test 2), 100 ms window ablation on the held-out runs: "
    "best window within 150-300 ms, 0-100 ms inside the 95% chance interval; 2 threads (skipped without the data)",
)
def validation_n170() -> dict:
    import os

    # The recordings: $EEG_TOOLKIT_N170_DIR, else the project's ../shared checkout beside the repository.
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eegexpy-visual-n170"
    folder = Path(os.environ.get("EEG_TOOLKIT_N170_DIR", default)) / "recordings"
    if len(sorted(folder.glob("*.csv"))) < 6:
        return {"skipped": f"the six N170 recordings are not in {folder}; set EEG_TOOLKIT_N170_DIR", "met": None}
    with _threads(_THREADS), tempfile.TemporaryDirectory(prefix="toolkit-bench-n170-") as tmp:
        report = n170_validation(folder, tmp)
    report["met"] = bool(report["best_window_in_150_300ms"] and report["early_near_chance"])
    return report
