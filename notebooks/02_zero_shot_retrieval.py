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
# # 02 · Zero-shot retrieval
#
# An EEG encoder maps a trial into the same embedding space as the images (CLIP for the real data, the demo vision
# model here). *Retrieval* ranks a gallery of candidate images by cosine similarity to that EEG embedding; the
# decoder is right when the image that was actually shown comes first (top-1) or among the first five (top-5).
#
# **Zero-shot** means the gallery's concepts were never trained on: THINGS-EEG's 200 test concepts do not occur among
# its 1,654 training concepts (notebook 01, section 8). The encoder cannot memorise "what aardvark EEG looks like"; it
# can only succeed if the embedding space generalises. This notebook covers image and text galleries, k-way scores
# (exact and with seeded distractors), full-gallery top-k, the protocol card that says how a number was made, and a
# comparison of two encoders (ATM-S and NICE) across subjects.
#
# **Data and models.** `BUNDLE = "demo"` uses the demo bundle: simulated THINGS-like data with small encoders trained
# on it, all built offline on first use (once, then cached; the `tiny` preset takes seconds).
# `"atm-things-eeg"` is the bundle of the real data and published checkpoints: when its files are not installed,
# `load_pipeline` stops with one message listing what is missing.

# %% tags=["parameters"]
BUNDLE = "demo"  # "demo" (simulated data and small models, built offline) or "atm-things-eeg" (your files)
SUBJECT = "sub-01"  # a subject of the bundle ("sub-01" ... "sub-10" for THINGS-EEG, "sub-01" / "sub-02" for the demo)
PRESET = "demo"  # simulator preset of the demo bundle ("tiny" builds in seconds); ignored for the real bundle
N_DRAWS = 200  # seeded distractor draws per query for the sampled k-way scores
SEED = 0  # seed of the distractor draws and bootstrap intervals

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from PIL import Image

from toolkit.pipeline import load_pipeline
from toolkit.retrieval import evaluate_retrieval, render_summary, summarize_subjects

# %% [markdown]
# ## 1 · Open the pipeline
#
# `load_pipeline` returns one object holding the bundle's trial store, its encoders, the test galleries and the
# generative models of notebook 03. Everything loads lazily, on first use.

# %%
pipe = load_pipeline(BUNDLE, preset=PRESET) if BUNDLE == "demo" else load_pipeline(BUNDLE)
print(pipe)
test = pipe.trials(SUBJECT, "test", average=True)
train = pipe.trials(SUBJECT, "train")
print(f"test: {test.n_conditions} conditions, repetitions averaged -> shape {test.data.shape}")
print(f"training concepts that are also test concepts: {len(set(train.images.concepts) & set(test.images.concepts))}")

# %% [markdown]
# ## 2 · Retrieve: EEG → the closest test images
#
# `retrieve` embeds each (averaged) test trial and returns the top-k gallery rows. Row *i* of the image gallery is
# test condition *i*, so a query is right when its own index comes first.

# %%
K = min(5, test.n_conditions)
out = pipe.retrieve(test.data[:, 0], SUBJECT, k=K)
shown = list(range(min(4, test.n_conditions)))
fig, axes = plt.subplots(len(shown), K + 1, figsize=(1.7 * (K + 1), 1.9 * len(shown)), squeeze=False)
for row, cond in zip(axes, shown):
    row[0].imshow(Image.open(test.images.image_path(cond)))
    row[0].set_title(f"seen:\n{test.images.concept_of(cond)}", fontsize=7, color="tab:blue")
    for ax, idx, score, concept in zip(row[1:], out.indices[cond], out.scores[cond], out.concepts[cond]):
        ax.imshow(Image.open(test.images.image_path(int(idx))))
        ax.set_title(f"{concept}\n{score:.2f}", fontsize=7, color="tab:green" if idx == cond else "black")
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle(f"{SUBJECT}, {out.encoder}: stimulus (left), top-{K} retrieved test images (green = correct)")
fig.tight_layout()

# %% [markdown]
# ## 3 · Image gallery or text gallery
#
# The same EEG embedding can be compared with *text* embeddings of the concept names ("a photo of a …" for CLIP):
# that is zero-shot **classification** rather than retrieval, and it needs no test image at all. How well it works
# depends on how well the image and text embeddings agree: the encoders were trained against image embeddings only,
# so text can do better (a concept name ignores nuisances of one photograph, such as its background) or worse (the
# two modalities are not perfectly aligned). ATM trains with an image and a text term for this reason.

# %%
text_out = pipe.retrieve(test.data[:, 0], SUBJECT, k=1, gallery="text")
image_top1 = np.mean(out.indices[:, 0] == np.arange(test.n_conditions))
text_top1 = np.mean(text_out.indices[:, 0] == np.arange(test.n_conditions))
pd.DataFrame(
    {"stimulus concept": test.concept_names(), "image gallery top-1": [c[0] for c in out.concepts],
     "text gallery top-1": [c[0] for c in text_out.concepts]}
).head(8)  # fmt: skip

# %%
print(f"top-1 over the {test.n_conditions} test concepts: image gallery {image_top1:.0%}, text gallery "
      f"{text_top1:.0%} (chance {1 / test.n_conditions:.0%})")  # fmt: skip

# %% [markdown]
# ## 4 · k-way accuracy: exact, and with seeded distractors
#
# Papers report **k-way** accuracy: the true image against *k − 1* distractors (2-way, 4-way, 10-way, 50-way on 200
# test images) and **full-gallery** top-1 / top-5 (200-way). Many implementations draw the distractors at random
# once, so their numbers move with the random seed. The toolkit computes two versions:
#
# - **exact**: the expected accuracy over *all* possible distractor sets, from the query's rank in the full gallery
#   (a hypergeometric probability, no randomness), with a bootstrap interval over queries;
# - **sampled**: the accuracy over `N_DRAWS` seeded draws of distractors (what a random-distractor script would
#   report), with the spread across draws.
#
# `evaluate` runs this on a subject's averaged test trials and attaches the protocol card.

