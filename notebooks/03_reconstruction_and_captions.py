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
# # 03 · Reconstruction and captions
#
# Retrieval (notebook 02) can only pick an image from a gallery. *Reconstruction* generates a new one: the EEG
# embedding is turned by a **diffusion prior** into an image embedding, and a **decoder** turns that embedding into
# pixels. A **captioner** turns the same embedding into words. This notebook reconstructs held-out test concepts,
# puts them next to what was shown and next to two controls, captions them, and scores both.
#
# **The two controls** answer "is the EEG doing anything?":
#
# - **shuffled EEG**: the prior conditioned on the EEG of *another* test trial, with the same random seed. If a
#   reconstruction resembles its stimulus no more than the shuffled one does, the EEG carried no image-specific
#   information.
# - **prior only**: the prior with no EEG at all (unconditional). It shows what the generator produces by default,
#   the "average image" that a weak decoder falls back to.
#
# **Demo and real bundle.** The demo bundle's prior, decoder and captioner are small models trained on the simulated
# stimuli (coloured shapes); everything runs offline on a CPU in seconds. The real pipeline (ATM's) uses the same
# steps with large pretrained models: the prior predicts an OpenCLIP ViT-H-14 image embedding, **SDXL-Turbo with
# IP-Adapter** renders it (optionally starting from a low-level image decoded from the EEG), and **GIT** captions
# it. Those weights are several gigabytes and need a GPU: see `docs/generation-gpu.md` for how to fetch them once and
# run `python -m toolkit reconstruct`; this notebook downloads nothing.

# %% tags=["parameters"]
BUNDLE = "demo"  # "demo" (simulated data and small models, built offline); the real pipeline: docs/generation-gpu.md
SUBJECT = "sub-01"  # a subject of the bundle ("sub-01" / "sub-02" for the demo)
PRESET = "demo"  # simulator preset of the demo bundle ("tiny" builds in seconds)
N_SHOWN = 6  # test concepts shown in the figures
SEED = 0  # row i of a batch is sampled with seed SEED + i (the controls reuse the seeds)
STEPS = 50  # denoising steps of the diffusion prior

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from toolkit.metrics import evaluate_captions, pixcorr, ssim, two_way_identification
from toolkit.pipeline import load_pipeline

# %% [markdown]
# ## 1 · Reconstruct held-out test concepts
#
# The test concepts were never seen in training (notebook 01, section 8), neither by the encoder nor by the prior.
# `reconstruct` returns the reconstructions and both controls, made with the same seeds.

# %%
pipe = load_pipeline(BUNDLE, preset=PRESET)
test = pipe.trials(SUBJECT, "test", average=True)
stimuli = [Image.open(test.images.image_path(c)).convert("RGB") for c in range(test.n_conditions)]
rec = pipe.reconstruct(test.data[:, 0], SUBJECT, seed=SEED, num_inference_steps=STEPS)
print(rec.settings)
print("shuffled control of row i uses the EEG of row:", rec.shuffled_from.tolist())

# %%
shown = list(range(min(N_SHOWN, test.n_conditions)))
rows = {"stimulus": stimuli, "from EEG": rec.images, "shuffled EEG": rec.shuffled_images,
        "prior only": rec.prior_only_images}  # fmt: skip
fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.8 * len(shown), 1.9 * len(rows)), squeeze=False)
for ax_row, (label, images) in zip(axes, rows.items()):
    for ax, cond in zip(ax_row, shown):
        ax.imshow(images[cond])
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(label)
for ax, cond in zip(axes[0], shown):
    ax.set_title(test.images.concept_of(cond).replace("_", " "), fontsize=8)
fig.suptitle(f"{SUBJECT}: held-out test concepts, reconstructions ({rec.settings['encoder']}) and controls")
fig.tight_layout()

# %% [markdown]
# ## 2 · Captions
#
# `caption` runs the captioner on the prior's image embedding (`via="prior"`, what a reconstruction is made from) or
# directly on the EEG embedding (`via="eeg"`: the encoder was trained into the image-embedding space, so the
# captioner can read it too). The reconstructions above already hold the prior's image embeddings
# (`rec.image_embeds`, same seeds): captioning them gives what `pipe.caption(eeg, SUBJECT, seed=SEED,
# num_inference_steps=STEPS)` gives, without sampling the prior a second time. The references here are the concept
# names.

