"""The diffusion prior against the reference fixtures (reference/ATM.md §13) and its weight handling."""

from __future__ import annotations

import json

import pytest
import torch

from toolkit import ToolkitError
from toolkit.prior import DiffusionPriorUNet, PriorUNetConfig, config_from_state_dict, load_reference_prior

TINY = PriorUNetConfig(embed_dim=16, cond_dim=12, hidden_dims=(16, 8, 4), time_embed_dim=8, dropout=0.1)


def _tiny(seed: int = 0) -> DiffusionPriorUNet:
    torch.manual_seed(seed)
    return DiffusionPriorUNet(TINY).eval()


@pytest.fixture(scope="module")
def parity(shared_dir):
    from safetensors.torch import load_file

    folder = shared_dir / "reference" / "atm-parity"
    return folder, load_file(str(folder / "prior_reference_io.safetensors"))


def test_reference_outputs_within_1e5(parity):
    folder, io = parity
    prior = DiffusionPriorUNet().load_weights(folder / "prior_reference_weights.safetensors").eval()
    assert io["t"].tolist() == [0, 500, 999]
    with torch.no_grad():
        eps_cond = prior(io["x_t"], io["t"], io["cond"])
        eps_uncond = prior(io["x_t"], io["t"])
    torch.testing.assert_close(eps_cond, io["eps_cond"], rtol=0, atol=1e-5)
    torch.testing.assert_close(eps_uncond, io["eps_uncond"], rtol=0, atol=1e-5)
    # The two outputs really differ, so the condition path is exercised.
    assert (eps_cond - eps_uncond).abs().max() > 1e-2


def test_reference_names_and_shapes_match_manifest(shared_dir):
    manifest = json.loads((shared_dir / "reference" / "atm-parity" / "state_dict_manifest.json").read_text())
    expected = manifest["DiffusionPriorUNet"]
    ours = {name: list(t.shape) for name, t in DiffusionPriorUNet().state_dict().items()}
    assert ours == expected


def test_reference_parameter_count():
    prior = DiffusionPriorUNet()
    assert sum(p.numel() for p in prior.parameters()) == 9_675_648
    assert prior.config == PriorUNetConfig()
    assert prior.config.hidden_dims == (1024, 512, 256, 128, 64)


def test_load_reference_prior_infers_config(parity):
    folder, io = parity
    prior = load_reference_prior(folder / "prior_reference_weights.safetensors")
    assert prior.config == PriorUNetConfig()
    assert not prior.training
    with torch.no_grad():
        torch.testing.assert_close(prior(io["x_t"], io["t"], io["cond"]), io["eps_cond"], rtol=0, atol=1e-5)


def test_config_from_state_dict_tiny_and_pt_file(tmp_path):
    prior = _tiny()
    assert config_from_state_dict(prior.state_dict()) == TINY
    torch.save(prior.state_dict(), tmp_path / "diffusion_prior.pt")
    loaded = load_reference_prior(tmp_path / "diffusion_prior.pt")
    x, cond = torch.randn(3, 16), torch.randn(3, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, torch.tensor([1, 2, 3]), cond), prior(x, torch.tensor([1, 2, 3]), cond))


def test_pickled_module_refused(tmp_path):
    torch.save(_tiny(), tmp_path / "whole_model.pt")  # a pickled module, not a state dict
    with pytest.raises(ToolkitError, match=r"whole_model\.pt"):
        load_reference_prior(tmp_path / "whole_model.pt")


def test_not_a_prior_state_dict(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ToolkitError, match=r"other\.safetensors"):
        load_reference_prior(tmp_path / "other.safetensors")


def test_save_load_round_trip(tmp_path):
    prior = _tiny()
    out = prior.save_pretrained(tmp_path / "prior")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["_class_name"] == "DiffusionPriorUNet" and config["hidden_dims"] == [16, 8, 4]
    loaded = DiffusionPriorUNet.from_pretrained(out)
    assert loaded.config == TINY and not loaded.training
    x, cond, t = torch.randn(4, 16), torch.randn(4, 12), torch.tensor([0, 10, 500, 999])
    with torch.no_grad():
        assert torch.equal(loaded(x, t, cond), prior(x, t, cond))
        assert torch.equal(loaded(x, t), prior(x, t))


def test_save_failure_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        _tiny().save_pretrained(tmp_path / "prior")
    assert list(tmp_path.iterdir()) == []


def test_from_pretrained_hub_id_from_local_cache(tmp_path):
    # A Hub id resolved through huggingface_hub from a pre-filled cache, offline (nothing is downloaded).
    prior = _tiny()
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someone--eeg-prior"
    prior.save_pretrained(repo / "snapshots" / commit / "prior")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    loaded = DiffusionPriorUNet.from_pretrained(
        "someone/eeg-prior", subfolder="prior", cache_dir=tmp_path / "cache", local_files_only=True
    )
    x = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x, 5), prior(x, 5))
    with pytest.raises(ToolkitError, match="someone/other"):
        DiffusionPriorUNet.from_pretrained("someone/other", cache_dir=tmp_path / "cache", local_files_only=True)


def test_from_pretrained_bad_locations(tmp_path):
    with pytest.raises(ToolkitError, match="neither an existing folder"):
        DiffusionPriorUNet.from_pretrained(tmp_path / "missing" / "deeper" / "path")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError, match=r"config\.json"):
        DiffusionPriorUNet.from_pretrained(tmp_path / "empty")


