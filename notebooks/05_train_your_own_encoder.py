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
# # 05 · Training your own encoder
#
# The encoders of notebooks 02–04 came with the bundle. This notebook trains one: a `TrainConfig` says everything
# about a run (data, encoder, objective, optimisation, validation split, seed), `train` runs it and returns the
# **selected** checkpoint, its history and one test evaluation with its protocol card. Then the encoder is saved,
# loaded back, and adapted with a few trials to a subject it has not seen.
#
# **Data.** `DATA = "demo"` trains on the demo bundle's store with its image embeddings (built offline on first use).
# For THINGS-EEG, set `DATA` to a store made by `python -m toolkit data convert ROOT STORE` and the two embedding
# files to those written by `python -m toolkit embed` (OpenCLIP ViT-H-14 of the training and test images); the rest
# of the notebook is unchanged. A real run wants a GPU (`DEVICE = "cuda"`) and ~40 epochs.

# %% tags=["parameters"]
DATA = "demo"  # "demo", or a memory-mapped store folder (python -m toolkit data convert ROOT STORE)
IMAGE_EMBEDS = None  # with a real store: training-image embeddings file (python -m toolkit embed)
TEST_IMAGE_EMBEDS = None  # with a real store: test-image embeddings file
SUBJECT = "sub-01"  # subject to train on
NEW_SUBJECT = "sub-02"  # subject for the few-shot adaptation (None: skip it)
PRESET = "demo"  # simulator preset of the demo bundle ("tiny" builds in seconds); ignored for a real store
ENCODER = "nice"  # a registered encoder (see the list below); NICE is the smallest
EPOCHS = 6  # training epochs (the demo is small; THINGS-EEG runs use ~40)
DEVICE = "cpu"  # "cpu", "cuda" or "mps"
SEED = 0

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from toolkit.encoders import EEGEncoder, list_encoders
from toolkit.pipeline import load_pipeline
from toolkit.retrieval import evaluate_retrieval
from toolkit.training import AdaptConfig, TrainConfig, adapt_encoder, train

# %% [markdown]
# ## 1 · Data and embeddings
#
# An encoder is trained to map each EEG trial onto the embedding of the image shown in it, so a run needs the trials
# (a store) and one embedding per training image; the test embeddings are the gallery of the final evaluation.

# %%
if DATA == "demo":
    pipe = load_pipeline("demo", preset=PRESET)
    embeddings = pipe.manifest["components"]["embeddings"]
    store = str(pipe.path / pipe.manifest["components"]["dataset"]["store"])
    image_embeds = str(pipe.path / embeddings["train_image_norm"])
    test_image_embeds = str(pipe.path / embeddings["test_image_norm"])
else:
    store, image_embeds, test_image_embeds = str(Path(DATA).expanduser()), IMAGE_EMBEDS, TEST_IMAGE_EMBEDS
print("registered encoders:", ", ".join(list_encoders()))

# %% [markdown]
# ## 2 · The configuration
#
# The fields that matter most:
#
# - `objective`: `"clip"` (contrastive: each trial against the other images of its batch), `"atm-mix"` (ATM's
#   CLIP loss plus a small text term), `"mse"`, ...;
# - `val_fraction` and `selection`: a fraction of the **training concepts** is held out and the checkpoint with the
#   best validation score is kept. The test split plays no part in training or selection; it is evaluated once, at
#   the end;
# - `seed`: initialisation, shuffling and the validation split, so a run is reproducible.
#
# A temporary run directory keeps this notebook from leaving files behind; in your own work, give `out` a folder
# you keep (`python -m toolkit train --config run.json` runs the same configuration from the command line).

# %%
workdir = tempfile.TemporaryDirectory()
config = TrainConfig(
    data=store, subject=SUBJECT, setting="intra", encoder=ENCODER, image_embeds=image_embeds,
    test_image_embeds=test_image_embeds, objective="clip", epochs=EPOCHS, batch_size=16, lr=1e-3,
    val_fraction=0.2, selection="val_top1", seed=SEED, device=DEVICE, out=str(Path(workdir.name) / "run"),
    progress=False,
)  # fmt: skip
pd.Series({k: v for k, v in config.to_dict().items() if v is not None}, dtype=object).head(30)

# %% [markdown]
# ## 3 · Train

# %%
result = train(config)
history = pd.DataFrame(result.history)
print(f"selected epoch {result.best_epoch} of {len(history)} (validation top-1 {result.best_metric:.3f})")
print("run directory:", sorted(p.name for p in result.run_dir.iterdir()))
history.round(4).head(EPOCHS)

