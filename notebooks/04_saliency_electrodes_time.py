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
# # 04 · Saliency over electrodes and time
#
# Which electrodes and which moments after the image does a decoder rely on? Two families of answers:
#
# - **attribution** (here Integrated Gradients, IG): how much each (channel, sample) of one trial contributes to the
#   similarity between its EEG embedding and the embedding of the image that was shown;
# - **ablation** (ATM's analyses): retrieval accuracy when parts of the signal are removed (time windows, scalp
#   regions).
#
# Attribution maps are easy to make and easy to over-read. On the demo bundle we can check them: the simulator
# *knows* which channels and latencies carry image information (its ground truth). The notebook ends with two sanity
# checks, cascading randomisation and an untrained model.

# %% tags=["parameters"]
BUNDLE = "demo"  # "demo": simulated data with ground truth (the validation section needs it)
SUBJECT = "sub-01"  # a subject of the bundle
PRESET = "demo"  # simulator preset of the demo bundle ("tiny" builds in seconds)
ENCODER = "atm-s"  # an encoder of the bundle
N_STEPS = 16  # IG integration steps (more: smaller completeness error, slower)
SEED = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from toolkit.bundles import demo_paths
from toolkit.data import load_ground_truth
from toolkit.encoders import create_encoder
from toolkit.explain import (
    ablate_regions,
    ablate_windows,
    attribute,
    attribute_batched,
    cascading_randomization,
    channel_scores,
    compare_with_ground_truth,
    region_scores,
    time_course,
)
from toolkit.pipeline import load_pipeline
from toolkit.viz import plot_attribution_heatmap, plot_attribution_time_course, plot_attribution_topomaps

# %% [markdown]
# ## 1 · One trial, one map
#
# The target is the cosine similarity between the trial's EEG embedding and its own test image's embedding. IG
# integrates the gradient along a straight path from a baseline (here zeros: no signal) to the trial, so the map sums
# to the change of the target between the two (completeness).

# %%
pipe = load_pipeline(BUNDLE, preset=PRESET)
model = pipe.encoder(ENCODER)
test = pipe.trials(SUBJECT, "test", average=True)
eeg = np.asarray(test.data[:, 0], dtype=np.float32)
gallery, _ = pipe.gallery("image")
conditions = np.arange(test.n_conditions)
torch.manual_seed(SEED)
one = attribute(model, eeg[:1], method="ig", target="similarity", index=conditions[:1], image_embeds=gallery,
                normalize=True, n_steps=N_STEPS)  # fmt: skip
print(f"map of trial 0 ({test.images.concept_of(0)}): shape {one.shape}, sum {one.sum():+.4f}")
fig = plot_attribution_heatmap(one[0], test.ch_names, test.times, engine="matplotlib", show=True, figsize=(7, 6),
                               title=f"IG, {ENCODER}, one trial: channels by region × time")  # fmt: skip

# %% [markdown]
# ## 2 · Averaged over the test trials
#
# One map is noisy. `attribute_batched` computes the maps of every averaged test trial; `channel_scores`,
# `time_course` and `region_scores` summarise them (magnitudes, so positive and negative evidence both count).

# %%
torch.manual_seed(SEED)
attr = attribute_batched(model, eeg, method="ig", target="similarity", index=conditions, image_embeds=gallery,
                         normalize=True, n_steps=N_STEPS, batch_size=8, progress=False)  # fmt: skip
fig = plot_attribution_time_course(attr, test.times, ch_names=test.ch_names, by_group=True, engine="matplotlib",
                                   show=True, title="mean |IG| per scalp region over time")  # fmt: skip

# %% [markdown]
# Scalp maps of the mean signed attribution in three windows (early visual, N170 window, later):

# %%
fig = plot_attribution_topomaps(attr.mean(axis=0), test.ch_names, test.times,
                                windows=[(0.05, 0.15), (0.15, 0.25), (0.25, 0.4)], engine="matplotlib",
                                show=True)  # fmt: skip

# %%
pd.Series(region_scores(attr, test.ch_names), name="mean |IG| per channel").sort_values(ascending=False)

# %% [markdown]
# ## 3 · Ablation: retrieval with parts of the signal removed
#
# Attribution explains a model's *gradient*; ablation measures its *accuracy*. Replacing a window or a region by the
# mean signal (what the model sees without it) and re-running the retrieval says how much the model needs it.

# %%
windows = ablate_windows(model, eeg, gallery, normalize=True, times=test.times, ch_names=test.ch_names,
                         progress=False)  # fmt: skip
regions = ablate_regions(model, eeg, gallery, normalize=True, times=test.times, ch_names=test.ch_names,
                         progress=False)  # fmt: skip
