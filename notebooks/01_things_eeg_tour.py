# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · A tour of THINGS-EEG
#
# THINGS-EEG2 (Gifford et al., 2022) is the dataset behind most EEG → image decoding work: 10 people each saw
# 16,540 training images (1,654 concepts × 10 images, 4 repetitions) and 200 test images (200 concepts × 1 image,
# 80 repetitions) while 63 EEG channels were recorded. This notebook walks through what the files hold and how the
# toolkit reads them: the `times` quirk, single trials against averages, ERPs and scalp maps, the condition →
# concept → image mapping, MNE, memory-mapped reading and the zero-shot split.
#
# **Data.** By default it runs on the *demo bundle*: a simulated THINGS-like dataset in the official layout (coloured
# shapes instead of photographs, EEG from a head model), built offline on first use and cached. To run it on the
# real data, set `DATA` in the next cell to the folder holding `Preprocessed_data_250Hz/`, `training_images/` and
# `test_images/`; nothing else changes.

# %% tags=["parameters"]
DATA = "demo"  # "demo" (simulated, built offline on first use) or the path of a THINGS-EEG root folder
SUBJECT = 1  # 1 ... 10 for the real data, 1 or 2 for the demo bundle
PRESET = "demo"  # simulator preset of the demo bundle ("tiny" builds in seconds); ignored for real data

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from PIL import Image

from toolkit import ToolkitError
from toolkit.bundles import demo_paths
from toolkit.data import SPLITS, inspect_path, load_ground_truth, load_things_eeg, open_store, things_eeg_file
from toolkit.viz import data_units, plot_butterfly, topomap_at

# %% [markdown]
# ## 1 · Load one subject
#
# Both routes end in the same object, a `TrialSet` of shape `(n_conditions, n_repetitions, n_chans, n_times)` whose
# `data` is a read-only memory map:
#
# - **demo**: `demo_paths()` simulates the dataset, converts it into a memory-mapped *store* and caches it (under
#   `$EEG_TOOLKIT_HOME`, default `~/.cache/eeg-visual-toolkit`); later runs open it at once.
# - **real data**: `load_things_eeg(..., mmap=True)` converts each official file once into a store in the same cache
#   (keyed by the file's path, size and date) and opens it. To convert every subject at once into a folder of your
#   choice, run `python -m toolkit data convert ROOT STORE` and open it with `open_store(STORE)`.

# %%
if DATA == "demo":
    paths = demo_paths(preset=PRESET)
    store = open_store(paths["store"])
    train = store.load(SUBJECT, "train", images_root=paths["images_root"])
    test = store.load(SUBJECT, "test", images_root=paths["images_root"])
    ROOT = None
else:
    ROOT = Path(DATA).expanduser()
    train = load_things_eeg(ROOT, SUBJECT, "train", mmap=True)
    test = load_things_eeg(ROOT, SUBJECT, "test", mmap=True)
if train.images is None or test.images is None:
    raise ToolkitError(f"'{DATA}' has no training_images/ and test_images/ folders; this tour needs the stimuli.")

pd.DataFrame(
    [
        {"split": ts.split, "subject": ts.subject, "dataset": ts.dataset, "shape": ts.data.shape, "sfreq": ts.sfreq,
         "concepts": ts.images.n_concepts, "memory-mapped": isinstance(ts.data, np.memmap)}
        for ts in (train, test)
    ]
)  # fmt: skip

# %% [markdown]
# **Why 63 channels at 250 Hz?** The data were recorded from a 64-electrode cap at 1,000 Hz; Fz served as the
# recording reference, which leaves 63 channels. ERPs carry little above 40 Hz, so the released data are
# downsampled to 250 Hz (ATM's release; the OSF release also offers 17 posterior channels at 100 Hz): one second
# after the image is 250 samples, a size decoders handle easily.
#
# ## 2 · What the official files hold
#
# Each official file is a pickled dict `{preprocessed_eeg_data, ch_names, times}` (despite its `.npy` name; the
# toolkit reads it with a restricted unpickler that rebuilds arrays and plain containers and refuses anything that
# could run code). `inspect_path`
# describes a file, a dataset root or a store without loading it as trials. The demo bundle converted its simulated
# files into the store and kept only the store, so in demo mode the table below describes the store; on real data it
# first describes the official test file.