def test_from_pretrained_bad_config(tmp_path):
    out = _tiny().save_pretrained(tmp_path / "prior")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "n_heads": 4}))
    with pytest.raises(ToolkitError, match="n_heads"):
        DiffusionPriorUNet.from_pretrained(out)
    (out / "config.json").write_text(json.dumps({**config, "_class_name": "ATMS"}))
    with pytest.raises(ToolkitError, match="ATMS"):
        DiffusionPriorUNet.from_pretrained(out)
    (out / "config.json").write_text("{not json")
    with pytest.raises(ToolkitError, match=r"config\.json"):
        DiffusionPriorUNet.from_pretrained(out)


def test_wrong_shaped_weights_name_file_and_shapes(tmp_path):
    saved = _tiny().save_pretrained(tmp_path / "prior")
    other = DiffusionPriorUNet(PriorUNetConfig(embed_dim=16, cond_dim=12, hidden_dims=(16, 8, 2), time_embed_dim=8))
    weights = saved / "model.safetensors"
    with pytest.raises(ToolkitError) as info:
        other.load_weights(weights)
    message = str(info.value)
    assert str(weights) in message
    assert "encode_layers.1.0.weight expected [2, 8] found [4, 8]" in message


def test_missing_and_unexpected_weights(tmp_path):
    from safetensors.torch import save_file

    state = dict(_tiny().state_dict())
    state.pop("output_layer.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(ToolkitError, match=r"w\.safetensors.*missing: output_layer\.bias \[16\].*unexpected: extra"):
        DiffusionPriorUNet(TINY).load_weights(tmp_path / "w.safetensors")
    with pytest.raises(ToolkitError, match="does not exist"):
        DiffusionPriorUNet(TINY).load_weights(tmp_path / "nope.safetensors")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ToolkitError, match=r"corrupt\.safetensors"):
        DiffusionPriorUNet(TINY).load_weights(tmp_path / "corrupt.safetensors")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"hidden_dims": (16,)}, "hidden_dims"),
        ({"hidden_dims": (16, -2)}, "hidden_dims"),
        ({"time_embed_dim": 7}, "even"),
        ({"dropout": 1.0}, "dropout"),
        ({"activation": "tanh"}, "activation"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        PriorUNetConfig(**kwargs)


def test_wrong_embedding_dimension():
    prior = _tiny()
    with pytest.raises(ToolkitError, match=r"x_t has shape \(2, 15\).*\(batch, 16\)"):
        prior(torch.randn(2, 15), 3)
    with pytest.raises(ToolkitError, match=r"cond has shape \(2, 10\).*\(batch, 12\)"):
        prior(torch.randn(2, 16), 3, torch.randn(2, 10))
    with pytest.raises(ToolkitError, match="one condition per row"):
        prior(torch.randn(2, 16), 3, torch.randn(3, 12))
    with pytest.raises(ToolkitError, match="timestep"):
        prior(torch.randn(2, 16), torch.tensor([1, 2, 3]))
    with pytest.raises(ToolkitError, match=r"x_t must be a torch\.Tensor"):
        prior([[0.0] * 16], 3)


def test_single_timestep_broadcasts_and_batch_rows_independent():
    prior = _tiny()
    x, cond = torch.randn(5, 16), torch.randn(5, 12)
    with torch.no_grad():
        full = prior(x, torch.full((5,), 42), cond)
        torch.testing.assert_close(prior(x, 42, cond), full)
        torch.testing.assert_close(prior(x, torch.tensor(42), cond), full)
        torch.testing.assert_close(prior(x[2:3], 42, cond[2:3]), full[2:3])


def test_cond_features_match_cond_and_zero_rows_match_uncond():
    prior = _tiny()
    x, cond, t = torch.randn(3, 16), torch.randn(3, 12), torch.tensor([0, 1, 999])
    with torch.no_grad():
        features = prior.encode_condition(cond)
        torch.testing.assert_close(prior(x, t, cond_features=features), prior(x, t, cond))
        zeros = [torch.zeros_like(f) for f in features]
        torch.testing.assert_close(prior(x, t, cond_features=zeros), prior(x, t))
        # The unconditional path really skips the condition Linear (its bias would otherwise contribute).
        assert not torch.allclose(prior(x, t), prior(x, t, torch.zeros(3, 12)))
    with pytest.raises(ToolkitError, match="not both"):
        prior(x, t, cond, cond_features=features)
    with pytest.raises(ToolkitError, match="encode_condition"):
        prior(x, t, cond_features=features[:-1])


def test_dropout_only_in_training_mode():
    prior = _tiny()
    x, t = torch.randn(4, 16), torch.tensor([3, 3, 3, 3])
    with torch.no_grad():
        assert torch.equal(prior(x, t), prior(x, t))
        prior.train()
        torch.manual_seed(0)
        first = prior(x, t)
        assert not torch.equal(first, prior(x, t))


def test_dtype_follows_module():
    prior = _tiny().to(torch.float64)
    out = prior(torch.randn(2, 16), torch.tensor([1, 2]), torch.randn(2, 12))
    assert out.dtype == torch.float64
