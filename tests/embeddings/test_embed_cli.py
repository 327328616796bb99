"""``python -m toolkit embed`` in-process through ``toolkit.cli.main`` with the tiny offline CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit import cli
from toolkit.embeddings import load_embeddings


@pytest.fixture(autouse=True)
def _embed_command_only(monkeypatch, tmp_path):
    # Register only this command, so the tests exercise `embed` through main() even while a sibling command
    # module is being written; and keep the cache per test.
    monkeypatch.setattr(cli, "_COMMANDS", ("embed",))
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(tmp_path / "home"))


@pytest.fixture
def tiny_args(tiny_model_name, tiny_checkpoint):
    return ["--model", tiny_model_name, "--pretrained", str(tiny_checkpoint)]


def _run(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_embed_images_and_concepts_then_hit(capsys, image_root, tiny_args, tmp_path):
    out_file = tmp_path / "export" / "feats.safetensors"
    argv = ["embed", str(image_root), *tiny_args, "--normalize", "--concepts", "--batch-size", "4", "--json"]
    code, out, err = _run(capsys, [*argv, "--out", str(out_file)])
    assert code == 0, err
    summary = _json(out)
    assert summary["n"] == 6 and summary["dim"] == 16 and summary["normalize"] is True
    assert summary["hit"] is False and summary["concepts"]["hit"] is False
    assert summary["concepts"]["n"] == 3
    assert summary["weights"].startswith("sha256:")
    assert summary["cache_file"].startswith(str(tmp_path / "home" / "embeddings"))
    arrays, meta = load_embeddings(out_file)
    assert arrays["image_embeds"].shape == (6, 16) and arrays["text_embeds"].shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(arrays["image_embeds"], axis=1), 1.0, atol=1e-5)
    assert meta["normalize"] is True and meta["concepts"] == ["aardvark", "ball", "cat_toy"]
    assert meta["image_files"][0] == "00001_aardvark/aardvark_00.jpg"
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["feats.safetensors"]

    code, out, err = _run(capsys, argv)
    assert code == 0, err
    again = _json(out)
    assert again["hit"] is True and again["concepts"]["hit"] is True
    assert again["cache_file"] == summary["cache_file"]


def test_raw_export_to_npz_and_human_output(capsys, image_root, tiny_args, tmp_path):
    out_file = tmp_path / "raw.npz"
    code, out, err = _run(capsys, ["embed", str(image_root), *tiny_args, "--no-normalize", "--out", str(out_file)])
    assert code == 0, err
    assert "images: 6 x 16 (raw), computed and cached in" in out
    assert f"exported to {out_file}" in out
    arrays, meta = load_embeddings(out_file)
    assert meta["normalize"] is False and set(arrays) == {"image_embeds"}
    assert not np.allclose(np.linalg.norm(arrays["image_embeds"], axis=1), 1.0, atol=1e-2)
    code, out, _ = _run(capsys, ["embed", str(image_root), *tiny_args, "--no-normalize"])
    assert "read from cache" in out


def test_normalize_must_be_chosen(capsys, image_root, tiny_args):
    with pytest.raises(SystemExit) as info:
        cli.main(["embed", str(image_root), *tiny_args])
    assert info.value.code == 2
    assert "--normalize/--no-normalize" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["embed", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "REQUIRED, no default on purpose" in help_text


def _assert_one_line_error(code, out, err, *needles):
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_missing_image_folder(capsys, tmp_path, tiny_args):
    missing = tmp_path / "no-such-folder"
    code, out, err = _run(capsys, ["embed", str(missing), *tiny_args, "--normalize"])
    _assert_one_line_error(code, out, err, str(missing), "does not exist")


def test_corrupt_image_is_named(capsys, image_root, tiny_args):
    bad = sorted(image_root.glob("00002_*/*.jpg"))[1]
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    code, out, err = _run(capsys, ["embed", str(image_root), *tiny_args, "--normalize"])
    _assert_one_line_error(code, out, err, bad.name, "cannot be read")
    assert not list((image_root.parent / "home" / "embeddings").glob("images-*"))


def test_unknown_model(capsys, image_root, tiny_checkpoint):
    code, out, err = _run(
        capsys, ["embed", str(image_root), "--model", "ViT-Q-99", "--pretrained", str(tiny_checkpoint), "--normalize"]
    )
    _assert_one_line_error(code, out, err, "ViT-Q-99", "list_models")


def test_weights_not_available_offline(capsys, image_root, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(image_root.parent / "empty-hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(image_root.parent / "empty-hf-cache"))
    code, out, err = _run(capsys, ["embed", str(image_root), "--normalize"])  # ATM defaults: ViT-H-14 laion2b
    _assert_one_line_error(code, out, err, "not available offline", "--pretrained PATH")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--out", "feats.pt"], "--out"),
        (["--batch-size", "0"], "--batch-size"),
        (["--concepts", "--prompt", "a photo"], "placeholder"),
        (["--multi-gpu", "--device", "cpu"], "--multi-gpu"),
        (["--device", "quantum"], "Unknown device"),
        (["--images-per-concept", "10"], "10 are expected"),
    ],
)
def test_bad_arguments(capsys, image_root, tiny_args, extra, needle):
    code, out, err = _run(capsys, ["embed", str(image_root), *tiny_args, "--normalize", *extra])
    _assert_one_line_error(code, out, err, needle)


def test_multi_gpu_flag_in_a_single_process(capsys, image_root, tiny_args, tmp_path):
    pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    plain_out, accel_out = tmp_path / "plain.npz", tmp_path / "accel.npz"
    code, _, err = _run(capsys, ["embed", str(image_root), *tiny_args, "--normalize", "--out", str(plain_out)])
    assert code == 0, err
    try:
        code, out, err = _run(
            capsys,
            [
                "embed",
                str(image_root),
                *tiny_args,
                "--normalize",
                "--multi-gpu",
                "--refresh",
                "--json",
                "--out",
                str(accel_out),
            ],
        )
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    assert code == 0, err
    assert _json(out)["hit"] is False
    np.testing.assert_allclose(
        load_embeddings(accel_out)[0]["image_embeds"], load_embeddings(plain_out)[0]["image_embeds"], atol=1e-4
    )


def test_multi_gpu_refuses_a_launch_accelerate_cannot_see(capsys, image_root, tiny_args, monkeypatch):
    accelerate = pytest.importorskip("accelerate")

    class OneProcess:
        num_processes, is_main_process, device = 1, True, "cpu"

    monkeypatch.setattr(accelerate, "Accelerator", OneProcess)
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, out, err = _run(capsys, ["embed", str(image_root), *tiny_args, "--normalize", "--multi-gpu"])
    _assert_one_line_error(code, out, err, "ACCELERATE_USE_CPU")