table = pd.concat([windows.table(), regions.table()]).drop_duplicates("label")
table[["analysis", "label", "top1", "mean_rank"]]

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, result, title in ((axes[0], windows, "time windows"), (axes[1], regions, "scalp regions")):
    rows = result.table()
    labels = rows["label"].where(rows["analysis"] != "full", "full")
    ax.bar(labels, rows["top1"] * 100, color=["k" if a == "full" else "tab:blue" for a in rows["analysis"]])
    ax.axhline(result.chance["top1"] * 100, color="k", ls=":", label="chance")
    ax.set_title(f"full-gallery top-1 with {title} ablated")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 4 · Checking the maps against the simulator's ground truth
#
# The simulator writes which channels carry image information and when (components at known latencies).
# `compare_with_ground_truth` scores the maps: the **AUROC** of the channel ranking against the informative channels
# (1 = all informative channels rank first, 0.5 = chance) and the **peak latency** of the attribution time course
# against the simulated components.

# %%
truth = load_ground_truth(demo_paths(preset=PRESET)["root"])
report = compare_with_ground_truth(attr, truth, ch_names=test.ch_names, times=test.times)
pd.Series({k: v for k, v in report.items() if not isinstance(v, (dict, list))}, dtype=object)

# %%
informative = np.asarray(truth["informative_channels_mask"], dtype=bool)
scores = channel_scores(attr)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].bar(np.arange(len(scores)), scores, color=np.where(informative[: len(scores)], "tab:red", "0.6"))
axes[0].set(xlabel="channel", ylabel="mean |IG|", title=f"channel scores (red: informative), AUROC "
            f"{report['channel_auroc']:.2f}")  # fmt: skip
axes[1].plot(test.times, time_course(attr) / time_course(attr).max(), label="|IG| time course")
axes[1].plot(truth["times"] if "times" in truth else test.times[: len(truth["time_score"])],
             np.asarray(truth["time_score"]) / np.max(truth["time_score"]), label="simulated time score")  # fmt: skip
for comp in truth.get("components") or []:
    axes[1].axvline(float(comp["latency_s"]), color="k", ls=":", lw=0.8)
axes[1].set(xlabel="time (s)", title=f"peak {report['peak_latency_s'] * 1000:.0f} ms (dotted: components)")
axes[1].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 5 · Sanity checks
#
# **An untrained model.** IG multiplies the gradient by the input, so channels with large signals can rank high
# without any learning. On this simulator the informative channels are also those with the largest evoked signal, so
# an *untrained* encoder of the same architecture reaches a similar AUROC: the AUROC alone does not prove that the
# model learnt where the information is. Both numbers:

# %%
torch.manual_seed(SEED)
cfg = model.config
fresh = create_encoder(ENCODER, n_chans=cfg.n_chans, n_times=cfg.n_times, embed_dim=cfg.embed_dim).eval()
attr_fresh = attribute_batched(fresh, eeg, method="ig", target="similarity", index=conditions, image_embeds=gallery,
                               normalize=True, n_steps=N_STEPS, batch_size=8, progress=False)  # fmt: skip
untrained = compare_with_ground_truth(attr_fresh, truth, ch_names=test.ch_names, times=test.times)
pd.DataFrame({"trained": report, "untrained": untrained}).loc[["channel_auroc", "peak_latency_s"]]

# %% [markdown]
# What does separate the trained model is its *accuracy* (notebook 02) and the ablations above: the untrained model
# retrieves at chance whatever is removed. **Cascading randomisation** (Adebayo et al., 2018) re-initialises the
# model's layers from the top down; maps that barely change are explaining the input, not the model. The curve shows
# the rank correlation of the maps with the original ones after each step (on a few trials, with half the IG steps,
# to keep it quick):

# %%
torch.manual_seed(SEED)
n_check = min(4, len(eeg))  # a few trials suffice: every step re-computes their maps on a re-initialised copy
sanity = cascading_randomization(model, eeg[:n_check], method="ig", target="similarity", index=conditions[:n_check],
                                 image_embeds=gallery, normalize=True, n_steps=max(4, N_STEPS // 2), seed=SEED,
                                 batch_size=8, progress=False)  # fmt: skip
steps = pd.DataFrame(sanity.steps)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(steps["step"], steps["spearman_abs"], "o-")
ax.set_xticks(steps["step"], steps["layer"], rotation=60, fontsize=7, ha="right")
ax.set(ylabel="Spearman of |maps| with the original", title="cascading randomisation", ylim=(-0.1, 1.05))
fig.tight_layout()
steps[["step", "layer", "spearman", "spearman_abs", "ssim"]]

# %% [markdown]
# ## Next
#
# - `python -m toolkit explain` computes the same maps and ablations from the command line; the Gradio app's
#   *Saliency* tab shows them for any trial.
# - Notebook 05 trains an encoder of your own.