# %%
result = pipe.evaluate(SUBJECT, n_draws=N_DRAWS, seed=SEED)
result.table()

# %% [markdown]
# The spread of the sampled score shows why a single random draw is a poor way to report k-way accuracy (one
# draw can land anywhere in this histogram), while the exact value sits at its centre:

# %%
fig, axes = plt.subplots(1, len(result.kway), figsize=(3.6 * len(result.kway), 2.8), squeeze=False)
for ax, score in zip(axes[0], result.kway):
    ax.hist(score.draws * 100, bins=20, color="0.7")
    ax.axvline(score.exact * 100, color="tab:red", label=f"exact {score.exact:.1%}")
    ax.axvline(score.chance * 100, color="k", ls=":", label=f"chance {score.chance:.0%}")
    ax.set_title(score.label)
    ax.set_xlabel("accuracy over one draw (%)")
    ax.legend(fontsize=7)
axes[0][0].set_ylabel("draws")
fig.tight_layout()

# %% [markdown]
# ## 5 · The protocol card
#
# A number is only comparable with another made the same way. Every result carries a **protocol card**: dataset and
# variant, subjects, gallery, channels, time window, repetitions averaged, training setting (intra-subject, joint,
# leave-one-subject-out), backbone, normalisation, the checkpoint-**selection rule**, encoder, seeds and versions.
# `to_markdown()` prints it above the table (accuracies in percent):

# %%
display(Markdown(result.to_markdown()))

# %% [markdown]
# ### Why selection on validation matters
#
# Training runs for many epochs and one checkpoint is kept. If it is the one with the best **test** accuracy, the
# test set has been used to tune the model, and the reported number is biased upwards (the best of many noisy
# evaluations). The demo encoders hold out training *concepts* as a validation split and select on it; the test split
# is evaluated once:

# %%
card = result.protocol
print("selection rule   :", card.selection_rule)
print("selected on test :", card.selected_on_test)
print("warning          :", card.warning)

# %% [markdown]
# Published THINGS-EEG numbers (ATM's among them) were selected on the test set. A card that says so prints a warning
# with every table, so such numbers are never silently compared with validation-selected ones:

# %%
print(card.replace(selected_on_test=True, selection_rule="best test top-1 over all epochs").warning)

# %% [markdown]
# `evaluate_retrieval` is the function behind `evaluate`: give it any EEG embeddings, a gallery and a card. Here the
# exact k-way scores for every k up to the gallery size, from the embeddings `retrieve` returned above:

# %%
items, _ = pipe.gallery("image")
every_k = evaluate_retrieval(out.eeg_embeds, items, normalize=True, protocol=pipe.protocol_card(SUBJECT),
                             ks=range(2, items.shape[0] + 1), top=1, n_draws=20, seed=SEED)  # fmt: skip
ks = [s.k for s in every_k.kway]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ks, [s.exact * 100 for s in every_k.kway], "o-", label="exact")
ax.fill_between(ks, [s.exact_ci[0] * 100 for s in every_k.kway], [s.exact_ci[1] * 100 for s in every_k.kway],
                alpha=0.2, label="95% bootstrap over queries")  # fmt: skip
ax.plot(ks, [100 / k for k in ks], "k:", label="chance")
ax.set(xlabel="k (candidates)", ylabel="top-1 accuracy (%)", title=f"{SUBJECT}, {out.encoder}")
ax.legend(fontsize=8)

# %% [markdown]
# ## 6 · Comparing encoders across subjects
#
# One subject's number is noisy; papers average over subjects. `summarize_subjects` takes one result per subject
# (with cards that agree on the protocol) and adds mean, standard deviation and a t-interval across subjects. Here
# ATM-S (a channel-wise transformer before a temporal-spatial convolution) against NICE (the convolution alone):

# %%
summaries = {}
for encoder in pipe.encoders:
    per_subject = {s: pipe.evaluate(s, encoder=encoder, n_draws=N_DRAWS, seed=SEED) for s in pipe.subjects}
    summaries[encoder] = summarize_subjects(per_subject)
display(Markdown(render_summary(summaries[pipe.encoders[0]])))

# %%
metrics = [c for c in summaries[pipe.encoders[0]].columns if "top-1" in c or c == "MRR"]
fig, ax = plt.subplots(figsize=(7, 3.2))
width = 0.8 / len(summaries)
for i, (encoder, table) in enumerate(summaries.items()):
    x = np.arange(len(metrics)) + i * width
    ax.bar(x, table.loc["mean", metrics] * 100, width, label=encoder)
    for subject in pipe.subjects:
        ax.plot(x, table.loc[subject, metrics] * 100, "k.", ms=4)
ax.set_xticks(np.arange(len(metrics)) + width * (len(summaries) - 1) / 2, metrics, fontsize=8)
ax.set_ylabel("%")
ax.set_title("mean over subjects (bars) and each subject (dots)")
ax.legend()

# %% [markdown]
# With two simulated subjects and a few test concepts the intervals are wide: differences between encoders on the
# demo bundle say little. On THINGS-EEG (10 subjects, 200 test concepts) the same two calls give the comparison of
# ATM's Table 1, with the protocol written next to it.
#
# ## Next
#
# - Notebook 03 turns the EEG embedding into an image and a caption.
# - `python -m toolkit evaluate` prints the same tables from the command line; the Gradio app's *Retrieval* tab
#   (`python -m toolkit demo`) shows the top-k images of any trial.
