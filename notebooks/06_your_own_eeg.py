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
# # 06 · Your own EEG
#
# Bring a raw recording (FIF, EDF/BDF, BrainVision, EEGLAB or CSV with a marker column) into the toolkit: find the
# stimulus events, filter, epoch, reject artefacts, look at the ERPs, and map the channels onto the 63-channel
# THINGS-EEG montage that the decoders expect.
#
# **Data.** By default: a real recording from the EEG-ExPy project (BSD-3-Clause), a Muse headband (4 electrodes:
# TP9, AF7, AF8, TP10; 256 Hz) worn while one person watched faces (marker 2) and houses (marker 1): six runs of
# about two minutes. Faces evoke a larger negative deflection than houses about 170 ms after onset over
# occipito-temporal sites, the **N170**; TP9/TP10, behind the ears, are the Muse's closest sites (on this headband
# and recording the difference peaks nearer 200 ms). In the project's checkout the files sit in `../shared/` beside
# the repository; to use your own, point `RECORDINGS` at them (a glob, relative to this notebook's folder or
# absolute) and set `EVENT_ID` to your event codes.

# %% tags=["parameters"]
RECORDINGS = "../../shared/data/eegexpy-visual-n170/recordings/*.csv"  # glob of your recording files (one subject)
TARGET = "native"  # "native": the recording's own channels and rate; "things-eeg-63": the THINGS-EEG montage
EVENT_ID = {"house": 1, "face": 2}  # condition name -> event code (marker value)
CONTRAST = ("face", "house")  # difference wave: first minus second condition
SITES = ["TP9", "TP10"]  # channels averaged for the difference wave
L_FREQ, H_FREQ = 1.0, 30.0  # band-pass in Hz
REJECT = 100e-6  # peak-to-peak rejection threshold in volts (None: keep every epoch)
PRESET = "demo"  # simulator preset of the demo bundle decoding in section 5 ("tiny" builds in seconds)

# %%
import glob

import matplotlib.pyplot as plt
import mne
import numpy as np
import pandas as pd
from IPython.display import display
from scipy import stats

from toolkit import ToolkitError
from toolkit.data import import_recordings
from toolkit.viz import plot_butterfly, topomap_at

files = sorted(glob.glob(RECORDINGS))
if not files:
    raise ToolkitError(f"No file matches RECORDINGS = {RECORDINGS!r}; point it at your recordings.")
print(f"{len(files)} recording(s):", *files, sep="\n  ")

# %% [markdown]
# ## 1 · Import
#
# `import_recordings` runs the whole pipeline with MNE: read each file, find the events, band-pass filter, resample
# to the target rate (THINGS targets: 250 Hz), epoch with a pre-stimulus baseline, drop epochs whose peak-to-peak
# amplitude exceeds `REJECT`, map the channels onto the target montage, and keep the same number of repetitions for
# every condition. Several files are runs of one subject and are concatenated. The command line does the same:
# `python -m toolkit data import FILES --out STORE --target native --event-id house=1 face=2`.

# %%
result = import_recordings(files, target=TARGET, event_id=EVENT_ID, l_freq=L_FREQ, h_freq=H_FREQ, reject=REJECT)
trials, report = result.trials, result.report
print(f"trials: {trials.data.shape} = (conditions, repetitions, channels, samples), {trials.sfreq:g} Hz, "
      f"{trials.times[0]:.3f} … {trials.times[-1]:.3f} s, in volts")  # fmt: skip

# %% [markdown]
# The report says what was done to every file and channel: events found per code, epochs kept and why others were
# dropped, the filter, the resampling, and which channels were copied, interpolated from neighbours or zero-filled.

# %%
per_file = pd.DataFrame(
    [
        {"file": f["file"], "sfreq": f["sfreq"], "duration (s)": f["duration_s"], **f["events_used"],
         "epochs kept": f["epochs_kept"], "dropped": f["epochs_dropped"] or "-"}
        for f in report["files"]
    ]
)  # fmt: skip
display(per_file)
display(pd.DataFrame(report["conditions"]).T)
channels = report["channels"]
print("channels:", {k: len(channels[k]) for k in ("copied", "interpolated", "zero_filled", "dropped")})
print("filter:", report["filter"], "| resampling:", report["resample"], "| baseline (s):", report["baseline_s"])

# %% [markdown]
# ## 2 · ERPs per condition
#
# Only channels that carry signal are used from here on (`extra["channel_mask"]` marks zero-filled ones, which a
# THINGS target adds). Each panel averages every kept epoch of one condition.