# %%
if ROOT is not None:
    official = inspect_path(things_eeg_file(ROOT, SUBJECT, "test"))
    keys = ["kind", "shape", "dtype", "n_channels", "sfreq", "file_times", "times", "times_slice", "valid"]
    display(pd.Series({k: official.get(k) for k in keys}, name="official test file", dtype=object))
store_report = inspect_path(test.extra["store"])
columns = ["subject", "split", "dataset", "shape", "dtype", "n_channels", "sfreq", "times"]
pd.DataFrame(store_report["entries"])[columns]

# %% [markdown]
# **The `times` quirk.** The files store the `times` of the whole epoch (−0.2 … 0.996 s, 300 values), but the
# preprocessing dropped the 200 ms baseline *after* saving them: the data hold only the 250 samples from stimulus
# onset. Reading `times[:250]` would shift every latency by 200 ms. The loader keeps `times[50:]` and records what it
# did:

# %%
file_times, (first, stop) = test.extra["file_times"], test.extra["times_slice"]
print(f"'times' in the file : {file_times['n']} values, {file_times['first']:+.3f} … {file_times['last']:.3f} s")
print(f"samples in the data : {test.n_times} = times[{first}:{stop}], {test.times[0]:.3f} … {test.times[-1]:.3f} s")
print(test.extra.get("times_note", "the file's times match its data: this variant has no quirk"))

# %% [markdown]
# **MVNN.** The released data are *whitened* by multivariate noise normalisation: per session, the channel ×
# channel covariance of the EEG is estimated (within each training trial over its time points, shrunk towards a
# diagonal, averaged over trials) and every trial is multiplied by its inverse square root. Channels that are noisy
# are down-weighted and what all channels share (the reference, slow drifts) is taken out, which helps decoders; the
# values are no longer volts, so plots say "a.u." (the simulator writes data on the same scale).
#
# ## 3 · One trial against the average of its repetitions
#
# A single trial is mostly noise. Averaging *n* repetitions of the same image leaves the evoked response and divides
# the noise's standard deviation by √n. That is why the 80 test repetitions are averaged into one "clean" response
# per test image (ATM and its successors evaluate on these averages), while training keeps every repetition as a
# separate, noisy sample.

