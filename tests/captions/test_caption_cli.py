"""``python -m toolkit caption`` in-process: captions JSON with a protocol card, metrics, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.captions import EmbeddingCaptioner, GitCaptioner, PixelProjector, PixelProjectorConfig
from toolkit.cli import main
from toolkit.embeddings import save_embeddings

from ._tiny import N_VISION_TOKENS, VISION_HIDDEN
from .conftest import COMMIT, HUB_ID

pytestmark = pytest.mark.xdist_group("tiny-git")
EMBED_DIM = 12
N = 4


@pytest.fixture(scope="module")
def projector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = PixelProjectorConfig(
        embed_dim=EMBED_DIM, n_tokens=N_VISION_TOKENS, hidden_size=VISION_HIDDEN, normalized_inputs=False
    )
    projector = PixelProjector(config)
    with torch.no_grad():
        projector.feature_norm.weight.normal_(std=3.0)
    return projector.save_pretrained(tmp_path_factory.mktemp("projector") / "projector")


@pytest.fixture(scope="module")
def embeds() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, EMBED_DIM)).astype(np.float32)


@pytest.fixture
def embeddings_file(tmp_path: Path, embeds: np.ndarray) -> Path:
    files = [f"{i:05d}_thing/img.jpg" for i in range(N)]
    return save_embeddings(
        tmp_path / "pred.safetensors", {"image_embeds": embeds}, {"normalize": False, "image_files": files}
    )


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | str | None, str]:
    """Exit code, the ``--json`` summary (or the printed text without ``--json``), standard error."""
    code = main(["caption", *argv])
    captured = capsys.readouterr()
    if code != 0:
        return code, None, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1]) if "--json" in argv else captured.out
    return code, summary, captured.err


def test_caption_command(capsys, tmp_path: Path, embeddings_file: Path, projector_dir: Path, git_dir: Path,
                         captioner: GitCaptioner, embeds: np.ndarray):
    out = tmp_path / "captions.json"
    refs = tmp_path / "refs.txt"
    refs.write_text("a cat on a table\na dog\nthe red car\ntwo birds\n", encoding="utf-8")
    code, summary, err = _run(
        capsys, str(embeddings_file), "--projector", str(projector_dir), "--git", str(git_dir), "--out", str(out),
        "--local-files-only", "--device", "cpu", "--max-new-tokens", "6", "--references", str(refs), "--json",
    )
    assert code == 0, err
    record = json.loads(out.read_text(encoding="utf-8"))
    expected = EmbeddingCaptioner(PixelProjector.from_pretrained(projector_dir), captioner, max_new_tokens=6)(embeds)
    assert record["captions"] == expected
    assert record["ids"] == [f"{i:05d}_thing/img.jpg" for i in range(N)]
    card = record["protocol"]
    assert card["embeddings"]["key"] == "image_embeds" and card["embeddings"]["n"] == N
    assert len(card["embeddings"]["sha256"]) == 64 and card["embeddings"]["normalize"] is False
    assert card["projector"]["config"]["n_tokens"] == N_VISION_TOKENS
    assert card["captioner"]["vision_tokens"] == [N_VISION_TOKENS, VISION_HIDDEN]
    assert card["decoding"] == {"max_new_tokens": 6, "num_beams": 1, "decoding": "greedy", "batch_size": 16,
                                "do_sample": False}
    assert card["references"]["metrics"] == ["bleu1", "bleu4", "meteor", "rouge_l"]
    assert set(card["software"]) >= {"toolkit", "torch", "transformers"}
    metrics = record["metrics"]
    assert metrics["n_pairs"] == N and all(0 <= metrics[m] <= 1 for m in ("bleu1", "bleu4", "meteor", "rouge_l"))
    assert summary["out"] == str(out) and summary["metrics"] == metrics
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the write was atomic


def test_caption_command_hub_id_and_npy(capsys, tmp_path: Path, embeds: np.ndarray, projector_dir: Path,
                                        hub_cache: Path):
    npy = tmp_path / "pred.npy"
    np.save(npy, embeds)
    out = tmp_path / "captions.json"
    code, summary, err = _run(
        capsys, str(npy), "--projector", str(projector_dir), "--git", HUB_ID, "--revision", COMMIT, "--cache-dir",
        str(hub_cache), "--local-files-only", "--device", "cpu", "--max-new-tokens", "4", "--num-beams", "2",
        "--out", str(out),
    )
    assert code == 0, err
    record = json.loads(out.read_text(encoding="utf-8"))
    assert len(record["captions"]) == N and record["ids"] is None and record["metrics"] is None
    assert record["protocol"]["captioner"]["source"] == HUB_ID
    assert record["protocol"]["captioner"]["commit"] == COMMIT
    assert record["protocol"]["decoding"]["decoding"] == "beam search"
    assert summary.startswith(f"wrote 4 captions to {out}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-new-tokens", "0"], "--max-new-tokens must be an integer ≥ 1"),
        (["--num-beams", "two"], "--num-beams is 'two'"),
        (["--batch-size", "-1"], "--batch-size must be an integer ≥ 1"),
        (["--key", "text_embeds"], "has no array 'text_embeds'"),
        (["--metrics", "bleu1,cider", "--references", "REFS"], "unknown or no metric names ['cider']"),
        (["--references", "SHORT_REFS"], "has 2 entries but there are 4 embeddings"),
    ],
)
def test_caption_command_bad_arguments(capsys, tmp_path: Path, embeddings_file: Path, projector_dir: Path,
                                       extra: list[str], message: str):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(["a"] * N))
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    extra = [{"REFS": str(refs), "SHORT_REFS": str(short)}.get(a, a) for a in extra]
    out = tmp_path / "captions.json"
    # --git points nowhere: these errors must come before any model is loaded.
    code, _, err = _run(capsys, str(embeddings_file), "--projector", str(projector_dir), "--git",
                        str(tmp_path / "no-git"), "--out", str(out), *extra)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_caption_command_model_mismatches(capsys, tmp_path: Path, projector_dir: Path, git_dir: Path):
    out = tmp_path / "captions.json"
    common = ["--projector", str(projector_dir), "--git", str(git_dir), "--out", str(out), "--local-files-only",
              "--device", "cpu"]
    wide = np.zeros((2, 16), np.float32)
    wide = save_embeddings(tmp_path / "wide.npz", {"image_embeds": wide}, {"normalize": False})
    code, _, err = _run(capsys, str(wide), *common)
    assert code == 2 and "have dimension 16 but the projector" in err and "takes 12" in err
    normed = save_embeddings(tmp_path / "normed.npz", {"image_embeds": np.ones((2, EMBED_DIM), np.float32)},
                             {"normalize": True})
    code, _, err = _run(capsys, str(normed), *common)
    assert code == 2 and "are L2-normalised but the projector" in err and "--no-normalize" in err
    torch.manual_seed(0)
    small = PixelProjector(PixelProjectorConfig(embed_dim=EMBED_DIM, n_tokens=5, hidden_size=VISION_HIDDEN))
    small_dir = small.save_pretrained(tmp_path / "small")
    ok = save_embeddings(tmp_path / "ok.npz", {"image_embeds": np.ones((2, EMBED_DIM), np.float32)}, {})
    code, _, err = _run(capsys, str(ok), "--projector", str(small_dir), *common[2:])
    assert code == 2 and f"makes 5 × {VISION_HIDDEN} vision tokens but the GIT model takes {N_VISION_TOKENS}" in err
    code, _, err = _run(capsys, str(tmp_path / "missing.npz"), *common)
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, str(ok), *common[:4], "--out", str(tmp_path / "captions.txt"))
    assert code == 2 and "must be a .json file name" in err
    assert not out.exists()