# %%
references = [c.replace("_", " ") for c in test.concept_names()]
captions = pipe.vision.captioner(rec.image_embeds)  # = pipe.caption(..., via="prior") with the same seed and steps
captions_eeg = pipe.caption(test.data[:, 0], SUBJECT, via="eeg")
pd.DataFrame({"stimulus": references, "caption (via prior)": captions, "caption (via EEG embedding)": captions_eeg})

# %% [markdown]
# Caption metrics compare words (BLEU-1, ROUGE-L, METEOR, here without WordNet synonyms so it runs offline);
# `evaluate_captions` also offers sentence-embedding and CLIP similarities when those models are in the local cache.
# As a control, the same captions scored against the references of *other* trials (rolled by one):

# %%
caption_metrics = ["bleu1", "rouge_l", "meteor"]
rolled = references[1:] + references[:1]
caption_table = pd.DataFrame(
    {name: {m: evaluate_captions(preds, refs, metrics=caption_metrics, wordnet=None)[m] for m in caption_metrics}
     for name, preds, refs in [("via prior", captions, references), ("via EEG", captions_eeg, references),
                               ("via prior, wrong references", captions, rolled)]}
).T  # fmt: skip
caption_table.round(3)

# %% [markdown]
# ## 3 · Scoring reconstructions against the controls
#
# The standard reconstruction metrics (MindEye, ATM) are low-level, **PixCorr** (pixel correlation after downsizing)
# and **SSIM** (structural similarity), and high-level, **two-way identification**: in a feature space, is a
# reconstruction more correlated with its own stimulus than with another test stimulus? (chance 50 %). The published
# tables use AlexNet, Inception, CLIP, EfficientNet and SwAV features; `toolkit.metrics.evaluate_reconstructions`
# computes them all when those weights are in the local cache (`feature_weights="tiny"` gives random stand-ins for
# tests, whose numbers mean nothing). Here the identification uses the demo image embedder, a feature space trained on
# these stimuli, so it is offline and meaningful. Every metric is computed for the reconstructions **and** both
# controls: only the gap to the controls says the EEG helped.

# %%
gt_features = pipe.vision.embedder.encode_images(stimuli, normalize=True)
scores = {}
for label, images in list(rows.items())[1:]:
    features = pipe.vision.embedder.encode_images(images, normalize=True)
    scores[label] = {
        "PixCorr": pixcorr(images, stimuli),
        "SSIM": ssim(images, stimuli),
        "two-way identification": two_way_identification(gt_features, features),
        "cosine to own stimulus": float(np.mean(np.sum(gt_features * features, axis=1))),
    }
score_table = pd.DataFrame(scores).T
score_table.round(3)

# %%
fig, axes = plt.subplots(1, score_table.shape[1], figsize=(3 * score_table.shape[1], 2.8))
colors = ["tab:blue", "tab:orange", "tab:gray"]
for ax, metric in zip(axes, score_table.columns):
    ax.bar(score_table.index, score_table[metric], color=colors)
    ax.set_title(metric, fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
axes[2].axhline(0.5, color="k", ls=":", label="chance")
axes[2].legend(fontsize=8)
fig.suptitle(f"{SUBJECT}, {test.n_conditions} test concepts: reconstructions against the two controls")
fig.tight_layout()

# %% [markdown]
# ## 4 · Per-image identification
#
# An average hides which concepts worked. `per_item=True` gives each reconstruction's share of wins against the other
# stimuli:

# %%
per_item = two_way_identification(gt_features, pipe.vision.embedder.encode_images(rec.images, normalize=True),
                                  per_item=True)  # fmt: skip
pd.Series(per_item, index=test.concept_names(), name="two-way identification").sort_values(ascending=False)

# %% [markdown]
# **Reading the numbers.** With the `tiny` preset (what the tests run) the models train for seconds on a handful of
# concepts: the reconstructions are blurry blobs and need not beat the controls at all, which is exactly what the
# controls are there to reveal. With the `demo` preset they are recognisable shapes. With the demo's few test
# concepts the intervals are wide; on THINGS-EEG the same comparison runs over 200 test images per subject.
# Low-level metrics (PixCorr, SSIM) are dominated by the background and overall layout, which the prior-only control
# already gets right; they say little without the controls beside them. High-level identification is where
# EEG-conditioned reconstructions should clearly beat both controls.
#
# ## Next
#
# - The real pipeline (SDXL-Turbo + IP-Adapter, GIT captions): `docs/generation-gpu.md`, `docs/captions.md`.
# - Which parts of the EEG drive these embeddings: notebook 04.
