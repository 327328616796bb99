"""The trainer: determinism, resume, validation-only selection, subject settings, objectives, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.encoders import ATMSEncoder, EEGEncoder, create_encoder
from toolkit.training import TrainConfig, Trainer, train, train_loso
from toolkit.training.checkpoint import load_checkpoint

from .helpers import TINY_ATM, interrupted_and_straight, weights_equal

_TIMING = {"train_seconds", "trials_per_s"}


def _strip(history):
    return [{k: v for k, v in h.items() if k not in _TIMING} for h in history]


# -- determinism and resume -------------------------------------------------------------------------------------
def test_two_runs_are_bit_identical(make_config):
    a = train(make_config(epochs=2))
    b = train(make_config(epochs=2))
    assert weights_equal(a.encoder, b.encoder)
    assert _strip(a.history) == _strip(b.history)
    c = train(make_config(epochs=2, seed=1))
    assert not weights_equal(a.encoder, c.encoder)


def test_resume_after_interrupt_is_identical_to_an_uninterrupted_run(make_config, tmp_path):
    cfg = make_config(epochs=3, schedule="cosine", warmup_steps=2, grad_clip=1.0)
    straight, resumed, run = interrupted_and_straight(cfg, tmp_path)

    assert len(resumed.history) == 3
    assert _strip(resumed.history) == _strip(straight.history)
    last_a, last_b = (EEGEncoder.from_pretrained(d / "last") for d in (tmp_path / "straight", run))
    assert weights_equal(last_a, last_b)
    assert weights_equal(straight.encoder, resumed.encoder)
    a, b = (load_checkpoint(d / "last")[0] for d in (tmp_path / "straight", run))
    assert torch.equal(a["objective"]["logit_scale.logit_scale"], b["objective"]["logit_scale.logit_scale"])
    assert straight.test.to_dict()["kway"] == resumed.test.to_dict()["kway"]


def test_run_directory_layout(make_config, tmp_path):
    run = tmp_path / "run"
    result = train(make_config(out=str(run)))
    for name in ("config.json", "history.json", "results.json", "best/model.safetensors", "best/config.json",
                 "best/trainer_state.pt", "last/checkpoint.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["target_normalize"] is True and config["train"]["val_unit"] == "concepts"
    assert config["encoder"]["config"]["embed_dim"] == 16 and config["encoder"]["config"]["n_chans"] == 63
    assert config["split"] == result.split.to_dict()
    results = json.loads((run / "results.json").read_text())
    card = results["test"]["protocol"]
    assert card["selected_on_test"] is False and results["selection"]["selected_on_test"] is False
    assert "validation split carved from training data only" in card["selection_rule"]
    assert card["notes"].startswith(f"selected epoch {result.best_epoch};")
    assert card["dataset"].startswith("simulated") and card["training_setting"] == "intra-subject"
    assert ", ".join(map(str, result.split.val_concepts)) in card["notes"]  # the split ids travel with the card
    assert results["split"]["val_conditions"] == list(result.split.val_conditions)
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 2
    _, meta = load_checkpoint(run / "best")
    assert meta["split"] == result.split.to_dict()
    assert EEGEncoder.from_pretrained(run / "best").config.embed_dim == 16


# -- selection on validation only ---------------------------------------------------------------------------------
class _TestProbe:
    """Per-epoch test loss, computed by the *test*, never by the trainer (to know the best-on-test epoch)."""

    def __init__(self):
        self.losses, self.snapshots = [], []

    def __call__(self, trainer, record):
        from toolkit.training import evaluate_loss

        test = trainer.data.test_dataset()
        self.losses.append(evaluate_loss(trainer.encoder, trainer.objective, test, batch_size=8, device="cpu"))
        self.snapshots.append({k: v.clone() for k, v in trainer.encoder.state_dict().items()})


def test_selection_uses_validation_not_test(make_config, monkeypatch):
    import toolkit.training.trainer as trainer_module

    cfg = make_config(epochs=4, lr=3e-3)
    probe = _TestProbe()
    train(cfg, callbacks=[probe])
    best_on_test = int(np.argmin(probe.losses)) + 1
    worst_on_test = int(np.argmax(probe.losses)) + 1
    assert best_on_test != worst_on_test

    # Make validation prefer the epoch that is worst on test (runs are deterministic, so the epochs repeat).
    real = trainer_module._validate

    def scripted(trainer):
        out = real(trainer)
        out["val_loss"] = 0.0 if len(trainer.history) + 1 == worst_on_test else 1.0 + len(trainer.history)
        return out

    monkeypatch.setattr(trainer_module, "_validate", scripted)
    probe2 = _TestProbe()
    result = train(cfg, callbacks=[probe2])
    assert probe2.losses == probe.losses
    assert result.best_epoch == worst_on_test != best_on_test
    assert weights_equal(result.encoder.state_dict(), probe2.snapshots[worst_on_test - 1])
    assert result.results["selection"]["selected_on_test"] is False


def test_val_top1_selection_picks_the_highest(make_config):
    result = train(make_config(epochs=3, selection="val_top1"))
    tops = [h["val_top1"] for h in result.history]
    assert result.best_epoch == tops.index(max(tops)) + 1
    assert result.best_metric == max(tops)


def test_without_validation_the_last_epoch_is_kept(make_config):
    result = train(make_config(val_fraction=0.0, epochs=2))
    assert result.best_epoch == 2 and result.history[0]["val_loss"] is None
    assert "no validation split" in result.test.protocol.selection_rule


# -- subject settings ---------------------------------------------------------------------------------------------
def _record_subject_ids(monkeypatch):
    seen = []
    original = ATMSEncoder._forward

    def spy(self, eeg, subject_ids):
        if self.training:
            seen.append(None if subject_ids is None else sorted(set(subject_ids.tolist())))
        return original(self, eeg, subject_ids)

    monkeypatch.setattr(ATMSEncoder, "_forward", spy)
    return seen


def test_joint_passes_subject_ids(make_config, monkeypatch):
    seen = _record_subject_ids(monkeypatch)
    train(make_config(setting="joint", subject="sub-02", epochs=1))
    assert seen and all(ids is not None for ids in seen)
    assert set().union(*map(set, seen)) == {1, 2}


def test_intra_passes_its_subject_and_loso_none(make_config, monkeypatch):
    seen = _record_subject_ids(monkeypatch)
    train(make_config(epochs=1))
    assert seen and all(ids == [1] for ids in seen)
    seen.clear()
    train(make_config(setting="loso", subject="sub-02", epochs=1))
    assert seen and all(ids is None for ids in seen)


def test_loso_reinitialises_the_encoder_per_fold(make_config, tmp_path):
    cfg = make_config(setting="loso", epochs=1, out=str(tmp_path / "loso"))
    folds = train_loso(cfg)
    assert list(folds) == ["sub-01", "sub-02"]
    assert folds["sub-01"].results["subjects"] == {"train": ["sub-02"], "test": "sub-01"}
    assert folds["sub-02"].results["subjects"] == {"train": ["sub-01"], "test": "sub-02"}
    torch.manual_seed(cfg.seed)
    fresh = create_encoder("atm-s", **TINY_ATM, embed_dim=16)
    from toolkit.training.trainer import _state_digest

    fresh_digest = _state_digest(fresh)
    # each fold starts from the seed's fresh initialisation, never from the previous fold's trained weights
    assert folds["sub-01"].results["init_digest"] == folds["sub-02"].results["init_digest"] == fresh_digest
    assert _state_digest(folds["sub-01"].encoder) != fresh_digest
    assert (tmp_path / "loso" / "sub-02" / "results.json").is_file()
    summary = json.loads((tmp_path / "loso" / "summary.json").read_text())
    assert summary["n_subjects"] == 2 and summary["protocol"]["training_setting"] == "leave-one-subject-out"


# -- objectives ---------------------------------------------------------------------------------------------------
def test_atm_mix_recon_mix_and_mse_train(make_config):
    for objective in ("atm-mix", "recon-mix", "mse"):
        result = train(make_config(objective=objective, epochs=1, loss_normalize=False))
        assert np.isfinite(result.history[0]["train_loss"]) and result.test is not None
        assert result.config.target_normalize is (objective == "atm-mix")


def test_classification_objective(make_config):
    result = train(make_config(objective="classification", image_embeds=None, test_image_embeds=None, epochs=2))
    assert result.config.val_unit == "images"
    assert 0.0 <= result.history[-1]["val_top1"] <= 1.0
    assert result.test is None and "training classes" in result.results["test_skipped"]


def test_model_objective_uses_the_models_own_loss(make_config):
    class MaskedATMS(ATMSEncoder):
        calls = 0

        def training_loss(self, batch):
            type(self).calls += 1
            eeg = batch["eeg"]
            keep = (torch.arange(eeg.shape[1]) % 2 == 0).to(eeg.dtype)[None, :, None]
            return ((self(eeg * keep, batch["subject_ids"]) - self(eeg, batch["subject_ids"]).detach()) ** 2).mean()

    torch.manual_seed(0)
    encoder = MaskedATMS(create_encoder("atm-s", **TINY_ATM, embed_dim=16).config)
    result = train(make_config(objective="model", epochs=2), encoder=encoder)
    assert MaskedATMS.calls >= 2 * 4 and result.history[-1]["val_loss"] is not None


def test_cosine_schedule_warms_up_and_decays(make_config):
    result = train(make_config(epochs=3, schedule="cosine", warmup_steps=3, min_lr=1e-5))
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] < 1e-3 and lrs[-1] == pytest.approx(1e-5, rel=1e-6)


def test_accelerate_cpu_path_matches_the_plain_path(make_config):
    accelerate = pytest.importorskip("accelerate")
    plain = train(make_config(epochs=2))
    wrapped = train(make_config(epochs=2), accelerator=accelerate.Accelerator(cpu=True))
    assert weights_equal(plain.encoder, wrapped.encoder)
    assert _strip(plain.history) == _strip(wrapped.history)


# -- bad input ----------------------------------------------------------------------------------------------------
def test_resume_with_another_configuration_names_the_difference(make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(out=str(run), epochs=1))
    with pytest.raises(ToolkitError, match=r"lr \(0\.001 vs 0\.002\).*seed \(0 vs 5\)"):
        Trainer(make_config(out=str(run), resume=True, lr=2e-3, seed=5))
    with pytest.raises(ToolkitError, match="already holds a training run"):
        Trainer(make_config(out=str(run)))
    with pytest.raises(ToolkitError, match="no 'last' checkpoint"):
        Trainer(make_config(out=str(tmp_path / "empty"), resume=True))
    # more epochs on a constant learning rate is a continuation, not another configuration
    assert len(train(make_config(out=str(run), resume=True, epochs=2)).history) == 2


def test_embedding_dim_not_matching_the_encoder(make_config, tmp_path):
    with pytest.raises(ToolkitError, match="embed_dim=32 but the embeddings give 16"):
        Trainer(make_config(encoder_config={**TINY_ATM, "embed_dim": 32}))
    other = create_encoder("atm-s", **TINY_ATM, embed_dim=8)
    other.save_pretrained(tmp_path / "enc8")
    with pytest.raises(ToolkitError, match="embedding dim does not match"):
        Trainer(make_config(init_from=str(tmp_path / "enc8")))
    with pytest.raises(ToolkitError, match="n_chans=32 but the data give 63"):
        Trainer(make_config(encoder_config={**TINY_ATM, "n_chans": 32}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": "contrastive"}, "known values: clip, atm-mix, recon-mix, mse, classification, model"),
        ({"setting": "cross"}, "known values: intra, loso, joint"),
        ({"val_fraction": 1.5}, "val_fraction must be a number >= 0.0 and <= 0.9"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"objective": "classification", "val_unit": "concepts"}, "val_unit='images'"),
        ({"resume": True, "out": None}, "needs the run directory"),
    ],
)
def test_bad_configuration_values(changes, message):
    with pytest.raises(ToolkitError, match=message):
        TrainConfig(**changes)


def test_unknown_config_fields_are_listed():
    with pytest.raises(ToolkitError, match=r"unknown training field.*batchsize.*valid fields are"):
        TrainConfig.from_dict({"batchsize": 3})


def test_missing_embeddings_for_an_embedding_objective(make_config, sim):
    with pytest.raises(ToolkitError, match="needs image embeddings"):
        Trainer(make_config(image_embeds=None, test_image_embeds=None))
    with pytest.raises(ToolkitError, match="needs concept text embeddings"):
        Trainer(make_config(objective="atm-mix", image_embeds=str(sim.train_npy)))
    with pytest.raises(ToolkitError, match="holds 8 embeddings but the data have 40 conditions"):
        Trainer(make_config(image_embeds=str(sim.test_embeds)))


# -- embeddings from an embedder ------------------------------------------------------------------------------------
class _PixelEmbedder:
    """A tiny offline :class:`~toolkit.embeddings.Embedder`: colour statistics of the image, hashed texts."""

    embed_dim = 6

    @property
    def identity(self):
        return {"backend": "test", "model": "pixel-stats", "weights": "none"}

    def encode_images(self, images, *, normalize, batch_size=32):
        from toolkit.embeddings import l2_normalize, load_image

        rows = []
        for image in images:
            px = np.asarray(load_image(image), dtype=np.float32).reshape(-1, 3) / 255.0
            rows.append(np.concatenate([px.mean(0), px.std(0)]) + 0.1)
        out = np.asarray(rows, dtype=np.float32)
        return l2_normalize(out) if normalize else out

    def encode_texts(self, texts, *, normalize, batch_size=256):
        import hashlib

        from toolkit.embeddings import l2_normalize

        out = np.asarray([list(hashlib.sha256(t.encode()).digest()[:6]) for t in texts], dtype=np.float32) + 1.0
        return l2_normalize(out) if normalize else out


def test_embeddings_from_an_embedder(make_config):
    result = train(
        make_config(image_embeds=None, test_image_embeds=None, objective="atm-mix", epochs=1),
        embedder=_PixelEmbedder(),
    )
    assert result.encoder.config.embed_dim == 6
    assert result.test is not None and result.test.protocol.backbone == "test pixel-stats none"


def test_dataloader_workers_read_the_memory_map_identically(make_config):
    plain = train(make_config(in_memory="no", epochs=1))
    workers = train(make_config(in_memory="no", epochs=1, num_workers=2))
    assert weights_equal(plain.encoder, workers.encoder)