# %%
condition = 0
n_rep = test.n_repetitions
counts = (1, min(n_rep, max(2, n_rep // 4)), n_rep)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True, layout="constrained")
for ax, k in zip(axes, counts):
    plot_butterfly(test.data[condition, :k], times=test.times, ch_names=test.ch_names, engine="matplotlib", axes=ax,
                   title="one trial" if k == 1 else f"mean of {k}")  # fmt: skip
for ax in axes[1:]:
    ax.set_ylim(axes[0].get_ylim())
fig.suptitle(f"test image {condition} ({test.concept_names()[condition]}), {test.subject}")

noise = np.asarray(test.data[condition]) - test.condition_average(condition)
print(f"noise standard deviation of one trial: {noise.std():.2f}; expected for the mean of all {n_rep}: "
      f"{noise.std() / np.sqrt(n_rep):.2f} (÷√{n_rep})")  # fmt: skip

# %% [markdown]
# ## 4 · The ERP: every channel, averaged over all test trials
#
# Hover over a trace to see its channel; colours follow the electrode's position on the head (MNE's spatial
# colours), the thick black trace is the global field power (the spread across channels at each moment).

# %%
erp_figure = plot_butterfly(test, gfp=True, highlight=0.17, title=f"{test.subject} test ERP (all images, all trials)")
erp_figure

# %% [markdown]
# Scalp maps of the same ERP at three moments: early visual responses over occipital sites (~100 ms), the
# occipito-temporal N170 window (~170 ms), later and broader activity (~300 ms).

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), layout="constrained")
for ax, latency in zip(axes, (0.1, 0.17, 0.3)):
    topomap_at(test, latency, axes=ax, title=f"{latency * 1000:.0f} ms")

# %% [markdown]
# ## 5 · Conditions, concepts and images
#
# Conditions are numbered by walking the concept folders in sorted order and, inside each, the image files in sorted
# order (THINGS-EEG2's event numbering). `TrialSet.images` holds that mapping.

# %%
images = test.images
pd.DataFrame(
    {"condition": range(images.n_conditions), "concept": test.concept_names(), "image": images.image_files}
).head(8)

# %%
shown = list(range(min(6, test.n_conditions)))
fig, axes = plt.subplots(1, len(shown), figsize=(2.1 * len(shown), 2.4))
for ax, cond in zip(np.atleast_1d(axes), shown):
    ax.imshow(Image.open(images.image_path(cond)))
    ax.set_title(f"{cond}: {images.concept_of(cond)}", fontsize=8)
    ax.axis("off")

# %% [markdown]
# `metadata()` gives one row per trial (condition-major, the order of `data.reshape(-1, n_chans, n_times)`), ready
# for pandas or as MNE epochs metadata.

# %%
metadata = train.metadata()
print(f"{len(metadata)} training trials = {train.n_conditions} conditions × {train.n_repetitions} repetitions")
metadata.head(6)

# %% [markdown]
# ## 6 · Into MNE
#
# `to_epochs` hands a trial set to MNE with the standard 10-05 montage and the metadata table, so MNE's whole toolbox
# (evoked plots, topomaps, statistics, decoding) applies. Here: one epoch per test image, each the average of its
# repetitions.

# %%
epochs = test.to_epochs(average=True)
print(epochs)
units, scale = data_units(test)
evoked = epochs.average()
fig = evoked.plot(spatial_colors=True, gfp=True, scalings={"eeg": scale}, units={"eeg": units},
                  titles={"eeg": "MNE Evoked"})  # fmt: skip

# %% [markdown]
# ## 7 · Memory-mapped reading
#
# The real training file is 8.3 GB of float64. The store keeps float32 arrays on disk and `TrialSet.trial(c, r)` reads
# only the 63 × 250 values of that trial, so a loaded subject costs almost no memory and random access (what a
# training loop does) stays fast.

# %%
rng = np.random.default_rng(0)
picks = [(int(rng.integers(train.n_conditions)), int(rng.integers(train.n_repetitions))) for _ in range(200)]
start = time.perf_counter()
for cond, rep in picks:
    trial = train.trial(cond, rep)
per_trial_ms = (time.perf_counter() - start) / len(picks) * 1000
print(f"training data: {type(train.data).__name__} of {train.data.nbytes / 1e6:.0f} MB on disk")
print(f"one random trial {trial.shape} {trial.dtype}: {per_trial_ms:.3f} ms on average over {len(picks)} reads")

# %% [markdown]
# ## 8 · The zero-shot split
#
# No test concept occurs in training: a decoder is tested on concepts it has never seen, which is why THINGS-EEG
# decoders map EEG into an embedding space (CLIP) shared with the images instead of onto class labels.

# %%
train_concepts, test_concepts = set(train.images.concepts), set(test.images.concepts)
print(f"{len(train_concepts)} training concepts, {len(test_concepts)} test concepts, "
      f"{len(train_concepts & test_concepts)} in both")  # fmt: skip

# %% [markdown]
# In the simulator a concept is a (shape, colour, texture) combination. Every attribute value of a test concept is
# seen in training, but no test *combination* is, so a decoder can only succeed by composing what it learnt about
# each attribute, a small model of the real task. The ground truth written with simulated data says so:

# %%
if test.dataset.startswith("simulated"):
    truth = load_ground_truth(paths["root"] if ROOT is None else ROOT)
    combos = {split: {tuple(row) for row in truth[f"{split}_concept_attributes"].tolist()} for split in SPLITS}
    rows = []
    for axis, (name, values) in enumerate(truth["attributes"].items()):
        seen = {values[c[axis]] for c in combos["train"]}
        tested = sorted({values[c[axis]] for c in combos["test"]})
        rows.append({"attribute": name, "in test": ", ".join(tested), "all seen in training": set(tested) <= seen})
    display(pd.DataFrame(rows))
    print(f"test combinations also in training: {len(combos['test'] & combos['train'])} of {len(combos['test'])}")
else:
    print("Recorded data: the concepts are THINGS object categories, and none of the test ones is trained on.")

# %% [markdown]
# ## Next
#
# - Browse any trial interactively: `python -m toolkit demo` opens the Gradio app (its *Trials* tab uses the same
#   store).
# - Notebook 06 brings your own EEG recording into the same `TrialSet`.
# - Decoding, retrieval, reconstruction and attribution on these data are the subject of notebooks 02–05.
