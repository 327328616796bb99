"""``python -m toolkit train`` in-process through ``toolkit.cli.main``: flags 1:1, config files, resume, errors."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from toolkit.cli import build_parser, main
from toolkit.training import TrainConfig

from .helpers import TINY_ATM


def _args(sim, out, *extra):
    return [
        "train", "--data", str(sim.store), "--subject", "sub-01", "--image-embeds", str(sim.train_embeds),
        "--test-image-embeds", str(sim.test_embeds), "--encoder", "atm-s", "--encoder-config", json.dumps(TINY_ATM),
        "--batch-size", "16", "--lr", "0.001", "--val-fraction", "0.2", "--loss-normalize", "--no-progress",
        "--out", str(out), "--json", *extra,
    ]  # fmt: skip


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_every_config_field_has_exactly_one_flag():
    parser = build_parser()
    train_parser = next(
        a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith(" train")
    )
    dests = [a.dest for a in train_parser._actions if a.dest not in ("help", "config", "folds", "json")]
    assert sorted(dests) == sorted(f.name for f in dataclasses.fields(TrainConfig))
    flags = {a.dest: a.option_strings for a in train_parser._actions}
    assert flags["batch_size"] == ["--batch-size"] and "--no-loss-normalize" in flags["loss_normalize"]
    assert all(a.default is argparse.SUPPRESS for a in train_parser._actions if a.dest in dests)


def test_train_and_resume_from_the_command_line(sim, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(sim, run, "--epochs", "1")) == 0
    summary = _last_json(capsys)
    assert summary["epochs"] == 1 and summary["selection"]["selected_on_test"] is False
    assert summary["test"]["gallery_size"] == 8 and 0 <= summary["test"]["top1"] <= 1
    assert (run / "best" / "model.safetensors").is_file() and (run / "results.json").is_file()
    # --out RUN --resume alone continues with the recorded configuration; more epochs extend the run
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--json"]) == 0
    assert _last_json(capsys)["epochs"] == 2
    # another configuration for the same run directory is refused, naming the field
    assert main(["train", "--out", str(run), "--resume", "--lr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "lr (0.001 vs 0.01)" in err and len(err.strip().splitlines()) == 1


def test_config_file_and_flag_override(sim, tmp_path, capsys):
    config = TrainConfig(
        data=str(sim.store), image_embeds=str(sim.train_embeds), encoder_config=TINY_ATM, epochs=3, batch_size=16,
        val_fraction=0.2, progress=False,
    )
    config.save(tmp_path / "train.json")
    assert main(["train", "--config", str(tmp_path / "train.json"), "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--json"]) == 0
    summary = _last_json(capsys)
    assert summary["epochs"] == 1 and summary["test"] is None and "test image embeddings" in summary["test_skipped"]
    recorded = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert recorded["epochs"] == 1 and recorded["batch_size"] == 16


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--objective", "triplet"], "invalid choice: 'triplet'"),
        (["--val-fraction", "2"], "val_fraction must be a number"),
        (["--encoder-config", "{not json"], "neither a JSON object"),
        (["--encoder", "nope"], "Unknown encoder 'nope'; known encoders:"),
    ],
)
def test_bad_input_gives_one_line(sim, tmp_path, capsys, extra, message):
    try:
        code = main(_args(sim, tmp_path / "bad", *extra))
    except SystemExit as exit_:  # argparse rejects unknown choices itself
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_interrupt_leaves_a_resumable_run(sim, tmp_path, capsys, monkeypatch):
    import toolkit.training.trainer as trainer_module

    real = trainer_module._validate

    def interrupt_in_epoch_two(trainer):
        if trainer.history:
            raise KeyboardInterrupt
        return real(trainer)

    monkeypatch.setattr(trainer_module, "_validate", interrupt_in_epoch_two)
    run = tmp_path / "run"
    assert main(_args(sim, run, "--epochs", "2")) == 130
    err = capsys.readouterr().err
    assert "--resume" in err and (run / "last" / "trainer_state.pt").is_file()
    monkeypatch.setattr(trainer_module, "_validate", real)
    assert main(["train", "--out", str(run), "--resume", "--json"]) == 0
    assert _last_json(capsys)["epochs"] == 2