# %% [markdown]
# The training loss falls steadily; the validation scores (held-out training concepts) say when the model stops
# generalising. The dashed line marks the selected epoch. With the `tiny` preset the validation split holds only a
# few concepts, so its top-1 moves in large steps and may peak at the first epoch: a small validation set is a noisy
# judge (`selection="val_loss"` is smoother), but it is still the only honest one.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
loss_cols = [c for c in history.columns if c.endswith("loss")]
history.plot(x="epoch", y=loss_cols, ax=axes[0], marker="o", title="losses")
val_cols = [c for c in history.columns if c.startswith("val_") and not c.endswith("loss")]
history.plot(x="epoch", y=val_cols, ax=axes[1], marker="o", title="validation (held-out training concepts)")
for ax in axes:
    ax.axvline(result.best_epoch, color="k", ls="--", lw=0.8)
fig.tight_layout()

# %% [markdown]
# ## 4 · The test evaluation and its protocol card
#
# `train` evaluated the selected checkpoint once on the test split (repetitions averaged). The card records the
# selection rule, so the number cannot be mistaken for a test-selected one:

# %%
display(Markdown(result.test.to_markdown()))
print("selected on test:", result.test.protocol.selected_on_test)

# %% [markdown]
# ## 5 · Save and load
#
# `save_pretrained` writes `config.json` and `model.safetensors` (weights only, no code: loading never runs anything
# from the file); `from_pretrained` rebuilds the same encoder.

# %%
saved = result.encoder.save_pretrained(Path(workdir.name) / "my-encoder")
loaded = EEGEncoder.from_pretrained(saved).eval()
print(sorted(p.name for p in Path(saved).iterdir()))
test_trials = pipe.trials(SUBJECT, "test", average=True) if DATA == "demo" else None
if test_trials is not None:
    x = np.asarray(test_trials.data[:, 0], dtype=np.float32)
    same = np.allclose(result.encoder.encode(x, normalize=True), loaded.encode(x, normalize=True), atol=1e-6)
    print("the loaded encoder gives the same embeddings:", same)

# %% [markdown]
# ## 6 · Few-shot adaptation to another subject
#
# EEG differs between people; an encoder trained on one subject transfers poorly to another. `adapt_encoder`
# fine-tunes a *copy* on a few labelled trials of the new subject: here only the last module (`mode="last"`), on a
# part of the new subject's training trials, with a validation part of them choosing the epoch. We compare test
# retrieval on the new subject before and after (the test concepts are never used for adaptation). On the `tiny`
# preset (a few dozen trials, a model trained for seconds) the difference is within noise; the section shows the
# calls. It runs on the demo bundle only (with a real store, pass the new subject's `TrialSet` and the embeddings of
# its training images in the same way).

# %%
if DATA == "demo" and NEW_SUBJECT is not None:
    new_train = pipe.trials(NEW_SUBJECT, "train")
    new_test = pipe.trials(NEW_SUBJECT, "test", average=True)
    train_embeds = pipe.vision.embedder.encode_images(
        [new_train.images.image_path(c) for c in range(new_train.n_conditions)], normalize=True
    )
    adapted = adapt_encoder(result.encoder, new_train, image_embeds=train_embeds,
                            config=AdaptConfig(mode="last", epochs=5, seed=SEED, progress=False))  # fmt: skip
    gallery, _ = pipe.gallery("image")
    card = result.test.protocol.replace(subjects=(NEW_SUBJECT,), notes="adapted from " + SUBJECT)
    xs = np.asarray(new_test.data[:, 0], dtype=np.float32)
    rows = {}
    for label, model in ((f"before (trained on {SUBJECT})", result.encoder), ("after adaptation", adapted.encoder)):
        emb = model.encode(xs, normalize=True)
        res = evaluate_retrieval(emb, gallery, normalize=True, protocol=card.replace(embedding_normalize=None,
                                 gallery_size=None, distractor_seed=None, n_draws=None), seed=SEED)  # fmt: skip
        rows[label] = {s.label: s.exact for s in res.kway} | {"full top-1": res.full(1).value, "MRR": res.mrr}
    comparison = pd.DataFrame(rows).T
    display(comparison.round(3))
    fig, ax = plt.subplots(figsize=(6, 3))
    (comparison * 100).T.plot.bar(ax=ax, rot=0)
    ax.set(ylabel="%", title=f"{NEW_SUBJECT}: test retrieval before and after few-shot adaptation")
    print({k: adapted.report.get(k) for k in ("mode", "trainable_parameters", "best_epoch", "before", "after")})

# %%
workdir.cleanup()

# %% [markdown]
# ## Next
#
# - Train several subjects jointly (`setting="joint"`) or leave one subject out (`setting="loso"`, `train_loso`).
# - Evaluate your encoder as in notebook 02 (`evaluate_retrieval` with its card) and explain it as in notebook 04.
