"""Few-shot adaptation: an encoder trained on sub-01 adapted to sub-02 from a few trials validates better."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.data import open_store
from toolkit.training import AdaptConfig, AdaptedEncoder, adapt_encoder, train

from .helpers import weights_equal


@pytest.fixture(scope="module")
def trained(sim, tmp_path_factory):
    """ATM-S (tiny) trained on sub-01 for 8 epochs."""
    from toolkit.training import TrainConfig

    from .helpers import TINY_ATM

    cfg = TrainConfig(
        data=str(sim.store), subject="sub-01", image_embeds=str(sim.train_embeds), encoder_config=TINY_ATM,
        epochs=8, batch_size=16, lr=1e-3, val_fraction=0.2, loss_normalize=True, progress=False,
    )
    return train(cfg)


@pytest.fixture(scope="module")
def few_trials(sim):
    """A few labelled trials of the new subject: 24 of sub-02's 40 training images (2 repetitions each)."""
    trials = open_store(sim.store).load("sub-02", "train")
    keep = np.arange(24)
    from dataclasses import replace

    images = trials.images
    subset_images = replace(
        images,
        image_files=tuple(images.image_files[i] for i in keep),
        condition_concept=images.condition_concept[keep],
    )
    return replace(trials, data=np.asarray(trials.data[keep]), images=subset_images), sim.image_embeds[keep]


def _config(**changes):
    base = {"epochs": 6, "lr": 1e-3, "loss_normalize": True, "val_fraction": 0.25, "batch_size": 12}
    return AdaptConfig(**{**base, **changes})


def test_adaptation_beats_the_unadapted_model_on_the_new_subject(trained, few_trials):
    trials, embeds = few_trials
    result = adapt_encoder(
        trained.encoder, trials, image_embeds=embeds, logit_scale=trained.objective.logit_scale,
        config=_config(mode="last"),
    )
    report = result.report
    assert report["improved"] and report["best_epoch"] > 0
    assert report["after"]["val_loss"] < report["before"]["val_loss"]
    assert report["n_train_trials"] == 18 * 2 and report["n_val_trials"] == 6 * 2
    # only the projector was trained; the caller's encoder is untouched
    assert report["trainable_parameters"] == sum(p.numel() for p in trained.encoder.projector.parameters())
    assert weights_equal(trained.encoder.tsconv, result.encoder.tsconv)
    assert not weights_equal(trained.encoder.projector, result.encoder.projector)
    # the unadapted model on the same held-out trials really is worse
    from toolkit.training import evaluate_loss
    from toolkit.training.data import PairedTrials

    unit = embeds / np.linalg.norm(embeds, axis=1, keepdims=True)
    val = PairedTrials([trials], [-1], conditions=report["split"]["val_conditions"], image_embeds=unit, order_seed=0)
    before = evaluate_loss(trained.encoder, result.objective, val, batch_size=12, device="cpu")
    after = evaluate_loss(result.encoder, result.objective, val, batch_size=12, device="cpu")
    assert after < before


def test_adapter_mode_round_trips(trained, few_trials, tmp_path):
    trials, embeds = few_trials
    result = adapt_encoder(trained.encoder, trials, image_embeds=embeds, config=_config(mode="adapter", epochs=3))
    model = result.encoder
    assert isinstance(model, AdaptedEncoder) and result.report["trainable_parameters"] == 63 * 63
    model.save_pretrained(tmp_path / "adapted")
    loaded = AdaptedEncoder.from_pretrained(tmp_path / "adapted")
    eeg = torch.from_numpy(trials.data[:3, 0].copy())
    with torch.no_grad():
        assert torch.allclose(model(eeg), loaded(eeg), atol=1e-5)
    meta = tmp_path / "adapted" / "adapter.json"
    for text in ("[]", '{"adapter": "lora"}'):
        meta.write_text(text, encoding="utf-8")
        with pytest.raises(ToolkitError, match=r"adapter\.json' must be an object whose 'adapter'"):
            AdaptedEncoder.from_pretrained(tmp_path / "adapted")


def test_subject_mode_changes_only_the_new_subjects_token(trained, few_trials):
    trials, embeds = few_trials
    result = adapt_encoder(trained.encoder, trials, image_embeds=embeds,
                           config=_config(mode="subject", subject_id=2, epochs=2))
    before, after = trained.encoder.subject_embedding.weight, result.encoder.subject_embedding.weight
    assert torch.equal(before[[0, 1]], after[[0, 1]])
    assert result.report["trainable_parameters"] == before.numel()
    assert weights_equal(trained.encoder.projector, result.encoder.projector)


def test_adaptation_bad_input(trained, few_trials):
    trials, embeds = few_trials
    with pytest.raises(ToolkitError, match="expects 63 x 250"):
        adapt_encoder(trained.encoder, trials.crop(0.0, 0.5), image_embeds=embeds)
    with pytest.raises(ToolkitError, match="needs image_embeds"):
        adapt_encoder(trained.encoder, trials)
    with pytest.raises(ToolkitError, match="one embedding per condition"):
        adapt_encoder(trained.encoder, trials, image_embeds=embeds[:5])
    with pytest.raises(ToolkitError, match="embedding dim mismatch"):
        adapt_encoder(trained.encoder, trials, image_embeds=embeds[:, :8])
    with pytest.raises(ToolkitError, match="known modes: last, subject, adapter, all"):
        AdaptConfig(mode="lora")
    with pytest.raises(ToolkitError, match="val_fraction"):
        AdaptConfig(val_fraction=0.0)
    with pytest.raises(ToolkitError, match="outside the encoder's subject table"):
        adapt_encoder(trained.encoder, trials, image_embeds=embeds, config=_config(mode="subject", subject_id=7))