# %%
mask = np.asarray(trials.extra["channel_mask"], dtype=bool)
recorded = [name for name, keep in zip(trials.ch_names, mask) if keep]
epochs = trials.select_channels(recorded).to_epochs()
conditions = list(EVENT_ID)
fig, axes = plt.subplots(1, len(conditions), figsize=(5.5 * len(conditions), 3.4), sharey=True, layout="constrained")
for ax, name in zip(np.atleast_1d(axes), conditions):
    plot_butterfly(epochs[name].get_data(copy=False), times=epochs.times, ch_names=recorded, scale=1e6, units="µV",
                   engine="matplotlib", axes=ax, title=f"{name}, {len(epochs[name])} epochs")  # fmt: skip

# %% [markdown]
# ## 3 · The difference wave and the N170
#
# Subtracting the two conditions removes what they share (the response to any picture) and leaves what differs.
# The difference is averaged over `SITES` and its most negative point between 100 and 300 ms is marked; a t-test
# across single trials at that latency says whether the difference stands out from trial-to-trial noise (an
# optimistic one, since the latency was picked on the same data: a window fixed in advance avoids that).

# %%
first, second = CONTRAST
site_idx = [recorded.index(c) for c in SITES]
evokeds = {name: epochs[name].average() for name in conditions}
difference = mne.combine_evoked([evokeds[first], evokeds[second]], weights=[1, -1])
at_sites = {
    label: mne.channels.combine_channels(evoked, {"sites": site_idx}, method="mean")
    for label, evoked in {first: evokeds[first], second: evokeds[second], f"{first} − {second}": difference}.items()
}
_, peak_s, peak_v = at_sites[f"{first} − {second}"].get_peak(tmin=0.1, tmax=0.3, mode="neg", return_amplitude=True)

sample = epochs.time_as_index(peak_s)[0]
single = {name: epochs[name].get_data(copy=False)[:, site_idx, sample].mean(axis=1) for name in CONTRAST}
t_value, p_value = stats.ttest_ind(single[first], single[second])

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
mne.viz.plot_compare_evokeds(at_sites, axes=ax, title=f"mean of {'/'.join(SITES)}", show_sensors=False, show=False)
ax.axvline(peak_s, color="black", linestyle="--", linewidth=1)
ax.annotate(f"N170: {peak_s * 1000:.0f} ms, {peak_v * 1e6:.1f} µV", (peak_s, peak_v * 1e6), xytext=(8, -12),
            textcoords="offset points")  # fmt: skip
print(f"{first} − {second} at {'/'.join(SITES)}: {peak_v * 1e6:.2f} µV at {peak_s * 1000:.0f} ms; "
      f"t = {t_value:.1f}, p = {p_value:.1g} ({len(single[first])} vs {len(single[second])} trials)")  # fmt: skip

# %% [markdown]
# The same moment on the scalp. **With four electrodes this map is crude**: two sites behind the ears and two on the
# forehead leave most of the head unmeasured: everything between and beyond them (the whole back of the head, say)
# is drawn by interpolation and extrapolation, not measured. Read it as four numbers placed on a head (their signs,
# front against back, left against right), not as a picture of where the source is; a 63-channel cap is what makes
# topomaps informative.

# %%
fig, ax = plt.subplots(figsize=(3.6, 3.2), layout="constrained")
fig = topomap_at(difference.data, peak_s, times=difference.times, ch_names=recorded, scale=1e6, units="µV", axes=ax,
           title=f"{first} − {second}, {peak_s * 1000:.0f} ms")  # fmt: skip

# %% [markdown]
# ## 4 · Onto the THINGS-EEG montage
#
# A decoder trained on THINGS-EEG expects 63 channels in a fixed order, 250 samples at 250 Hz from stimulus onset.
# The `things-eeg-63` target maps a recording onto that grid: channels the recording has are copied, a missing one is
# interpolated when at least three recorded electrodes lie within 6 cm of it, and the rest are zero-filled and marked
# as such in `channel_mask`, so that later stages (decoders, saliency maps) can ignore them. A Muse has no
# neighbours dense enough to interpolate anything: 4 channels are copied and 59 zero-filled.

# %%
if TARGET == "things-eeg-63":
    mapped = result
else:
    mapped = import_recordings(
        files, target="things-eeg-63", event_id=EVENT_ID, l_freq=L_FREQ, h_freq=H_FREQ, reject=REJECT
    )
things = mapped.trials
things_mask = np.asarray(things.extra["channel_mask"], dtype=bool)
mapping = mapped.report["channels"]
print(f"THINGS grid: {things.data.shape}, {things.sfreq:g} Hz, {things.times[0]:.3f} … {things.times[-1]:.3f} s")
print(f"copied {mapping['copied']}, interpolated {mapping['interpolated']}, dropped {mapping['dropped']}")
print(f"zero-filled: {len(mapping['zero_filled'])}; the mask keeps {int(things_mask.sum())} of {things.n_chans}")

