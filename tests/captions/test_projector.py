"""PixelProjector: shapes, the reference parameter count, save/load round trip, training loss, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toolkit import ToolkitError
from toolkit.captions import PixelProjector, PixelProjectorConfig, projector_loss

from ._tiny import fake_hub_cache
from .conftest import COMMIT

TINY = PixelProjectorConfig(embed_dim=12, n_tokens=7, hidden_size=10)


def _projector(seed: int = 0, config: PixelProjectorConfig = TINY) -> PixelProjector:
    torch.manual_seed(seed)
    return PixelProjector(config)


def test_reference_size_and_shapes():
    projector = PixelProjector()
    # ATM.md §10: ≈ 1.05 M parameters (257 + 257 + 2·257 + 1024·1024 + 1024 + 2·1024).
    assert sum(p.numel() for p in projector.parameters()) == 1_052_676
    assert projector.output_shape == (257, 1024)
    out = projector(torch.randn(2, 1024))
    assert out.shape == (2, 257, 1024)
    # The last LayerNorm starts as the identity affine map: every token is standardised over its features.
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 257), atol=1e-5, rtol=0)


def test_forward_matches_the_reference_layer_order():
    projector = _projector().eval()
    x = torch.randn(3, 12)
    # transpose → Linear(1 → n_tokens) → LayerNorm(n_tokens) → transpose → Linear(D → H) → LayerNorm(H)
    h = x[:, None, :].transpose(1, 2)
    h = torch.nn.functional.layer_norm(projector.token_proj(h), (7,), projector.token_norm.weight,
                                       projector.token_norm.bias, 1e-5).transpose(1, 2)
    h = torch.nn.functional.layer_norm(projector.feature_proj(h), (10,), projector.feature_norm.weight,
                                       projector.feature_norm.bias, 1e-5)
    torch.testing.assert_close(projector(x), h)
    torch.testing.assert_close(projector(x[:, None, :]), h)  # (batch, 1, D) is accepted too


def test_round_trip(tmp_path: Path):
    projector = _projector(1)
    with torch.no_grad():
        for p in projector.parameters():
            p.add_(torch.randn_like(p))  # move the LayerNorms off their initial values too
    config = PixelProjectorConfig(embed_dim=12, n_tokens=7, hidden_size=10, normalized_inputs=False)
    projector.config = config
    folder = projector.save_pretrained(tmp_path / "proj")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    saved = json.loads((folder / "config.json").read_text())
    assert saved["_class_name"] == "PixelProjector" and saved["normalized_inputs"] is False
    loaded = PixelProjector.from_pretrained(folder)
    assert loaded.config == config and not loaded.training
    x = torch.randn(4, 12)
    torch.testing.assert_close(loaded(x), projector.eval()(x), rtol=0, atol=0)


def test_from_pretrained_hub_cache_with_revision(tmp_path: Path):
    projector = _projector(2)
    folder = projector.save_pretrained(tmp_path / "proj")
    cache = tmp_path / "cache"
    fake_hub_cache(cache, "someone/pixel-projector", folder, COMMIT)
    for revision in (COMMIT, None):
        loaded = PixelProjector.from_pretrained(
            "someone/pixel-projector", revision=revision, cache_dir=cache, local_files_only=True
        )
        x = torch.randn(2, 12)
        torch.testing.assert_close(loaded(x), projector.eval()(x))
    with pytest.raises(ToolkitError, match="local_files_only"):
        PixelProjector.from_pretrained("someone/pixel-projector", revision="f" * 40, cache_dir=cache,
                                       local_files_only=True)
    with pytest.raises(ToolkitError, match="revision"):
        PixelProjector.from_pretrained(folder, revision=COMMIT)  # a folder has no revisions


def test_loss_decreases_on_a_toy_regression():
    teacher = _projector(10).eval()
    for p in teacher.parameters():
        torch.nn.init.normal_(p, std=0.5)
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(64, 12, generator=g)
    with torch.no_grad():
        targets = teacher(embeds)
    student = _projector(11).train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=3e-2)
    losses = []
    for _ in range(25):
        loss = projector_loss(student, embeds, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = projector_loss(student, embeds, targets).item()
    assert final < 0.3 * losses[0]
    per_row = projector_loss(student, embeds[:5], targets[:5], reduction="none")
    assert per_row.shape == (5,)
    torch.testing.assert_close(per_row.mean(), projector_loss(student, embeds[:5], targets[:5]))


def test_loss_bad_inputs():
    projector = _projector()
    embeds = torch.randn(3, 12)
    with pytest.raises(ToolkitError, match=r"target_tokens has shape \(3, 8, 10\).*\(3, 7, 10\)"):
        projector_loss(projector, embeds, torch.zeros(3, 8, 10))
    with pytest.raises(ToolkitError, match="pair one target per embedding"):
        projector_loss(projector, embeds, torch.zeros(2, 7, 10))
    with pytest.raises(ToolkitError, match="floating-point"):
        projector_loss(projector, embeds, torch.zeros(3, 7, 10, dtype=torch.long))
    with pytest.raises(ToolkitError, match="reduction"):
        projector_loss(projector, embeds, torch.zeros(3, 7, 10), reduction="sum")
    with pytest.raises(ToolkitError, match="PixelProjector"):
        projector_loss(torch.nn.Linear(2, 2), embeds, torch.zeros(3, 7, 10))


def test_embed_dim_mismatch_and_bad_embeds():
    projector = _projector()
    with pytest.raises(ToolkitError, match=r"embeds has shape \(2, 16\).*\(batch, 12\)"):
        projector(torch.randn(2, 16))
    with pytest.raises(ToolkitError, match="shape"):
        projector(torch.randn(12))
    with pytest.raises(ToolkitError, match="floating point"):
        projector(torch.ones(2, 12, dtype=torch.long))
    with pytest.raises(ToolkitError, match=r"torch\.Tensor"):
        projector([[0.0] * 12])


@pytest.mark.parametrize(
    ("field", "value"), [("embed_dim", 0), ("n_tokens", -1), ("hidden_size", 2.5), ("layer_norm_eps", 0),
                         ("normalized_inputs", "yes")]
)
def test_bad_config(field: str, value: object):
    with pytest.raises(ToolkitError, match=f"PixelProjectorConfig.{field}"):
        PixelProjectorConfig(**{field: value})


def test_weights_errors_name_the_file_and_expected_shape(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    folder = _projector().save_pretrained(tmp_path / "proj")
    weights = folder / "model.safetensors"
    state = load_file(weights)

    broken = dict(state, **{"feature_proj.weight": torch.zeros(10, 13)})
    save_file(broken, weights)
    with pytest.raises(ToolkitError) as err:
        PixelProjector.from_pretrained(folder)
    assert str(weights) in str(err.value) and "feature_proj.weight expected [10, 12] found [10, 13]" in str(err.value)

    save_file({k: v for k, v in state.items() if k != "token_norm.bias"}, weights)
    with pytest.raises(ToolkitError, match=r"missing: token_norm.bias \[7\]") as err:
        PixelProjector.from_pretrained(folder)
    assert str(weights) in str(err.value)

    weights.unlink()
    with pytest.raises(ToolkitError, match=r"has no model\.safetensors"):
        PixelProjector.from_pretrained(folder)
    with pytest.raises(ToolkitError, match="neither an existing folder nor a Hugging Face Hub id"):
        PixelProjector.from_pretrained(tmp_path / "nowhere")


def test_bad_config_file(tmp_path: Path):
    folder = _projector().save_pretrained(tmp_path / "proj")
    config = folder / "config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "n_layers": 3}))
    with pytest.raises(ToolkitError, match=r"unknown projector configuration keys \['n_layers'\]"):
        PixelProjector.from_pretrained(folder)
    config.write_text(json.dumps({**data, "_class_name": "DiffusionPriorUNet"}))
    with pytest.raises(ToolkitError, match="not a PixelProjector"):
        PixelProjector.from_pretrained(folder)
    config.write_text("{not json")
    with pytest.raises(ToolkitError, match="Could not read the projector configuration"):
        PixelProjector.from_pretrained(folder)


def test_pickle_weights_are_read_weights_only(tmp_path: Path):
    projector = _projector(4)
    path = tmp_path / "weights.pt"
    torch.save(projector.state_dict(), path)
    loaded = _projector(5).load_weights(path)
    x = torch.randn(2, 12)
    torch.testing.assert_close(loaded(x), projector(x))
    torch.save({"weights": projector.state_dict(), "step": 3}, path)
    with pytest.raises(ToolkitError, match="does not hold a state dict"):
        _projector().load_weights(path)
