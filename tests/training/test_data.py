"""Paired datasets, the validation split (training data only, whole concepts), subject settings, embedding files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.data import ImageSet, TrialSet, open_store
from toolkit.training import (
    UNKNOWN_SUBJECT,
    PairedTrials,
    build_run_data,
    load_embedding_file,
    make_validation_split,
    subject_numbers,
)


def _random_trials(n_concepts: int = 6, per_concept: int = 3, n_reps: int = 2, seed: int = 0) -> TrialSet:
    rng = np.random.default_rng(seed)
    n_cond = n_concepts * per_concept
    folders = tuple(f"{i:05d}_c{i}" for i in range(1, n_concepts + 1))
    images = ImageSet(
        root=None,
        concept_folders=folders,
        image_files=tuple(f"{folders[c // per_concept]}/img{c}.jpg" for c in range(n_cond)),
        condition_concept=np.repeat(np.arange(n_concepts), per_concept),
    )
    return TrialSet(
        data=rng.standard_normal((n_cond, n_reps, 4, 10)).astype(np.float32),
        ch_names=["O1", "Oz", "O2", "Pz"],
        sfreq=100.0,
        times=np.arange(10) / 100.0,
        subject="sub-03",
        split="train",
        images=images,
    )


# -- the validation split ---------------------------------------------------------------------------------------
def test_concept_split_holds_out_whole_concepts():
    trials = _random_trials(n_concepts=10, per_concept=4)
    split = make_validation_split(trials, fraction=0.3, unit="concepts", seed=7)
    concepts = trials.images.condition_concept
    assert len(split.val_concepts) == 3
    held = np.asarray(split.val_conditions)
    # every condition of a held-out concept is held out, and nothing else
    assert set(held) == set(np.flatnonzero(np.isin(concepts, split.val_concepts)))
    assert not set(concepts[split.train_conditions]) & set(split.val_concepts)
    assert len(held) + len(split.train_conditions) == trials.n_conditions


def test_split_is_seeded_and_recorded():
    trials = _random_trials(n_concepts=12)
    a = make_validation_split(trials, fraction=0.25, seed=1)
    assert a == make_validation_split(trials, fraction=0.25, seed=1)
    assert a.val_concepts != make_validation_split(trials, fraction=0.25, seed=2).val_concepts
    assert type(a).from_dict(a.to_dict()) == a
    images = make_validation_split(trials, fraction=0.25, unit="images", seed=1)
    assert len(images.val_conditions) == 9 and images.unit == "images"
    assert make_validation_split(trials, fraction=0.0).n_val == 0


def test_split_refuses_test_data_and_bad_fractions():
    trials = _random_trials()
    with pytest.raises(ToolkitError, match="training data only"):
        make_validation_split(TrialSet(**{**trials.__dict__, "split": "test"}), fraction=0.2)
    for bad in (-0.1, 0.95, 1.0, True):
        with pytest.raises(ToolkitError, match="val_fraction"):
            make_validation_split(trials, fraction=bad)
    one_concept = _random_trials(n_concepts=1, per_concept=3)
    with pytest.raises(ToolkitError, match="hold out all"):
        make_validation_split(one_concept, fraction=0.1)


# -- the paired dataset -----------------------------------------------------------------------------------------
def test_every_repetition_is_a_sample():
    trials = _random_trials()
    image = np.random.default_rng(1).standard_normal((trials.n_conditions, 5)).astype(np.float32)
    text = np.random.default_rng(2).standard_normal((6, 5)).astype(np.float32)
    ds = PairedTrials([trials], [3], image_embeds=image, text_embeds=text)
    assert len(ds) == trials.n_conditions * trials.n_repetitions
    for i in (0, 1, 7, len(ds) - 1):
        eeg, img, txt, label, sid = ds[i]
        c, r = divmod(i, trials.n_repetitions)
        assert eeg.dtype == torch.float32 and eeg.shape == (4, 10)
        assert np.array_equal(eeg.numpy(), trials.trial(c, r))
        assert np.array_equal(img.numpy(), image[c])
        assert np.array_equal(txt.numpy(), text[trials.images.condition_concept[c]])
        assert int(label) == trials.labels()[c] and int(sid) == 3
    batch = ds.__getitems__([5, 0, 9])
    assert all(torch.equal(batch.eeg[k], ds[i].eeg) for k, i in enumerate([5, 0, 9]))


def test_average_gives_condition_means_and_missing_embeddings_are_empty():
    trials = _random_trials()
    ds = PairedTrials([trials], [UNKNOWN_SUBJECT], conditions=[2, 5], average=True)
    assert len(ds) == 2
    assert np.allclose(ds[1].eeg.numpy(), trials.condition_average(5), atol=1e-6)
    assert ds[0].image_embed.shape == (0,) and int(ds[0].subject_id) == UNKNOWN_SUBJECT


def test_memory_mapped_reads_match_in_memory_and_pickle_small(sim):
    trials = open_store(sim.store).load("sub-01", "train")
    assert isinstance(trials.data, np.memmap)
    lazy = PairedTrials([trials], [1], conditions=range(0, 40, 3), in_memory="no")
    eager = PairedTrials([trials], [1], conditions=range(0, 40, 3), in_memory="yes")
    assert not lazy.in_memory and eager.in_memory
    idx = [11, 0, 5, 4]
    assert torch.equal(lazy.__getitems__(idx).eeg, eager.__getitems__(idx).eeg)
    # a DataLoader worker receives the memory map as its file name, not as its bytes
    blob = pickle.dumps(lazy)
    assert len(blob) < trials.data.nbytes / 4
    clone = pickle.loads(blob)
    assert torch.equal(clone.__getitems__(idx).eeg, eager.__getitems__(idx).eeg)


def test_subject_numbers_follow_atm():
    assert subject_numbers(["sub-01", "sub-08", "sub-10"]) == {"sub-01": 1, "sub-08": 8, "sub-10": 10}
    assert subject_numbers(["b", "a"]) == {"a": 1, "b": 2}


# -- run data: settings and the split ---------------------------------------------------------------------------
def test_intra_run_data_validates_on_training_concepts_only(make_config):
    data = build_run_data(make_config(val_fraction=0.25))
    split = data.split
    assert split.unit == "concepts" and len(split.val_concepts) == 5
    # training, validation loss and validation retrieval all read the training split only
    for ds in (data.train, data.val, data.val_queries):
        assert set(ds.source_splits) == {"train"} and ds.subject_labels == ["sub-01"]
    assert set(data.val.sample_conditions) == set(split.val_conditions)
    assert not set(data.train.sample_conditions) & set(split.val_conditions)
    concept_of = data.train.concept_of
    assert not set(concept_of[data.train.sample_conditions]) & set(split.val_concepts)
    assert data.train.subject_ids == [1]
    assert len(data.train) == (40 - len(split.val_conditions)) * 2
    test = data.test_dataset()
    assert test.source_splits == ["test"] and len(test) == 8  # 8 test images, repetitions averaged


def test_loso_trains_on_the_other_subjects_as_unknown(make_config):
    data = build_run_data(make_config(setting="loso", subject="sub-02"))
    assert data.train_subjects == ["sub-01"] and data.test_subject == "sub-02"
    assert data.train.subject_labels == ["sub-01"] and data.train.subject_ids == [UNKNOWN_SUBJECT]
    assert data.test_trials.subject == "sub-02" and data.test_dataset().subject_ids == [UNKNOWN_SUBJECT]


def test_joint_uses_every_subject_with_its_id(make_config):
    data = build_run_data(make_config(setting="joint", subject="sub-02"))
    assert data.train.subject_labels == ["sub-01", "sub-02"] and data.train.subject_ids == [1, 2]
    assert data.test_dataset().subject_ids == [2]


# -- embedding files --------------------------------------------------------------------------------------------
def test_embedding_files(sim):
    table = load_embedding_file(sim.train_embeds)
    assert table.embeds.shape == (40, 16) and not table.normalized and "ground-truth-features" in table.backbone
    assert load_embedding_file(sim.train_normalized).normalized
    npy = load_embedding_file(sim.train_npy)
    assert not npy.normalized and np.array_equal(npy.embeds, sim.image_embeds)
    texts = load_embedding_file(sim.train_embeds, key="text_embeds", what="--text-embeds")
    assert texts.embeds.shape == (20, 16)
    with pytest.raises(ToolkitError, match="holds no 'text_embeds'"):
        load_embedding_file(sim.test_embeds, key="text_embeds")


def test_embeddings_not_matching_the_conditions(make_config, sim, tmp_path):
    from toolkit.embeddings import save_embeddings

    np.save(tmp_path / "short.npy", sim.image_embeds[:30])
    with pytest.raises(ToolkitError, match="holds 30 embeddings but the data have 40 conditions"):
        build_run_data(make_config(image_embeds=str(tmp_path / "short.npy")))
    meta = {"normalize": False, "image_files": list(reversed(load_embedding_file(sim.train_embeds).metadata[
        "image_files"]))}
    save_embeddings(tmp_path / "shuffled.safetensors", {"image_embeds": sim.image_embeds}, meta)
    with pytest.raises(ToolkitError, match="another image set or order"):
        build_run_data(make_config(image_embeds=str(tmp_path / "shuffled.safetensors")))


def test_raw_targets_cannot_come_from_normalised_files(make_config, sim):
    with pytest.raises(ToolkitError, match="L2-normalised"):
        build_run_data(make_config(objective="recon-mix", image_embeds=str(sim.train_normalized)))
    data = build_run_data(make_config(objective="recon-mix"))
    assert np.array_equal(data.image_embeds, sim.image_embeds)  # raw, untouched
    data = build_run_data(make_config(objective="clip"))
    assert np.allclose(np.linalg.norm(data.image_embeds, axis=1), 1.0, atol=1e-5)


def test_empty_training_set_after_the_split(make_config):
    with pytest.raises(ToolkitError, match="fewer than one batch"):
        build_run_data(make_config(val_fraction=0.9, batch_size=64))


def test_a_split_leaving_no_training_data_is_refused(tmp_path):
    from toolkit.data import write_store
    from toolkit.training import TrainConfig

    write_store(tmp_path / "store", [_random_trials(n_concepts=1, per_concept=3)])
    config = TrainConfig(data=str(tmp_path / "store"), subject="sub-03", objective="classification", val_fraction=0.9)
    with pytest.raises(ToolkitError, match="would hold out all 3 training images; lower --val-fraction"):
        build_run_data(config)


def test_joint_subject_ids_must_fit_the_subject_table(make_config):
    from toolkit.training import Trainer

    with pytest.raises(ToolkitError, match="n_subjects to at least 3"):
        Trainer(make_config(setting="joint", encoder_config={**make_config().encoder_config, "n_subjects": 2}))