# %% [markdown]
# Black: channels that carry the recording; red: zero-filled ones (MNE draws channels marked "bad" in red).

# %%
things_epochs = things.to_epochs(average=True)
things_epochs.info["bads"] = [name for name, keep in zip(things.ch_names, things_mask) if not keep]
fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
carrying = [name for name, keep in zip(things.ch_names, things_mask) if keep]
fig = things_epochs.plot_sensors(axes=ax, show_names=carrying, show=False)

# %% [markdown]
# The effect survives the trip: on the THINGS grid (250 Hz, baseline −200 … 0 ms) the difference at the same sites
# peaks at about the same latency.

# %%
on_grid = things.select_channels(SITES).to_epochs()
grid_difference = mne.combine_evoked([on_grid[first].average(), on_grid[second].average()], weights=[1, -1])
grid_sites = mne.channels.combine_channels(grid_difference, {"sites": list(range(len(SITES)))}, method="mean")
_, grid_s, grid_v = grid_sites.get_peak(tmin=0.1, tmax=0.3, mode="neg", return_amplitude=True)
print(f"THINGS grid: {first} − {second} at {'/'.join(SITES)}: {grid_v * 1e6:.2f} µV at {grid_s * 1000:.0f} ms "
      f"(section 3, {TARGET} target: {peak_v * 1e6:.2f} µV at {peak_s * 1000:.0f} ms)")  # fmt: skip

# %% [markdown]
# ## 5 · Through a decoder, and why it means little here
#
# The trials on the THINGS grid can go through a decoding pipeline like any test trial: `decode_trialset` retrieves
# the bundle's test images closest to each condition average (and to a chosen trial), reconstructs and explains that
# trial; see notebooks 02-04 for what each step is. It refuses trials on another montage, naming the import target
# to choose (`model_target(pipe)`), and rescales the volts of a recording to the amplitude the encoders learnt from.
#
# **Read the result as a warning, not a decoding.** The demo bundle's encoders were trained on *simulated* EEG of
# coloured shapes; here they see 4 real electrodes of a person they never saw, watching faces and houses that are not
# in their gallery, with 59 channels at zero. Whatever they retrieve is their reaction to out-of-distribution input.
# The printed notes say so with numbers (channels with signal, how alike the two conditions' embeddings are, how far
# the top image stands out); few-shot adaptation on labelled trials of the recording (`adapt_encoder`, notebook 05)
# is how to make such a decoder meaningful.

# %%
from toolkit.pipeline import decode_trialset, load_pipeline, model_target
from toolkit.viz import plot_attribution_heatmap

pipe = load_pipeline("demo", preset=PRESET)
print(f"the encoders take the '{model_target(pipe)}' import target; decoding the '{first}' average")
decoded = decode_trialset(pipe, things, condition=first, k=5, reconstruct=False)
for note in decoded.notes:
    print("⚠", note)
display(pd.DataFrame({query: [f"{c} ({s:.3f})" for c, s in zip(concepts, scores)] for query, concepts, scores in
                      zip(decoded.queries, decoded.retrieval.concepts, decoded.retrieval.scores)}))  # fmt: skip

# %% [markdown]
# The saliency map covers the channels with signal only (the zero-filled ones are left out): which of the four
# electrodes, and when, pushed the model towards its top image.

# %%
top = decoded.retrieval.concepts[decoded.chosen][0]
fig = plot_attribution_heatmap(decoded.attribution, decoded.attribution_ch_names, decoded.times, engine="matplotlib",
                               show=True, figsize=(7, 2.6), title=f"IG: '{first}' average → {top}")  # fmt: skip

# %% [markdown]
# ## Next steps
#
# The imported trial set is an ordinary `TrialSet`: save it as a memory-mapped store with
# `toolkit.data.write_store(path, [trials])` (the `python -m toolkit data import` command does import and save in
# one go) and use it wherever THINGS-EEG trials go.
#
# - **02–05**: zero-shot decoding with an encoder trained on THINGS-EEG, reconstruction, saliency maps, and training
#   or adapting your own encoder. Keep the mask in mind: here only 4 of the 63 channels carry signal, far less than
#   the decoders were trained on. The app's "Your EEG" tab runs section 5 on an upload (`python -m toolkit demo`).
# - A face-vs-house classifier on this recording alone (MNE/scikit-learn on `to_epochs()`) is the natural first
#   decoding exercise: the dataset notes report about 0.6 accuracy at 200–300 ms.
