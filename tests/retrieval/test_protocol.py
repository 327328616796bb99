"""Protocol cards: validation, JSON round trip, rendering and the test-selection warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.retrieval import (
    TEST_SELECTION_WARNING,
    ProtocolCard,
    config_hash,
    evaluate_retrieval,
    render_summary,
    summarize_subjects,
)


def make_card(**changes) -> ProtocolCard:
    """A complete card for THINGS-EEG2-like test evaluation (tests change fields with keyword arguments)."""
    fields = {
        "dataset": "THINGS-EEG2",
        "data_variant": "NICE/ATM Preprocessed_data_250Hz",
        "subjects": ("sub-01",),
        "split": "test",
        "gallery": "test images, 200 concepts",
        "gallery_kind": "image",
        "n_channels": 63,
        "channels": "all 63",
        "time_window": (0.0, 1.0),
        "sfreq": 250.0,
        "repetitions_averaged": 80,
        "training_setting": "intra-subject",
        "backbone": "open_clip ViT-H-14 laion2b_s32b_b79k",
        "eeg_normalisation": "MVNN",
        "selection_rule": "validation split carved from training images; best validation loss",
        "encoder": "ATM-S",
        "config_hash": "0123456789ab",
        "training_seed": 7,
    }
    fields.update(changes)
    return ProtocolCard(**fields)


def test_complete_card_validates_and_defaults():
    card = make_card()
    assert card.validate() is card
    assert card.task == "retrieval"
    assert card.warning is None
    assert card.selected_on_test is False
    assert card.toolkit_version
    assert len(card.date) == 10  # ISO date


def test_lists_become_tuples_and_card_is_frozen():
    card = make_card(subjects=["sub-01", "sub-02"], time_window=[0.0, 0.5])
    assert card.subjects == ("sub-01", "sub-02")
    assert card.time_window == (0.0, 0.5)
    assert make_card(subjects="sub-03").subjects == ("sub-03",)
    with pytest.raises(AttributeError):
        card.encoder = "other"  # type: ignore[misc]
    hash(card)


@pytest.mark.parametrize(("kind", "task"), [("image", "retrieval"), ("text", "classification"),
                                            ("class_centre", "classification")])
def test_task_follows_gallery_kind(kind, task):
    assert make_card(gallery_kind=kind).task == task


def test_json_round_trip_is_exact():
    card = make_card(selected_on_test=True, notes="max over epochs, as in the paper", embedding_normalize=True,
                     gallery_size=200, distractor_seed=3, n_draws=100)
    text = card.to_json()
    assert json.loads(text)["subjects"] == ["sub-01"]
    back = ProtocolCard.from_json(text)
    assert back == card
    assert back.to_dict() == card.to_dict()


def test_save_and_load(tmp_path):
    card = make_card()
    path = card.save(tmp_path / "cards" / "card.json")
    assert ProtocolCard.load(path) == card
    assert sorted(p.name for p in path.parent.iterdir()) == ["card.json"]  # no temporary file left behind


def test_missing_essentials_are_listed():
    with pytest.raises(ToolkitError, match=r"missing essential field\(s\) backbone, selection_rule"):
        make_card(backbone="", selection_rule="  ").validate()
    with pytest.raises(ToolkitError, match="subjects"):
        make_card(subjects=()).validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gallery_kind": "images"}, "gallery_kind"),
        ({"training_setting": "loso"}, "training_setting"),
        ({"n_channels": 0}, "n_channels"),
        ({"n_channels": 63.0}, "n_channels"),
        ({"time_window": (1.0, 0.0)}, "time_window"),
        ({"time_window": (0.0, float("nan"))}, "time_window"),
        ({"sfreq": -250.0}, "sfreq"),
        ({"repetitions_averaged": 0}, "repetitions_averaged"),
        ({"selected_on_test": "no"}, "selected_on_test"),
        ({"training_seed": -1}, "training_seed"),
        ({"subjects": ("sub-01", "sub-01")}, "subjects"),
        ({"gallery_size": 1}, "gallery_size"),
        ({"embedding_normalize": "yes"}, "embedding_normalize"),
    ],
)
def test_bad_field_values(changes, message):
    with pytest.raises(ToolkitError, match=message):
        make_card(**changes).validate()


def test_from_dict_refuses_unknown_and_absent_fields():
    data = make_card().to_dict()
    with pytest.raises(ToolkitError, match=r"unknown protocol field.*'channel_count'"):
        ProtocolCard.from_dict({**data, "channel_count": 63})
    del data["backbone"]
    with pytest.raises(ToolkitError, match=r"lacks the protocol field.*backbone"):
        ProtocolCard.from_dict(data)
    with pytest.raises(ToolkitError, match="JSON object"):
        ProtocolCard.from_dict([1, 2])


def test_from_json_errors_name_the_source(tmp_path):
    with pytest.raises(ToolkitError, match="not valid JSON"):
        ProtocolCard.from_json("{not json")
    bad = tmp_path / "card.json"
    bad.write_text(json.dumps({**make_card().to_dict(), "sfreq": 0}))
    with pytest.raises(ToolkitError, match=r"card\.json.*sfreq"):
        ProtocolCard.load(bad)
    with pytest.raises(ToolkitError, match="does not exist"):
        ProtocolCard.load(tmp_path / "missing.json")


def test_rendering_without_warning():
    card = make_card()
    md, text = card.to_markdown(), card.to_text()
    for out in (md, text):
        assert "WARNING" not in out
        assert "open_clip ViT-H-14 laion2b_s32b_b79k" in out
        assert "0 to 1" in out
        assert "sub-01" in out
    assert md.splitlines()[0] == "| Protocol | Value |"
    assert "Training seed" in text and "7" in text


def test_rendering_with_test_selection_warning():
    card = make_card(selected_on_test=True, selection_rule="best test top-1 over epochs (as the ATM paper)")
    assert card.warning == TEST_SELECTION_WARNING
    md = card.to_markdown()
    assert md.startswith("> **⚠ WARNING: MODEL SELECTED ON THE TEST SET")
    text = card.to_text()
    assert text.splitlines()[0] == "!" * 100
    assert "!!! WARNING: MODEL SELECTED ON THE TEST SET" in text
    assert "YES (see warning)" in text


def test_warning_travels_with_results_and_summaries():
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((20, 8))
    queries = gallery + rng.standard_normal((20, 8))
    results = {
        sub: evaluate_retrieval(queries, gallery, normalize=True, ks=(2, 10), n_boot=50, n_draws=5,
                                protocol=make_card(subjects=(sub,), selected_on_test=True))
        for sub in ("sub-01", "sub-02")
    }
    out = results["sub-01"].to_dict()
    assert out["warning"] == TEST_SELECTION_WARNING
    assert out["protocol"]["selected_on_test"] is True
    assert "MODEL SELECTED ON THE TEST SET" in results["sub-01"].to_markdown()
    summary = summarize_subjects(results)
    assert summary.attrs["warning"] == TEST_SELECTION_WARNING
    assert "MODEL SELECTED ON THE TEST SET" in render_summary(summary, fmt="text")


def test_config_hash_is_stable_and_sensitive():
    a = config_hash({"lr": 3e-4, "layers": [1, 2], "name": "atm"})
    assert a == config_hash({"name": "atm", "layers": [1, 2], "lr": 3e-4})
    assert a != config_hash({"name": "atm", "layers": [1, 2], "lr": 1e-4})
    assert len(a) == 12 and int(a, 16) >= 0
    with pytest.raises(ToolkitError, match="not plain JSON"):
        config_hash({"bad": object()})
    with pytest.raises(ToolkitError, match="not plain JSON"):
        config_hash({"bad": float("nan")})
