"""The prior, low-level and projector tasks through the common trainer (tiny shapes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.cli import main
from toolkit.embeddings import l2_normalize, save_embeddings
from toolkit.training import TrainConfig, WarmupCosine, build_task_data, save_training_arrays, train

from .helpers import interrupted_and_straight, weights_equal

_TIMING = {"train_seconds", "trials_per_s"}
PRIOR_MODEL = {"hidden_dims": [16, 8], "time_embed_dim": 8}
LOW_LEVEL_MODEL = {"time_dim": 4, "hidden_channels": [8, 4], "head_channels": []}


def _strip(history):
    return [{k: v for k, v in h.items() if k not in _TIMING} for h in history]


@dataclass(frozen=True)
class Pairs:
    inputs: Path  # eeg-embedding rows with conditions and concepts
    image_embeds: Path  # raw per-condition targets (toolkit embedding file)
    cond: np.ndarray
    concepts: np.ndarray
    embeds: np.ndarray
    targets: np.ndarray


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Pairs:
    """40 images of 20 concepts, 4 'trials' each: 6-d EEG embeddings → 8-d raw image embeddings."""
    from toolkit.prior import default_scheduler

    default_scheduler()  # import diffusers once, here, rather than inside the first test
    base = tmp_path_factory.mktemp("prior-pairs")
    rng = np.random.default_rng(0)
    targets = rng.standard_normal((40, 8)).astype(np.float32)
    cond = np.repeat(np.arange(40), 4)
    concepts = cond // 2
    embeds = (targets[cond] @ rng.standard_normal((8, 6)) + 0.1 * rng.standard_normal((160, 6))).astype(np.float32)
    inputs = save_training_arrays(
        base / "eeg.safetensors", {"inputs": embeds, "conditions": cond, "concepts": concepts}, {"normalize": False}
    )
    image = save_embeddings(base / "raw.safetensors", {"image_embeds": targets}, {"normalize": False})
    return Pairs(inputs, image, cond, concepts, embeds, targets)


def _prior_config(pairs: Pairs, **changes) -> TrainConfig:
    fields = {
        "task": "prior", "inputs": str(pairs.inputs), "image_embeds": str(pairs.image_embeds),
        "model_config": dict(PRIOR_MODEL), "epochs": 3, "batch_size": 32, "lr": 1e-3, "schedule": "cosine",
        "warmup_steps": 2, "grad_clip": 1.0, "val_fraction": 0.2, "progress": False,
    }  # fmt: skip
    fields.update(changes)
    return TrainConfig(**fields)


# -- prior ----------------------------------------------------------------------------------------------------------
def test_prior_run_selects_on_validation_concepts_and_exports_a_pipeline(pairs, tmp_path):
    from toolkit.prior import DiffusionPriorUNet, PriorPipeline

    run = tmp_path / "prior"
    result = train(_prior_config(pairs, out=str(run)))
    assert isinstance(result.model, DiffusionPriorUNet) and result.config.objective == "diffusion"
    assert (result.model.config.embed_dim, result.model.config.cond_dim) == (8, 6)  # sizes from the data
    # validation: whole held-out TRAINING concepts, none of their rows trained on
    split = result.split
    assert split.unit == "concepts" and len(split.val_concepts) == 4
    held = np.isin(pairs.cond, split.val_conditions)
    assert set(pairs.concepts[held]) == set(split.val_concepts)
    assert not set(pairs.concepts[~held]) & set(split.val_concepts)
    # checkpoint = lowest validation loss; the schedule warmed up then decayed
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1 and result.results["selection"]["selected_on_test"] is False
    factor = WarmupCosine(3 * result.history[0]["n_steps"], 2, 0.0)
    assert [h["lr"] for h in result.history] == pytest.approx(
        [1e-3 * factor(e * result.history[0]["n_steps"]) for e in (1, 2, 3)]
    )
    # files: run directory, checkpoints, and a loadable PriorPipeline of the selected weights
    for name in ("config.json", "history.json", "results.json", "best/model.safetensors", "last/trainer_state.pt",
                 "model/model_index.json", "model/prior/model.safetensors", "model/scheduler/scheduler_config.json"):
        assert (run / name).is_file(), name
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["train"]["task"] == "prior" and recorded["model"]["class"] == "DiffusionPriorUNet"
    assert recorded["data"]["n_train_rows"] + recorded["data"]["n_val_rows"] == 160
    assert result.results["test"] is None and "reconstruct" in result.results["test_skipped"]
    pipe = PriorPipeline.from_pretrained(result.model_dir)
    assert weights_equal(pipe.prior, result.model)
    assert type(pipe.scheduler).__name__ == "DDPMScheduler" and pipe.scheduler.config.num_train_timesteps == 1000
    out = pipe(torch.from_numpy(pairs.embeds[:3]), num_inference_steps=3, progress_bar=False).image_embeds
    assert out.shape == (3, 8) and torch.isfinite(out).all()


def test_prior_resume_is_identical_and_runs_repeat(pairs, tmp_path):
    cfg = _prior_config(pairs)
    straight, resumed, _ = interrupted_and_straight(cfg, tmp_path)
    assert _strip(resumed.history) == _strip(straight.history)
    assert weights_equal(resumed.model, straight.model)
    again = train(cfg)  # no run directory: the same numbers again
    assert _strip(again.history) == _strip(straight.history)


def test_prior_through_accelerate_matches_the_plain_path(pairs):
    pytest.importorskip("accelerate")
    plain = train(_prior_config(pairs, epochs=2))
    wrapped = train(_prior_config(pairs, epochs=2, accelerate=True))
    assert weights_equal(plain.model, wrapped.model)
    assert _strip(plain.history) == _strip(wrapped.history)


def test_diffusion_objective_drops_the_condition_and_validates_on_fixed_draws(pairs):
    from toolkit.prior import DiffusionPriorUNet, PriorUNetConfig, default_scheduler, prior_loss
    from toolkit.training import DiffusionObjective

    prior = DiffusionPriorUNet(PriorUNetConfig(embed_dim=8, cond_dim=6, hidden_dims=(16, 8), time_embed_dim=8,
                                               dropout=0.0))
    targets = torch.from_numpy(pairs.targets[pairs.cond[:16]])
    batch = {"inputs": torch.from_numpy(pairs.embeds[:16]), "targets": targets}
    always = DiffusionObjective(default_scheduler(), cond_drop_prob=1.0, seed=0)
    torch.manual_seed(5)
    dropped, _ = always(prior, batch)
    torch.manual_seed(5)
    unconditional = prior_loss(prior, always.scheduler, batch["targets"], None, cond_drop_prob=0.0)
    assert torch.equal(dropped, unconditional)  # p = 1 trains the whole batch without its condition
    # evaluation: the condition is always used, with the same draws at every evaluation
    always.eval()
    first, _ = always(prior, batch)
    always.train()
    always.eval()
    second, _ = always(prior, batch)
    conditional = prior_loss(prior, always.scheduler, batch["targets"], batch["inputs"], cond_drop_prob=0.0,
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, second) and torch.equal(first, conditional)


def test_prior_from_arrays_and_from_a_pipeline_folder(pairs, tmp_path):
    cfg = _prior_config(pairs, inputs=None, image_embeds=None, epochs=1, out=str(tmp_path / "a"))
    data = build_task_data(cfg, inputs=pairs.embeds, targets=pairs.targets, conditions=pairs.cond,
                           concepts=pairs.concepts)
    from_arrays = train(cfg, data=data)
    from_files = train(_prior_config(pairs, epochs=1))
    assert weights_equal(from_arrays.model, from_files.model)
    # init_from a PriorPipeline folder (or its run directory) continues from its weights
    cont = train(_prior_config(pairs, epochs=1, model_config={}, init_from=str(from_arrays.model_dir)))
    assert cont.results["init_digest"] != from_files.results["init_digest"]
    by_run = train(_prior_config(pairs, epochs=1, model_config={}, init_from=str(tmp_path / "a")))
    assert by_run.results["init_digest"] == cont.results["init_digest"]
    with pytest.raises(ToolkitError, match="belong to --task prior, low-level or projector"):
        TrainConfig(targets="latents.npy")


def test_prior_command_line(pairs, tmp_path, capsys):
    run = tmp_path / "cli"
    args = ["train", "--task", "prior", "--eeg-embeds", str(pairs.inputs), "--image-embeds", str(pairs.image_embeds),
            "--model-config", json.dumps(PRIOR_MODEL), "--epochs", "2", "--batch-size", "32", "--schedule", "cosine",
            "--warmup-steps", "2", "--grad-clip", "1", "--no-progress", "--out", str(run), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == "prior" and summary["model"] == "DiffusionPriorUNet" and summary["epochs"] == 2
    assert summary["model_dir"] == str(run / "model") and summary["selection"]["metric"] == "val_loss"
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--json"]) == 2  # cosine: epochs fixed
    assert "cosine schedule depends on it" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--json"]) == 0  # continues with the recorded config
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": "clip"}, "does not apply to --task prior"),
        ({"selection": "val_top1"}, "selects its checkpoint on the validation loss"),
        ({"setting": "joint"}, "drop --setting joint"),
        ({"encoder_config": {"d_model": 8}}, "use --model-config"),
        ({"targets": "x.npy"}, "does not use --targets"),
        ({"cond_drop_prob": 1.5}, "cond_drop_prob must be a number >= 0.0 and <= 1.0"),
    ],
)
def test_bad_prior_configurations(pairs, changes, message):
    with pytest.raises(ToolkitError, match=message):
        _prior_config(pairs, **changes)


def test_bad_prior_data(pairs, tmp_path):
    with pytest.raises(ToolkitError, match="needs --image-embeds FILE"):
        train(_prior_config(pairs, image_embeds=None))
    with pytest.raises(ToolkitError, match="model_config sets embed_dim=9 but the data give 8"):
        train(_prior_config(pairs, model_config={**PRIOR_MODEL, "embed_dim": 9}))
    lonely = save_training_arrays(tmp_path / "rows.safetensors", {"inputs": pairs.embeds})
    with pytest.raises(ToolkitError, match=r"160 rows but the targets .* 40; pair them row by row"):
        train(_prior_config(pairs, inputs=str(lonely)))
    far = save_training_arrays(tmp_path / "far.safetensors", {"inputs": pairs.embeds, "conditions": pairs.cond + 1})
    with pytest.raises(ToolkitError, match="points at target row 40"):
        train(_prior_config(pairs, inputs=str(far)))
    normed = save_embeddings(tmp_path / "norm.safetensors", {"image_embeds": l2_normalize(pairs.targets)},
                             {"normalize": True})
    with pytest.raises(ToolkitError, match="needs raw ones"):
        train(_prior_config(pairs, image_embeds=str(normed)))
    ints = save_training_arrays(tmp_path / "ints.safetensors", {"conditions": pairs.cond})
    with pytest.raises(ToolkitError, match="needs one floating-point array"):
        train(_prior_config(pairs, inputs=str(ints)))


# -- low-level encoder ----------------------------------------------------------------------------------------------
def test_low_level_encoder_regresses_latents_of_the_training_conditions(sim, tmp_path):
    from toolkit.data import open_store
    from toolkit.generation import LowLevelEncoder

    trials = open_store(sim.store).load("sub-01", "train")
    latents = np.random.default_rng(1).standard_normal((trials.n_conditions, 4, 4, 4)).astype(np.float32)
    np.save(tmp_path / "latents.npy", latents)
    cfg = TrainConfig(task="low-level", data=str(sim.store), subject="sub-01", targets=str(tmp_path / "latents.npy"),
                      model_config=LOW_LEVEL_MODEL, epochs=2, batch_size=16, val_fraction=0.2, progress=False,
                      out=str(tmp_path / "ll"))
    result = train(cfg)
    assert result.config.objective == "l1" and isinstance(result.model, LowLevelEncoder)
    assert (result.model.config.n_chans, result.model.config.n_times) == (trials.n_chans, trials.n_times)
    # the validation rows are whole training concepts; the loss is the L1 of the validation trials
    assert result.split.unit == "concepts" and result.split.n_val == 8
    loaded = LowLevelEncoder.from_pretrained(result.model_dir)
    assert weights_equal(loaded, result.model)
    from toolkit.training.data import PairedTrials

    val = PairedTrials([trials], [-1], conditions=result.split.val_conditions, image_embeds=latents)
    with torch.no_grad():
        pred = loaded(val.all_eeg())
    expected = torch.nn.functional.l1_loss(pred, torch.from_numpy(latents[val.sample_conditions])).item()
    assert result.history[result.best_epoch - 1]["val_loss"] == pytest.approx(expected, rel=1e-5)
    # a model whose latent size does not match the targets is refused with the fix
    with pytest.raises(ToolkitError, match="build the model for these shapes"):
        train(cfg.replace(out=None, model_config={**LOW_LEVEL_MODEL, "hidden_channels": [8, 4, 4]}))
    np.save(tmp_path / "short.npy", latents[:5])
    with pytest.raises(ToolkitError, match="holds 5 latents but sub-01's training data have 40 conditions"):
        train(cfg.replace(out=None, targets=str(tmp_path / "short.npy")))


# -- projector ------------------------------------------------------------------------------------------------------
def test_projector_regresses_tokens_row_by_row_from_a_memory_map(tmp_path, capsys):
    from toolkit.captions import PixelProjector, projector_loss

    rng = np.random.default_rng(2)
    embeds = l2_normalize(rng.standard_normal((60, 8)).astype(np.float32))
    tokens = rng.standard_normal((60, 5, 6)).astype(np.float32)
    save_embeddings(tmp_path / "img.safetensors", {"image_embeds": embeds}, {"normalize": True})
    np.save(tmp_path / "tokens.npy", tokens)
    args = ["train", "--task", "projector", "--inputs", str(tmp_path / "img.safetensors"), "--targets",
            str(tmp_path / "tokens.npy"), "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--no-progress",
            "--out", str(tmp_path / "pj"), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["objective"] == "mse" and summary["model"] == "PixelProjector"
    projector = PixelProjector.from_pretrained(summary["model_dir"])
    assert projector.config.normalized_inputs is True and projector.output_shape == (5, 6)
    data = build_task_data(TrainConfig(task="projector", inputs=str(tmp_path / "img.safetensors"),
                                       targets=str(tmp_path / "tokens.npy"), batch_size=16))
    assert isinstance(data.train.targets, np.memmap)  # large token files stay on disk
    val = data.val.__getitems__(np.arange(len(data.val)))
    with torch.no_grad():
        expected = projector_loss(projector, val["inputs"], val["targets"]).item()
    assert summary["validation"]["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert main([*args[:-3], "--objective", "clip", "--out", str(tmp_path / "x")]) == 2
    assert "does not apply to --task projector" in capsys.readouterr().err
